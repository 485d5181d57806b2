"""Validators of command fields, each with the JSON Schema of what it accepts.

A leaf module: of the library it imports only :mod:`._errors`, so the payload classes
(:mod:`._commands`), the authorization model, the policy, the service and replay can all check ids,
words and times the same way.  Every failure is :class:`~mediation.InvalidCommand` naming the field.
"""

from __future__ import annotations

import copy
import datetime as _dt
import enum
import re
import typing
from collections.abc import Callable
from typing import Any

import attrs

from ._errors import InvalidCommand

__all__ = [
    "DATETIME_PATTERN",
    "DATE_PATTERN",
    "ID_PATTERN",
    "MAX_ITEMS",
    "MAX_SHORT",
    "MAX_TEXT",
    "MEDIA_TYPE_PATTERN",
    "OPT_ID_PATTERN",
    "REQUIRED_TEXT_PATTERN",
    "SHA256_PATTERN",
    "TEXT_PATTERN",
    "Check",
    "a_date",
    "a_media_type",
    "a_sha256",
    "aware",
    "flag",
    "ident",
    "instance",
    "int_in",
    "items",
    "json_schema_of",
    "one_of",
    "opt_ident",
    "optional",
    "parse_date",
    "parse_datetime",
    "plain_word",
    "text",
]

MAX_TEXT = 4000
MAX_SHORT = 200
MAX_ITEMS = 50
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_MEDIA = re.compile(r"[a-z0-9.+-]+/[a-z0-9.+-]+\Z")

# -- validators ------------------------------------------------------------------------------------
#
# Every validator carries ``json_schema``: the JSON Schema (draft 2020-12) of the JSON values it
# accepts once decoded by :func:`._commands.from_payload`.  :mod:`mediation.web` builds each command's schema
# from them and ``docs/commands.md`` its field tables, so the schema, the documentation and the
# validation that the service and replay run are one declaration.  Nested value objects appear as
# ``{"$ref": "#/$defs/<class name>"}``.

#: a validator: ``check(instance, attribute, value)`` raises :class:`InvalidCommand` or returns
Check = Callable[[Any, "attrs.Attribute[Any]", Any], None]

#: characters ``str.isspace`` and ``str.strip`` treat as white space, as regular-expression ranges
_SPACE = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029"
    "\\u202f\\u205f\\u3000"
)
#: the control characters text may not hold (all below U+0020 except tab and newline)
_CONTROL = "\\u0000-\\u0008\\u000b-\\u001f"
_BLANK_OK = "\\t\\n \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
#: text that reads like a sealed-value token of the former format (``sealed:v1:...``): refused, so
#: that user text can never be taken for ciphertext (sealed values are objects, mediation._privacy)
_TOKEN = f"(?![{_SPACE}]*sealed:v[0-9]+:)"
_TOKEN_RE = re.compile(f"^{_TOKEN}")
#: JSON Schema patterns (ECMA-262 syntax, also valid for Python's ``re``); anchored with ^ and $
TEXT_PATTERN = f"^{_TOKEN}[^{_CONTROL}]*$"
#: text with at least one character that is neither white space nor a control character
REQUIRED_TEXT_PATTERN = f"^{_TOKEN}[{_BLANK_OK}]*[^{_SPACE}{_CONTROL}][^{_CONTROL}]*$"
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"
OPT_ID_PATTERN = "^([A-Za-z0-9][A-Za-z0-9_.:@-]{0,63})?$"
SHA256_PATTERN = "^[0-9a-f]{64}$"
MEDIA_TYPE_PATTERN = "^[a-z0-9.+-]+/[a-z0-9.+-]+$"
DATE_PATTERN = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
DATETIME_PATTERN = (
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    "(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DATE_SCHEMA: dict[str, Any] = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
_DATETIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": DATETIME_PATTERN,
}


def _schema(check: Check, schema: dict[str, Any]) -> Check:
    """Attach ``schema`` to ``check`` as ``check.json_schema``."""
    check.json_schema = schema  # type: ignore[attr-defined]
    return check


def json_schema_of(check: object) -> dict[str, Any]:
    """The JSON Schema a validator declares (a fresh copy); ``LookupError`` if it declares none."""
    schema = getattr(check, "json_schema", None)
    if not isinstance(schema, dict):
        raise LookupError(f"validator {check!r} declares no json_schema")
    return copy.deepcopy(schema)


