"""Every bundled store passes the one conformance suite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mediation import CaseService, MemoryStore, SQLiteStore, Store, StoreError, verify
from mediation import commands as cmd
from mediation.cli import main
from mediation.testing import PathOptions, StoreConformance, World, drive


class TestMemoryStore(StoreConformance):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "cases.db"

    def make_store(self) -> Store:
        return SQLiteStore(self.path)

    def reopen(self, store: Store) -> Store:
        return SQLiteStore(self.path)


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
    drive(world.service(store), world, "case-1", "registered", PathOptions(lead=None))
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
        UPDATE mediation_meta SET value = '1' WHERE key = 'schema_version';
        """
    )
    conn.close()
    # read-only (an auditor's `mediation verify --db`): readable as it is, never written
    legacy = SQLiteStore(path, create=False)
    assert legacy.read("case-1") == records == list(legacy.scan())
    assert legacy.find_request("case-1", "r1") is None
    with pytest.raises(StoreError, match="version is 1"):
        legacy.append(legacy.summary("case-1"), records[:1], 0)  # type: ignore[arg-type]
    legacy.close()
    assert main(["verify", "--db", str(path)]) == 0
    migrated = SQLiteStore(path)
    assert migrated.schema_version() == 2
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
