"""Events, their canonical byte encoding and the hash chain.

An event is stored as *body bytes*: the canonical JSON encoding of one object with exactly these
members (docs/log-format.md is the normative description)::

    actor, as, at, case, payload, prev, schema, seq, state, type, workflow

plus, only where they apply, ``request`` (the client's request id that makes a command idempotent)
and ``clock`` (the host clock's reading when it was behind the case's last event and ``at`` was
held at that event's time); and its hash is ``SHA-256(b"mediation.event.v1\\x00" + body)``, written as 64 lowercase hex digits.
``prev`` is the previous event's hash, or :data:`GENESIS` for seq 1.  Stores keep the body bytes and
the hash exactly; verification recomputes the hash from the stored bytes, never from objects.

Canonical encoding is the subset of RFC 8785 (JCS) in which the two coincide with Python's
``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))``: member names are ASCII
(so code-point order equals JCS's UTF-16 order), numbers are integers with ``|n| < 2**53`` (no floats,
so no number formatting differences), strings are valid Unicode (no lone surrogates); escapes are
then identical (``\\"`` ``\\\\`` ``\\b`` ``\\f`` ``\\n`` ``\\r`` ``\\t`` and ``\\u00xx`` for other
control characters, everything else as UTF-8).  ``tests/test_encoding.py`` checks the equality
against the ``rfc8785`` package on generated values.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from ._errors import InvalidCommand

__all__ = [
    "DOMAIN_TAG",
    "GENESIS",
    "OPTIONAL_KEYS",
    "SCHEMA_VERSION",
    "Event",
    "StoredEvent",
    "canonical_bytes",
    "decode_event",
    "event_hash",
]

DOMAIN_TAG = b"mediation.event.v1\x00"
GENESIS = "0" * 64
SCHEMA_VERSION = 1
MAX_INT = 2**53 - 1
BODY_KEYS = frozenset(
    ("actor", "as", "at", "case", "payload", "prev", "schema", "seq", "state", "type", "workflow")
)
#: members an envelope carries only where they apply
OPTIONAL_KEYS = frozenset(("clock", "request", "roster"))
_ALL_KEYS = BODY_KEYS | OPTIONAL_KEYS

_ENCODER = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
)


def _payload_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode`` for dicts, with the C encoder built once instead of on every call."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython without the _json accelerator
        return _ENCODER.encode
    iterencode = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
    return lambda value: "".join(iterencode(value, 0))


_encode_payload = _payload_encoder()


def _no_float(text: str) -> Any:
    raise ValueError(f"numbers in the log are integers, not {text!r}")


def _bounded_int(text: str) -> int:
    """An integer of the log: within ±(2^53 − 1), the range every JSON reader holds exactly (I-JSON,
    RFC 7493, section 2.2); anything of 16 characters or more is checked, and refused beyond it."""
    value = int(text)
    if len(text) > 15 and not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"integer outside ±(2^53-1), the interoperable range (I-JSON): {text:.40}")
    return value


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The ``object_pairs_hook`` of every reader of the log's formats (event bodies, export lines,
    checkpoint files): an object that names a member twice is refused (``ValueError``), whichever
    duplicate a reader would keep."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"duplicate member name {name!r:.80}")
            seen.add(name)
    return obj


def loads_unique(text: str | bytes) -> Any:
    """``json.loads`` that refuses duplicate member names (:func:`unique_members`) and integers
    outside ±(2^53 − 1)."""
    return json.loads(text, object_pairs_hook=unique_members, parse_int=_bounded_int)


#: the log holds no floats, NaN or infinities, no integer beyond ±(2^53 − 1), and no object names a
#: member twice: they are refused while parsing
_DECODER = json.JSONDecoder(
    parse_float=_no_float,
    parse_int=_bounded_int,
    parse_constant=_no_float,
    object_pairs_hook=unique_members,
)
#: the C scanner itself: JSON text from index 0, no whitespace allowed
_scan: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _check_value(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidCommand(f"{path}: unpaired surrogate in text", field=path) from exc
        return
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise InvalidCommand(f"{path}: integer outside ±(2^53-1)", field=path)
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise InvalidCommand(f"{path}: member names must be ASCII text", field=path)
            _check_value(item, f"{path}.{key}")
        return
    raise InvalidCommand(f"{path}: {type(value).__name__} is not allowed in events", field=path)


def canonical_bytes(value: Any, *, checked: bool = True) -> bytes:
    """Canonical JSON bytes of ``value`` (see the module docstring).

    With ``checked`` (the default) the value is first checked to lie inside the JCS-compatible
    subset; the command path passes ``checked=False`` for payloads its validators already bound.
    """
    if checked:
        _check_value(value, "$")
    return _ENCODER.encode(value).encode("utf-8")


def event_hash(body: bytes) -> str:
    """The hex SHA-256 of the domain tag followed by the body bytes."""
    return hashlib.sha256(DOMAIN_TAG + body).hexdigest()


_UTC = _dt.timezone.utc


def format_time(at: _dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; a naive datetime is refused."""
    offset = at.utcoffset()
    if offset is None:
        raise InvalidCommand("naive datetime: the clock must return timezone-aware UTC times")
    if offset:
        try:
            at = at.astimezone(_UTC)
        except OverflowError:
            raise InvalidCommand(f"{at.isoformat()} is outside the years 1-9999 in UTC") from None
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - the fastest spelling
        at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond,
    )  # fmt: skip


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


