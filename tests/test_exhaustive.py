"""Every state × every command × every grant: the service decides what the declaration says.

For each state a case is driven there through the service along its path
(:func:`mediation.testing.paths`), with every relation present where the flow allows it (applicant
p1, respondent p2, agent agent1 for p1, lead mediator med1, co-mediator med2, invitee inv1: the
branches leave the happy path as late as they may).  Then, for every command and every grant (a role or a
relation), an actor holding exactly that grant and nothing else issues the command:

- the grant is not one the command lists → :class:`NotPermitted` (authorization runs first, in
  the one decision function, so that a stranger learns nothing of the case's state);
- else the state is not one of the command's sources → :class:`IllegalTransition`;
- else neither: the command succeeds or fails on its guards or payload only.

``CaseService.allowed`` must give the same answer on the state and permission parts, and the shared
``transitions`` machine must hold exactly the declaration's (source, command) pairs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable

import pytest

from mediation import (
    WORKFLOW,
    Actor,
    CaseExists,
    CaseNotFound,
    CaseService,
    GuardFailed,
    IllegalTransition,
    InvalidCommand,
    MemoryStore,
    NotPermitted,
    StoredEvent,
    replay,
)
from mediation import commands as cmd
from mediation._decide import machine_of
from mediation._events import parse_body, parse_time
from mediation._guards import GUARDS
from mediation._workflow import NEW, Relation, Role
from mediation.testing import PathOptions, TickClock, World, follow, paths

C = "c1"
CID = "x"
#: who holds each relation in the scripted cases
HOLDERS = {
    Relation.APPLICANT.value: "p1",
    Relation.RESPONDENT.value: "p2",
    Relation.AGENT.value: "agent1",
    Relation.LEAD_MEDIATOR.value: "med1",
    Relation.CO_MEDIATOR.value: "med2",
    Relation.INVITEE.value: "inv1",
}
ROLES = tuple(r.value for r in Role)
GRANTS = (*HOLDERS, *ROLES)
STATES = (NEW, *(s.name for s in WORKFLOW.states))
OPENING = frozenset(c.name for c in WORKFLOW.commands if NEW in c.sources)
MACHINE = machine_of(WORKFLOW)


def doc(title: str) -> cmd.DocRef:
    return cmd.DocRef(hashlib.sha256(title.encode()).hexdigest(), "application/pdf", title)


def party(pid: str, name: str) -> cmd.Party:
    return cmd.Party(pid, name, phone="13800000000")


CONTENT = cmd.AgreementContent(
    facts="夜间噪声",
    issues="噪声",
    responsibilities="被申请人减噪",
    obligations="晚十点后停止",
    performance_method="自行整改",
    performance_place="楼栋",
    performance_deadline=dt.date(2026, 3, 1),
)

# -- the paths -------------------------------------------------------------------------------------

OPTIONS = PathOptions(
    opening=cmd.Apply(
        committee=C,
        category="邻里",
        description="楼上夜间噪声",
        applicants=(party("p1", "陈女士"),),
        respondents=(party("p2", "刘先生"),),
        level="L0",
    ),
    lead=HOLDERS[Relation.LEAD_MEDIATOR.value],
    co_mediator=HOLDERS[Relation.CO_MEDIATOR.value],
    agent=HOLDERS[Relation.AGENT.value],
    invitee=HOLDERS[Relation.INVITEE.value],
    late=True,
)
PATHS = paths(OPTIONS)

#: relations nobody can hold in that state: before registration no mediator or invitee exists,
#: and before a case exists only the applicant named in the opening payload is related to it
UNHOLDABLE = {
    (s, r)
    for s in ("applied", "not_accepted", "refused")
    for r in ("lead_mediator", "co_mediator", "invitee")
} | {(NEW, r) for r in HOLDERS if r != "applicant"}


def probe_command(name: str) -> cmd.Command:
    """One well-formed command of each name (its guards may or may not hold)."""
    opening = dict(
        committee=C,
        category="邻里",
        description="噪声",
        applicants=(party("p1", "陈女士"),),
        respondents=(party("p2", "刘先生"),),
    )
    commands: dict[str, Callable[[], cmd.Command]] = {
        "apply": lambda: cmd.Apply(**opening),  # type: ignore[arg-type]
        "report": lambda: cmd.Report(**opening, source="grid"),  # type: ignore[arg-type]
        # written by a transfer from committee C, never issued: the service refuses it once decided
        "receive_transfer": lambda: cmd.ReceiveTransfer(
            **{**opening, "committee": "c9"},  # type: ignore[arg-type]
            origin="elsewhere",
            origin_committee=C,
            reason="移交",
        ),
        "record_consent": lambda: cmd.RecordConsent(),
        "refuse": lambda: cmd.Refuse("不同意"),
        "register": lambda: cmd.Register(cmd.Scope()),
        "not_accept": lambda: cmd.NotAccept("不属于受理范围", "litigation"),
        "appoint_agent": lambda: cmd.AppointAgent(party("agent9", "代理人九"), doc("委托书")),
        "assign_mediator": lambda: cmd.AssignMediator("med3"),
        "request_recusal": lambda: cmd.RequestRecusal("med2", "亲属关系"),
        "declare_conflict": lambda: cmd.DeclareConflict((cmd.Tie("p1", "other"),)),
        "decide_recusal": lambda: cmd.DecideRecusal("med2", False),
        "consent": lambda: cmd.Consent("extend_term"),
        "invite": lambda: cmd.Invite("inv2", "police", doc("保密承诺书二")),
        "notify_rights": lambda: cmd.NotifyRights(("p1", "p2")),
        "schedule_meeting": lambda: cmd.ScheduleMeeting(
            dt.datetime(2026, 1, 9, 19, tzinfo=dt.timezone.utc), "调解室"
        ),
        "open_session": lambda: cmd.OpenSession(),
        "record_minutes": lambda: cmd.RecordMinutes("笔录"),
        "share_proposal": lambda: cmd.ShareProposal("方案"),
        "revise_proposal": lambda: cmd.ReviseProposal(1, "修改方案"),
        "draft_agreement": lambda: cmd.DraftAgreement(CONTENT),
        "sign": lambda: cmd.Sign(),
        "record_oral_agreement": lambda: cmd.RecordOralAgreement("口头协议"),
        "record_follow_up": lambda: cmd.RecordFollowUp("回访", "yes"),
        "confirm_performed": lambda: cmd.ConfirmPerformed(),
        "reopen": lambda: cmd.Reopen("一方反悔"),
        "propose_termination": lambda: cmd.ProposeTermination("分歧过大", "litigation"),
        "terminate": lambda: cmd.Terminate(True),
        "withdraw": lambda: cmd.Withdraw(),
        "escalate": lambda: cmd.Escalate("涉及多户"),
        "transfer": lambda: cmd.Transfer("police", "派出所", "涉嫌治安案件"),
        "extend_term": lambda: cmd.ExtendTerm(10),
        "pause": lambda: cmd.Pause("appraisal"),
        "resume": lambda: cmd.Resume(),
        "record_judicial_confirmation": lambda: cmd.RecordJudicialConfirmation(
            "applied", ("p1", "p2")
        ),
        "archive": lambda: cmd.Archive(),
        "erase_personal_data": lambda: cmd.ErasePersonalData("PIPL 47", "p1"),
    }
    assert commands.keys() == {c.name for c in WORKFLOW.commands}
    return commands[name]()


def holder(grant: str) -> Actor:
    """An actor holding exactly ``grant``: a relation (by who they are) or one role."""
    if grant in HOLDERS:
        return Actor(HOLDERS[grant])
    return Actor.with_roles(f"only-{grant}", {C: [grant]})


@functools.cache
def template(state: str) -> tuple[StoredEvent, ...]:
    """The records of a case driven to ``state`` along its path."""
    world = World()
    service = world.service()
    case = follow(service, world, CID, PATHS[state])
    assert case.state == state
    return tuple(service.store.read(CID))


def service_at(state: str) -> CaseService:
    """A fresh service whose store holds the template case of ``state``."""
    records = list(template(state))
    store = MemoryStore()
    store.append(replay(records, CID).summary(), records, 0)
    last = parse_time(parse_body(records[-1].body)["at"])
    return World().service(store, clock=TickClock(now=last))


def expected(state: str, command: str, grant: str) -> str:
    spec = WORKFLOW.command(command)
    if grant not in spec.grants:
        return "not permitted"
    if state not in spec.sources:
        return "illegal"
    return "decided by guards"


def outcome(service: CaseService, actor: Actor, case_id: str, command: cmd.Command) -> str:
    try:
        service.execute(actor, case_id, command)
    except NotPermitted:
        return "not permitted"
    except IllegalTransition:
        return "illegal"
    except (GuardFailed, InvalidCommand):
        return "decided by guards"
    except CaseExists:
        return "case exists"
    except CaseNotFound:
        return "case not found"
    return "done"


# -- the tests -------------------------------------------------------------------------------------


def test_every_state_has_a_path() -> None:
    assert set(PATHS) == {s.name for s in WORKFLOW.states}
    for state in PATHS:
        assert replay(list(template(state)), CID).state == state


@pytest.mark.parametrize("state", [s for s in STATES if s != NEW])
def test_the_service_decides_as_declared(state: str) -> None:
    service = service_at(state)
    base = len(template(state))
    case = service.case(CID)
    skipped = set()
    checked = 0
    for grant in GRANTS:
        actor = holder(grant)
        held = case.relations_of(actor.id) | {g.role.value for g in actor.grants}
        if held != {grant}:
            assert held == set(), f"{actor.id} holds {held} in {state}, not only {grant}"
            skipped.add((state, grant))
            continue
        for spec in WORKFLOW.commands:
            got = outcome(service, actor, CID, probe_command(spec.name))
            if spec.name in OPENING:
                # the id is taken, but only someone who may open a case is told so
                want: set[str] = (
                    {"case exists", "not permitted"} if grant in spec.grants else {"not permitted"}
                )
            elif expected(state, spec.name, grant) == "decided by guards":
                want = {"decided by guards", "done"}
            else:
                want = {expected(state, spec.name, grant)}
            assert got in want, f"{spec.name} as {grant} in {state}: {got}, expected {want}"
            checked += 1
            if got == "done":
                service = service_at(state)
                case = service.case(CID)
            else:  # a refused command leaves the store and the case as they were
                assert len(service.store.read(CID)) == base
                assert case.seq == base and case.state == state
    assert skipped == {(s, g) for s, g in UNHOLDABLE if s == state}
    assert checked == (len(GRANTS) - len(skipped)) * len(WORKFLOW.commands)


def test_a_new_case_is_opened_as_declared() -> None:
    world = World()
    service = world.service()
    n = 0
    for grant in GRANTS:
        if (NEW, grant) in UNHOLDABLE:
            continue
        actor = holder(grant)
        for spec in WORKFLOW.commands:
            n += 1
            case_id = f"new-{n}"
            got = outcome(service, actor, case_id, probe_command(spec.name))
            if spec.name not in OPENING:
                assert got == "case not found", (spec.name, grant, got)
                continue
            want = expected(NEW, spec.name, grant)
            assert got in ({"decided by guards", "done"} if want != "not permitted" else {want}), (
                spec.name,
                grant,
                got,
            )
            if got != "done":
                assert service.store.read(case_id) == []


@pytest.mark.parametrize("state", STATES)
def test_a_role_in_another_committee_grants_nothing(state: str) -> None:
    service = World().service() if state == NEW else service_at(state)
    for role in ROLES:
        actor = Actor.with_roles(f"elsewhere-{role}", {"c2": [role]})
        for spec in WORKFLOW.commands:
            case_id = f"new-{role}" if state == NEW else CID
            got = outcome(service, actor, case_id, probe_command(spec.name))
            if state == NEW:
                want = "not permitted" if spec.name in OPENING else "case not found"
            else:
                want = "not permitted"  # opening too: the id's existence is not revealed
            assert got == want, (state, role, spec.name, got)


@pytest.mark.parametrize("state", [s for s in STATES if s != NEW])
def test_allowed_agrees_with_the_declaration(state: str) -> None:
    service = service_at(state)
    case = service.case(CID)
    for grant in GRANTS:
        actor = holder(grant)
        if case.relations_of(actor.id) | {g.role.value for g in actor.grants} != {grant}:
            continue
        permissions = {p.command: p for p in service.allowed(actor, CID)}
        assert list(permissions) == [c.name for c in WORKFLOW.commands]
        for spec in WORKFLOW.commands:
            p = permissions[spec.name]
            state_ok = state in spec.sources
            grant_ok = grant in spec.grants
            reasons = [r.en for r in p.reasons]
            where = f"{spec.name} as {grant} in {state}: {p}"
            # one reason: the first check that refuses, in the decision's order
            assert len(reasons) == (0 if p.allowed else 1), where
            if not grant_ok:
                assert " may not " in reasons[0], where
            elif not state_ok:
                assert reasons[0] == f"{spec.name} is not allowed from state {state}", where
            if not (state_ok and grant_ok):
                assert not p.allowed and p.acted_as is None and p.pending_guards == (), where
                continue
            # what is left is the guards: judged now, or pending on the payload
            assert all(r.split(" ")[0] in spec.guards for r in reasons), where
            assert set(p.pending_guards) <= set(spec.guards), where
            assert all(GUARDS[g].needs_payload for g in p.pending_guards), where
            assert p.allowed == (not reasons), where
            if p.allowed:
                assert p.acted_as == grant, where
            # without pending guards or people to check, execute agrees with allowed
            if not p.pending_guards and not spec.people:
                got = outcome(service_at(state), actor, CID, probe_command(spec.name))
                assert got == ("done" if p.allowed else "decided by guards"), (where, got)


def test_the_machine_has_exactly_the_declared_transitions() -> None:
    pairs = {(src, name) for name, event in MACHINE.events.items() for src in event.transitions}
    assert pairs == set(WORKFLOW.table)
    assert set(MACHINE.events) == {c.name for c in WORKFLOW.commands}
    assert set(MACHINE.states) == set(STATES)
    for name, event in MACHINE.events.items():
        spec = WORKFLOW.command(name)
        for src, transitions in event.transitions.items():
            dests = [t.dest for t in transitions]
            if spec.completes_when is not None:  # the target once complete, else stay
                assert dests == [spec.target, None], (name, src, dests)
            else:
                assert dests == [spec.target], (name, src, dests)
            # every guard of the declaration is a condition of every row
            for t in transitions:
                names = [c.func.__name__ for c in t.conditions]
                guards = [n for n in names if n.startswith("guard_")]
                assert guards == [f"guard_{g}" for g in spec.guards], names


def test_every_grant_of_the_declaration_exists() -> None:
    for spec in WORKFLOW.commands:
        assert set(spec.grants) <= set(GRANTS), spec.name
        assert spec.grants, spec.name


def test_remembered_answers_are_the_machines() -> None:
    """For a command without conditions the decision remembers the machine's answer per (state,
    command): after every such pair was decided, each remembered answer is what a fresh machine,
    built from the declaration, answers."""
    from transitions import MachineError

    from mediation._decide import _ask, _build, _decisions

    unconditioned = [spec for spec in WORKFLOW.commands if not spec.checked]
    for state in STATES[1:]:  # decide every unconditioned command, by every grant, in every state
        for spec in unconditioned:
            for grant in spec.grants:
                outcome(service_at(state), holder(grant), CID, probe_command(spec.name))
    fresh = _build(WORKFLOW)
    table = WORKFLOW.cached("decisions", _decisions)
    remembered = {
        (state, name): answer
        for name, entry in table.items()
        if not entry[1].checked
        for state, answer in entry[2].items()
    }
    assert len(remembered) >= len(STATES[1:])
    for state in STATES:
        for spec in WORKFLOW.commands:
            if spec.checked:
                continue
            want = _ask(fresh.events[spec.name], state)
            if (state, spec.name) in remembered:
                got = remembered[(state, spec.name)]
                assert type(got) is type(want), (state, spec.name)
                if not isinstance(want, MachineError):
                    assert got == want == WORKFLOW.table[(state, spec.name)], (state, spec.name)
            else:
                assert isinstance(want, MachineError) or (state, spec.name) in WORKFLOW.table
    assert any(not spec.checked for spec in WORKFLOW.commands)
