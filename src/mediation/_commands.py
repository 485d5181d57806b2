"""Commands and their payloads: frozen attrs classes, validated when built.

A command object is what a host app builds from a request; the service turns it into a payload
(a JSON-native dict, :func:`to_payload`) once, and from then on guards, the event and replay all read
that payload.  :func:`from_payload` is the inverse, used for untrusted input (imports, the CLI).

The field validators, each declaring the JSON Schema of what it accepts, are in :mod:`._validators`;
the closed vocabularies, as enums, in :mod:`._vocab`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ._errors import InvalidCommand
from ._validators import (
    MAX_ITEMS,
    MAX_SHORT,
    _show,
    a_date,
    a_media_type,
    a_sha256,
    aware,
    flag,
    ident,
    instance,
    int_in,
    items,
    one_of,
    opt_ident,
    optional,
    parse_date,
    parse_datetime,
    plain_word,
    text,
)
from ._vocab import (
    PERSONAL_CONSENTS,
    Category,
    ConsentSubject,
    HandledElsewhere,
    InviteeKind,
    JudicialStatus,
    Level,
    PartyKind,
    PauseReason,
    Performed,
    RecusalProfile,
    ReportSource,
    ReservedMatter,
    Route,
    SignMethod,
    Subtype,
    TieKind,
    TransferTarget,
)

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


# -- vocabularies ----------------------------------------------------------------------------------
#
# The closed word lists are the ``str`` enums of :mod:`._vocab`; a field taking one word converts a
# member to its value (:func:`plain_word`) and checks it with ``one_of(*TheEnum)``.  The tuples
# below are those values as plain strings, in the order the JSON Schema lists them.

CATEGORIES = tuple(c.value for c in Category)
SUBTYPES = ("", *(t.value for t in Subtype))
LEVELS = tuple(level.value for level in Level)
ROUTES = tuple(r.value for r in Route)
TIE_KINDS = tuple(k.value for k in TieKind)
CONSENT_SUBJECTS = tuple(c.value for c in ConsentSubject)
INVITEE_KINDS = tuple(k.value for k in InviteeKind)
#: the levels a case opens at; L2 is reached by escalation only
OPENING_LEVELS = (Level.L0, Level.L1)
#: the statuses a ``record_judicial_confirmation`` records (``none`` is only where a case starts)
_JUDICIAL_RECORDED = tuple(s for s in JudicialStatus if s is not JudicialStatus.NONE)


def _tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


# -- value objects ---------------------------------------------------------------------------------


#: the metadata of a member added after events were first recorded: the payload omits it while it
#: is empty, so that the events recorded before it existed are still in the normal form
_ADDED = {"omit_empty": True}


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
    kind: str = attrs.field(
        default=PartyKind.PERSON, converter=plain_word, validator=one_of(*PartyKind)
    )
    phone: str = attrs.field(default="", validator=text(40))
    address: str = attrs.field(default="", validator=text(MAX_SHORT))
    id_number: str = attrs.field(default="", validator=text(40))
    #: for a person: the organisation (by party id or name) that employs them
    employer: str = attrs.field(default="", validator=text(MAX_SHORT))
    #: health details the dispute turns on (sensitive personal information, PIPL 28)
    health: str = attrs.field(default="", validator=text(MAX_SHORT), metadata=_ADDED)
    #: for a minor: age, guardian, school (sensitive personal information, PIPL 28, 31)
    minor: str = attrs.field(default="", validator=text(MAX_SHORT), metadata=_ADDED)
    #: a bank account, for payments under the agreement (sensitive personal information, PIPL 28)
    bank_account: str = attrs.field(default="", validator=text(64), metadata=_ADDED)


@attrs.frozen
class Tie:
    """回避事由 — a tie between a mediator or invitee and a party or agent of the case that may
    require recusal (G4: R2002 25; CC1045)."""

    person: str = attrs.field(validator=ident)
    kind: str = attrs.field(converter=plain_word, validator=one_of(*TieKind))
    note: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class Scope:
    """受理范围 — the director's scope determination at registration (G2: R2002 22; PML25; CC1076)."""

    civil: bool = attrs.field(default=True, validator=flag)
    #: "", or the organ that already accepted or decided the matter
    handled_elsewhere: str = attrs.field(
        default="", converter=plain_word, validator=one_of("", *HandledElsewhere)
    )
    #: "", or a matter reserved to another authority
    reserved_matter: str = attrs.field(
        default="", converter=plain_word, validator=one_of("", *ReservedMatter)
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


def _parties(min_len: int) -> Any:
    return attrs.field(converter=_tuple, validator=items(Party, min_len=min_len))


def _docs() -> Any:
    return attrs.field(default=(), converter=_tuple, validator=items(DocRef))


@attrs.frozen
class _Opening(Command):
    committee: str = attrs.field(validator=ident)
    category: str = attrs.field(converter=plain_word, validator=one_of(*Category))
    description: str = attrs.field(validator=text(required=True))
    applicants: tuple[Party, ...] = _parties(1)
    respondents: tuple[Party, ...] = _parties(1)
    subtype: str = attrs.field(default="", converter=plain_word, validator=one_of("", *Subtype))
    level: str = attrs.field(
        default=Level.L1, converter=plain_word, validator=one_of(*OPENING_LEVELS)
    )
    involves_privacy: bool = attrs.field(default=False, validator=flag)
    trade_secrets: bool = attrs.field(default=False, validator=flag)
    evidence: tuple[DocRef, ...] = _docs()
    #: recusal policy profile (DOMAIN.md G4): "" takes the service's policy when the case opens
    profile: str = attrs.field(
        default="", converter=plain_word, validator=one_of("", *RecusalProfile)
    )

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
        default=ReportSource.GRID, converter=plain_word, validator=one_of(*ReportSource)
    )
    source_ref: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class ReceiveTransfer(_Opening):
    """接收移交 — the case a transfer opens at the receiving committee, in the same store, naming
    the case it came from; the receiving committee's director then accepts it (``register``) or
    not (PML25, 34).  The service writes it with the transfer, in one transaction; a host does not
    issue it on its own (version 2)."""

    name: ClassVar[str] = "receive_transfer"
    #: the level the receiving committee takes it at (the street's committee: L2)
    level: str = attrs.field(default=Level.L1, converter=plain_word, validator=one_of(*Level))
    origin: str = attrs.field(default="", validator=opt_ident)
    origin_committee: str = attrs.field(default="", validator=opt_ident)
    reason: str = attrs.field(default="", validator=text())


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


