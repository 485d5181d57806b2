"""Paths to every state of the workflow, as data.

A :class:`Step` says who acts (a person of the :class:`~mediation.testing.World` by name, or a
relation to the case or a role in its committee, resolved on the case as it stands) and the command
they issue (built from the payload classes of :mod:`mediation.commands`, possibly from the case so
far).  A :class:`Leg` is the steps that take a case along one transition of the declaration: what
prepares it (consents, a lead mediator, the rights notices, ...), the command itself, and what
settles in on arrival (a co-mediator, an invitee, the first minutes).

The table (:func:`routes`) is the happy path 申请—登记—会议—协商—协议—回访 (:data:`HAPPY_PATH`),
and the legs that branch off it (:data:`BRANCHES`) to the other outcomes.  No state is named here:
the state a leg leads to is its command's ``target`` in the declaration, and a branch leaves the
happy path at the first (or, with ``PathOptions(late=True)``, the last) state on it that the
declaration lets its command be issued from.  :func:`path_to` gives the steps to one state,
:func:`paths` the steps to each, :func:`drive` runs them through a service.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .. import commands as cmd
from .._authz import Actor
from .._case import Case
from .._errors import CaseNotFound
from .._events import parse_time
from .._service import CaseService
from .._spec import CommandSpec
from .._vocab import NEW, Relation, Role
from .._workflow import WORKFLOW
from ._world import EPOCH, OTHER_COMMITTEE, World, party

__all__ = [
    "BRANCHES",
    "HAPPY_PATH",
    "FromCase",
    "Leg",
    "PathOptions",
    "Routes",
    "Step",
    "drive",
    "follow",
    "path_to",
    "paths",
    "routes",
]

#: who acts: a person by name, every (or the first) holder of a relation, a holder of a role
Who = str | Relation | Role

#: the happy path: each command moves the case on to the next state (its ``target``)
HAPPY_PATH: tuple[type[cmd.Command], ...] = (
    cmd.Apply,
    cmd.Register,
    cmd.ScheduleMeeting,
    cmd.OpenSession,
    cmd.DraftAgreement,
    cmd.Sign,
    cmd.RecordFollowUp,
    cmd.ConfirmPerformed,
)

#: the legs off the happy path, to the other outcomes (a leg to a state the happy path already
#: reaches is an alternative route; a leg whose command has no target leads to no new state)
BRANCHES: tuple[type[cmd.Command], ...] = (
    cmd.NotAccept,
    cmd.Refuse,
    cmd.Withdraw,
    cmd.Transfer,
    cmd.Terminate,
    cmd.RecordOralAgreement,
    cmd.Archive,
)

_MEDIATION = "mediation"  # the consent subject that record_consent fills (the fold's key)


def _doc(title: str) -> cmd.DocRef:
    return cmd.DocRef(hashlib.sha256(title.encode()).hexdigest(), "application/pdf", title)


@attrs.frozen
class FromCase:
    """A command of class ``kind`` built from the case (and the world) when its step is taken."""

    kind: type[cmd.Command]
    build: Callable[[Case, World], cmd.Command]

    def __call__(self, case: Case, world: World) -> cmd.Command:
        command = self.build(case, world)
        if not isinstance(command, self.kind):
            raise TypeError(f"built a {type(command).__name__}, not a {self.kind.__name__}")
        return command


def _always(case: Case, actor: str) -> bool:
    return True


@attrs.frozen
class Step:
    """One command of a path, and who issues it.

    ``who`` is a person of the world by name, a :class:`~mediation.Relation` to the case (its
    first holder, or each holder with ``every``; before the case exists, the parties the opening
    names), a :class:`~mediation.Role` (the first person holding it in the case's committee), or a
    tuple of these, the first that anyone holds.  ``command`` is a command, or a :class:`FromCase`
    that builds one from the case so far.  ``pending(case, actor_id)`` tells whether the step is
    still to be taken by that actor (a consent not yet given, a signature not yet made): the guided
    walks of the hypothesis strategies take only the pending steps of a case in any state.
    """

    who: Who | tuple[Who, ...]
    command: cmd.Command | FromCase
    every: bool = False
    pending: Callable[[Case, str], bool] = _always

    @property
    def kind(self) -> type[cmd.Command]:
        """The payload class of the command."""
        return self.command.kind if isinstance(self.command, FromCase) else type(self.command)

    @property
    def spec(self) -> CommandSpec:
        """The command's declaration."""
        return WORKFLOW.command(self.kind.name)

    def actors(self, world: World, case: Case, opening: cmd.Command | None = None) -> list[Actor]:
        """Who takes this step on ``case``: no one when nobody holds the relation or role."""
        for who in self.who if isinstance(self.who, tuple) else (self.who,):
            ids = _holders(who, world, case, opening)
            if ids:
                return [world.actor(i) for i in (ids if self.every else ids[:1])]
        return []

    def resolve(self, world: World, case: Case) -> list[tuple[Actor, cmd.Command]]:
        """The (actor, command) pairs this step issues on ``case``, pending ones only."""
        opening = self.build(case, world) if case.state == NEW and self.spec.opens else None
        actors = [a for a in self.actors(world, case, opening) if self.pending(case, a.id)]
        if not actors:
            return []  # nothing to build: a command built from the case may not fit it now
        command = opening or self.build(case, world)
        return [(actor, command) for actor in actors]

    def build(self, case: Case, world: World) -> cmd.Command:
        """The command this step issues on ``case``."""
        return self.command(case, world) if isinstance(self.command, FromCase) else self.command


def _holders(who: Who, world: World, case: Case, opening: cmd.Command | None) -> list[str]:
    if isinstance(who, Relation):
        if case.state == NEW:
            named = {
                Relation.APPLICANT: getattr(opening, "applicants", ()),
                Relation.RESPONDENT: getattr(opening, "respondents", ()),
            }
            return [p.id for p in named.get(who, ())]
        people = (
            *case.applicants,
            *case.respondents,
            *case.agents,
            *case.mediators,
            *case.invitees,
        )
        return list(dict.fromkeys(p for p in people if who.value in case.relations_of(p)))
    if isinstance(who, Role):
        return [
            a.id
            for a in world.people.values()
            if a.has_role(who, case.committee) and a.id not in case.recused
        ][:1]
    return [who]


@attrs.frozen
class Leg:
    """The steps that take a case along one transition: ``command`` is the payload class whose
    declaration (``spec``) names the states it may be issued from and the one it leads to."""

    command: type[cmd.Command]
    steps: tuple[Step, ...]

    @property
    def spec(self) -> CommandSpec:
        return WORKFLOW.command(self.command.name)

    @property
    def target(self) -> str | None:
        """The state the leg leads to (from the declaration), ``None`` if it stays put."""
        return self.spec.target


@attrs.frozen
class PathOptions:
    """What a path assembles on the way.

    ``opening``: the command that opens the case (default: an application by p1 against p2 in the
    world's committee), issued by ``opened_by`` (default: its first applicant).  ``lead``: the
    lead mediator assigned on registration (``None``: none, so the path ends at registration).
    ``co_mediator``, ``agent`` (appointed by the first applicant once the case is open) and
    ``invitee`` (consented to by every party, invited by the lead after registration): the rest of
    the cast, none by default.  ``spare_mediators``: whom to assign instead when the mediator named
    is recused, tied to a party or already on the case.  ``minutes``: minutes and a proposal once
    negotiating.  ``performed``: the outcome the follow-up visit records (a path past it needs
    ``yes``).  ``late``: branch off the happy path at the last state the branch's command may be
    issued from (the whole cast present), not the first.
    """

    opening: cmd.Command | None = None
    opened_by: str | None = None
    lead: str | None = "med1"
    co_mediator: str | None = None
    agent: str | None = None
    invitee: str | None = None
    spare_mediators: tuple[str, ...] = ()
    minutes: bool = True
    performed: cmd.Performed = attrs.field(default=cmd.Performed.YES, converter=cmd.Performed)
    late: bool = False


def default_opening(world: World) -> cmd.Apply:
    """An application by p1 against p2, in the world's committee."""
    return cmd.Apply(
        committee=world.committee,
        category=cmd.Category.NEIGHBOURHOOD,
        description="楼上夜间噪声影响休息",
        applicants=(party("p1"),),
        respondents=(party("p2"),),
    )


def _eligible(case: Case, who: str) -> bool:
    """May ``who`` join the case as a mediator: not recused, not on it yet, no tie to a party."""
    related = {*case.parties, *case.agents}
    ties = case.ties.get(who, ())
    return not (
        who in case.recused or who in case.mediators or any(t["person"] in related for t in ties)
    )


def _pick(case: Case, names: Iterable[str | None]) -> str | None:
    return next((n for n in names if n and _eligible(case, n)), None)


def assignment(o: PathOptions, first: str | None, *, lead: bool) -> Step:
    """The director assigns ``first`` (or a spare) as the lead or as a co-mediator, if needed."""
    names = (first, *o.spare_mediators)

    def pending(case: Case, actor: str) -> bool:
        needed = case.lead is None if lead else not case.co_mediators
        return needed and _pick(case, names) is not None

    def build(case: Case, world: World) -> cmd.Command:
        return cmd.AssignMediator(_pick(case, names) or str(first), lead=lead)

    return Step(Role.DIRECTOR, FromCase(cmd.AssignMediator, build), pending=pending)


def _not_consented(subject: str) -> Callable[[Case, str], bool]:
    def pending(case: Case, actor: str) -> bool:
        return case.party_of(actor) not in case.consents.get(subject, frozenset())

    return pending


def _not_signed(slot: Callable[[Case, str], str]) -> Callable[[Case, str], bool]:
    def pending(case: Case, actor: str) -> bool:
        return slot(case, actor) not in case.signatures

    return pending


def _unnotified(case: Case) -> tuple[str, ...]:
    return tuple(p for p in case.party_ids if p not in case.rights_notified)


def _meeting(case: Case, world: World) -> cmd.Command:
    last = parse_time(case.updated_at) if case.updated_at else EPOCH
    try:
        at = last + dt.timedelta(days=3)
    except OverflowError:  # a case at the end of the calendar: the meeting at its last moment
        at = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return cmd.ScheduleMeeting(at, "调解室")


CONTENT = cmd.AgreementContent(
    facts="夜间噪声",
    issues="噪声",
    responsibilities="被申请人减噪",
    obligations="晚十点后停止",
    performance_method="自行整改",
    performance_place="楼栋",
    performance_deadline=dt.date(2026, 3, 1),
)

_LEAD = Relation.LEAD_MEDIATOR
#: a mediator of the case: the lead, else a co-mediator
_MEDIATOR: tuple[Who, ...] = (Relation.LEAD_MEDIATOR, Relation.CO_MEDIATOR)
_PARTIES = (Relation.APPLICANT, Relation.RESPONDENT)


def _legs(o: PathOptions) -> Mapping[type[cmd.Command], Leg]:
    """The legs of the table, by their command, with the options filled in."""
    opening_kind = type(o.opening) if o.opening is not None else cmd.Apply

    def opening(case: Case, world: World) -> cmd.Command:
        return o.opening if o.opening is not None else default_opening(world)

    cast: list[Step] = []
    if o.agent is not None:
        agent = cmd.AppointAgent(cmd.Party(o.agent, "代理人"), _doc("授权委托书"))
        cast.append(Step(Relation.APPLICANT, agent, pending=lambda c, a: o.agent not in c.agents))
    team: list[Step] = []
    if o.lead is not None:
        team.append(assignment(o, o.lead, lead=True))
    if o.co_mediator is not None:
        team.append(assignment(o, o.co_mediator, lead=False))
    if o.invitee is not None:
        subject = cmd.ConsentSubject.INVITEE
        consent = cmd.Consent(subject, o.invitee)
        for side in _PARTIES:
            team.append(
                Step(
                    side,
                    consent,
                    every=True,
                    pending=_not_consented(f"{subject.value}:{o.invitee}"),
                )
            )
        invite = cmd.Invite(o.invitee, cmd.InviteeKind.STREET_CADRE, _doc("保密承诺书"))
        team.append(Step(_LEAD, invite, pending=lambda c, a: o.invitee not in c.invitees))
    talks: list[Step] = []
    if o.minutes:
        talks = [
            Step(
                _MEDIATOR,
                cmd.RecordMinutes("双方陈述：机密笔录内容"),
                pending=lambda c, a: not c.minutes,
            ),
            Step(
                _MEDIATOR,
                cmd.ShareProposal("机密方案：晚十点后停止"),
                pending=lambda c, a: not c.proposals,
            ),
        ]
    party_slot = _not_signed(lambda c, a: c.party_of(a) or a)
    legs = (
        Leg(
            opening_kind,
            (
                Step(
                    o.opened_by or Relation.APPLICANT,
                    FromCase(opening_kind, opening),
                    pending=lambda c, a: c.state == NEW,  # a path followed on an open case
                ),
                *cast,
            ),
        ),
        Leg(
            cmd.Register,
            (
                Step(
                    Relation.RESPONDENT,
                    cmd.RecordConsent(),
                    every=True,
                    pending=_not_consented(_MEDIATION),
                ),
                Step(Role.DIRECTOR, cmd.Register(cmd.Scope())),
                *team,
            ),
        ),
        Leg(
            cmd.ScheduleMeeting,
            (
                Step(
                    _MEDIATOR,
                    FromCase(cmd.NotifyRights, lambda c, w: cmd.NotifyRights(_unnotified(c))),
                    pending=lambda c, a: bool(_unnotified(c)),
                ),
                Step(_LEAD, FromCase(cmd.ScheduleMeeting, _meeting)),
            ),
        ),
        Leg(cmd.OpenSession, (Step(_LEAD, cmd.OpenSession()), *talks)),
        Leg(cmd.DraftAgreement, (Step(_LEAD, cmd.DraftAgreement(CONTENT)),)),
        Leg(
            cmd.Sign,
            (
                *(Step(side, cmd.Sign(), every=True, pending=party_slot) for side in _PARTIES),
                Step(_MEDIATOR, cmd.Sign(), pending=_not_signed(lambda c, a: a)),
                Step(
                    Role.DIRECTOR,
                    cmd.Sign(cmd.SignMethod.SEAL),
                    pending=lambda c, a: cmd.SignMethod.SEAL.value not in c.signatures,
                ),
            ),
        ),
        Leg(
            cmd.RecordFollowUp,
            (
                Step(
                    _MEDIATOR,
                    cmd.RecordFollowUp("已履行", o.performed, 5),
                    pending=lambda c, a: not c.performed,
                ),
            ),
        ),
        Leg(
            cmd.ConfirmPerformed,
            (Step(_MEDIATOR, cmd.ConfirmPerformed("双方满意"), pending=lambda c, a: c.performed),),
        ),
        # the branches
        Leg(
            cmd.NotAccept,
            (Step(Role.DIRECTOR, cmd.NotAccept("不属于受理范围", cmd.Route.LITIGATION)),),
        ),
        Leg(cmd.Refuse, (Step(Relation.RESPONDENT, cmd.Refuse("不同意调解")),)),
        Leg(cmd.Withdraw, (Step(Relation.APPLICANT, cmd.Withdraw("已自行和解")),)),
        Leg(
            cmd.Transfer,
            (
                Step(
                    Role.DIRECTOR,
                    cmd.Transfer(cmd.TransferTarget.STREET_COMMITTEE, OTHER_COMMITTEE, "涉及多户"),
                ),
            ),
        ),
        Leg(
            cmd.Terminate,
            (
                Step(
                    _LEAD,
                    cmd.ProposeTermination("双方分歧过大", cmd.Route.LITIGATION),
                    pending=lambda c, a: c.termination is None,
                ),
                Step(Role.DIRECTOR, cmd.Terminate(parties_informed=True)),
            ),
        ),
        Leg(cmd.RecordOralAgreement, (Step(_MEDIATOR, cmd.RecordOralAgreement("口头达成一致")),)),
        Leg(
            cmd.Archive, (Step(Role.DIRECTOR, cmd.Archive(), pending=lambda c, a: not c.archived),)
        ),
    )
    return {leg.command: leg for leg in legs}


@attrs.frozen
class Routes:
    """The table for one set of options: the legs of the happy path, in order, and the branches.

    ``states`` are the states the happy path passes, from ``NEW``: each the target its leg's
    command has in the declaration.
    """

    happy: tuple[Leg, ...]
    branches: tuple[Leg, ...]
    states: tuple[str, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        states = [NEW]
        for leg in self.happy:
            if states[-1] not in leg.spec.sources or leg.target is None:
                raise ValueError(
                    f"the happy path breaks at {leg.command.name}: the declaration does not lead "
                    f"it from {states[-1]} to another state"
                )
            states.append(leg.target)
        object.__setattr__(self, "states", tuple(states))

    def leg(self, command: type[cmd.Command]) -> Leg:
        """The leg of ``command`` (a payload class of the happy path or of a branch)."""
        for leg in (*self.happy, *self.branches):
            if issubclass(leg.command, command):
                return leg
        raise KeyError(command.name)

    def branch_point(self, leg: Leg, late: bool = False) -> int:
        """How many happy legs come before ``leg``: up to the first (or last) state it may be
        issued from."""
        at = [i for i, s in enumerate(self.states) if s in leg.spec.sources]
        if not at:
            raise ValueError(f"{leg.command.name} may not be issued from the happy path")
        return at[-1] if late else at[0]

    def paths(self, late: bool = False) -> dict[str, tuple[Step, ...]]:
        """The steps to each state the table reaches (the happy path first, then the branches)."""
        out: dict[str, tuple[Step, ...]] = {}
        for n, state in enumerate(self.states[1:], start=1):
            out.setdefault(state, _steps(self.happy[:n]))
        for leg in self.branches:
            if leg.target is None or leg.target in out:
                continue
            out[leg.target] = _steps((*self.happy[: self.branch_point(leg, late)], leg))
        order = {s.name: i for i, s in enumerate(WORKFLOW.states)}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def _steps(legs: Iterable[Leg]) -> tuple[Step, ...]:
    return tuple(step for leg in legs for step in leg.steps)


def routes(options: PathOptions | None = None) -> Routes:
    """The table of legs with ``options`` filled in: :data:`HAPPY_PATH` then :data:`BRANCHES`."""
    o = options or PathOptions()
    try:
        return _cached(o)
    except TypeError:  # options that do not hash (an opening holding a list): built afresh
        return _routes(o)


def _routes(o: PathOptions) -> Routes:
    legs = _legs(o)
    happy = [legs[c] for c in HAPPY_PATH[1:]]
    opening = next(iter(legs.values()))  # the opening leg comes first, whatever opens the case
    return Routes((opening, *happy), tuple(legs[c] for c in BRANCHES))


_cached = functools.lru_cache(maxsize=64)(_routes)


def paths(options: PathOptions | None = None) -> dict[str, tuple[Step, ...]]:
    """The steps to each state of the workflow, by state (in the declaration's order)."""
    o = options or PathOptions()
    return routes(o).paths(o.late)


def path_to(state: str, options: PathOptions | None = None) -> tuple[Step, ...]:
    """The steps that take a new case to ``state``."""
    WORKFLOW.state(state)  # an unknown state raises here
    found = paths(options).get(state)
    if found is None:
        raise ValueError(f"no path to {state!r}")
    return found


Execute = Callable[[Actor, cmd.Command], Any]


def _case(service: CaseService, case_id: str) -> Case:
    try:
        return service.case(case_id)
    except CaseNotFound:
        return Case(case_id)


def follow(
    service: CaseService,
    world: World,
    case_id: str,
    steps: Iterable[Step],
    *,
    execute: Execute | None = None,
) -> Case:
    """Take ``steps`` on ``case_id`` through ``service`` (or ``execute(actor, command)``, e.g. a
    test's own runner); returns the case.  A refused command raises as the service raises it."""
    run: Execute = execute or (lambda actor, command: service.execute(actor, case_id, command))
    for step in steps:
        for actor, command in step.resolve(world, _case(service, case_id)):
            run(actor, command)
    return _case(service, case_id)


def drive(
    service: CaseService,
    world: World,
    case_id: str,
    state: str,
    options: PathOptions | None = None,
    *,
    execute: Execute | None = None,
) -> Case:
    """Open ``case_id`` and take it along :func:`path_to` ``state``; returns the case there."""
    case = follow(service, world, case_id, path_to(state, options), execute=execute)
    if case.state != state:
        raise AssertionError(f"the path to {state} ended in {case.state}")
    return case
