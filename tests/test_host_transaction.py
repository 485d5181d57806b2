"""A host's own writes and a case's events commit together or roll back together.

The host passes its own connection to the store and opens the transaction; the store appends inside
a SAVEPOINT and never commits or rolls back the host's transaction.  Checked for SQLite and for
PostgreSQL (both psycopg styles: an autocommit connection with ``conn.transaction()``, and a
classic connection with ``commit()``/``rollback()``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pg
from mediation import CaseService, ConcurrencyConflict, SQLiteStore, verify
from mediation import commands as cmd
from mediation.testing import World, synthetic_records, synthetic_summary


class HostFailure(Exception):
    """The host's own work fails after the case's events were appended."""


def _open_case(world: World, service: CaseService, case_id: str) -> None:
    service.open(
        world["p1"],
        cmd.Apply(
            committee=world.committee,
            category="邻里",
            description="楼上漏水",
            applicants=(cmd.Party("p1", "陈女士"),),
            respondents=(cmd.Party("p2", "刘先生"),),
        ),
        case_id=case_id,
    )
    service.execute(world["p2"], case_id, cmd.RecordConsent())


# -- SQLite ----------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_host(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Path]]:
    path = tmp_path / "host.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # readers see the last commit while the host writes
    conn.execute("CREATE TABLE intake (case_id TEXT PRIMARY KEY, note TEXT NOT NULL)")
    yield conn, path
    conn.close()


def _sqlite_seen(path: Path, case_id: str) -> tuple[int, int]:
    """(host rows, case events) as a separate connection sees them."""
    with SQLiteStore(path, create=False) as store:  # create=False: only reads
        events = len(store.read(case_id))
    other = sqlite3.connect(path)
    try:
        row = other.execute("SELECT count(*) FROM intake WHERE case_id = ?", (case_id,)).fetchone()
    finally:
        other.close()
    return row[0], events


def test_sqlite_host_commit_keeps_both(sqlite_host: tuple[sqlite3.Connection, Path]) -> None:
    conn, path = sqlite_host
    world = World()
    service = world.service(SQLiteStore(connection=conn))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO intake VALUES ('h1', '窗口受理')")
    _open_case(world, service, "h1")
    assert conn.in_transaction  # the store did not commit the host's transaction
    assert _sqlite_seen(path, "h1") == (0, 0)
    conn.execute("COMMIT")
    assert _sqlite_seen(path, "h1") == (1, 2)
    with SQLiteStore(path) as store:
        assert verify(store.read("h1"), "h1").ok


def test_sqlite_host_rollback_drops_both(sqlite_host: tuple[sqlite3.Connection, Path]) -> None:
    conn, path = sqlite_host
    world = World()
    store = SQLiteStore(connection=conn)
    service = world.service(store)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO intake VALUES ('h1', '窗口受理')")
    _open_case(world, service, "h1")
    conn.execute("ROLLBACK")
    service.forget("h1")  # the service cached what the host has now rolled back
    assert _sqlite_seen(path, "h1") == (0, 0)
    assert store.summary("h1") is None and store.cases() == []


def test_sqlite_a_failed_append_leaves_the_host_transaction_usable(
    sqlite_host: tuple[sqlite3.Connection, Path],
) -> None:
    conn, path = sqlite_host
    store = SQLiteStore(connection=conn)
    recs = synthetic_records("h1", 2)
    store.append(synthetic_summary("h1", 2, head=recs[-1].hash), recs, 0)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO intake VALUES ('h1', 'before')")
    with pytest.raises(ConcurrencyConflict):
        store.append(synthetic_summary("h1", 1), synthetic_records("h1", 1), 0)
    conn.execute("INSERT INTO intake VALUES ('h2', 'after')")
    conn.execute("COMMIT")
    assert _sqlite_seen(path, "h1") == (1, 2)
    assert _sqlite_seen(path, "h2") == (1, 0)


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema() as url:
        yield url


@pytest.fixture
def pg_host(pg_url: str) -> Iterator[Callable[..., Any]]:
    """``pg_host(autocommit=...)``: a host connection in the test's schema with an intake table."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE intake (case_id text PRIMARY KEY, note text NOT NULL)")
    opened: list[Any] = []

    def connect(*, autocommit: bool) -> Any:
        conn = psycopg.connect(pg_url, autocommit=autocommit)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def _pg_seen(url: str, case_id: str) -> tuple[int, int]:
    """(host rows, case events) as a separate connection sees them."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as other:
        rows = other.execute("SELECT count(*) FROM intake WHERE case_id = %s", (case_id,))
        host = rows.fetchone()
        events = other.execute(
            "SELECT count(*) FROM mediation_events WHERE case_id = %s", (case_id,)
        ).fetchone()
    assert host is not None and events is not None
    return host[0], events[0]


def _pg_service(conn: Any) -> tuple[World, CaseService, Any]:
    from mediation.stores.postgres import PostgresStore

    store = PostgresStore(connection=conn)
    world = World()
    return world, world.service(store), store


@pytest.mark.postgres
def test_postgres_transaction_block_commits_both(pg_url: str, pg_host: Callable[..., Any]) -> None:
    conn = pg_host(autocommit=True)
    world, service, store = _pg_service(conn)
    with conn.transaction():
        conn.execute("INSERT INTO intake VALUES ('h1', '窗口受理')")
        _open_case(world, service, "h1")
        assert _pg_seen(pg_url, "h1") == (0, 0)  # nothing committed behind the host's back
    assert _pg_seen(pg_url, "h1") == (1, 2)
    assert verify(store.read("h1"), "h1").ok


@pytest.mark.postgres
def test_postgres_transaction_block_rolls_back_both(
    pg_url: str, pg_host: Callable[..., Any]
) -> None:
    conn = pg_host(autocommit=True)
    world, service, store = _pg_service(conn)
    with pytest.raises(HostFailure), conn.transaction():
        conn.execute("INSERT INTO intake VALUES ('h1', '窗口受理')")
        _open_case(world, service, "h1")
        raise HostFailure("the host's next step failed")
    service.forget("h1")
    assert _pg_seen(pg_url, "h1") == (0, 0)
    assert store.summary("h1") is None and store.case_ids() == []


@pytest.mark.postgres
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_postgres_classic_connection_commit_or_rollback(
    pg_url: str, pg_host: Callable[..., Any], outcome: str
) -> None:
    from psycopg import pq

    conn = pg_host(autocommit=False)
    world, service, _ = _pg_service(conn)
    conn.commit()  # the schema check ran in a block of its own; start clean anyway
    conn.execute("INSERT INTO intake VALUES ('h1', '窗口受理')")  # opens the host transaction
    _open_case(world, service, "h1")
    assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
    assert _pg_seen(pg_url, "h1") == (0, 0)
    getattr(conn, outcome)()
    expected = (1, 2) if outcome == "commit" else (0, 0)
    assert _pg_seen(pg_url, "h1") == expected


@pytest.mark.postgres
def test_postgres_store_leaves_an_idle_classic_connection_idle(pg_host: Callable[..., Any]) -> None:
    from psycopg import pq

    conn = pg_host(autocommit=False)
    world, service, store = _pg_service(conn)
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    _open_case(world, service, "h1")  # no host transaction: each append is its own
    assert store.read("h1") and store.cases() and store.summary("h1")
    assert list(store.scan())
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.postgres
def test_postgres_a_conflict_leaves_the_host_transaction_usable(
    pg_url: str, pg_host: Callable[..., Any]
) -> None:
    conn = pg_host(autocommit=True)
    _, _, store = _pg_service(conn)
    recs = synthetic_records("h1", 2)
    store.append(synthetic_summary("h1", 2, head=recs[-1].hash), recs, 0)
    with conn.transaction():
        conn.execute("INSERT INTO intake VALUES ('h1', 'before')")
        with pytest.raises(ConcurrencyConflict):  # the seq check: behind the log
            store.append(synthetic_summary("h1", 1), synthetic_records("h1", 1), 0)
        with pytest.raises(ConcurrencyConflict):  # the seq check: ahead of the log
            store.append(synthetic_summary("h1", 4), synthetic_records("h1", 1, start=4), 3)
        conn.execute("INSERT INTO intake VALUES ('h2', 'after')")
    assert _pg_seen(pg_url, "h1") == (1, 2)
    assert _pg_seen(pg_url, "h2") == (1, 0)


@pytest.mark.postgres
def test_postgres_a_lost_race_inside_the_host_transaction_keeps_the_host_work(
    pg_url: str, pg_host: Callable[..., Any]
) -> None:
    """The host's append passes the seq check, then loses on the primary key to a writer that
    commits first: the savepoint is rolled back, the host's transaction goes on and commits."""
    import threading
    import time

    import psycopg

    host = pg_host(autocommit=True)
    rival = pg_host(autocommit=True)
    _, _, store = _pg_service(host)
    _, _, rival_store = _pg_service(rival)
    recs = synthetic_records("h1", 2)
    store.append(synthetic_summary("h1", 2, head=recs[-1].hash), recs, 0)
    third = synthetic_records("h1", 1, start=3, prev=recs[-1].hash)
    rival.execute("BEGIN")
    rival_store.append(synthetic_summary("h1", 3, head=third[0].hash), third, 2)
    outcome: list[BaseException | None] = []

    def host_work() -> None:
        try:
            with host.transaction():
                host.execute("INSERT INTO intake VALUES ('h1', 'before')")
                try:
                    store.append(synthetic_summary("h1", 3, state="failed"), third, 2)
                except ConcurrencyConflict as exc:
                    outcome.append(exc)
                host.execute("INSERT INTO intake VALUES ('h2', 'after')")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=host_work)
    worker.start()
    with psycopg.connect(pg_url, autocommit=True) as watcher:
        for _ in range(1500):  # until the host's insert waits on the rival's key
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the host's append never waited for the rival")
    rival.execute("COMMIT")
    worker.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], ConcurrencyConflict), outcome
    assert isinstance(outcome[0].__cause__, psycopg.errors.UniqueViolation)
    assert _pg_seen(pg_url, "h1") == (1, 3)
    assert _pg_seen(pg_url, "h2") == (1, 0)
    summary = store.summary("h1")
    assert summary is not None and summary.state == "applied" and summary.seq == 3


@pytest.mark.postgres
def test_postgres_a_failed_host_transaction_is_a_store_error(pg_host: Callable[..., Any]) -> None:
    import psycopg

    from mediation import StoreError

    conn = pg_host(autocommit=True)
    _, _, store = _pg_service(conn)
    recs = synthetic_records("h1", 1)
    with pytest.raises(HostFailure), conn.transaction():
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table")
        with pytest.raises(StoreError) as info:
            store.append(synthetic_summary("h1", 1, head=recs[0].hash), recs, 0)
        assert isinstance(info.value.__cause__, psycopg.errors.InFailedSqlTransaction)
        with pytest.raises(StoreError):
            store.read("h1")
        raise HostFailure("the host rolls back")
    assert store.read("h1") == []  # usable again once the host rolled back
