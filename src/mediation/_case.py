"""The case: what the event log says, folded into one small object.

A :class:`Case` is rebuilt by applying events in order (:func:`apply_event`); the live service and
replay use the same fold, so replay of a valid log equals the live state by construction, and a
property test checks it.  A case holds no reference to the ``transitions`` machine.
"""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._events import GENESIS, parse_time
from ._workflow import NEW, WORKFLOW, Relation, Stage

__all__ = ["Case", "CaseSummary", "apply_event"]

_A, _R, _AG = Relation.APPLICANT.value, Relation.RESPONDENT.value, Relation.AGENT.value
_LEAD, _CO, _INV = Relation.LEAD_MEDIATOR.value, Relation.CO_MEDIATOR.value, Relation.INVITEE.value


@attrs.define(slots=True, eq=False)
class Case:
    """The current state of one case.  Read it; change it only by appending events."""

    id: str
    state: str = NEW
    seq: int = 0
    head: str = GENESIS
    committee: str = ""
    level: str = "L1"
    category: str = ""
    subtype: str = ""
    profile: str = "default"
    opened_by: str = ""
    #: party id -> the party's payload (name and personal data)
    parties: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    applicants: tuple[str, ...] = ()
    respondents: tuple[str, ...] = ()
    #: agent id -> (the party it represents, its payload)
    agents: dict[str, tuple[str, dict[str, Any]]] = attrs.field(factory=dict)
    lead: str | None = None
    co_mediators: tuple[str, ...] = ()
    #: invitee id -> the invitation payload
    invitees: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: people removed by recusal: they may not act on, nor be assigned to, this case again
    recused: frozenset[str] = frozenset()
    #: person -> ties recorded against them (declared, requested)
    ties: dict[str, tuple[dict[str, Any], ...]] = attrs.field(factory=dict)
    #: person -> parties who requested their recusal (pending a decision)
    recusal_requests: dict[str, frozenset[str]] = attrs.field(factory=dict)
    #: consent subject ("mediation", "invitee:u7", "extend_term", ...) -> consenting parties
    consents: dict[str, frozenset[str]] = attrs.field(factory=dict)
    involves_privacy: bool = False
    trade_secrets: bool = False
    rights_notified: frozenset[str] = frozenset()
    meeting: dict[str, Any] | None = None
    minutes: int = 0
    proposals: int = 0
    agreement: dict[str, Any] | None = None
    oral_agreement: bool = False
    #: who signed: party ids, mediator ids and "seal"
    signatures: frozenset[str] = frozenset()
    follow_ups: int = 0
    performed: bool = False
    termination: dict[str, Any] | None = None
    terminated_informed: bool = False
    transfer: dict[str, Any] | None = None
    paused_since: str | None = None
    paused_seconds: int = 0
    extra_days: int = 0
    judicial: str = "none"
    archived: bool = False
    #: the last stage reached before an outcome (failed/withdrawn/transferred) ended the case
    last_stage: Stage = Stage.APPLY
    opened_at: str = ""
    registered_at: str | None = None
    effective_at: str | None = None
    closed_at: str | None = None
    updated_at: str = ""

    # -- derived facts ----------------------------------------------------------------------------

    @property
    def stage(self) -> Stage:
        spec = WORKFLOW.state(self.state) if self.state != NEW else None
        return spec.stage if spec is not None and spec.stage is not None else self.last_stage

    @property
    def terminal(self) -> bool:
        return WORKFLOW.is_terminal(self.state)

    @property
    def party_ids(self) -> tuple[str, ...]:
        return self.applicants + self.respondents

    @property
    def mediators(self) -> tuple[str, ...]:
        return ((self.lead,) if self.lead else ()) + self.co_mediators

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def party_of(self, actor_id: str) -> str | None:
        """The party an actor speaks for: itself if a party, its principal if an agent."""
        if actor_id in self.parties:
            return actor_id
        agent = self.agents.get(actor_id)
        return agent[0] if agent else None

    def relations_of(self, actor_id: str) -> set[str]:
        out: set[str] = set()
        if actor_id in self.recused:
            return out
        if actor_id in self.applicants:
            out.add(_A)
        if actor_id in self.respondents:
            out.add(_R)
        if actor_id in self.agents:
            out.add(_AG)
        if actor_id == self.lead:
            out.add(_LEAD)
        if actor_id in self.co_mediators:
            out.add(_CO)
        if actor_id in self.invitees:
            out.add(_INV)
        return out

    def clone(self) -> Case:
        """A shallow copy, to fold the next event on while this one stays as it was.

        The fold never changes a container in place (it assigns new ones), so sharing them is
        safe; the copy is made positionally, the fastest way attrs allows.
        """
        return Case(*_VALUES(self))

    def all_consented(self, subject: str) -> bool:
        return self.consents.get(subject, frozenset()) >= set(self.party_ids)

    def summary(self) -> CaseSummary:
        return CaseSummary(
            case_id=self.id,
            committee=self.committee,
            state=self.state,
            level=self.level,
            category=self.category,
            seq=self.seq,
            head=self.head,
            opened_at=self.opened_at,
            updated_at=self.updated_at,
            registered_at=self.registered_at,
            paused=self.paused,
            paused_seconds=self.paused_seconds,
            extra_days=self.extra_days,
        )


