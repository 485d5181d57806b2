"""Statistics with written definitions (docs/evaluation.md): the store's projection of the events
(SQL on SQLite and PostgreSQL, nothing replayed) gives what replaying the cases gives, as of any
moment; and the CLI shows them."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg
from mediation import StoredEvent
from mediation._audit import replay
from mediation._events import parse_body, parse_time
from mediation._stats import (
    evaluation,
    projected_facts,
    replayed_facts,
    verified_evaluation,
)
from mediation.stores import SQLiteStore, Store
from mediation.testing import histories

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def _load(store: Store, records: list[StoredEvent]) -> None:
    summary = replay(records).summary()
    store.append(summary, records, 0)


def _check(store: Store, records: list[StoredEvent], data: st.DataObject) -> None:
    _load(store, records)
    ats = [parse_body(r.body)["at"] for r in records]
    # the facts as of just after each event (and before the first), projected and replayed
    for k in range(len(records) + 1):
        before = None if k == len(records) else ats[k]
        if before is not None and k and ats[k - 1] == before:
            continue  # two events at one moment: no moment between them
        projected = list(store.stat_events(before))
        kept = records[:k]
        if not kept:
            assert projected == []
            continue
        assert projected_facts(projected) == replayed_facts(kept)
    # and the figures of a random period, as of a random moment
    first = parse_time(ats[0]).astimezone(SHANGHAI).date()
    start = first + dt.timedelta(days=data.draw(st.integers(-2, 1)))
    end = start + dt.timedelta(days=data.draw(st.integers(0, 3)))
    as_of = parse_time(ats[0]) + dt.timedelta(minutes=data.draw(st.integers(0, 7 * 60)))
    definition = data.draw(st.sampled_from(["standard", "decided", "all_ended"]))
    for kw in (
        {"as_of": as_of},
        {"start": start, "end": end},
        {"start": start, "as_of": as_of},
        {"now": as_of + dt.timedelta(days=40)},
    ):
        fast = evaluation(store, definition=definition, **kw)  # type: ignore[arg-type]
        slow, unverified = verified_evaluation(store, definition=definition, **kw)  # type: ignore[arg-type]
        assert unverified == ()
        assert fast == slow
        assert fast.to_json() == slow.to_json()


_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(histories().filter(bool), st.data())
def test_sqlite_projection_equals_replay(
    tmp_path_factory: pytest.TempPathFactory, records: list[StoredEvent], data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("ev") / "m.db"
    with SQLiteStore(str(path)) as store:
        _check(store, records, data)


@pytest.fixture(scope="module")
def pg_ready() -> None:
    pg.dsn()  # skips (fails under CI) without a server


@pytest.mark.postgres
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories().filter(bool), st.data())
def test_postgres_projection_equals_replay(
    pg_ready: None, records: list[StoredEvent], data: st.DataObject
) -> None:
    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("ev") as url, PostgresStore(url) as store:
        _check(store, records, data)


def _every_moment(store: Store) -> None:
    """Projected and replayed facts agree as of each event of each case."""
    records_of: dict[str, list[StoredEvent]] = {}
    for rec in store.scan():
        records_of.setdefault(rec.case_id, []).append(rec)
    for case_id, records in records_of.items():
        ats = [parse_body(r.body)["at"] for r in records]
        for k in range(1, len(records) + 1):
            before = ats[k] if k < len(records) else None
            if before is not None and ats[k - 1] == before:
                continue  # no moment between two events of one instant
            projected = [e for e in store.stat_events(before) if e.case_id == case_id]
            assert projected_facts(projected) == replayed_facts(records[:k]), (case_id, k)


def test_reopen_pause_extension_escalation_and_recusal(tmp_path: Path) -> None:
    """The commands random walks seldom reach: the projection redoes the fold's bookkeeping of
    each (an agreement reopened loses its effect time, a pause stops the clock, an extension adds
    days, an escalation raises the level, a recused first mediator stays the case's first)."""
    from helpers import Env, apply_cmd
    from mediation import commands as cmd
    from mediation.testing import PathOptions, follow, routes

    DAY = dt.timedelta(days=1)
    with SQLiteStore(str(tmp_path / "m.db")) as store:
        e = Env(store=store)
        opening = apply_cmd(level="L0", subtype="噪声")
        e.open(opening)
        e.clock.advance(days=1)
        e.drive("registered", opening=opening)
        e.clock.advance(days=1)
        e.run("med1", cmd.Escalate("涉及多户"))
        e.run("med1", cmd.DeclareConflict((cmd.Tie("p1", "sibling"),)))
        e.run("director", cmd.AssignMediator("med2", lead=True))
        e.run("med2", cmd.Pause("appraisal", "噪声检测"))
        e.clock.advance(days=3)
        e.run("med2", cmd.Resume("检测完成"))
        e.consent_all("extend_term")
        e.run("med2", cmd.ExtendTerm(10, "需要现场勘验"))
        e.clock.advance(days=1)
        table = routes(PathOptions(opening=opening, lead="med2", performed="no"))
        for kind in (
            cmd.ScheduleMeeting,
            cmd.OpenSession,
            cmd.DraftAgreement,
            cmd.Sign,
            cmd.RecordFollowUp,
        ):
            follow(e.service, e.world, e.case_id, table.leg(kind).steps, execute=e.run)
        e.clock.advance(days=2)
        e.consent_all("reopen")
        e.run("med2", cmd.Reopen("对方未履行"))
        e.clock.advance(days=2)
        e.run("med2", cmd.Pause("appraisal", "再次检测"))  # left paused
        _every_moment(store)
        facts = replayed_facts(store.read(e.case_id))
        assert (facts.level, facts.escalated, facts.mediator) == ("L1", True, "med1")
        assert (facts.state, facts.outcome, facts.paused, facts.extra_days) == (
            "negotiating",
            None,
            True,
            10,
        )
        assert facts.paused_seconds == 3 * 86400
        assert len(facts.follow_ups) == 1
        # as of the day of the follow-up the case was agreed; later it was not
        at_follow_up = evaluation(store, as_of=parse_time(facts.follow_ups[0][0]) + DAY)
        assert at_follow_up.outcomes.counts["agreed"] == 1
        assert evaluation(store, now=e.clock.now + DAY).outcomes.ended == 0


def _garbage_store(store: Store, world_case: str = "k1") -> None:
    from mediation.testing import World, drive

    world = World()
    drive(world.service(store), world, world_case, "registered")


@pytest.mark.parametrize("body", [b"not json", b'{"at": 5, "type": "x"}', b"\xff\xfe"])
def test_a_malformed_body_is_refused_not_skipped(tmp_path: Path, body: bytes) -> None:
    import sqlite3

    from mediation.cli import main
    from mediation.stores._base import MalformedRecord

    path = tmp_path / "m.db"
    with SQLiteStore(str(path)) as store:
        _garbage_store(store)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER mediation_events_no_update")
        conn.execute("UPDATE mediation_events SET body = ? WHERE seq = 2", (body,))
    with SQLiteStore(str(path)) as store:
        with pytest.raises(MalformedRecord):
            list(store.stat_events("9999-01-01T00:00:00.000000Z"))
        with pytest.raises(MalformedRecord):
            evaluation(store)
        # the replay leaves the case out instead
        assert verified_evaluation(store)[1] == ("k1",)
    import io

    err = io.StringIO()
    assert main(["stats", "--db", str(path)], stdout=io.StringIO(), stderr=err) == 5, err


@pytest.mark.postgres
def test_a_malformed_body_is_refused_on_postgres(pg_ready: None) -> None:
    import psycopg

    from mediation.stores._base import MalformedRecord
    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("ev") as url, PostgresStore(url) as store:
        _garbage_store(store)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE mediation_events DISABLE TRIGGER USER")
            conn.execute("UPDATE mediation_events SET body = 'not json'::bytea WHERE seq = 2")
        with pytest.raises(MalformedRecord):
            evaluation(store)
        assert len(store.read("k1")) == 4  # the store stays usable
        assert verified_evaluation(store)[1] == ("k1",)
