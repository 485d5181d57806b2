"""Hypothesis strategies derived from the workflow declaration.

A :class:`World` (from :mod:`mediation.testing._world`) is a cast for one committee (director,
mediators, parties, agents, invitees, a grid worker, the platform, a supervisor, an auditor and a
stranger) with its directory.  From the declaration and a case, :func:`command_for` draws a command of a given name whose payload fits the
case (mostly valid, sometimes not, so guards get exercised), and :func:`actor_for` draws an actor
that holds one of the grants the declaration lists for it (or, sometimes, anyone).
:func:`histories` walks the workflow and returns the records of a case built through the service;
the guided walks (:func:`guided_step`) follow the paths of :mod:`mediation.testing._paths`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from hypothesis import assume
from hypothesis import strategies as st

from .. import commands as cmd
from .._authz import Actor
from .._case import Case
from .._errors import MediationError
from .._events import StoredEvent
from .._service import CaseService
from .._vocab import PERSONAL_CONSENTS, Role
from .._workflow import NEW, WORKFLOW, CommandSpec
from ._paths import FromCase, PathOptions, Step, assignment, routes
from ._world import (
    AGENT_IDS,
    EPOCH,
    INVITEE_IDS,
    OTHER_COMMITTEE,
    PARTY_IDS,
    TickClock,
    World,
    party,
)

__all__ = [
    "Driven",
    "TickClock",
    "World",
    "actor_for",
    "command_for",
    "commands_from",
    "driven_cases",
    "guided_step",
    "histories",
    "host_openings",
    "opening_step",
    "progress_steps",
    "step",
]

_EPOCH = EPOCH

_text = st.text(
    alphabet=st.sampled_from("调解邻里噪声漏水停车协议abc 123"), min_size=1, max_size=20
).filter(str.strip)  # required text fields refuse blank text at construction, outside execute
_docs = st.builds(
    cmd.DocRef,
    sha256=st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest()),
    media_type=st.sampled_from(("application/pdf", "image/jpeg")),
)


_party = party


@st.composite
def _opening(draw: st.DrawFn, world: World, cls: type[cmd.Command]) -> cmd.Command:
    ids = draw(st.permutations(PARTY_IDS))
    n_app = draw(st.integers(1, 2))
    n_resp = draw(st.integers(1, 2))
    C = cmd.Category
    base: dict[str, Any] = dict(
        committee=world.committee,
        category=draw(
            st.sampled_from(
                (C.NEIGHBOURHOOD, C.PROPERTY_MANAGEMENT, C.CONTRACT, C.MARRIAGE_FAMILY, C.LABOUR)
            )
        ),
        description=draw(_text),
        applicants=tuple(_party(p) for p in ids[:n_app]),
        respondents=tuple(_party(p) for p in ids[n_app : n_app + n_resp]),
        level=draw(st.sampled_from((cmd.Level.L0, cmd.Level.L1))),
        involves_privacy=draw(st.booleans()),
        profile=draw(st.sampled_from(("", cmd.RecusalProfile.SZ, cmd.RecusalProfile.COURT))),
    )
    if cls is cmd.Apply:
        return cmd.Apply(**base, oral=draw(st.booleans()))
    if cls is cmd.ReceiveTransfer:  # what a transfer from the other committee writes here
        return cmd.ReceiveTransfer(
            **base, origin="case-origin", origin_committee=OTHER_COMMITTEE, reason=draw(_text)
        )
    source = draw(st.sampled_from((cmd.ReportSource.GRID, cmd.ReportSource.EARLY_WARNING)))
    return cmd.Report(**base, source=source)


#: where a drawn transfer goes: the street's committee (by its id: the case it opens there is
#: linked) or an outside body (by its name: no case linked)
_TRANSFER_TARGETS = (
    (cmd.TransferTarget.STREET_COMMITTEE, OTHER_COMMITTEE),
    (cmd.TransferTarget.POLICE, "城关派出所"),
)


def _people(case: Case) -> list[str]:
    return [*case.parties, *case.agents]


def _tie(draw: st.DrawFn, case: Case) -> cmd.Tie:
    T = cmd.TieKind
    return cmd.Tie(
        draw(st.sampled_from(_people(case))),
        draw(st.sampled_from((T.SPOUSE, T.SIBLING, T.INTEREST, T.OTHER))),
    )


@attrs.frozen
class _Fit:
    """What a command drawn for one case draws from: the world, the case and its people."""

    world: World
    case: Case
    parties: list[str]
    mediators: list[str]
    person_pool: list[str]

    @classmethod
    def of(cls, world: World, case: Case) -> _Fit:
        mediators = ["med1", "med2", "med3", "outsider-med", "p1"]
        return cls(
            world,
            case,
            list(case.party_ids) or list(PARTY_IDS[:2]),
            mediators,
            [*case.mediators, *case.invitees, *mediators[:2], *INVITEE_IDS],
        )


#: draws one command of a class for a case
_Draw = Callable[[st.DrawFn, _Fit], cmd.Command]


def _register(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    scope = draw(
        st.one_of(
            st.just(cmd.Scope()),
            st.just(cmd.Scope()),
            st.builds(cmd.Scope, civil=st.booleans(), criminal=st.booleans()),
        )
    )
    return cmd.Register(scope)


def _appoint_agent(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    agent = draw(st.sampled_from([a for a in AGENT_IDS if a not in f.case.agents] or AGENT_IDS))
    return cmd.AppointAgent(cmd.Party(agent, "代理人" + agent), draw(_docs))


def _assign_mediator(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    ties = (_tie(draw, f.case),) if draw(st.integers(0, 5)) == 0 else ()
    who = draw(st.sampled_from([*f.case.co_mediators, *f.mediators]))
    return cmd.AssignMediator(who, draw(st.booleans()), ties)


def _decide_recusal(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    pending = list(f.case.recusal_requests) or f.person_pool
    return cmd.DecideRecusal(draw(st.sampled_from(pending)), draw(st.booleans()))


def _consent(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    subject = draw(st.sampled_from(cmd.ConsentSubject))
    person = draw(st.sampled_from(f.person_pool)) if subject in PERSONAL_CONSENTS else ""
    return cmd.Consent(subject, person)


def _invite(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    kind = draw(st.sampled_from(cmd.InviteeKind))
    employer = draw(st.sampled_from(("", "org1", "某律所")))
    return cmd.Invite(draw(st.sampled_from(INVITEE_IDS)), kind, draw(_docs), employer)


def _notify_rights(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    chosen = draw(st.lists(st.sampled_from(f.parties), min_size=1, unique=True))
    return cmd.NotifyRights(tuple(chosen))


def _draft_agreement(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    blank = draw(st.integers(0, 6)) == 0
    return cmd.DraftAgreement(
        cmd.AgreementContent(
            facts="" if blank else draw(_text),
            issues=draw(_text),
            responsibilities=draw(_text),
            obligations=draw(_text),
            performance_method=draw(_text),
            performance_place=draw(_text),
            performance_deadline=dt.date(2026, 3, 1),
        )
    )


def _judicial(draw: st.DrawFn, f: _Fit) -> cmd.Command:
    J = cmd.JudicialStatus
    status = draw(st.sampled_from((J.APPLIED, J.CONFIRMED, J.REJECTED)))
    joint = tuple(f.parties) if draw(st.booleans()) else tuple(f.parties[:1])
    return cmd.RecordJudicialConfirmation(status, joint if status is J.APPLIED else ())


#: how :func:`command_for` draws each command class (a test checks every class has a row)
_DRAWS: Mapping[type[cmd.Command], _Draw] = {
    cmd.Apply: lambda d, f: d(_opening(f.world, cmd.Apply)),
    cmd.Report: lambda d, f: d(_opening(f.world, cmd.Report)),
    cmd.ReceiveTransfer: lambda d, f: d(_opening(f.world, cmd.ReceiveTransfer)),
    cmd.RecordConsent: lambda d, f: cmd.RecordConsent(),
    cmd.Refuse: lambda d, f: cmd.Refuse(d(_text)),
    cmd.Register: _register,
    cmd.NotAccept: lambda d, f: cmd.NotAccept(d(_text), d(st.sampled_from(cmd.Route))),
    cmd.AppointAgent: _appoint_agent,
    cmd.AssignMediator: _assign_mediator,
    cmd.RequestRecusal: lambda d, f: cmd.RequestRecusal(
        d(st.sampled_from(f.person_pool)), d(_text)
    ),
    cmd.DeclareConflict: lambda d, f: cmd.DeclareConflict((_tie(d, f.case),)),
    cmd.DecideRecusal: _decide_recusal,
    cmd.Consent: _consent,
    cmd.Invite: _invite,
    cmd.NotifyRights: _notify_rights,
    cmd.ScheduleMeeting: lambda d, f: cmd.ScheduleMeeting(
        _EPOCH + dt.timedelta(days=3), "调解室", d(st.booleans())
    ),
    cmd.OpenSession: lambda d, f: cmd.OpenSession(),
    cmd.RecordMinutes: lambda d, f: cmd.RecordMinutes(d(_text)),
    cmd.ShareProposal: lambda d, f: cmd.ShareProposal(d(_text)),
    cmd.ReviseProposal: lambda d, f: cmd.ReviseProposal(
        d(st.integers(1, f.case.proposals + 1)), d(_text)
    ),
    cmd.DraftAgreement: _draft_agreement,
    cmd.Sign: lambda d, f: cmd.Sign(d(st.sampled_from(cmd.SignMethod))),
    cmd.RecordOralAgreement: lambda d, f: cmd.RecordOralAgreement(d(_text)),
    cmd.RecordFollowUp: lambda d, f: cmd.RecordFollowUp(
        d(_text), d(st.sampled_from(cmd.Performed))
    ),
    cmd.ConfirmPerformed: lambda d, f: cmd.ConfirmPerformed(),
    cmd.Reopen: lambda d, f: cmd.Reopen(d(_text)),
    cmd.ProposeTermination: lambda d, f: cmd.ProposeTermination(
        d(_text), d(st.sampled_from(cmd.Route))
    ),
    cmd.Terminate: lambda d, f: cmd.Terminate(d(st.booleans())),
    cmd.Withdraw: lambda d, f: cmd.Withdraw(),
    cmd.Escalate: lambda d, f: cmd.Escalate(d(_text)),
    cmd.Transfer: lambda d, f: cmd.Transfer(
        *d(st.sampled_from(_TRANSFER_TARGETS)),
        d(_text),
    ),
    cmd.ExtendTerm: lambda d, f: cmd.ExtendTerm(d(st.integers(1, 30))),
    cmd.Pause: lambda d, f: cmd.Pause(d(st.sampled_from(cmd.PauseReason))),
    cmd.Resume: lambda d, f: cmd.Resume(),
    cmd.RecordJudicialConfirmation: _judicial,
    cmd.Archive: lambda d, f: cmd.Archive(),
    cmd.ErasePersonalData: lambda d, f: cmd.ErasePersonalData(
        "PIPL 47", d(st.sampled_from(["", *f.parties]))
    ),
}
_DRAWS_BY_NAME = {cls.name: draw for cls, draw in _DRAWS.items()}


@st.composite
def command_for(draw: st.DrawFn, world: World, case: Case, name: str) -> cmd.Command:
    """A command named ``name`` whose payload fits ``case`` (valid more often than not)."""
    how = _DRAWS_BY_NAME.get(name)
    if how is None:
        raise ValueError(f"no strategy for command {name!r}")
    return how(draw, _Fit.of(world, case))


@st.composite
def actor_for(draw: st.DrawFn, world: World, case: Case, spec: CommandSpec) -> Actor:
    """Usually someone holding a grant the declaration lists for ``spec``; sometimes anyone."""
    holders: list[Actor] = []
    if case.state == NEW:
        holders = [world[p] for p in PARTY_IDS] + [world["med1"], world["grid"], world["platform"]]
    else:
        for grant in spec.grants:
            holders.extend(world.holders(case, grant))
    if holders and draw(st.integers(0, 9)) > 0:
        return draw(st.sampled_from(holders))
    return draw(st.sampled_from(list(world.people.values())))


def commands_from(state: str) -> Sequence[CommandSpec]:
    """The commands the declaration allows from ``state`` (every command if ``None``)."""
    return WORKFLOW.commands_from(state)


@st.composite
def step(draw: st.DrawFn, world: World, case: Case, legal_only: bool = True) -> tuple[Actor, Any]:
    """One (actor, command) for ``case``: a command legal from its state, or any command."""
    specs = commands_from(case.state) if legal_only else WORKFLOW.commands
    if not specs:
        specs = WORKFLOW.commands
    spec = draw(st.sampled_from(list(specs)))
    return draw(actor_for(world, case, spec)), draw(command_for(world, case, spec.name))


#: the guided walks' paths, with spare mediators for when the one named is recused or tied to a party
_CAST = PathOptions(spare_mediators=("med1", "med2", "med3"))
_GUIDE = routes(_CAST)
_TERMINATE = _GUIDE.leg(cmd.Terminate)
_PROPOSE = tuple(s for s in _TERMINATE.steps if s.kind is cmd.ProposeTermination)
_PROMOTE = Step(  # the co-mediator takes the lead
    Role.DIRECTOR,
    FromCase(cmd.AssignMediator, lambda c, w: cmd.AssignMediator(c.co_mediators[0], lead=True)),
    pending=lambda c, a: bool(c.co_mediators),
)
#: other ways on, offered beside the moves of a happy leg: the "1+N" team (a co-mediator joins,
#: and may later take the lead), an oral agreement or a proposal to terminate
_DETOURS: Mapping[type[cmd.Command], tuple[Step, ...]] = {
    cmd.ScheduleMeeting: (assignment(_CAST, "med2", lead=False),),
    cmd.DraftAgreement: (*_GUIDE.leg(cmd.RecordOralAgreement).steps, *_PROPOSE),
    cmd.OpenSession: (_PROMOTE,),
}


def _take(world: World, case: Case, steps: Sequence[Step]) -> list[tuple[Actor, cmd.Command]]:
    """The pending (actor, command) pairs of ``steps`` that the declaration allows from here."""
    return [pair for s in steps if case.state in s.spec.sources for pair in s.resolve(world, case)]


def progress_steps(world: World, case: Case) -> list[tuple[Actor, cmd.Command]]:
    """Steps that move ``case`` along the happy path 申请—登记—会议—协商—协议—回访 from where it is.

    They are the pending steps of the paths (:mod:`mediation.testing._paths`) that the declaration
    allows from the case's state, each built to pass its guards on the case as it stands (a lead
    mediator when there is none, consents, rights notices, signatures, a follow-up showing
    performance); then the termination of a case whose termination was proposed, the archive of a
    closed case.  A step may still be refused when earlier random steps changed the case (a
    recused lead, an objection), which is what the tests want to see too.
    """
    if case.state == NEW:
        return []
    if case.terminal:
        return _take(world, case, _GUIDE.leg(cmd.Archive).steps)
    out: list[tuple[Actor, cmd.Command]] = []
    if case.termination is not None:
        out = _take(world, case, _TERMINATE.steps)
    return out + _forward(world, case)


def _forward(world: World, case: Case) -> list[tuple[Actor, cmd.Command]]:
    """What prepares the next move of the happy path (when something does), else the move (twice
    as likely as each of its detours)."""
    steps = [s for leg in _GUIDE.happy for s in leg.steps]
    prepare = _take(world, case, [s for s in steps if s.spec.target is None])
    if prepare:
        return prepare
    out: list[tuple[Actor, cmd.Command]] = []
    for leg in _GUIDE.happy:
        moves = _take(world, case, [s for s in leg.steps if s.spec.target is not None])
        if moves:
            out += [*moves, *moves, *_take(world, case, _DETOURS.get(leg.command, ()))]
    return out


@st.composite
def guided_step(
    draw: st.DrawFn, world: World, case: Case, legal_only: bool = True, weight: int = 6
) -> tuple[Actor, Any]:
    """A step of :func:`progress_steps` ``weight`` times in ten, otherwise a random :func:`step`.

    Random walks alone rarely get past ``applied`` (registration needs every respondent's
    consent, a meeting needs a lead mediator and the rights notices, ...): guided walks reach
    every stage, with random detours (agents, recusals, invitees, pauses, endings) on the way.
    """
    progress = progress_steps(world, case)
    if progress and draw(st.integers(0, 9)) < weight:
        return draw(st.sampled_from(progress))
    return draw(step(world, case, legal_only))


@st.composite
def opening_step(draw: st.DrawFn, world: World, case_id: str) -> tuple[Actor, cmd.Command]:
    """An (actor, apply or report) that opens ``case_id`` (usually by someone allowed to)."""
    new = Case(case_id)
    spec = draw(st.sampled_from(host_openings()))
    return draw(actor_for(world, new, spec)), draw(command_for(world, new, spec.name))


def host_openings() -> list[CommandSpec]:
    """The commands a host opens a case with (``receive_transfer`` is written by a transfer)."""
    return [s for s in WORKFLOW.opening if s.authority == "committee"]


@attrs.define
class Driven:
    """A case driven through a live service: what :func:`driven_cases` returns."""

    world: World
    service: CaseService
    case_id: str


@st.composite
def driven_cases(draw: st.DrawFn, max_steps: int = 40, guided: bool = True) -> Driven:
    """A case opened and driven through a live service by up to ``max_steps`` steps.

    ``guided`` walks use :func:`guided_step` (every stage is reached); otherwise :func:`step`.
    """
    world = World()
    service = world.service()
    case_id = "case-h"
    for _ in range(10):
        actor, command = draw(opening_step(world, case_id))
        try:
            service.execute(actor, case_id, command)
            break
        except MediationError:
            continue
    else:
        assume(False)
    weight = draw(st.sampled_from((6, 8, 9)))  # how straight the walk goes (progress in ten)
    for _ in range(draw(st.integers(0, max_steps))):
        case = service.case(case_id)
        if case.terminal and case.archived:
            break
        actor, command = draw(
            guided_step(world, case, weight=weight) if guided else step(world, case)
        )
        with contextlib.suppress(MediationError):
            service.execute(actor, case_id, command)
    return Driven(world, service, case_id)


def histories(max_steps: int = 40, guided: bool = True) -> st.SearchStrategy[list[StoredEvent]]:
    """The records of one case built through the service (see :func:`driven_cases`)."""
    return driven_cases(max_steps, guided).map(lambda d: d.service.store.read(d.case_id))