#: every field of a case, in the order of its initializer
_VALUES = operator.attrgetter(*(f.name for f in attrs.fields(Case)))


@attrs.frozen
class CaseSummary:
    """The indexed row a store keeps beside the events, written in the same transaction."""

    case_id: str
    committee: str
    state: str
    level: str
    category: str
    seq: int
    head: str
    opened_at: str
    updated_at: str
    registered_at: str | None = None
    paused: bool = False
    paused_seconds: int = 0
    extra_days: int = 0
    #: the workflow version the case was opened on (and is decided and replayed on)
    workflow: str = "mediation-workflow/1"


# -- the fold --------------------------------------------------------------------------------------


def _seconds_between(a: str, b: str) -> int:
    return int((parse_time(b) - parse_time(a)) // _dt.timedelta(seconds=1))


def _opening(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.committee = p["committee"]
    c.category = p["category"]
    c.subtype = p["subtype"]
    c.level = p["level"]
    c.profile = p["profile"] or "default"
    c.opened_by = actor
    c.involves_privacy = p["involves_privacy"]
    c.trade_secrets = p["trade_secrets"]
    c.applicants = tuple(x["id"] for x in p["applicants"])
    c.respondents = tuple(x["id"] for x in p["respondents"])
    c.parties = {x["id"]: x for x in (*p["applicants"], *p["respondents"])}
    c.opened_at = at


def _consent(c: Case, subject: str, party: str | None) -> None:
    if party is not None:
        c.consents = {**c.consents, subject: c.consents.get(subject, frozenset()) | {party}}


def _consume(c: Case, subject: str) -> None:
    c.consents = {k: v for k, v in c.consents.items() if k != subject}


def _add_ties(c: Case, person: str, ties: Any) -> None:
    if ties:
        c.ties = {**c.ties, person: c.ties.get(person, ()) + tuple(ties)}


def _remove_person(c: Case, person: str) -> None:
    c.recused = c.recused | {person}
    if c.lead == person:
        c.lead = None
    c.co_mediators = tuple(m for m in c.co_mediators if m != person)
    if person in c.invitees:
        c.invitees = {k: v for k, v in c.invitees.items() if k != person}
    c.recusal_requests = {k: v for k, v in c.recusal_requests.items() if k != person}


def _f_record_consent(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    _consent(c, "mediation", c.party_of(actor))


def _f_register(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.registered_at = at


def _f_appoint_agent(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.agents = {**c.agents, p["agent"]["id"]: (actor, p["agent"])}


def _f_assign(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    who = p["mediator"]
    _add_ties(c, who, p["ties"])
    if p["lead"] or c.lead is None:
        if c.lead is not None and c.lead != who:
            c.co_mediators = (*c.co_mediators, c.lead)
        c.lead = who
        c.co_mediators = tuple(m for m in c.co_mediators if m != who)
    elif who != c.lead and who not in c.co_mediators:
        c.co_mediators = (*c.co_mediators, who)


def _f_request_recusal(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    person = p["person"]
    _add_ties(c, person, p["ties"])
    if c.profile == "sz":  # SZ23: one party's request is enough to remove
        _remove_person(c, person)
        return
    party = c.party_of(actor) or actor
    c.recusal_requests = {
        **c.recusal_requests,
        person: c.recusal_requests.get(person, frozenset()) | {party},
    }


def _f_declare_conflict(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    _add_ties(c, actor, p["ties"])
    _remove_person(c, actor)


def _f_decide_recusal(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    if p["upheld"]:
        _remove_person(c, p["person"])
    else:
        c.recusal_requests = {k: v for k, v in c.recusal_requests.items() if k != p["person"]}


def _f_consent(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    subject = p["subject"] + (":" + p["person"] if p["person"] else "")
    _consent(c, subject, c.party_of(actor))


def _f_invite(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.invitees = {**c.invitees, p["invitee"]: dict(p)}
    _add_ties(c, p["invitee"], p["ties"])


def _f_notify_rights(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.rights_notified = c.rights_notified | set(p["parties"])


def _f_schedule(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.meeting = dict(p)


def _f_minutes(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.minutes += 1


def _f_proposal(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.proposals += 1


def _f_draft(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.agreement = dict(p)
    c.signatures = frozenset()


def signature_slot(c: Case, actor: str, acted_as: str) -> str:
    """What a signature by ``actor`` acting as ``acted_as`` fills: a party id, a mediator, the seal."""
    if acted_as == "director":
        return "seal"
    if acted_as in (_LEAD, _CO):
        return actor
    return c.party_of(actor) or actor


def _f_sign(c: Case, p: Mapping[str, Any], actor: str, at: str, acted_as: str) -> None:
    c.signatures = c.signatures | {signature_slot(c, actor, acted_as)}


def _f_oral(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.agreement = dict(p)
    c.oral_agreement = True


def _f_follow_up(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.follow_ups += 1
    c.performed = p["performed"] == "yes"


def _f_reopen(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    _consume(c, "reopen")
    c.agreement = None
    c.oral_agreement = False
    c.signatures = frozenset()
    c.effective_at = None
    c.performed = False


def _f_propose_termination(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.termination = dict(p)


def _f_terminate(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.terminated_informed = bool(p["parties_informed"])


def _f_escalate(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.level = "L1"


def _f_transfer(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.transfer = dict(p)


def _f_extend(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    days = p["days"]
    if type(days) is not int or not 1 <= days <= 90:  # replay folds unvalidated payloads too
        raise ValueError(f"extend_term days must be an integer in 1..90, not {days!r}")
    c.extra_days += days
    _consume(c, "extend_term")


def _f_pause(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.paused_since = at


def _f_resume(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    if c.paused_since is not None:
        c.paused_seconds += _seconds_between(c.paused_since, at)
    c.paused_since = None


def _f_judicial(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.judicial = p["status"]


def _f_archive(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    c.archived = True


def _nothing(c: Case, p: Mapping[str, Any], actor: str, at: str) -> None:
    return None


_Effect = Callable[[Case, Mapping[str, Any], str, str], None]

EFFECTS: dict[str, _Effect] = {
    "apply": _opening,
    "report": _opening,
    "record_consent": _f_record_consent,
    "refuse": _nothing,
    "register": _f_register,
    "not_accept": _nothing,
    "appoint_agent": _f_appoint_agent,
    "assign_mediator": _f_assign,
    "request_recusal": _f_request_recusal,
    "declare_conflict": _f_declare_conflict,
    "decide_recusal": _f_decide_recusal,
    "consent": _f_consent,
    "invite": _f_invite,
    "notify_rights": _f_notify_rights,
    "schedule_meeting": _f_schedule,
    "open_session": _nothing,
    "record_minutes": _f_minutes,
    "share_proposal": _f_proposal,
    "revise_proposal": _nothing,
    "draft_agreement": _f_draft,
    "record_oral_agreement": _f_oral,
    "record_follow_up": _f_follow_up,
    "confirm_performed": _nothing,
    "reopen": _f_reopen,
    "propose_termination": _f_propose_termination,
    "terminate": _f_terminate,
    "withdraw": _nothing,
    "escalate": _f_escalate,
    "transfer": _f_transfer,
    "extend_term": _f_extend,
    "pause": _f_pause,
    "resume": _f_resume,
    "record_judicial_confirmation": _f_judicial,
    "archive": _f_archive,
}


def apply_event(
    c: Case,
    seq: int,
    head: str,
    type: str,
    payload: Mapping[str, Any],
    actor: str,
    acted_as: str,
    at: str,
    state: str,
) -> None:
    """Fold one (already checked) event into the case."""
    if type == "sign":
        _f_sign(c, payload, actor, at, acted_as)
    else:
        EFFECTS[type](c, payload, actor, at)
    if state != c.state:
        spec = WORKFLOW.state(state)
        if spec.stage is not None:
            c.last_stage = spec.stage
        if spec.terminal:
            c.closed_at = at
            if c.paused_since is not None:
                c.paused_seconds += _seconds_between(c.paused_since, at)
                c.paused_since = None
        if state == "agreement_effective":
            c.effective_at = at
        c.state = state
    c.seq = seq
    c.head = head
    c.updated_at = at
