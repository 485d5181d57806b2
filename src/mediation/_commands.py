"""Commands and their payloads: frozen attrs classes, validated when built.

A command object is what a host app builds from a request; the service turns it into a payload
(a JSON-native dict, :func:`to_payload`) once, and from then on guards, the event and replay all read
that payload.  :func:`from_payload` is the inverse, used for untrusted input (imports, the CLI).
"""

from __future__ import annotations

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


def text(limit: int = MAX_TEXT, *, required: bool = False) -> Callable[..., None]:
    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        value = _clean_text(value, attr, limit)
        if required and not value.strip():
            _fail(attr, "must not be empty")

    return check


def ident(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _ID_RE.match(value):
        _fail(attr, f"not a valid id: {value!r} (1-64 of A-Z a-z 0-9 _ . : @ -)")


def opt_ident(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value != "":
        ident(inst, attr, value)


def one_of(*choices: str) -> Callable[..., None]:
    allowed = frozenset(choices)

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            _fail(attr, f"{value!r} is not one of {', '.join(sorted(allowed))}")

    return check


def flag(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        _fail(attr, f"expected true/false, got {type(value).__name__}")


def int_in(lo: int, hi: int) -> Callable[..., None]:
    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            _fail(attr, f"expected an integer in {lo}..{hi}, got {value!r}")

    return check


def items(of: Callable[..., None] | type, *, min_len: int = 0) -> Callable[..., None]:
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

    return check


def aware(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _dt.datetime):
        _fail(attr, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        _fail(attr, "naive datetime: give a timezone-aware one")


def a_date(_: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
        _fail(attr, f"expected a date, got {type(value).__name__}")


def optional(of: type) -> Callable[..., None]:
    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, of):
            _fail(attr, f"expected {of.__name__} or None, got {type(value).__name__}")

    return check


def instance(of: type) -> Callable[..., None]:
    """Like ``attrs.validators.instance_of``, but raising :class:`InvalidCommand`."""

    def check(_: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, of):
            _fail(attr, f"expected {of.__name__}, got {type(value).__name__}")

    return check


def _tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


# -- value objects ---------------------------------------------------------------------------------

#: close relatives under CC1045, plus the other grounds for recusal
CLOSE_RELATIVES = ("spouse", "parent", "child", "sibling", "grandparent", "grandchild")
TIE_KINDS = (*CLOSE_RELATIVES, "interest", "employee", "other")


@attrs.frozen
class DocRef:
    """A document or piece of evidence kept by the host, referenced by content hash."""

    sha256: str = attrs.field()
    media_type: str = attrs.field(validator=text(MAX_SHORT, required=True))
    title: str = attrs.field(default="", validator=text(MAX_SHORT))

    @sha256.validator
    def _check_sha(self, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not _HEX64.match(value):
            _fail(attr, "expected 64 lowercase hex digits")

    @media_type.validator
    def _check_media(self, attr: attrs.Attribute[Any], value: str) -> None:
        if not _MEDIA.match(value):
            _fail(attr, f"not a media type: {value!r}")


@attrs.frozen
class Party:
    """A party or agent.  ``id`` is the host's pseudonymous id; the rest is personal data."""

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
    """A relationship between a mediator or invitee and a party or agent of the case."""

    person: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=one_of(*TIE_KINDS))
    note: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class Scope:
    """The director's scope determination at registration (G2)."""

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
    """What a written agreement must state (G8a, PML29, R2002 35)."""

    facts: str = attrs.field(validator=text())
    issues: str = attrs.field(validator=text())
    responsibilities: str = attrs.field(validator=text())
    obligations: str = attrs.field(validator=text())
    performance_method: str = attrs.field(validator=text(MAX_SHORT))
    performance_place: str = attrs.field(validator=text(MAX_SHORT))
    performance_deadline: _dt.date = attrs.field(validator=a_date)


# -- commands --------------------------------------------------------------------------------------


class Command:
    """Base of every command payload class; ``name`` is the workflow command it issues."""

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

    def __attrs_post_init__(self) -> None:
        ids = [p.id for p in (*self.applicants, *self.respondents)]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidCommand(
                f"respondents: party {', '.join(dup)} appears twice", field="respondents"
            )


@attrs.frozen
class Apply(_Opening):
    """申请: a party applies (or a mediator records an oral application)."""

    name: ClassVar[str] = "apply"
    oral: bool = attrs.field(default=False, validator=flag)


@attrs.frozen
class Report(_Opening):
    """Grid worker, early-warning system or a referral opens a case proactively."""

    name: ClassVar[str] = "report"
    source: str = attrs.field(
        default="grid",
        validator=one_of("grid", "early_warning", "court_referral", "police_referral", "hotline"),
    )
    source_ref: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class RecordConsent(Command):
    name: ClassVar[str] = "record_consent"
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Refuse(Command):
    name: ClassVar[str] = "refuse"
    reason: str = attrs.field(default="", validator=text())


@attrs.frozen
class Register(Command):
    name: ClassVar[str] = "register"
    scope: Scope = attrs.field(factory=Scope, validator=instance(Scope))
    note: str = attrs.field(default="", validator=text())


ROUTES = ("litigation", "arbitration", "administrative", "police", "other_committee", "other")


@attrs.frozen
class NotAccept(Command):
    name: ClassVar[str] = "not_accept"
    reason: str = attrs.field(validator=text())
    route: str = attrs.field(validator=one_of(*ROUTES))


@attrs.frozen
class AppointAgent(Command):
    name: ClassVar[str] = "appoint_agent"
    agent: Party = attrs.field(validator=instance(Party))
    power_of_attorney: DocRef = attrs.field(validator=instance(DocRef))


@attrs.frozen
class AssignMediator(Command):
    name: ClassVar[str] = "assign_mediator"
    mediator: str = attrs.field(validator=ident)
    lead: bool = attrs.field(default=False, validator=flag)
    #: the assignee's declared ties to the parties (an empty tuple declares none)
    ties: tuple[Tie, ...] = attrs.field(default=(), converter=_tuple, validator=items(Tie))


@attrs.frozen
class RequestRecusal(Command):
    name: ClassVar[str] = "request_recusal"
    person: str = attrs.field(validator=ident)
    grounds: str = attrs.field(validator=text(required=True))
    ties: tuple[Tie, ...] = attrs.field(default=(), converter=_tuple, validator=items(Tie))


@attrs.frozen
class DeclareConflict(Command):
    name: ClassVar[str] = "declare_conflict"
    ties: tuple[Tie, ...] = attrs.field(converter=_tuple, validator=items(Tie, min_len=1))


@attrs.frozen
class DecideRecusal(Command):
    name: ClassVar[str] = "decide_recusal"
    person: str = attrs.field(validator=ident)
    upheld: bool = attrs.field(validator=flag)
    reason: str = attrs.field(default="", validator=text())


CONSENT_SUBJECTS = ("invitee", "waive_recusal", "extend_term", "reopen", "non_public")


@attrs.frozen
class Consent(Command):
    """A party consents to something that needs every party (or objects to a public meeting)."""

    name: ClassVar[str] = "consent"
    subject: str = attrs.field(validator=one_of(*CONSENT_SUBJECTS))
    person: str = attrs.field(default="", validator=opt_ident)

    def __attrs_post_init__(self) -> None:
        if (self.subject in ("invitee", "waive_recusal")) != bool(self.person):
            raise InvalidCommand(
                f"subject {self.subject!r} {'needs' if not self.person else 'takes no'} a person",
                field="person",
            )


INVITEE_KINDS = ("street_cadre", "police", "legal_adviser", "property_manager", "zongzhi", "other")


@attrs.frozen
class Invite(Command):
    name: ClassVar[str] = "invite"
    invitee: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=one_of(*INVITEE_KINDS))
    undertaking: DocRef = attrs.field(validator=instance(DocRef))
    employer: str = attrs.field(default="", validator=text(MAX_SHORT))
    ties: tuple[Tie, ...] = attrs.field(default=(), converter=_tuple, validator=items(Tie))


@attrs.frozen
class NotifyRights(Command):
    name: ClassVar[str] = "notify_rights"
    parties: tuple[str, ...] = attrs.field(converter=_tuple, validator=items(ident, min_len=1))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class ScheduleMeeting(Command):
    name: ClassVar[str] = "schedule_meeting"
    at: _dt.datetime = attrs.field(validator=aware)
    place: str = attrs.field(validator=text(MAX_SHORT, required=True))
    public: bool = attrs.field(default=False, validator=flag)


@attrs.frozen
class OpenSession(Command):
    name: ClassVar[str] = "open_session"


@attrs.frozen
class RecordMinutes(Command):
    name: ClassVar[str] = "record_minutes"
    text: str = attrs.field(validator=text(required=True))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class ShareProposal(Command):
    name: ClassVar[str] = "share_proposal"
    text: str = attrs.field(validator=text(required=True))


@attrs.frozen
class ReviseProposal(Command):
    name: ClassVar[str] = "revise_proposal"
    proposal: int = attrs.field(validator=int_in(1, 10_000))
    text: str = attrs.field(validator=text(required=True))


@attrs.frozen
class DraftAgreement(Command):
    name: ClassVar[str] = "draft_agreement"
    content: AgreementContent = attrs.field(validator=instance(AgreementContent))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Sign(Command):
    name: ClassVar[str] = "sign"
    method: str = attrs.field(
        default="signature", validator=one_of("signature", "seal", "fingerprint")
    )


@attrs.frozen
class RecordOralAgreement(Command):
    name: ClassVar[str] = "record_oral_agreement"
    summary: str = attrs.field(validator=text(required=True))
    performance_deadline: _dt.date | None = attrs.field(default=None, validator=optional(_dt.date))


@attrs.frozen
class RecordFollowUp(Command):
    name: ClassVar[str] = "record_follow_up"
    note: str = attrs.field(validator=text(required=True))
    performed: str = attrs.field(default="no", validator=one_of("no", "partial", "yes"))
    satisfaction: int = attrs.field(default=0, validator=int_in(0, 5))  # 0: not asked


@attrs.frozen
class ConfirmPerformed(Command):
    name: ClassVar[str] = "confirm_performed"
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class Reopen(Command):
    name: ClassVar[str] = "reopen"
    reason: str = attrs.field(validator=text(required=True))


@attrs.frozen
class ProposeTermination(Command):
    name: ClassVar[str] = "propose_termination"
    reason: str = attrs.field(validator=text(required=True))
    route: str = attrs.field(validator=one_of(*ROUTES))


@attrs.frozen
class Terminate(Command):
    name: ClassVar[str] = "terminate"
    parties_informed: bool = attrs.field(validator=flag)
    notice: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Withdraw(Command):
    name: ClassVar[str] = "withdraw"
    reason: str = attrs.field(default="", validator=text())


@attrs.frozen
class Escalate(Command):
    name: ClassVar[str] = "escalate"
    reason: str = attrs.field(validator=text(required=True))


@attrs.frozen
class Transfer(Command):
    name: ClassVar[str] = "transfer"
    to: str = attrs.field(validator=one_of("street_committee", "police", "authority", "court"))
    target: str = attrs.field(validator=text(MAX_SHORT, required=True))
    reason: str = attrs.field(validator=text(required=True))
    new_case: str = attrs.field(default="", validator=opt_ident)


@attrs.frozen
class ExtendTerm(Command):
    name: ClassVar[str] = "extend_term"
    days: int = attrs.field(validator=int_in(1, 90))
    reason: str = attrs.field(default="", validator=text())


@attrs.frozen
class Pause(Command):
    name: ClassVar[str] = "pause"
    reason: str = attrs.field(validator=one_of("appraisal", "risk_report", "other"))
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class Resume(Command):
    name: ClassVar[str] = "resume"
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class RecordJudicialConfirmation(Command):
    """``applied`` by the parties jointly (every party listed); then the court's ruling."""

    name: ClassVar[str] = "record_judicial_confirmation"
    status: str = attrs.field(validator=one_of("applied", "confirmed", "rejected"))
    joint_applicants: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=items(ident)
    )
    court: str = attrs.field(default="", validator=text(MAX_SHORT))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


@attrs.frozen
class Archive(Command):
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
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _decode(args[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise InvalidCommand(f"{where}: expected a list", field=where)
        (inner, _) = typing.get_args(tp)
        return tuple(_decode(inner, v, where) for v in value)
    if tp is _dt.datetime:
        if not isinstance(value, str):
            raise InvalidCommand(f"{where}: expected a timestamp", field=where)
        try:
            parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidCommand(f"{where}: bad timestamp {value!r}", field=where) from exc
        return parsed
    if tp is _dt.date:
        try:
            return _dt.date.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise InvalidCommand(f"{where}: bad date {value!r}", field=where) from exc
    if isinstance(tp, type) and attrs.has(tp):
        return from_payload(tp, value)
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def from_payload(cls: type[Any], data: Any) -> Any:
    """Build ``cls`` from a payload dict, with the same validation as the constructor."""
    if not isinstance(data, dict):
        raise InvalidCommand(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _HINTS.get(cls)
    if hints is None:  # resolving string annotations is slow: once per class
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise InvalidCommand(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    kwargs = {name: _decode(hints[name], value, name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidCommand(f"{cls.__name__}: {exc}") from exc