def _type_schema(of: type) -> dict[str, Any]:
    if of is _dt.date:
        return dict(_DATE_SCHEMA)
    if attrs.has(of):
        return {"$ref": f"#/$defs/{of.__name__}"}
    raise TypeError(f"no JSON Schema for {of.__name__}")


def _show(value: object) -> str:
    """A short, safe rendering of an offending value for a message (never the whole input)."""
    if isinstance(value, str):
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else "a very large integer"
    return f"a {type(value).__name__}"


def _fail(attr: attrs.Attribute[Any], message: str) -> typing.NoReturn:
    raise InvalidCommand(f"{attr.name}: {message}", field=attr.name)


def _clean_text(value: object, attr: attrs.Attribute[Any], limit: int) -> str:
    if not isinstance(value, str):
        _fail(attr, f"expected text, got {type(value).__name__}")
    if len(value) > limit:
        _fail(attr, f"longer than {limit} characters ({len(value)})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(attr, "contains unpaired surrogates")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        _fail(attr, "contains control characters")
    if "sealed:v" in value and not _TOKEN_RE.match(value):
        _fail(attr, "reads like a sealed-value token (sealed:v1:...); such text is not accepted")
    return value


def text(limit: int = MAX_TEXT, *, required: bool = False) -> Check:
    """Text of at most ``limit`` characters, without control characters other than tab and
    newline; ``required``: not blank."""

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        value = _clean_text(value, attr, limit)
        if required and not value.strip():
            _fail(attr, "must not be empty")

    schema: dict[str, Any] = {"type": "string", "maxLength": limit, "pattern": TEXT_PATTERN}
    if required:
        schema.update(minLength=1, pattern=REQUIRED_TEXT_PATTERN)
    return _schema(check, schema)


def ident(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    """An id: 1-64 of ``A-Z a-z 0-9 _ . : @ -``, starting with a letter or digit."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        _fail(attr, f"not a valid id: {_show(value)} (1-64 of A-Z a-z 0-9 _ . : @ -)")


_schema(ident, {"type": "string", "maxLength": 64, "pattern": ID_PATTERN})


def opt_ident(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    """An id, or ``""``."""
    if value != "":
        ident(inst, attr, value)


_schema(opt_ident, {"type": "string", "maxLength": 64, "pattern": OPT_ID_PATTERN})


def one_of(*choices: str) -> Check:
    """One of ``choices`` (in the schema, in this order): strings, or the members of a ``str``
    enum (``one_of(*Route)``, ``one_of("", *Subtype)``), which stand for their values."""
    words = [c.value if isinstance(c, enum.Enum) else c for c in choices]
    allowed = frozenset(words)

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or value not in allowed:
            _fail(attr, f"{_show(value)} is not one of {', '.join(sorted(allowed))}")

    return _schema(check, {"type": "string", "enum": words})


def plain_word(value: str) -> str:
    """A converter for the fields :func:`one_of` checks: a ``str`` enum member becomes its value,
    so a command holds, and its payload writes, the plain string whichever was given."""
    return value.value if isinstance(value, enum.Enum) else value


def flag(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        _fail(attr, f"expected true/false, got {type(value).__name__}")


_schema(flag, {"type": "boolean"})


def int_in(lo: int, hi: int) -> Check:
    """An integer (not a boolean, not a float) from ``lo`` to ``hi``."""

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            _fail(attr, f"expected an integer in {lo}..{hi}, got {_show(value)}")

    return _schema(check, {"type": "integer", "minimum": lo, "maximum": hi})


def items(of: Check | type, *, min_len: int = 0) -> Check:
    """A tuple (a JSON array) of ``min_len`` to :data:`MAX_ITEMS` items, each an ``of``."""

    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            _fail(attr, f"expected a tuple, got {type(value).__name__}")
        if not min_len <= len(value) <= MAX_ITEMS:
            _fail(attr, f"expected {min_len}..{MAX_ITEMS} items, got {len(value)}")
        for item in value:
            if isinstance(of, type):
                if not isinstance(item, of):
                    _fail(attr, f"expected {of.__name__} items, got {type(item).__name__}")
            else:
                of(inst, attr, item)

    schema: dict[str, Any] = {
        "type": "array",
        "items": _type_schema(of) if isinstance(of, type) else json_schema_of(of),
        "maxItems": MAX_ITEMS,
    }
    if min_len:
        schema["minItems"] = min_len
    return _schema(check, schema)


def aware(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    """A timezone-aware datetime (in JSON: RFC 3339 with ``Z`` or an offset)."""
    if not isinstance(value, _dt.datetime):
        _fail(attr, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        _fail(attr, "naive datetime: give a timezone-aware one")
    try:
        value.astimezone(_dt.timezone.utc)
    except OverflowError:
        _fail(attr, "outside the years 1-9999 in UTC")


_schema(aware, _DATETIME_SCHEMA)


def a_date(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    """A date, not a datetime (in JSON: ``YYYY-MM-DD``)."""
    if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
        _fail(attr, f"expected a date, got {type(value).__name__}")


_schema(a_date, _DATE_SCHEMA)


def optional(of: type) -> Check:
    """An ``of`` or ``None`` (``null``); for ``of=date``, a datetime is not a date."""

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if value is not None and (
            not isinstance(value, of) or (of is _dt.date and isinstance(value, _dt.datetime))
        ):
            _fail(attr, f"expected {of.__name__} or None, got {type(value).__name__}")

    return _schema(check, {"anyOf": [_type_schema(of), {"type": "null"}]})


def instance(of: type) -> Check:
    """Like ``attrs.validators.instance_of``, but raising :class:`InvalidCommand`."""

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, of):
            _fail(attr, f"expected {of.__name__}, got {type(value).__name__}")

    return _schema(check, _type_schema(of))


def a_sha256(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    """64 lowercase hex digits."""
    if not isinstance(value, str) or not _HEX64.match(value):
        _fail(attr, "expected 64 lowercase hex digits")


_schema(a_sha256, {"type": "string", "pattern": SHA256_PATTERN})


def a_media_type(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    """A lowercase media type, ``type/subtype``."""
    value = _clean_text(value, attr, MAX_SHORT)
    if not value.strip():
        _fail(attr, "must not be empty")
    if not _MEDIA.match(value):
        _fail(attr, f"not a media type: {_show(value)}")


_schema(a_media_type, {"type": "string", "maxLength": MAX_SHORT, "pattern": MEDIA_TYPE_PATTERN})


# -- dates and times in JSON -----------------------------------------------------------------------
#
# RFC 3339 (the JSON Schema formats ``date`` and ``date-time``), parsed the same way on every
# Python version: ``date.fromisoformat`` and ``datetime.fromisoformat`` accept more on 3.11 than on
# 3.10, and a payload must not be valid on one and invalid on the other.
_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_DATETIME_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?\Z"
)


def parse_date(value: object, where: str) -> _dt.date:
    """``YYYY-MM-DD``, a real calendar date; else :class:`InvalidCommand` naming ``where``."""
    m = _DATE_TEXT.match(value) if isinstance(value, str) else None
    try:
        if m is None:
            raise ValueError
        return _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise InvalidCommand(
            f"{where}: bad date {_show(value)} (expected YYYY-MM-DD)", field=where
        ) from None


def parse_datetime(value: object, where: str) -> _dt.datetime:
    """An RFC 3339 date-time with ``Z`` or an offset (fractions beyond microseconds are cut);
    else :class:`InvalidCommand` naming ``where``.  Without an offset it is naive, and refused."""
    m = _DATETIME_TEXT.match(value) if isinstance(value, str) else None
    if m is not None and m[8] is None and m[9] is None:
        raise InvalidCommand(
            f"{where}: naive timestamp {_show(value)}: give a UTC offset or Z", field=where
        )
    try:
        if m is None:
            raise ValueError
        tz = _dt.timezone.utc
        if m[9] is not None:
            offset = _dt.timedelta(hours=int(m[10]), minutes=int(m[11]))
            tz = _dt.timezone(-offset if m[9] == "-" else offset) if offset else tz
        micro = int((m[7] or "0").ljust(6, "0")[:6])
        year, month, day, hour, minute, second = (int(m[i]) for i in range(1, 7))
        return _dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        raise InvalidCommand(
            f"{where}: bad timestamp {_show(value)} (expected RFC 3339 with Z or an offset)",
            field=where,
        ) from None
