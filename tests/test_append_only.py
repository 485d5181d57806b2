"""The event table is append-only inside the database: raw UPDATE, DELETE (and TRUNCATE) fail.

These go around the library, through a raw connection, as a careless script or an intruder with the
application's credentials would; the database itself must refuse them and keep the rows intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pg
from mediation import SQLiteStore, verify
from mediation import commands as cmd
from mediation.testing import PathOptions, World, drive

_TAMPERING = (
    "UPDATE mediation_events SET body = body WHERE seq = 2",
    "UPDATE mediation_events SET hash = '{}' ".format("f" * 64),
    "DELETE FROM mediation_events WHERE seq = 3",
    "DELETE FROM mediation_events",
)


def _short_case(store: Any) -> list[Any]:
    """Apply, consent, register: three real events of case-1."""
    world = World()
    drive(world.service(store), world, "case-1", "registered", PathOptions(lead=None))
    records = store.read("case-1")
    assert len(records) == 3
    return list(records)


def test_sqlite_refuses_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    with SQLiteStore(path) as store:
        before = _short_case(store)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in _TAMPERING:
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(statement)
        assert raw.execute("SELECT count(*) FROM mediation_events").fetchone() == (3,)
    finally:
        raw.close()
    with SQLiteStore(path) as store:
        after = store.read("case-1")
        assert after == before
        assert verify(after, "case-1").ok


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema() as url:
        yield url


@pytest.mark.postgres
def test_postgres_refuses_update_delete_and_truncate(pg_url: str) -> None:
    import psycopg

    from mediation.stores.postgres import PostgresStore

    with PostgresStore(pg_url) as store:
        before = _short_case(store)
    with psycopg.connect(pg_url, autocommit=True) as raw:
        # PostgreSQL's trigger is per statement: refused even when it would touch no row
        for statement in (
            *_TAMPERING,
            "DELETE FROM mediation_events WHERE seq < 0",
            "UPDATE mediation_events SET seq = seq WHERE false",
            "TRUNCATE mediation_events",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                raw.execute(statement)
        # also inside an explicit transaction that would otherwise commit
        with pytest.raises(psycopg.errors.RaiseException), raw.transaction():
            raw.execute("DELETE FROM mediation_events WHERE seq = 1")
        assert raw.execute("SELECT count(*) FROM mediation_events").fetchone() == (3,)
    with PostgresStore(pg_url) as store:
        after = store.read("case-1")
        assert after == before
        assert verify(after, "case-1").ok


def test_a_body_rewritten_as_text_is_reported_not_crashed(tmp_path: Path) -> None:
    """An attacker who bypasses the triggers and stores a body as TEXT gets a verdict, not a crash."""
    from mediation import FaultKind

    path = tmp_path / "t.db"
    world = World()
    service = world.service(SQLiteStore(path))
    service.execute(
        world["p1"],
        "k1",
        cmd.Apply(
            committee=world.committee,
            category="邻里",
            description="噪声",
            applicants=(cmd.Party("p1", "陈女士"),),
            respondents=(cmd.Party("p2", "刘先生"),),
        ),
    )
    service.execute(world["p2"], "k1", cmd.RecordConsent())
    before = SQLiteStore(path).read("k1")
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER mediation_events_no_update")
    raw.execute("UPDATE mediation_events SET body = CAST(body AS TEXT) WHERE seq = 1")
    raw.execute("UPDATE mediation_events SET body = 42 WHERE seq = 2")
    raw.commit()
    got = SQLiteStore(path).read("k1")
    assert got[0].body == before[0].body  # same characters, same bytes: nothing was altered
    verdict = verify(got, "k1")
    assert verdict.fault is not None and verdict.fault.seq == 2
    assert verdict.fault.kind is FaultKind.ALTERED
