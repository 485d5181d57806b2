"""The case: what the event log says, folded into one small object.

A :class:`Case` is rebuilt by applying events in order (:func:`apply_event`); the live service and
replay use the same fold, so replay of a valid log equals the live state by construction, and a
property test checks it.  A case holds no reference to the ``transitions`` machine.
"""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._events import GENESIS, parse_time
from ._privacy import Place, sealed_places
from ._vocab import NEW, Relation, Role, Stage

if TYPE_CHECKING:
    from ._workflow import CommandSpec, Workflow

__all__ = ["Case", "CaseSummary", "apply_event", "signature_slot"]

_A, _R, _AG = Relation.APPLICANT.value, Relation.RESPONDENT.value, Relation.AGENT.value
_LEAD, _CO, _INV = Relation.LEAD_MEDIATOR.value, Relation.CO_MEDIATOR.value, Relation.INVITEE.value


@attrs.define(slots=True, eq=False)
class Case:
    """The current state of one case.  Read it; change it only by appending events."""

    id: str
    #: the workflow the case lives on: the version its first event names (the current one until
    #: then)
    workflow: Workflow = attrs.field(factory=lambda: _current())
    state: str = NEW
    seq: int = 0
    head: str = GENESIS
    committee: str = ""
    level: str = "L1"
    category: str = ""
    subtype: str = ""
    #: the dispute as the opening event describes it (G2 of version 2 reads it)
    description: str = ""
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
    #: for a case opened by a transfer (``receive_transfer``): the origin case and committee
    origin: dict[str, Any] | None = None
    #: every escalation: (from level, to level, reason)
    escalations: tuple[tuple[str, str, str], ...] = ()
    #: a mediator the parties choose jointly (PML19), by "<id>:lead" or "<id>:co" -> the parties
    #: who chose them so far (version 2: assigned once every party has)
    mediator_choices: dict[str, frozenset[str]] = attrs.field(factory=dict)
    paused_since: str | None = None
    paused_seconds: int = 0
    extra_days: int = 0
    judicial: str = "none"
    archived: bool = False
    #: whose personal data was erased (a party's or agent's id; ``*``: the whole case's)
    erased: frozenset[str] = frozenset()
    #: whose personal data the log holds in plain text, recorded while sealing was off (a
    #: person's id; ``""``: the case's free text): destroying keys cannot erase it
    plain: frozenset[str] = frozenset()
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
        if self.state == NEW:
            return self.last_stage
        stage = self.workflow.state(self.state).stage
        return stage if stage is not None else self.last_stage

    @property
    def terminal(self) -> bool:
        return self.workflow.is_terminal(self.state)

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
            workflow=self.workflow.version,
        )


_WORKFLOW: list[Workflow] = []  # the current declaration, once imported


def _current() -> Workflow:
    if not _WORKFLOW:
        from ._workflow import WORKFLOW  # the declaration imports the fold, which imports this

        _WORKFLOW.append(WORKFLOW)
    return _WORKFLOW[0]


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


# -- the fold (the effects of each command are in _fold, named on the declaration) -----------------


def seconds_between(a: str, b: str) -> int:
    return int((parse_time(b) - parse_time(a)) // _dt.timedelta(seconds=1))


def signature_slot(c: Case, actor: str, acted_as: str) -> str:
    """What a signature by ``actor`` acting as ``acted_as`` fills: a party id, a mediator, the seal."""
    if acted_as == Role.DIRECTOR:
        return "seal"
    if acted_as in (_LEAD, _CO):
        return actor
    return c.party_of(actor) or actor


def apply_event(
    c: Case,
    seq: int,
    head: str,
    command: CommandSpec,
    payload: Mapping[str, Any],
    actor: str,
    acted_as: str,
    at: str,
    state: str,
    places: list[tuple[Place, Any]] | None = None,
) -> None:
    """Fold one (already decided) event into the case: the command's declared effect, whose
    personal data it records in plain text (``places``: the payload's sealed places, when the
    caller has found them), then what entering ``state`` means by its declared flags."""
    command.effect(c, payload, actor, acted_as, at)
    if command.persons or command.sealed:
        found = sealed_places(c.workflow, command, payload) if places is None else places
        plain = {p.subject for p, v in found if type(v) is str and v.strip()}
        if plain - c.plain:
            c.plain = c.plain | plain
    if state != c.state:
        spec = c.workflow.state(state)
        if spec.stage is not None:
            c.last_stage = spec.stage
        if spec.terminal:
            c.closed_at = at
            if c.paused_since is not None:
                c.paused_seconds += seconds_between(c.paused_since, at)
                c.paused_since = None
        if spec.agreed and c.effective_at is None:
            c.effective_at = at
        c.state = state
    c.seq = seq
    c.head = head
    c.updated_at = at
