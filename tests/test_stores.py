"""Every bundled store passes the one conformance suite."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from mediation import (
    CaseService,
    MemoryStore,
    OutcomeUnknown,
    SQLiteStore,
    Store,
    StoreError,
    verify,
)
from mediation import commands as cmd
from mediation._workflow import WORKFLOW_V1
from mediation.cli import main
from mediation.stores._base import DEFAULT_WORKFLOW
from mediation.stores.sqlite import SCHEMA_VERSION
from mediation.testing import (
    PathOptions,
    StoreConformance,
    World,
    drive,
    synthetic_records,
    synthetic_summary,
)


class TestMemoryStore(StoreConformance):
    def make_store(self) -> Store:
        return MemoryStore()

    def drop_summary(self, store: Store, case_id: str) -> bool:
        assert isinstance(store, MemoryStore)
        del store._summaries[case_id]
        return True


class TestSQLiteStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "cases.db"

    def make_store(self) -> Store:
        return SQLiteStore(self.path)

    def reopen(self, store: Store) -> Store:
        return SQLiteStore(self.path)

    def drop_summary(self, store: Store, case_id: str) -> bool:
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("DELETE FROM mediation_cases WHERE case_id = ?", (case_id,))
        return True


class TestSQLiteInMemory(StoreConformance):
    """``:memory:``: one connection shared by every thread, under the store's lock."""

    def make_store(self) -> Store:
        return SQLiteStore(":memory:")


class TestSQLiteOnAHostConnection(StoreConformance):
    """The host's own connection (autocommit), shared by every thread under the store's lock."""

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "host.db"

    def make_store(self) -> Store:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        return SQLiteStore(connection=conn)

    def reopen(self, store: Store) -> Store:
        return SQLiteStore(self.path)


def test_a_version_1_sqlite_file_is_migrated_and_keeps_its_history(tmp_path: Path) -> None:
    """A database written by 0.1 (no request ids) opens after ``create_schema()`` migrates it."""
    path = tmp_path / "v1.db"
    store = SQLiteStore(path)
    world = World()
    # (a file of 0.1 holds cases of workflow version 1 only)
    service = world.service(store, workflow=WORKFLOW_V1)
    drive(service, world, "case-1", "registered", PathOptions(lead=None))
    records = store.read("case-1")
    store.close()
    # turn the file back into version 1: the events table without request ids
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        DROP INDEX mediation_events_request;
        DROP TRIGGER mediation_events_no_update;
        DROP TRIGGER mediation_events_no_delete;
        ALTER TABLE mediation_events RENAME TO old_events;
        CREATE TABLE mediation_events (
            case_id TEXT NOT NULL, seq INTEGER NOT NULL CHECK (seq >= 1),
            hash TEXT NOT NULL CHECK (length(hash) = 64), body BLOB NOT NULL,
            PRIMARY KEY (case_id, seq)
        ) WITHOUT ROWID;
        INSERT INTO mediation_events SELECT case_id, seq, hash, body FROM old_events;
        DROP TABLE old_events;
        ALTER TABLE mediation_cases DROP COLUMN workflow;
        UPDATE mediation_meta SET value = '1' WHERE key = 'schema_version';
        """
    )
    conn.close()
    # read-only (an auditor's `mediation verify --db`): readable as it is, never written
    legacy = SQLiteStore(path, create=False)
    assert legacy.read("case-1") == records == list(legacy.scan())
    assert legacy.find_request("case-1", "r1") is None
    assert [s.workflow for s in legacy.cases()] == [DEFAULT_WORKFLOW]
    with pytest.raises(StoreError, match="version is 1"):
        legacy.append(legacy.summary("case-1"), records[:1], 0)  # type: ignore[arg-type]
    legacy.close()
    assert main(["verify", "--db", str(path)]) == 0
    migrated = SQLiteStore(path)
    assert migrated.schema_version() == 3
    summary = migrated.summary("case-1")
    assert summary is not None and summary.workflow == DEFAULT_WORKFLOW
    assert migrated.read("case-1") == records
    assert verify(migrated.read("case-1")).ok
    # the triggers are back and request ids work
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        migrated.connection.execute("DELETE FROM mediation_events")
    world = World()
    service = CaseService(migrated, directory=world.directory)  # the real clock: later than all
    event = service.execute(
        world["director"], "case-1", cmd.AssignMediator("med1", lead=True), request_id="r1"
    )
    assert migrated.find_request("case-1", "r1") == event.stored
    migrated.close()


def test_a_version_2_sqlite_file_is_read_as_it_is_then_migrated(tmp_path: Path) -> None:
    """Version 2 kept no workflow version in the summary rows: read as the first workflow's, and
    written once ``create_schema()`` has added the column."""
    path = tmp_path / "v2.db"
    store = SQLiteStore(path)
    first = attrs.evolve(synthetic_records("k1", 1)[0], request_id="req-1")
    store.append(synthetic_summary("k1", 1, head=first.hash), [first], 0)
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        ALTER TABLE mediation_cases DROP COLUMN workflow;
        UPDATE mediation_meta SET value = '2' WHERE key = 'schema_version';
        """
    )
    conn.close()
    legacy = SQLiteStore(path, create=False)
    assert legacy.schema_version() == 2
    assert legacy.read("k1") == [first] == list(legacy.scan("k", "l"))
    assert legacy.find_request("k1", "req-1") == first
    summary = legacy.summary("k1")
    assert summary is not None and summary.workflow == DEFAULT_WORKFLOW
    assert legacy.cases() == [summary]
    second = synthetic_records("k1", 1, 2, first.hash)
    with pytest.raises(StoreError, match="version is 2"):
        legacy.append(synthetic_summary("k1", 2, head=second[0].hash), second, 1)
    legacy.close()
    migrated = SQLiteStore(path)
    assert migrated.schema_version() == SCHEMA_VERSION == 3
    assert migrated.summary("k1") == summary
    migrated.append(
        synthetic_summary("k1", 2, head=second[0].hash, workflow="mediation-workflow/2"), second, 1
    )
    migrated.close()
    again = SQLiteStore(path, create=False)
    assert again.read("k1") == [first, *second]
    summary = again.summary("k1")
    assert summary is not None and summary.workflow == "mediation-workflow/2"
    again.close()


