"""One decision: what the live path refuses, replay refuses with the same error, and the reverse.

For random histories built through the service, a command is injected: any command of the
workflow, by any person of the world, claiming any role or relation the command lists, with a
payload drawn to fit the case or deliberately naming people who are not in it.  The live path
(:meth:`CaseService.execute`) decides it; the same command is then written as a forged event after
the history and replayed (:func:`mediation.verify`, with the directory the service used).

- live refusal → replay stops at that event, and :attr:`Fault.error` is an error of the same class
  with the same message and structured fields (case, state, command, actor, guard, basis, field);
- live acceptance → the forged event is byte for byte the event the service wrote, and the history
  with it verifies, strictly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from hypothesis import event as hypothesis_event
from hypothesis import given, note
from hypothesis import strategies as st

from mediation import (
    WORKFLOW,
    Actor,
    CaseService,
    ClockSkew,
    FaultKind,
    GuardFailed,
    IllegalTransition,
    InvalidCommand,
    MemoryStore,
    NotPermitted,
    Role,
    StoredEvent,
    verify,
)
from mediation import commands as cmd
from mediation._events import (
    GENESIS,
    canonical_bytes,
    event_hash,
    format_time,
    make_body,
    parse_body,
    parse_time,
)
from mediation.commands import to_payload
from mediation.testing import (
    Driven,
    TickClock,
    World,
    command_for,
    driven_cases,
    host_openings,
    opening_step,
)

REFUSALS = (NotPermitted, IllegalTransition, GuardFailed, InvalidCommand)
FRESH = "case-fresh"


def _misnamed(command: cmd.Command) -> cmd.Command:
    """The command with every person its declaration checks replaced by someone unknown."""
    spec = WORKFLOW.command(command.name)
    changes: dict[str, Any] = {}
    for field, _ in spec.people:
        value = getattr(command, field)
        if isinstance(value, str):
            changes[field] = "ghost"
        elif isinstance(value, tuple) and value and isinstance(value[0], str):
            changes[field] = (*value, "ghost")
        elif isinstance(value, tuple) and value:  # ties
            changes[field] = (attrs.evolve(value[0], person="ghost"), *value[1:])
    return attrs.evolve(command, **changes) if changes else command


@st.composite
def injections(draw: st.DrawFn, d: Driven, case_id: str) -> tuple[Actor, cmd.Command, str]:
    case = d.service.case(case_id) if case_id != FRESH else None
    # an opening command always addresses a new case (on a taken id it is told so, CaseExists)
    # (receive_transfer is written by a transfer, never issued: verify_store checks its link)
    specs = host_openings() if case is None else [c for c in WORKFLOW.commands if not c.opens]
    spec = draw(st.sampled_from(specs), label="command")
    claim = draw(st.sampled_from(spec.grants), label="claim")
    if case is None:
        _, command = draw(opening_step(d.world, FRESH).filter(lambda s: s[1].name == spec.name))
        applicants = [p.id for p in getattr(command, "applicants", ())]
        if claim in {r.value for r in Role}:
            holders = [a for a in d.world.people.values() if a.has_role(claim, d.world.committee)]
        else:
            holders = [d.world[a] for a in applicants if a in d.world.people]
    else:
        command = draw(command_for(d.world, case, spec.name), label="payload")
        holders = d.world.holders(case, claim)
    everyone = sorted(d.world.people.values(), key=lambda a: a.id)
    # mostly someone who holds the claim (so that state, people and guards get decided too)
    actor = draw(
        st.sampled_from(holders)
        if holders and draw(st.integers(0, 3))
        else st.sampled_from(everyone),
        label="actor",
    )
    if spec.people and draw(st.booleans(), label="misnamed"):
        command = _misnamed(command)
    return actor, command, claim


def _forged(
    case_id: str, seq: int, prev: str, at: str, actor: str, claim: str, state: str, payload: Any
) -> StoredEvent:
    body = canonical_bytes(
        make_body(
            case_id=case_id,
            seq=seq,
            type=payload[0],
            at=at,
            actor=actor,
            acted_as=claim,
            state=state,
            payload=payload[1],
            prev=prev,
            workflow=WORKFLOW.version,
        )
    )
    return StoredEvent(case_id, seq, event_hash(body), body)


@pytest.mark.parametrize("fresh", [False, True], ids=["on a case", "opening"])
@given(d=driven_cases(max_steps=30), data=st.data())
def test_replay_decides_as_the_live_path(fresh: bool, d: Driven, data: st.DataObject) -> None:
    case_id = FRESH if fresh else d.case_id
    records = [] if fresh else d.service.store.read(case_id)
    actor, command, claim = data.draw(injections(d, case_id), label="injected")
    case = d.service.case(case_id) if records else None
    last = parse_time(case.updated_at) if case else dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    now = last + dt.timedelta(days=data.draw(st.sampled_from((0, 1, 45)), label="days later"))
    store = MemoryStore()
    if records:
        store.append(d.service.case(case_id).summary(), records, 0)
    # the copy is sealed under the keys of the service that wrote it
    live = CaseService(store, directory=d.world.directory, clock=lambda: now, vault=d.service.vault)
    payload = to_payload(command)
    if command.name in {c.name for c in WORKFLOW.opening} and not payload["profile"]:
        payload["profile"] = live.policy.recusal
    link = WORKFLOW.command(command.name).link
    if link and payload.get("to") == "street_committee" and not payload[link[1]]:
        # the service names the case a transfer opens before deciding: so does the forger
        payload[link[1]] = CaseService.transfer_case_id(case_id, len(records) + 1)
    try:
        event = live.execute(actor, case_id, command, acting_as=claim)
    except REFUSALS as exc:
        error: NotPermitted | IllegalTransition | GuardFailed | InvalidCommand | None = exc
        note(f"live: {type(exc).__name__}: {exc}")
        hypothesis_event(f"refused: {type(exc).__name__}")
    else:
        error = None
        note(f"live: accepted as {event.acted_as}, to {event.state}")
        hypothesis_event("accepted")
        # what the service filled in (the id of the case a transfer opens) is part of the event
        payload = dict(event.payload)
    state = (
        event.state
        if error is None
        else (WORKFLOW.command(command.name).target or (case.state if case else "new"))
    )
    forged = _forged(
        case_id,
        len(records) + 1,
        records[-1].hash if records else GENESIS,
        format_time(now),
        actor.id,
        claim,
        state,
        (command.name, payload),
    )
    verdict = verify([*records, forged], case_id, directory=d.world.directory, strict=True)
    if error is None:
        assert forged.body == store.read(case_id)[-1].body
        assert verdict.ok, verdict.describe()
        return
    assert verdict.fault is not None, f"replay accepted what the live path refused: {error}"
    fault = verdict.fault
    assert fault.seq == len(records) + 1
    assert fault.error is not None, fault
    assert type(fault.error) is type(error)
    assert str(fault.error) == str(error)
    assert fault.error.fields() == error.fields()
    want = (
        FaultKind.UNAUTHORIZED if isinstance(error, NotPermitted) else FaultKind.ILLEGAL_TRANSITION
    )
    assert fault.kind is want


# -- what the review of the one decision found ------------------------------------------------------


def test_a_recorded_role_is_a_grant_never_any_grant() -> None:
    """An event whose ``as`` is not an id (``null``, say) is malformed: replay never lets the
    decision pick a grant the event does not record."""
    world = World()
    service = world.service()
    service.execute(world["p1"], "c", cmd.Apply(
        committee=world.committee, category="邻里", description="噪声",
        applicants=(cmd.Party("p1", "陈女士"),), respondents=(cmd.Party("p2", "刘先生"),),
    ))  # fmt: skip
    service.execute(world["p2"], "c", cmd.RecordConsent())
    records = service.store.read("c")
    last = parse_body(records[-1].body)
    for claim in (None, 7, "", "director"):
        body = canonical_bytes(
            make_body(
                case_id="c", seq=3, type="register", at=last["at"], actor="director",
                acted_as=claim,  # type: ignore[arg-type]
                state="registered", payload=to_payload(cmd.Register()), prev=records[-1].hash,
                workflow=WORKFLOW.version,
            )
        )  # fmt: skip
        forged = StoredEvent("c", 3, event_hash(body), body)
        verdict = verify([*records, forged], "c", strict=True, directory=world.directory)
        if claim == "director":
            assert verdict.ok, verdict.describe()
        else:
            assert verdict.fault is not None and verdict.fault.kind is FaultKind.MALFORMED


def test_a_stranger_with_a_slow_clock_learns_nothing_of_the_case() -> None:
    """Authorization comes first even when the host's clock is behind the case: a stranger is
    told NotPermitted, not the time of the case's last event (ClockSkew)."""
    world = World()
    clock = TickClock()
    service = world.service(clock=clock)
    service.execute(world["p1"], "c", cmd.Apply(
        committee=world.committee, category="邻里", description="噪声",
        applicants=(cmd.Party("p1", "陈女士"),), respondents=(cmd.Party("p2", "刘先生"),),
    ))  # fmt: skip
    clock.now -= dt.timedelta(hours=1)
    with pytest.raises(NotPermitted) as info:
        service.execute(world["stranger"], "c", cmd.RecordConsent())
    assert info.value.state is None and "20" not in info.value.message
    with pytest.raises(ClockSkew):  # the respondent may act: it is told about the clock
        service.execute(world["p2"], "c", cmd.RecordConsent())


