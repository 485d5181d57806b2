"""Commands and their payloads: frozen attrs classes, validated when built.

A command object is what a host app builds from a request; the service turns it into a payload
(a JSON-native dict, :func:`to_payload`) once, and from then on guards, the event and replay all read
that payload.  :func:`from_payload` is the inverse, used for untrusted input (imports, the CLI).
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from ._errors import InvalidCommand

__all__ = [
    "COMMAND_TYPES",
    "Command",
    "DocRef",
    "Party",
    "Scope",
    "Tie",
    "from_payload",
    "to_payload",
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
# accepts once decoded by :func:`from_payload`.  :mod:`mediation.web` builds each command's schema
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
#: JSON Schema patterns (ECMA-262 syntax, also valid for Python's ``re``); anchored with ^ and $
TEXT_PATTERN = f"^[^{_CONTROL}]*$"
#: text with at least one character that is neither white space nor a control character
REQUIRED_TEXT_PATTERN = f"^[{_BLANK_OK}]*[^{_SPACE}{_CONTROL}][^{_CONTROL}]*$"
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
    """One of ``choices`` (in the schema, in this order)."""
    allowed = frozenset(choices)

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or value not in allowed:
            _fail(attr, f"{_show(value)} is not one of {', '.join(sorted(allowed))}")

    return _schema(check, {"type": "string", "enum": list(choices)})


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


def _tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


# -- value objects ---------------------------------------------------------------------------------

#: close relatives under CC1045, plus the other grounds for recusal
CLOSE_RELATIVES = ("spouse", "parent", "child", "sibling", "grandparent", "grandchild")
TIE_KINDS = (*CLOSE_RELATIVES, "interest", "employee", "other")


@attrs.frozen
class DocRef:
    """文书引用 — a document or piece of evidence kept by the host, referenced by its SHA-256
    (the log holds the hash, never the document; PML27 case file)."""

    sha256: str = attrs.field(validator=a_sha256)
    media_type: str = attrs.field(validator=a_media_type)
    title: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class Party:
    """当事人/代理人 — a party or agent.  ``id`` is the host's pseudonymous id; the rest is personal
    data, sealed before it enters the log when the service has a vault (PIPL 47)."""

    id: str = attrs.field(validator=ident)
    name: str = attrs.field(validator=text(MAX_SHORT, required=True))
    kind: str = attrs.field(default="person", validator=one_of("person", "organisation"))
    phone: str = attrs.field(default="", validator=text(40))
    address: str = attrs.field(default="", validator=text(MAX_SHORT))
    id_number: str = attrs.field(default="", validator=text(40))
    #: for a person: the organisation (by party id or name) that employs them
    employer: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class Tie:
    """回避事由 — a tie between a mediator or invitee and a party or agent of the case that may
    require recusal (G4: R2002 25; CC1045)."""

    person: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=one_of(*TIE_KINDS))
    note: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class Scope:
    """受理范围 — the director's scope determination at registration (G2: R2002 22; PML25; CC1076)."""

    civil: bool = attrs.field(default=True, validator=flag)
    #: "", or the organ that already accepted or decided the matter
    handled_elsewhere: str = attrs.field(
        default="", validator=one_of("", "court", "arbitration", "police", "administrative")
    )
    #: "", or a matter reserved to another authority
    reserved_matter: str = attrs.field(
        default="", validator=one_of("", "marriage_status", "adoption_status", "identity")
    )
    criminal: bool = attrs.field(default=False, validator=flag)
    public_security: bool = attrs.field(default=False, validator=flag)


@attrs.frozen
class AgreementContent:
    """协议内容 — what a written agreement must state (G8a: PML29; R2002 35)."""

    facts: str = attrs.field(validator=text())
    issues: str = attrs.field(validator=text())
    responsibilities: str = attrs.field(validator=text())
    obligations: str = attrs.field(validator=text())
    performance_method: str = attrs.field(validator=text(MAX_SHORT))
    performance_place: str = attrs.field(validator=text(MAX_SHORT))
    performance_deadline: _dt.date = attrs.field(validator=a_date)


# -- commands --------------------------------------------------------------------------------------


class Command:
    """命令 — base of every command class; ``name`` is the workflow command it issues."""

    name: ClassVar[str]
    __slots__ = ()