def parse_time(text: str) -> _dt.datetime:
    """Inverse of :func:`format_time` (raises ``ValueError`` on anything else)."""
    if not isinstance(text, str) or not _TIME.match(text):
        raise ValueError(f"not a UTC timestamp of the log format: {text!r}")
    return _dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=_UTC)


@attrs.frozen
class StoredEvent:
    """One event exactly as a store keeps it: the body bytes and their hash."""

    case_id: str
    seq: int
    hash: str
    body: bytes
    #: the client's request id, which the body's ``request`` member also holds; stores index it
    request_id: str | None = None


@attrs.frozen
class Event:
    """A decoded event.  ``stored`` is the record it came from (bytes and hash)."""

    case_id: str
    seq: int
    type: str
    at: _dt.datetime
    actor: str
    acted_as: str
    state: str
    payload: Mapping[str, Any]
    prev: str
    workflow: str
    schema: int
    stored: StoredEvent = attrs.field(repr=False)
    #: the client's request id, when the command carried one
    request_id: str | None = None
    #: the host clock's reading, when it was behind the case's last event (``at`` then equals it)
    clock: _dt.datetime | None = None
    #: the seq of the committee's roster the command was decided on, when it kept one
    roster: int | None = None

    @property
    def hash(self) -> str:
        return self.stored.hash

    def command(self) -> Any:
        """The typed command object this event recorded (its class is the one the case's workflow
        version declares)."""
        from ._commands import from_payload
        from ._spec import workflow_of

        spec = workflow_of(self.workflow).find(self.type)
        if spec is None:
            raise InvalidCommand(
                f"{self.type!r} is not a command of workflow {self.workflow}", field="type"
            )
        return from_payload(spec.payload, dict(self.payload))


def make_body(
    *,
    case_id: str,
    seq: int,
    type: str,
    at: str,
    actor: str,
    acted_as: str,
    state: str,
    payload: dict[str, Any],
    prev: str,
    workflow: str,
    request: str | None = None,
    clock: str | None = None,
    roster: int | None = None,
) -> dict[str, Any]:
    body = {
        "actor": actor,
        "as": acted_as,
        "at": at,
        "case": case_id,
        "payload": payload,
        "prev": prev,
        "schema": SCHEMA_VERSION,
        "seq": seq,
        "state": state,
        "type": type,
        "workflow": workflow,
    }
    if request is not None:
        body["request"] = request
    if clock is not None:
        body["clock"] = clock
    if roster is not None:
        body["roster"] = roster
    return body


_str = json.encoder.encode_basestring  # the C escaper behind ensure_ascii=False


def encode_body(
    *,
    case_id: str,
    seq: int,
    type: str,
    at: str,
    actor: str,
    acted_as: str,
    state: str,
    payload: dict[str, Any],
    prev: str,
    workflow: str,
    request: str | None = None,
    clock: str | None = None,
    roster: int | None = None,
) -> bytes:
    """``canonical_bytes(make_body(...))``, assembled directly (the command path's hot spot).

    The members are written in sorted order; ``tests/test_encoding.py`` checks the result is
    byte-identical to the generic encoder.
    """
    clock_member = "" if clock is None else f'"clock":{_str(clock)},'
    request_member = "" if request is None else f'"request":{_str(request)},'
    if roster is not None:
        request_member += f'"roster":{roster:d},'
    return (
        f'{{"actor":{_str(actor)},"as":{_str(acted_as)},"at":{_str(at)},"case":{_str(case_id)},'
        f'{clock_member}"payload":{_encode_payload(payload)},"prev":{_str(prev)},'
        f'{request_member}"schema":{SCHEMA_VERSION},"seq":{seq:d},"state":{_str(state)},'
        f'"type":{_str(type)},"workflow":{_str(workflow)}}}'
    ).encode()


def parse_body(body: bytes) -> dict[str, Any]:
    """Parse stored body bytes into the envelope dict; raise ``ValueError`` if malformed."""
    text = body.decode("utf-8")
    try:
        obj, end = _scan(text, 0)
    except StopIteration as exc:
        raise ValueError(f"not JSON at character {exc.value}") from None
    except RecursionError as exc:
        raise ValueError("nested too deeply to be an event") from exc
    if end != len(text):
        raise ValueError("trailing bytes after the event object")
    # exactly the documented members (the common case, no optional member, in one comparison)
    if type(obj) is not dict or (
        obj.keys() != BODY_KEYS and not BODY_KEYS < obj.keys() <= _ALL_KEYS
    ):
        raise ValueError("not an event object with exactly the documented members")
    return obj


def by_stream(records: Iterable[StoredEvent]) -> Iterator[tuple[str, list[StoredEvent]]]:
    """``records`` (as :meth:`Store.scan` yields them, each stream's contiguous) grouped into
    ``(stream id, its records)``."""
    current: str | None = None
    batch: list[StoredEvent] = []
    for rec in records:
        if rec.case_id != current:
            if batch and current is not None:
                yield current, batch
            current, batch = rec.case_id, []
        batch.append(rec)
    if batch and current is not None:
        yield current, batch


def decode_event(stored: StoredEvent) -> Event:
    """Decode a stored record (no verification: see :func:`mediation.verify`)."""
    b = parse_body(stored.body)
    return Event(
        case_id=b["case"],
        seq=b["seq"],
        type=b["type"],
        at=parse_time(b["at"]),
        actor=b["actor"],
        acted_as=b["as"],
        state=b["state"],
        payload=b["payload"],
        prev=b["prev"],
        workflow=b["workflow"],
        schema=b["schema"],
        stored=stored,
        request_id=b.get("request"),
        clock=parse_time(b["clock"]) if "clock" in b else None,
        roster=b.get("roster"),
    )