def test_strict_replay_accepts_payloads_only_in_the_form_the_service_writes() -> None:
    """A payload the command class would accept but the service never writes (a defaulted member
    left out, a time not in the log's normal form) is malformed under strict verification."""
    from mediation.testing import PathOptions, drive

    world = World()
    service = world.service()
    case = drive(service, world, "c", "registered", PathOptions(lead="med1"))
    service.execute(world["med1"], "c", cmd.NotifyRights(case.party_ids))  # G6 holds then
    case = service.case("c")
    records = service.store.read("c")
    last = parse_body(records[-1].body)
    good = to_payload(
        cmd.ScheduleMeeting(dt.datetime(2030, 1, 10, 2, tzinfo=dt.timezone.utc), "室")
    )
    variants = {
        "as written": good,
        "a member left out": {k: v for k, v in good.items() if k != "public"},
        "another spelling of the time": {**good, "at": "2030-01-10t10:00:00.000000+08:00"},
    }
    for what, payload in variants.items():
        body = canonical_bytes(
            make_body(
                case_id="c", seq=case.seq + 1, type="schedule_meeting", at=last["at"],
                actor="med1", acted_as="lead_mediator", state="meeting_scheduled",
                payload=payload, prev=records[-1].hash, workflow=WORKFLOW.version,
            )
        )  # fmt: skip
        forged = StoredEvent("c", case.seq + 1, event_hash(body), body)
        verdict = verify([*records, forged], "c", strict=True)
        if what == "as written":
            assert verdict.ok, verdict.describe()
        else:
            assert verdict.fault is not None, what
            assert verdict.fault.kind is FaultKind.MALFORMED, (what, verdict.describe())