@attrs.frozen
class NotAccept(Command):
    """不予受理 — the director declines the case, recording the reason and the route the parties
    should take (R2002 24)."""

    name: ClassVar[str] = "not_accept"
    reason: str = attrs.field(validator=text())
    route: str = attrs.field(converter=plain_word, validator=one_of(*Route))


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


@attrs.frozen
class Consent(Command):
    """当事人同意事项 — a party consents to an invitee, to waiving a recusal, to extending the term
    or to reopening, or asks for a non-public meeting (PML20; NB27; PML33)."""

    name: ClassVar[str] = "consent"
    subject: str = attrs.field(converter=plain_word, validator=one_of(*ConsentSubject))
    person: str = attrs.field(default="", validator=opt_ident)

    json_schema_extra: ClassVar[Mapping[str, Any]] = {
        "$comment": "invitee and waive_recusal name a person; the other subjects take none",
        "if": {"properties": {"subject": {"enum": [c.value for c in PERSONAL_CONSENTS]}}},
        "then": {"required": ["person"], "properties": {"person": {"minLength": 1}}},
        "else": {"properties": {"person": {"const": ""}}},
    }

    def __attrs_post_init__(self) -> None:
        if (self.subject in PERSONAL_CONSENTS) != bool(self.person):
            raise InvalidCommand(
                f"subject {self.subject!r} {'needs' if not self.person else 'takes no'} a person",
                field="person",
            )