CATEGORIES = (
    "婚姻家庭", "邻里", "房屋宅基地", "合同", "生产经营", "损害赔偿", "山林土地", "征地拆迁",
    "环境污染", "劳动争议", "消费", "医疗", "道路交通事故", "物业", "其他",
)  # fmt: skip
SUBTYPES = (
    "", "噪声", "装修/渗漏水", "停车", "宠物", "高空抛物", "占用公共部位", "赡养/抚养", "租赁",
)  # fmt: skip
LEVELS = ("L0", "L1", "L2")


def _parties(min_len: int) -> Any:
    return attrs.field(converter=_tuple, validator=items(Party, min_len=min_len))


def _docs() -> Any:
    return attrs.field(default=(), converter=_tuple, validator=items(DocRef))


@attrs.frozen
class _Opening(Command):
    committee: str = attrs.field(validator=ident)
    category: str = attrs.field(validator=one_of(*CATEGORIES))
    description: str = attrs.field(validator=text(required=True))
    applicants: tuple[Party, ...] = _parties(1)
    respondents: tuple[Party, ...] = _parties(1)
    subtype: str = attrs.field(default="", validator=one_of(*SUBTYPES))
    level: str = attrs.field(default="L1", validator=one_of(*LEVELS[:2]))
    involves_privacy: bool = attrs.field(default=False, validator=flag)
    trade_secrets: bool = attrs.field(default=False, validator=flag)
    evidence: tuple[DocRef, ...] = _docs()
    #: recusal policy profile (DOMAIN.md G4): "" takes the service's policy when the case opens
    profile: str = attrs.field(default="", validator=one_of("", "default", "sz", "court"))

    #: what the class checks beyond its fields, for the JSON Schema (see :mod:`mediation.web`)
    json_schema_extra: ClassVar[Mapping[str, Any]] = {
        "$comment": "no party id appears twice among applicants and respondents",
    }

    def __attrs_post_init__(self) -> None:
        ids = [p.id for p in (*self.applicants, *self.respondents)]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidCommand(
                f"respondents: party {', '.join(dup)} appears twice", field="respondents"
            )


@attrs.frozen
class Apply(_Opening):
    """申请调解 — a party applies for mediation, or a mediator records an oral application
    (PML17; R2002 23)."""

    name: ClassVar[str] = "apply"
    oral: bool = attrs.field(default=False, validator=flag)


@attrs.frozen
class Report(_Opening):
    """报告纠纷线索 — a grid worker, the platform's early warning or the director (on a court or
    police referral, a hotline call) opens a case proactively (PML17-18)."""

    name: ClassVar[str] = "report"
    source: str = attrs.field(
        default="grid",
        validator=one_of("grid", "early_warning", "court_referral", "police_referral", "hotline"),
    )
    source_ref: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class RecordConsent(Command):
    """同意调解 — a respondent, or a respondent's agent, consents to mediation (PML17)."""

    name: ClassVar[str] = "record_consent"
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Refuse(Command):
    """拒绝调解 — a respondent, or a respondent's agent, refuses mediation; the case ends as
    refused (PML17, 23(2))."""

    name: ClassVar[str] = "refuse"
    reason: str = attrs.field(default="", validator=text())


@attrs.frozen
class Register(Command):
    """受理登记 — the director accepts and registers the case with the scope determination of
    G2, once every respondent consented (R2002 22-23)."""

    name: ClassVar[str] = "register"
    scope: Scope = attrs.field(factory=Scope, validator=instance(Scope))
    note: str = attrs.field(default="", validator=text())


ROUTES = ("litigation", "arbitration", "administrative", "police", "other_committee", "other")


@attrs.frozen
class NotAccept(Command):
    """不予受理 — the director declines the case, recording the reason and the route the parties
    should take (R2002 24)."""

    name: ClassVar[str] = "not_accept"
    reason: str = attrs.field(validator=text())
    route: str = attrs.field(validator=one_of(*ROUTES))


@attrs.frozen
class AppointAgent(Command):
    """委托代理人 — a party appoints an agent, with a power of attorney (R2002 26)."""

    name: ClassVar[str] = "appoint_agent"
    agent: Party = attrs.field(validator=instance(Party))
    power_of_attorney: DocRef = attrs.field(validator=instance(DocRef))