def test_schema_creation_is_idempotent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "cases.db")
    store.create_schema()
    store.create_schema()
    rows = store.connection.execute("SELECT key, value FROM mediation_meta").fetchall()
    assert rows == [("schema_version", "3")]
    columns = [r[1] for r in store.connection.execute("PRAGMA table_info(mediation_cases)")]
    assert columns[-1] == "workflow"
    store.close()


# -- SQLite transactions: a failed COMMIT ---------------------------------------------------------


class _FailingCommit(sqlite3.Connection):
    """A connection whose next COMMIT fails: after SQLite ended the transaction (``"gone"``: the
    outcome is unknown), or leaving it open (``"open"``: nothing was written)."""

    fail: str | None = None

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.fail is not None:
            mode, self.fail = self.fail, None
            if mode == "gone":
                super().execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


def _failing(path: Path) -> tuple[_FailingCommit, SQLiteStore]:
    conn = sqlite3.connect(path, isolation_level=None, factory=_FailingCommit)
    assert isinstance(conn, _FailingCommit)
    return conn, SQLiteStore(connection=conn)


@pytest.mark.parametrize("block", [False, True], ids=["append", "transaction"])
def test_a_commit_that_ended_the_transaction_is_an_unknown_outcome(
    tmp_path: Path, block: bool
) -> None:
    conn, store = _failing(tmp_path / "cases.db")
    recs = synthetic_records("k1", 2)
    conn.fail = "gone"
    with pytest.raises(OutcomeUnknown) as info:
        if block:
            with store.transaction():
                store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
        else:
            store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert (info.value.case, info.value.seq) == ((None, None) if block else ("k1", 1))
    assert not conn.in_transaction and store.read("k1") == []
    store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
    assert store.read("k1") == recs
    conn.close()


@pytest.mark.parametrize("block", [False, True], ids=["append", "transaction"])
def test_a_commit_that_left_the_transaction_open_is_rolled_back(
    tmp_path: Path, block: bool
) -> None:
    conn, store = _failing(tmp_path / "cases.db")
    recs = synthetic_records("k1", 2)
    conn.fail = "open"
    with pytest.raises(StoreError) as info:
        if block:
            with store.transaction():
                store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
        else:
            store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
    assert not isinstance(info.value, OutcomeUnknown)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert not conn.in_transaction and store.read("k1") == [] and store.summary("k1") is None
    conn.close()


def test_a_transaction_inside_the_hosts_is_a_savepoint(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "host.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # readers see the last commit while the host writes
    store = SQLiteStore(connection=conn)
    conn.execute("CREATE TABLE intake (case_id TEXT PRIMARY KEY)")
    first = synthetic_records("k1", 1)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO intake VALUES ('k1')")
    with store.transaction():
        store.append(synthetic_summary("k1", 1, head=first[0].hash), first, 0)
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.append(synthetic_summary("k2", 1), synthetic_records("k2", 1), 0)
        1 / 0  # noqa: B018
    assert conn.in_transaction  # the host's transaction goes on, with the first block's append
    assert store.read("k1") == first and store.read("k2") == []
    with SQLiteStore(tmp_path / "host.db", create=False) as other:  # nothing committed yet
        assert other.read("k1") == []
    conn.execute("ROLLBACK")
    assert store.read("k1") == [] and store.case_ids() == []
    conn.close()


def test_a_transaction_holds_a_shared_connection_for_its_thread(tmp_path: Path) -> None:
    """On ``:memory:`` (one connection for every thread) another thread's append waits for the
    block instead of joining it, and stands when the block rolls back."""
    store = SQLiteStore(":memory:")
    started = threading.Event()
    done: list[BaseException | None] = []

    def other() -> None:
        started.set()
        try:
            store.append(synthetic_summary("k2", 1), synthetic_records("k2", 1), 0)
            done.append(None)
        except BaseException as exc:  # pragma: no cover - reported below
            done.append(exc)

    thread = threading.Thread(target=other)
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.append(synthetic_summary("k1", 1), synthetic_records("k1", 1), 0)
        thread.start()
        started.wait(10)
        time.sleep(0.1)
        assert done == []  # it waits for the block
        1 / 0  # noqa: B018
    thread.join(30)
    assert done == [None]
    assert store.case_ids() == ["k2"]