@attrs.frozen
class Invite(Command):
    """邀请协助调解人员 — the lead mediator invites a participant (street cadre, police, legal
    adviser, property manager, 综治 staff) who signed a confidentiality undertaking (PML20)."""

    name: ClassVar[str] = "invite"
    invitee: str = attrs.field(validator=ident)
    kind: str = attrs.field(converter=plain_word, validator=one_of(*InviteeKind))
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
        default=SignMethod.SIGNATURE, converter=plain_word, validator=one_of(*SignMethod)
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
    performed: str = attrs.field(
        default=Performed.NO, converter=plain_word, validator=one_of(*Performed)
    )
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
    route: str = attrs.field(converter=plain_word, validator=one_of(*Route))


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
    """提级调解（楼栋→社区→街道） — a mediator or the director moves a case up one level, with the
    reason: building (L0) to community (L1); from version 2 also community to street (L2) (NB12)."""

    name: ClassVar[str] = "escalate"
    reason: str = attrs.field(validator=text(required=True))


@attrs.frozen
class Transfer(Command):
    """移交 — the director transfers the case to the street's committee, the police, an authority
    or a court (PML25, 34).  From version 2, a transfer to a committee names it by its id
    (``target``) and opens the linked case there (``new_case``, chosen by the service when
    empty); a transfer to an outside body links no case."""

    name: ClassVar[str] = "transfer"
    to: str = attrs.field(converter=plain_word, validator=one_of(*TransferTarget))
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
    reason: str = attrs.field(converter=plain_word, validator=one_of(*PauseReason))
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
    status: str = attrs.field(converter=plain_word, validator=one_of(*_JUDICIAL_RECORDED))
    joint_applicants: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=items(ident)
    )
    court: str = attrs.field(default="", validator=text(MAX_SHORT))
    document: DocRef | None = attrs.field(default=None, validator=optional(DocRef))
    #: when the application window closes (the log's time format), set by the service from its
    #: policy and calendar when the parties apply (G11; PML33); "" (every application recorded
    #: before it existed): 30 days from effectiveness
    window_ends: str = attrs.field(default="", validator=text(MAX_SHORT))


@attrs.frozen
class Archive(Command):
    """归档 — the director archives a closed case once its file is complete (PML27)."""

    name: ClassVar[str] = "archive"
    note: str = attrs.field(default="", validator=text())


@attrs.frozen
class ErasePersonalData(Command):
    """删除个人信息 — the director records that the personal information of a party or agent of
    the case (``person``), or of the whole case (``""``), is erased, and on what basis; the service
    then destroys the keys it was sealed under.  The record of the mediation stays (PIPL 47;
    PML27)."""

    name: ClassVar[str] = "erase_personal_data"
    #: the legal basis and the occasion, e.g. "PIPL 47(1)3: 当事人撤回同意"
    basis: str = attrs.field(validator=text(MAX_SHORT, required=True))
    person: str = attrs.field(default="", validator=opt_ident)
    #: the written request, where there is one
    request: DocRef | None = attrs.field(default=None, validator=optional(DocRef))


COMMAND_TYPES: Mapping[str, type[Command]] = {
    cls.name: cls
    for cls in (
        Apply, Report, ReceiveTransfer, RecordConsent, Refuse, Register, NotAccept, AppointAgent, AssignMediator,
        RequestRecusal, DeclareConflict, DecideRecusal, Consent, Invite, NotifyRights,
        ScheduleMeeting, OpenSession, RecordMinutes, ShareProposal, ReviseProposal,
        DraftAgreement, Sign, RecordOralAgreement, RecordFollowUp, ConfirmPerformed, Reopen,
        ProposeTermination, Terminate, Withdraw, Escalate, Transfer, ExtendTerm, Pause, Resume,
        RecordJudicialConfirmation, Archive, ErasePersonalData,
    )
}  # fmt: skip


# -- payload encoding ------------------------------------------------------------------------------


def _fmt_dt(value: _dt.datetime) -> str:
    at = value.astimezone(_dt.timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - %Y does not pad years < 1000
        at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond,
    )  # fmt: skip


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
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


_FIELD_NAMES: dict[type, tuple[tuple[str, bool], ...]] = {}


def to_payload(obj: Any) -> dict[str, Any]:
    """The JSON-native dict of a command or value object: every field, by name, except a member
    added later (``_ADDED``) while it is empty."""
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(
            (f.name, bool(f.metadata.get("omit_empty"))) for f in attrs.fields(cls)
        )
    out: dict[str, Any] = {}
    for name, omit_empty in names:
        value = getattr(obj, name)
        if omit_empty and value == "":
            continue
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