@attrs.frozen
class AssignMediator(Command):
    """指定/选定调解员 — the director assigns, or the parties choose, a lead or co-mediator, who
    declares any ties to the parties (PML19, 23(1))."""

    name: ClassVar[str] = "assign_mediator"
    mediator: str = attrs.field(validator=ident)
    lead: bool = attrs.field(default=False, validator=flag)
    #: the assignee's declared ties to the parties (an empty tuple declares none)
    ties: tuple[Tie, ...] = attrs.field(default=(), converter=_tuple, validator=items(Tie))


@attrs.frozen
class RequestRecusal(Command):
    """申请回避 — a party or agent asks that a mediator or invitee step aside, giving grounds
    (R2002 25; SZ23)."""

    name: ClassVar[str] = "request_recusal"
    person: str = attrs.field(validator=ident)
    grounds: str = attrs.field(validator=text(required=True))
    ties: tuple[Tie, ...] = attrs.field(default=(), converter=_tuple, validator=items(Tie))


@attrs.frozen
class DeclareConflict(Command):
    """主动申明回避 — a mediator or invitee declares their own ties to a party or agent
    (R2002 25; SZ23)."""

    name: ClassVar[str] = "declare_conflict"
    ties: tuple[Tie, ...] = attrs.field(converter=_tuple, validator=items(Tie, min_len=1))


@attrs.frozen
class DecideRecusal(Command):
    """决定回避 — the director decides a pending recusal request (R2002 25)."""

    name: ClassVar[str] = "decide_recusal"
    person: str = attrs.field(validator=ident)
    upheld: bool = attrs.field(validator=flag)
    reason: str = attrs.field(default="", validator=text())


CONSENT_SUBJECTS = ("invitee", "waive_recusal", "extend_term", "reopen", "non_public")


@attrs.frozen
class Consent(Command):
    """当事人同意事项 — a party consents to an invitee, to waiving a recusal, to extending the term
    or to reopening, or asks for a non-public meeting (PML20; NB27; PML33)."""

    name: ClassVar[str] = "consent"
    subject: str = attrs.field(validator=one_of(*CONSENT_SUBJECTS))
    person: str = attrs.field(default="", validator=opt_ident)

    json_schema_extra: ClassVar[Mapping[str, Any]] = {
        "$comment": "invitee and waive_recusal name a person; the other subjects take none",
        "if": {"properties": {"subject": {"enum": ["invitee", "waive_recusal"]}}},
        "then": {"required": ["person"], "properties": {"person": {"minLength": 1}}},
        "else": {"properties": {"person": {"const": ""}}},
    }

    def __attrs_post_init__(self) -> None:
        if (self.subject in ("invitee", "waive_recusal")) != bool(self.person):
            raise InvalidCommand(
                f"subject {self.subject!r} {'needs' if not self.person else 'takes no'} a person",
                field="person",
            )


INVITEE_KINDS = ("street_cadre", "police", "legal_adviser", "property_manager", "zongzhi", "other")


@attrs.frozen
class Invite(Command):
    """邀请协助调解人员 — the lead mediator invites a participant (street cadre, police, legal
    adviser, property manager, 综治 staff) who signed a confidentiality undertaking (PML20)."""

    name: ClassVar[str] = "invite"
    invitee: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=one_of(*INVITEE_KINDS))
    undertaking: DocRef = attrs.field(validator=instance(DocRef))
    employer: str = attrs.field(default="", validator=text(MAX_SHORT))
    ties: tuple[Tie, ...] = attrs.field(default=(), converter=_tuple, validator=items(Tie))


@attrs.frozen
class NotifyRights(Command):
    """告知权利义务 — a mediator tells the parties their rights and duties before the first
    session (R2002 30)."""

    name: ClassVar[str] = "notify_rights"
    parties: tuple[str, ...] = attrs.field(converter=_tuple, validator=items(ident, min_len=1))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class ScheduleMeeting(Command):
    """安排调解会 — the lead mediator schedules the mediation meeting, public or not
    (R2002 29-30)."""

    name: ClassVar[str] = "schedule_meeting"
    at: _dt.datetime = attrs.field(validator=aware)
    place: str = attrs.field(validator=text(MAX_SHORT, required=True))
    public: bool = attrs.field(default=False, validator=flag)


@attrs.frozen
class OpenSession(Command):
    """开始调解 — the lead mediator opens the session (PML27)."""

    name: ClassVar[str] = "open_session"


@attrs.frozen
class RecordMinutes(Command):
    """记录调解笔录 — a mediator records minutes, confidential to the case's mediators (PML27)."""

    name: ClassVar[str] = "record_minutes"
    text: str = attrs.field(validator=text(required=True))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class ShareProposal(Command):
    """提出调解方案 — a mediator puts a proposal to the parties (PML22)."""

    name: ClassVar[str] = "share_proposal"
    text: str = attrs.field(validator=text(required=True))


