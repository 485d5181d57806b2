"""The canonical encoding of events: RFC 8785 (JCS) on the documented subset, and nothing outside it.

``canonical_bytes`` must equal ``rfc8785.dumps`` for every value of the subset (ASCII member names,
integers within ±(2^53-1), no floats, valid Unicode text), and refuse everything else with
:class:`InvalidCommand`; the hand-written ``encode_body`` must be byte-identical to the generic
encoder; ``parse_body`` must accept exactly the documented envelope; timestamps round-trip.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given
from hypothesis import strategies as st

from mediation import InvalidCommand, canonical_bytes
from mediation._events import (
    BODY_KEYS,
    GENESIS,
    MAX_INT,
    OPTIONAL_KEYS,
    encode_body,
    format_time,
    make_body,
    parse_body,
    parse_time,
)

# -- strategies ------------------------------------------------------------------------------------

#: the characters where JSON encoders tend to disagree: every control character, the two escapes,
#: DEL, the JavaScript line separators, a BOM, non-BMP characters, the last code point
_SPECIAL = (
    [chr(c) for c in range(0x20)]
    + ['"', "\\", "/", "\x7f", "\u2028", "\u2029", "\ufeff", "\ufffd", "é", "中", "调"]
    + ["\U0001f600", "\U00010000", "\U0010ffff"]
)
#: any valid Unicode text (hypothesis' text() never produces surrogates), biased to the specials
TEXT = st.one_of(st.text(), st.text(st.sampled_from(_SPECIAL)))
#: member names: ASCII, control characters included
KEYS = st.one_of(st.text(st.characters(max_codepoint=0x7F)), st.sampled_from(sorted(BODY_KEYS)))
INTS = st.one_of(
    st.integers(-MAX_INT, MAX_INT),
    st.sampled_from((0, -1, MAX_INT, -MAX_INT, 2**31, -(2**31), 2**32)),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)
PAYLOADS = st.dictionaries(KEYS, JSON, max_size=6)

_UTC = dt.timezone.utc
_LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)


_BAD_KINDS = (
    "float",
    "big_int",
    "surrogate_text",
    "surrogate_key",
    "non_ascii_key",
    "key_type",
    "bytes",
    "set",
    "datetime",
    "object",
)


@st.composite
def _outside(draw: st.DrawFn) -> Any:
    """One value outside the subset."""
    kind = draw(st.sampled_from(_BAD_KINDS))
    if kind == "float":
        return draw(st.one_of(st.floats(), st.sampled_from((0.0, 1.0, -2.0, 1e300))))
    if kind == "big_int":
        return draw(
            st.one_of(st.integers(min_value=MAX_INT + 1), st.integers(max_value=-MAX_INT - 1))
        )
    if kind == "surrogate_text":
        text = draw(TEXT)
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(_LONE_SURROGATES) + text[at:]
    if kind == "surrogate_key":
        return {draw(_LONE_SURROGATES): draw(SCALARS)}
    if kind == "non_ascii_key":
        key = draw(st.text(min_size=1).filter(lambda k: not k.isascii()))
        return {key: draw(SCALARS)}
    if kind == "key_type":
        return {draw(st.one_of(st.integers(), st.none(), st.booleans())): draw(SCALARS)}
    if kind == "bytes":
        return draw(st.binary())
    if kind == "set":
        return {1, 2}
    if kind == "datetime":
        return dt.datetime(2026, 1, 5, tzinfo=_UTC)
    return object()


def _not_in(taken: frozenset[str]) -> Callable[[str], bool]:
    return lambda key: key not in taken


@st.composite
def _containing_bad(draw: st.DrawFn) -> Any:
    """A valid value with one bad value buried somewhere inside it."""
    value = draw(_outside())
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.sampled_from(("list", "dict")))
        siblings = draw(st.lists(SCALARS, max_size=3))
        if where == "list":
            at = draw(st.integers(0, len(siblings)))
            value = [*siblings[:at], value, *siblings[at:]]
        else:
            others = {f"k{i}": v for i, v in enumerate(siblings)}
            key = draw(KEYS.filter(_not_in(frozenset(others))))
            value = {**others, key: value}
    return value


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """The keyword arguments of ``make_body`` / ``encode_body``."""
    return dict(
        case_id=draw(TEXT),
        seq=draw(st.integers(-MAX_INT, MAX_INT)),
        type=draw(TEXT),
        at=draw(st.one_of(TEXT, st.just("2026-01-05T08:07:00.000000Z"))),
        actor=draw(TEXT),
        acted_as=draw(TEXT),
        state=draw(TEXT),
        payload=draw(PAYLOADS),
        prev=draw(st.one_of(st.just(GENESIS), TEXT)),
        workflow=draw(TEXT),
        # the optional members, present only where they apply
        request=draw(st.one_of(st.none(), TEXT)),
        clock=draw(st.one_of(st.none(), TEXT)),
    )


# -- canonical_bytes -------------------------------------------------------------------------------


@given(JSON)
@example('\u2028\x00\x1f\x7f"\\/\U0001f600')
@example({"b": 1, "a": [True, False, None], "": {"\x00": -MAX_INT, "~": MAX_INT}})
@example({"a": 1, "A": 2, "_": 3, "0": 4, " ": 5})
def test_canonical_bytes_is_rfc8785_on_the_subset(value: Any) -> None:
    encoded = canonical_bytes(value)
    assert encoded == rfc8785.dumps(value)
    assert json.loads(encoded) == value
    # the unchecked form (the command path's) encodes the same bytes
    assert canonical_bytes(value, checked=False) == encoded


@given(_containing_bad())
@example(1.0)
@example(float("nan"))
@example(2**53)
@example(-(2**53))
@example({"é": 1})
@example(["ok", {"k": "\ud800"}])
@example({"\udfff": 1})
@example({1: "a"})
def test_values_outside_the_subset_are_refused(value: Any) -> None:
    with pytest.raises(InvalidCommand):
        canonical_bytes(value)


def test_the_integer_bounds_are_inclusive() -> None:
    assert canonical_bytes([MAX_INT, -MAX_INT]) == b"[9007199254740991,-9007199254740991]"
    for bad in (MAX_INT + 1, -MAX_INT - 1):
        with pytest.raises(InvalidCommand):
            canonical_bytes({"n": bad})


# -- the event envelope ----------------------------------------------------------------------------


@given(envelopes())
def test_encode_body_equals_the_generic_encoder(env: dict[str, Any]) -> None:
    body = make_body(**env)
    optional = {k for k in ("request", "clock") if env[k] is not None}
    assert body.keys() == BODY_KEYS | optional
    expected = canonical_bytes(body)
    assert encode_body(**env) == expected
    assert expected == rfc8785.dumps(body)


@given(envelopes())
def test_parse_body_round_trips(env: dict[str, Any]) -> None:
    body = make_body(**env)
    assert parse_body(encode_body(**env)) == body


@given(
    envelopes(),
    st.one_of(
        st.sampled_from((b" ", b"\n", b"\x00", b"{}", b"0", b",", b"}", b"\xff")),
        st.binary(min_size=1),
    ),
)
def test_parse_body_rejects_trailing_bytes(env: dict[str, Any], suffix: bytes) -> None:
    with pytest.raises(ValueError):
        parse_body(encode_body(**env) + suffix)


@given(envelopes(), st.sampled_from((b" ", b"\n", b"\t", b"\xef\xbb\xbf")))
def test_parse_body_rejects_leading_bytes(env: dict[str, Any], prefix: bytes) -> None:
    with pytest.raises(ValueError):
        parse_body(prefix + encode_body(**env))


@given(envelopes(), st.sampled_from(sorted(BODY_KEYS)))
def test_parse_body_rejects_a_missing_member(env: dict[str, Any], missing: str) -> None:
    body = make_body(**env)
    del body[missing]
    with pytest.raises(ValueError):
        parse_body(canonical_bytes(body))


@given(envelopes(), KEYS.filter(lambda k: k not in BODY_KEYS | OPTIONAL_KEYS), JSON)
def test_parse_body_rejects_an_extra_member(env: dict[str, Any], extra: str, value: Any) -> None:
    body = make_body(**env)
    body[extra] = value
    with pytest.raises(ValueError):
        parse_body(canonical_bytes(body))


@given(st.one_of(JSON.filter(lambda v: not isinstance(v, dict)), st.just({})))
def test_parse_body_rejects_anything_but_the_envelope_object(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_body(canonical_bytes(value))


# -- timestamps ------------------------------------------------------------------------------------

OFFSETS = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
).map(dt.timezone)
#: a day of margin at both ends, so that converting to UTC cannot overflow the datetime range
AWARE = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=OFFSETS
)


@given(AWARE)
@example(dt.datetime(2026, 1, 5, 8, 0, tzinfo=_UTC))
@example(dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
def test_time_round_trips(at: dt.datetime) -> None:
    text = format_time(at)
    assert len(text) == 27 and text.endswith("Z")
    back = parse_time(text)
    assert back == at
    assert back.utcoffset() == dt.timedelta(0)
    assert format_time(back) == text
    # the text sorts like the instants it names
    assert (text < format_time(at + dt.timedelta(microseconds=1))) is True


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)))
def test_naive_datetimes_are_refused(at: dt.datetime) -> None:
    with pytest.raises(InvalidCommand):
        format_time(at)


@given(AWARE, st.data())
def test_parse_time_accepts_only_what_format_time_writes(
    at: dt.datetime, data: st.DataObject
) -> None:
    """Any one-character change of a canonical timestamp is either refused or the same text."""
    text = format_time(at)
    i = data.draw(st.integers(0, len(text) - 1))
    repl = data.draw(st.sampled_from(" T,.:-+Zz0123456789W\u0660"))
    changed = text[:i] + repl + text[i + 1 :]
    try:
        parsed = parse_time(changed)
    except ValueError:
        return
    assert format_time(parsed) == changed


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05 08:00:00.000000Z",  # a space for the T
        "2026-01-05T08:00:00,000000Z",  # a decimal comma
        "2026-W02-1T08:00:00.000000Z",  # an ISO week date
        "2026-01-05T08:00:00.000000z",
        "2026-01-05T08:00:00.000000",
        "2026-01-05T08:00:00Z",
        "2026-01-05T08:00:00.000000+00:00",
        "2026-01-05T08:00:00.000+0000Z",
        "",
    ],
)
def test_parse_time_refuses_other_spellings(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)
