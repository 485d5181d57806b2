"""Workflow versions: a case lives on the version it was opened on, for ever.

A second version is declared here, as a host or a later release would: the acceptance deadline is
changed (5 working days instead of 3) and a command is added (``record_call``, a mediator records a
telephone follow-up).  Both versions are registered; one store holds cases of both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from helpers import apply_cmd
from mediation import (
    WORKFLOW,
    CaseService,
    FaultKind,
    IllegalTransition,
    InvalidCommand,
    MemoryStore,
    SQLiteStore,
    Store,
    verify,
)
from mediation import commands as cmd
from mediation._events import canonical_bytes, event_hash, make_body, parse_body
from mediation._fold import nothing
from mediation._spec import register, registered, workflow_of
from mediation._validators import text
from mediation._workflow import ACTIVE, Relation
from mediation.testing import TickClock, World


@attrs.frozen
class RecordCall(cmd.Command):
    """记录电话回访 — a mediator records a telephone call with a party."""

    name: ClassVar[str] = "record_call"
    summary: str = attrs.field(validator=text(200, required=True))


V2 = register(
    WORKFLOW.evolve(
        "test-workflow/2",
        changes="acceptance within 5 working days; record_call added",
        commands=[
            attrs.evolve(
                WORKFLOW.command("record_minutes"),
                name="record_call",
                zh="记录电话回访",
                en="record a telephone call",
                sources=ACTIVE[1:],
                target=None,
                roles=(),
                relations=(Relation.LEAD_MEDIATOR, Relation.CO_MEDIATOR),
                guards=(),
                payload=RecordCall,
                effect=nothing,
                sealed=("summary",),
            )
        ],
        deadlines=[
            attrs.evolve(next(d for d in WORKFLOW.deadlines if d.kind == "acceptance"), days=5)
        ],
    )
)
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "m.db")
    yield s
    s.close()


def services(store: Store) -> tuple[World, CaseService, CaseService]:
    world = World()
    clock = TickClock(now=MONDAY, step=dt.timedelta(minutes=1))
    old = world.service(store, clock=clock)
    new = world.service(store, clock=clock, workflow=V2)
    return world, old, new


def registered_case(world: World, service: CaseService, case_id: str) -> None:
    service.execute(world["p1"], case_id, apply_cmd())
    service.execute(world["p2"], case_id, cmd.RecordConsent())
    service.execute(world["director"], case_id, cmd.Register())
    service.execute(world["director"], case_id, cmd.AssignMediator("med1", lead=True))


def test_both_versions_are_registered() -> None:
    assert {WORKFLOW.version, V2.version} <= {w.version for w in registered()}
    assert workflow_of(V2.version) is V2
    with pytest.raises(InvalidCommand, match="unknown workflow version"):
        workflow_of("nobody/9")
    with pytest.raises(ValueError, match="already registered"):
        register(attrs.evolve(V2, changes="something else"))
    with pytest.raises(TypeError, match="register a Workflow"):
        register("test-workflow/2")  # type: ignore[arg-type]
    with pytest.raises(InvalidCommand, match="unknown workflow version"):
        CaseService(MemoryStore(), workflow="test-workflow/2")  # type: ignore[arg-type]


def test_a_case_lives_on_the_version_it_was_opened_on(store: Store) -> None:
    world, old, new = services(store)
    registered_case(world, old, "v1-case")
    registered_case(world, new, "v2-case")
    assert old.case("v1-case").workflow is WORKFLOW
    assert new.case("v2-case").workflow is V2
    # each service decides every case on the case's own version
    assert old.case("v2-case").workflow is V2 and new.case("v1-case").workflow is WORKFLOW
    assert [e.workflow for e in old.history("v2-case")] == [V2.version] * 4
    call = RecordCall("电话确认双方到场时间")
    event = old.execute(world["med1"], "v2-case", call)
    assert event.type == "record_call" and event.workflow == V2.version
    with pytest.raises(IllegalTransition, match="not a command of workflow"):
        new.execute(world["med1"], "v1-case", call)
    assert {p.command for p in new.allowed(world["med1"], "v1-case")} == {
        c.name for c in WORKFLOW.commands
    }
    assert "record_call" in {p.command for p in old.allowed(world["med1"], "v2-case")}
    # new cases take the service's version
    assert new.open(world["p1"], apply_cmd(), case_id="v2-b").workflow is V2
    assert old.open(world["p1"], apply_cmd(), case_id="v1-b").workflow is WORKFLOW


def test_the_deadline_of_each_version(store: Store) -> None:
    world, old, new = services(store)
    old.execute(world["p1"], "v1", apply_cmd())
    new.execute(world["p1"], "v2", apply_cmd())
    due = {cid: {d.kind: d.due for d in old.deadlines(cid)} for cid in ("v1", "v2")}
    assert due["v1"]["acceptance"].date() == dt.date(2026, 3, 5)  # Monday + 3 working days
    assert due["v2"]["acceptance"].date() == dt.date(2026, 3, 9)  # + 5: over the weekend
    # the summary rows name the version, so the early warnings agree without a replay
    late = MONDAY + dt.timedelta(days=5)
    assert {s.case_id for s, d in new.overdue(late) if d.kind == "acceptance"} == {"v1"}
    assert {s.workflow for s in store.cases()} == {WORKFLOW.version, V2.version}


def test_a_store_mixing_versions_verifies(store: Store) -> None:
    world, old, new = services(store)
    registered_case(world, old, "v1-case")
    registered_case(world, new, "v2-case")
    new.execute(world["med1"], "v2-case", RecordCall("电话回访"))
    for case_id in store.case_ids():
        verdict = verify(store.read(case_id), case_id, strict=True, directory=world.directory)
        assert verdict.ok, verdict.describe()


def _forge_after(store: Store, case_id: str, **changes: Any) -> FaultKind:
    records = store.read(case_id)
    last = parse_body(records[-1].body)
    fields: dict[str, Any] = dict(
        case_id=case_id,
        seq=len(records) + 1,
        type="record_call",
        at=last["at"],
        actor="med1",
        acted_as="lead_mediator",
        state=last["state"],
        payload={"summary": "电话回访"},
        prev=records[-1].hash,
        workflow=last["workflow"],
    )
    fields.update(changes)
    body = canonical_bytes(make_body(**fields))
    forged = attrs.evolve(records[-1], seq=len(records) + 1, hash=event_hash(body), body=body)
    verdict = verify([*records, forged], case_id)
    assert verdict.fault is not None and verdict.fault.seq == len(records) + 1
    return verdict.fault.kind


def test_a_case_cannot_change_version(store: Store) -> None:
    world, old, new = services(store)
    registered_case(world, old, "v1-case")
    registered_case(world, new, "v2-case")
    # a command of the newer version on an older case is unknown to that case
    assert _forge_after(store, "v1-case") is FaultKind.UNKNOWN_EVENT_TYPE
    # and an event that claims another version than the case's is malformed
    assert _forge_after(store, "v1-case", workflow=V2.version) is FaultKind.MALFORMED
    assert _forge_after(store, "v2-case", workflow=WORKFLOW.version) is FaultKind.MALFORMED
    # a version this process does not know cannot be judged (a newer library may know it)
    records = store.read("v1-case")
    body = parse_body(records[0].body)
    body["workflow"] = "nobody/9"
    raw = canonical_bytes(body)
    first = attrs.evolve(records[0], hash=event_hash(raw), body=raw)
    verdict = verify([first], "v1-case")
    assert verdict.fault is not None and verdict.fault.kind is FaultKind.UNKNOWN_WORKFLOW
    assert not verdict.fault.kind.integrity  # intact bytes this process cannot judge
    assert "unknown workflow version" in verdict.fault.message


def test_verify_store_knows_the_versions_in_its_worker_processes(tmp_path: Path) -> None:
    """Workers import the modules that declare the registered versions' payload classes, so a
    version registered on import is known there too, and the verdicts are those of one process."""
    from mediation.audit import verify_store

    with SQLiteStore(tmp_path / "mixed.db") as store:
        world, old, new = services(store)
        for i in range(6):
            registered_case(world, old if i % 2 else new, f"case-{i}")
        one = verify_store(store, jobs=1)
        two = verify_store(store, jobs=2)
    assert one.ok and two.ok and two.processes == 2
    assert one.verdicts == two.verdicts


def test_verify_store_judges_here_what_a_worker_cannot(tmp_path: Path) -> None:
    """A version registered at run time (not on import) is unknown to a fresh worker process: the
    cases a worker could not judge are verified again in this process, so the verdicts are those
    of one process."""
    from mediation.audit import verify_store

    later = register(
        WORKFLOW.evolve("test-workflow/runtime", changes="registered by a function at run time")
    )
    with SQLiteStore(tmp_path / "runtime.db") as store:
        world = World()
        service = world.service(store, workflow=later)
        for i in range(4):
            registered_case(world, service, f"case-{i}")
        result = verify_store(store, jobs=2)
        assert result.verdicts == verify_store(store, jobs=1).verdicts
    assert result.ok and result.processes == 2 and len(result) == 4


def test_a_declaration_that_cannot_run_is_refused_when_registered() -> None:
    guard = attrs.evolve(WORKFLOW.guards[0], name="G99")
    with pytest.raises(ValueError, match="G99 has no implementation"):
        register(WORKFLOW.evolve("test-workflow/bad-guard", changes="x", guards=[guard]))
    typo = attrs.evolve(WORKFLOW.command("appoint_agent"), persons=("agents",))
    with pytest.raises(ValueError, match="does not have: agents"):
        register(WORKFLOW.evolve("test-workflow/bad-persons", changes="x", commands=[typo]))
    assert {w.version for w in registered()}.isdisjoint(
        {"test-workflow/bad-guard", "test-workflow/bad-persons"}
    )