@attrs.frozen
class ReviseProposal(Command):
    """修改调解方案 — a mediator revises proposal number ``proposal`` (PML22)."""

    name: ClassVar[str] = "revise_proposal"
    proposal: int = attrs.field(validator=int_in(1, 10_000))
    text: str = attrs.field(validator=text(required=True))


@attrs.frozen
class DraftAgreement(Command):
    """制作调解协议 — the lead mediator drafts the written agreement with the content G8a
    requires (PML29; R2002 35)."""

    name: ClassVar[str] = "draft_agreement"
    content: AgreementContent = attrs.field(validator=instance(AgreementContent))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Sign(Command):
    """签署/盖章 — a party, a mediator or the director (the committee seal) signs the drafted
    agreement, which takes effect once all have (PML29)."""

    name: ClassVar[str] = "sign"
    method: str = attrs.field(
        default="signature", validator=one_of("signature", "seal", "fingerprint")
    )


@attrs.frozen
class RecordOralAgreement(Command):
    """记录口头协议 — a mediator records an oral agreement, which takes effect at once
    (PML28, 30; R2002 34)."""

    name: ClassVar[str] = "record_oral_agreement"
    summary: str = attrs.field(validator=text(required=True))
    performance_deadline: _dt.date | None = attrs.field(default=None, validator=optional(_dt.date))


@attrs.frozen
class RecordFollowUp(Command):
    """回访记录 — a mediator records a follow-up visit: whether the agreement was performed and
    how satisfied the parties are (PML31)."""

    name: ClassVar[str] = "record_follow_up"
    note: str = attrs.field(validator=text(required=True))
    performed: str = attrs.field(default="no", validator=one_of("no", "partial", "yes"))
    satisfaction: int = attrs.field(default=0, validator=int_in(0, 5))  # 0: not asked


@attrs.frozen
class ConfirmPerformed(Command):
    """确认履行结案 — a mediator or the director confirms performance and closes the case (PML31)."""

    name: ClassVar[str] = "confirm_performed"
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class Reopen(Command):
    """重新调解 — with every party's consent, the lead mediator reopens negotiation (PML33; R2002)."""

    name: ClassVar[str] = "reopen"
    reason: str = attrs.field(validator=text(required=True))


@attrs.frozen
class ProposeTermination(Command):
    """提出终止调解 — the lead mediator proposes ending mediation, with the reason and the route
    the parties may take (PML26)."""

    name: ClassVar[str] = "propose_termination"
    reason: str = attrs.field(validator=text(required=True))
    route: str = attrs.field(validator=one_of(*ROUTES))


@attrs.frozen
class Terminate(Command):
    """终止调解 — the director ends mediation once it was proposed and the parties were told of
    other routes (PML26; NB23, 27)."""

    name: ClassVar[str] = "terminate"
    parties_informed: bool = attrs.field(validator=flag)
    notice: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Withdraw(Command):
    """撤回 — a party or agent withdraws before the agreement takes effect (PML23(2))."""

    name: ClassVar[str] = "withdraw"
    reason: str = attrs.field(default="", validator=text())


@attrs.frozen
class Escalate(Command):
    """提级调解（楼栋→社区） — a mediator or the director moves a building-level (L0) case up to
    the community (NB12)."""

    name: ClassVar[str] = "escalate"
    reason: str = attrs.field(validator=text(required=True))


@attrs.frozen
class Transfer(Command):
    """移交 — the director transfers the case to the street's committee, the police, an authority
    or a court (PML25, 34)."""

    name: ClassVar[str] = "transfer"
    to: str = attrs.field(validator=one_of("street_committee", "police", "authority", "court"))
    target: str = attrs.field(validator=text(MAX_SHORT, required=True))
    reason: str = attrs.field(validator=text(required=True))
    new_case: str = attrs.field(default="", validator=opt_ident)


@attrs.frozen
class ExtendTerm(Command):
    """延长调解期限 — a mediator extends the term, with every party's consent (NB27; SZ25)."""

    name: ClassVar[str] = "extend_term"
    days: int = attrs.field(validator=int_in(1, 90))
    reason: str = attrs.field(default="", validator=text())


@attrs.frozen
class Pause(Command):
    """中止计时 — the lead mediator pauses the clock for an appraisal or a risk report
    (ODR2021 26)."""

    name: ClassVar[str] = "pause"
    reason: str = attrs.field(validator=one_of("appraisal", "risk_report", "other"))
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class Resume(Command):
    """恢复计时 — the lead mediator resumes the clock (ODR2021 26)."""

    name: ClassVar[str] = "resume"
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class RecordJudicialConfirmation(Command):
    """司法确认 — the parties' joint application for judicial confirmation (``applied``,
    every party listed), then the court's ruling (PML33)."""

    name: ClassVar[str] = "record_judicial_confirmation"
    status: str = attrs.field(validator=one_of("applied", "confirmed", "rejected"))
    joint_applicants: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=items(ident)
    )
    court: str = attrs.field(default="", validator=text(MAX_SHORT))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Archive(Command):
    """归档 — the director archives a closed case once its file is complete (PML27)."""

    name: ClassVar[str] = "archive"
    note: str = attrs.field(default="", validator=text())


COMMAND_TYPES: Mapping[str, type[Command]] = {
    cls.name: cls
    for cls in (
        Apply, Report, RecordConsent, Refuse, Register, NotAccept, AppointAgent, AssignMediator,
        RequestRecusal, DeclareConflict, DecideRecusal, Consent, Invite, NotifyRights,
        ScheduleMeeting, OpenSession, RecordMinutes, ShareProposal, ReviseProposal,
        DraftAgreement, Sign, RecordOralAgreement, RecordFollowUp, ConfirmPerformed, Reopen,
        ProposeTermination, Terminate, Withdraw, Escalate, Transfer, ExtendTerm, Pause, Resume,
        RecordJudicialConfirmation, Archive,
    )
}  # fmt: skip


# -- payload encoding ------------------------------------------------------------------------------


def _fmt_dt(value: _dt.datetime) -> str:
    at = value.astimezone(_dt.timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - %Y does not pad years < 1000
        at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond,
    )  # fmt: skip


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, _dt.datetime):
        return _fmt_dt(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if attrs.has(type(value)):
        return to_payload(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def to_payload(obj: Any) -> dict[str, Any]:
    """The JSON-native dict of a command or value object (every field, by name)."""
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in attrs.fields(cls))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = (
            value if value is None or type(value) in (str, bool, int) else _json_value(value)
        )
    return out


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


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _decode(args[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise InvalidCommand(f"{where}: expected a list", field=where)
        (inner, _) = typing.get_args(tp)
        if len(value) > MAX_ITEMS:  # the validator refuses it too; do not decode a huge list first
            raise InvalidCommand(
                f"{where}: expected at most {MAX_ITEMS} items, got {len(value)}", field=where
            )
        return tuple(_decode(inner, v, where) for v in value)
    if tp is _dt.datetime:
        return parse_datetime(value, where)
    if tp is _dt.date:
        return parse_date(value, where)
    if isinstance(tp, type) and attrs.has(tp):
        if not isinstance(value, dict):
            raise InvalidCommand(
                f"{where}: expected an object, got {type(value).__name__}", field=where
            )
        return from_payload(tp, value)
    return value


def _show_names(names: typing.Iterable[object]) -> str:
    shown = sorted(n if isinstance(n, str) and n.isidentifier() else _show(n) for n in names)
    return ", ".join(shown[:10]) + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")


_HINTS: dict[type, dict[str, Any]] = {}


def from_payload(cls: type[Any], data: Any) -> Any:
    """Build ``cls`` from a payload dict, with the same validation as the constructor.

    Any bad input (wrong shapes or types, unknown or missing fields, bad values) raises
    :class:`InvalidCommand`, with ``field`` set where one field is at fault.
    """
    if not isinstance(data, dict):
        raise InvalidCommand(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _HINTS.get(cls)
    if hints is None:  # resolving string annotations is slow: once per class
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise InvalidCommand(f"{cls.__name__}: unknown field(s) {_show_names(unknown)}")
    missing = [n for n, f in fields.items() if f.default is attrs.NOTHING and n not in data]
    if missing:
        raise InvalidCommand(
            f"{cls.__name__}: missing field(s) {', '.join(missing)}",
            field=missing[0] if len(missing) == 1 else None,
        )
    kwargs = {name: _decode(hints[name], value, name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidCommand(f"{cls.__name__}: {exc}") from exc
