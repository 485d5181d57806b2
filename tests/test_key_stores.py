"""The key stores: the conformance suite for each, the SQLite file's mode, no copy of a destroyed key
left in any file, and each store's default key store.

The PostgreSQL tests need ``MEDIATION_PG_DSN`` (see tests/pg.py); each works in a schema of its own.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pg
from mediation import StoreError
from mediation._keys import KeyStore, MemoryKeyStore, ReadThrough, SQLiteKeyStore
from mediation.stores import MemoryStore, SQLiteStore, Store
from mediation.testing import synthetic_records, synthetic_summary
from mediation.testing._conformance import KeyStoreConformance


def _postgres_key_store() -> Any:
    from mediation.stores.postgres_keys import PostgresKeyStore

    return PostgresKeyStore


def _holding(directory: Path, key: bytes) -> list[str]:
    """The files of ``directory`` whose bytes contain ``key``."""
    return sorted(p.name for p in directory.iterdir() if p.is_file() and key in p.read_bytes())


def _append_events(store: Store, case_id: str) -> None:
    records = synthetic_records(case_id, 3)
    store.append(synthetic_summary(case_id, 3, head=records[-1].hash), records, 0)


# -- the conformance suite, for each key store -------------------------------------------------------


class TestMemoryKeyStore(KeyStoreConformance):
    def make_key_store(self) -> KeyStore:
        return MemoryKeyStore()


class TestSQLiteKeyStore(KeyStoreConformance):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> Iterator[None]:
        self.path = tmp_path / "keys.db"
        self.opened: list[KeyStore] = []
        yield
        for keys in self.opened:
            keys.close()

    def make_key_store(self) -> KeyStore:
        keys = SQLiteKeyStore(self.path)
        self.opened.append(keys)
        return keys

    def reopen_key_store(self, keys: KeyStore) -> KeyStore:
        return self.make_key_store()

    def key_store_opener(self, keys: KeyStore) -> Callable[[], KeyStore]:
        return functools.partial(SQLiteKeyStore, self.path)


@pytest.fixture
def pg_key_schema() -> Iterator[tuple[str, str]]:
    """(DSN, the name of a schema no other test uses); the schema is dropped afterwards."""
    import psycopg
    from psycopg import sql

    dsn = pg.dsn()
    schema = f"mediation_keys_t_{uuid.uuid4().hex[:12]}"
    try:
        yield dsn, schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SET lock_timeout = '30s'")
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


@pytest.mark.postgres
class TestPostgresKeyStore(KeyStoreConformance):
    @pytest.fixture(autouse=True)
    def _schema(self, pg_key_schema: tuple[str, str]) -> Iterator[None]:
        self.dsn, self.schema = pg_key_schema
        self.opened: list[KeyStore] = []
        yield
        for keys in self.opened:
            keys.close()

    def make_key_store(self) -> KeyStore:
        keys: KeyStore = _postgres_key_store()(self.dsn, self.schema)
        self.opened.append(keys)
        return keys

    def reopen_key_store(self, keys: KeyStore) -> KeyStore:
        return self.make_key_store()

    def key_store_opener(self, keys: KeyStore) -> Callable[[], KeyStore]:
        return functools.partial(_postgres_key_store(), self.dsn, self.schema)

    def test_the_schema_is_not_public(self) -> None:
        import psycopg

        self.make_key_store()
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(
                "SELECT has_schema_privilege('public', %s, 'USAGE'), "
                "has_table_privilege('public', %s, 'SELECT')",
                (self.schema, f"{self.schema}.keys"),
            ).fetchone()
        assert row == (False, False)

    def test_errors_of_the_database_are_store_errors(self) -> None:
        keys = self.make_key_store()
        keys.close()
        with pytest.raises(StoreError, match="closed"):
            keys.get("k1", "p1", 1)
        with pytest.raises(StoreError, match="cannot create the key store schema"):
            _postgres_key_store()(self.dsn + "_no_such_database", self.schema)


# -- SQLite: the file -------------------------------------------------------------------------------


def test_the_sqlite_key_file_is_created_private(tmp_path: Path) -> None:
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    keys.create("k1", "p1", 1, os.urandom(32))
    assert stat.S_IMODE((tmp_path / "keys.db").stat().st_mode) == 0o600
    assert keys.path == str(tmp_path / "keys.db")
    keys.close()


def test_an_existing_key_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    path.touch()
    path.chmod(0o640)  # the host's choice: neither widened nor narrowed
    SQLiteKeyStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_sqlite_errors_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the key store"):
        SQLiteKeyStore(tmp_path / "no such directory" / "keys.db")
    (tmp_path / "junk.db").write_bytes(b"not a database, " * 256)
    with pytest.raises(StoreError, match="cannot open the key store") as caught:
        SQLiteKeyStore(tmp_path / "junk.db")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    keys.close()
    with pytest.raises(StoreError):
        keys.get("k1", "p1", 1)


# -- SQLite: no copy of a destroyed key in any file -------------------------------------------------


def _fill(keys: KeyStore) -> dict[tuple[str, str, int], bytes]:
    """Keys of many names (over several pages), each stored."""
    made = {}
    for i in range(300):
        name = (f"k{i % 30}", f"p{i % 7}", 1 + i // 210)
        made[name] = keys.create(*name, os.urandom(32))
    return made


def _check_erased(directory: Path, keys: KeyStore, made: dict[tuple[str, str, int], bytes]) -> None:
    """Destroy a person's keys and a case's, and check that the files of ``directory`` keep none of
    their bytes and all the others'."""
    gone = {name for name in made if name[:2] == ("k3", "p3") or name[0] == "k4"}
    assert gone and all(_holding(directory, made[name]) for name in gone)  # before: on disk
    assert keys.destroy("k3", "p3") == sum(name[:2] == ("k3", "p3") for name in made)
    assert keys.destroy("k4") == sum(name[0] == "k4" for name in made)
    for name, key in made.items():
        if name in gone:
            assert _holding(directory, key) == [], name
            assert keys.get(*name) is None
        else:
            assert _holding(directory, key), name
            assert keys.get(*name) == key


def test_a_destroyed_key_stays_in_no_file_of_its_own_store(tmp_path: Path) -> None:
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    made = _fill(keys)
    _check_erased(tmp_path, keys, made)
    with sqlite3.connect(tmp_path / "keys.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    keys.close()
    assert _holding(tmp_path, next(iter(made.values()))) == ["keys.db"]


def test_a_destroyed_key_stays_in_no_file_of_a_wal_database_it_shares(tmp_path: Path) -> None:
    """Keys kept in the events' file (WAL, with the store's tables): after a destroy the log is
    checkpointed and truncated, and neither it nor the database keeps the key."""
    path = tmp_path / "cases.db"
    store = SQLiteStore(path)
    _append_events(store, "case-1")
    keys = SQLiteKeyStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    made = _fill(keys)
    assert any(p.name == "cases.db-wal" for p in tmp_path.iterdir())
    _check_erased(tmp_path, keys, made)
    assert (tmp_path / "cases.db-wal").stat().st_size == 0
    # the events' store is none the worse
    assert [r.seq for r in store.read("case-1")] == [1, 2, 3]
    _append_events(store, "case-2")
    assert store.case_ids() == ["case-1", "case-2"]
    keys.close()
    store.close()


def test_a_reader_that_keeps_the_log_from_truncation_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    store = SQLiteStore(path)
    _append_events(store, "case-1")
    keys = SQLiteKeyStore(path, timeout=0.2)
    key = keys.create("k1", "p1", 1, os.urandom(32))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM mediation_events").fetchone()  # holds a snapshot
    with pytest.raises(StoreError, match="destroy them again"):
        keys.destroy("k1", "p1")
    assert keys.get("k1", "p1", 1) is None and keys.destroyed("k1", "p1")
    reader.execute("COMMIT")
    reader.close()
    assert keys.destroy("k1", "p1") == 0
    assert _holding(tmp_path, key) == []
    keys.close()
    store.close()


# -- PostgreSQL: no copy of a destroyed key in the table's files -------------------------------------


def _data_directory(conn: Any) -> Path:
    """The server's data directory, readable here; skips the test when it cannot be found or read
    (a server on another machine, or a test that does not run as root)."""
    import psycopg

    try:
        found = Path(conn.execute("SHOW data_directory").fetchone()[0])
    except psycopg.errors.InsufficientPrivilege:
        # a role that may not read the setting: a server on this machine works in its data
        # directory, which /proc shows of the process serving this connection
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        try:
            found = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError as exc:
            pytest.skip(
                f"the byte check needs the PostgreSQL data directory: the role may not read "
                f"data_directory and /proc/{pid}/cwd is not readable ({exc}); run the tests as "
                "root on the server's machine"
            )
    if not os.access(found / "PG_VERSION", os.R_OK):
        pytest.skip(f"the byte check needs to read the PostgreSQL data directory {found}")
    return found


def _relation_files(conn: Any, data: Path, table: str) -> list[Path]:
    """Every file of ``table``'s main relation (segments and forks)."""
    (relative,) = conn.execute("SELECT pg_relation_filepath(%s)", (table,)).fetchone()
    base = data / relative
    return [p for p in base.parent.iterdir() if p.name.startswith(base.name)]


def _in_files(files: list[Path], key: bytes) -> bool:
    return any(p.exists() and key in p.read_bytes() for p in files)


@pytest.mark.postgres
def test_a_destroyed_key_stays_in_no_file_of_the_postgres_table(
    pg_key_schema: tuple[str, str],
) -> None:
    import psycopg
    from psycopg import sql

    dsn, schema = pg_key_schema
    keys = _postgres_key_store()(dsn, schema)
    table = f"{schema}.keys"
    with psycopg.connect(dsn, autocommit=True) as conn:
        data = _data_directory(conn)
        gone = [keys.create("k1", "p1", epoch, os.urandom(32)) for epoch in (1, 2)]
        kept = [
            keys.create("k1", "p2", 1, os.urandom(32)),
            keys.create("k2", "p1", 1, os.urandom(32)),
        ]
        # VACUUM FULL writes the table's new file straight to disk: the keys are in it now, without
        # waiting for a checkpoint (which this role may not run)
        conn.execute(sql.SQL("VACUUM FULL {}.keys").format(sql.Identifier(schema)))
        before = _relation_files(conn, data, table)
        assert all(_in_files(before, key) for key in gone + kept)
        assert keys.destroy("k1", "p1") == 2
        after = _relation_files(conn, data, table)
        for key in gone:
            assert not _in_files(after, key)
            assert not _in_files(before, key)  # the old file is emptied, then unlinked
        assert all(_in_files(after, key) for key in kept)
    keys.close()


# -- each store's default key store ------------------------------------------------------------------


def test_the_memory_store_has_one_memory_key_store() -> None:
    store = MemoryStore()
    keys = store.key_store()
    assert isinstance(keys, MemoryKeyStore)
    assert store.key_store() is keys
    assert MemoryStore().key_store() is not keys


def test_a_store_of_the_hosts_own_must_name_its_key_store() -> None:
    """Keys in memory by default would vanish with the process, and with them every sealed value
    of a store that outlives it: the interface's default refuses, and says what to do."""
    store = MemoryStore()
    with pytest.raises(StoreError, match="keeps no key store") as info:
        Store.key_store(store)  # the base class's method, not MemoryStore's
    assert "vault=AESGCMVault" in str(info.value) and "sealing=False" in str(info.value)
    # MemoryStore's own: one key store in memory, the same on every call and thread
    got = [store.key_store() for _ in range(3)]
    assert isinstance(got[0], MemoryKeyStore) and all(k is got[0] for k in got)
    found: list[KeyStore] = []
    threads = [threading.Thread(target=lambda: found.append(store.key_store())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(k is got[0] for k in found)


def test_the_sqlite_store_keeps_its_keys_in_a_file_beside_its_own(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    store = SQLiteStore(path)
    assert not (tmp_path / "cases.db.keys").exists()  # opened on first use only
    keys = store.key_store()
    assert isinstance(keys, SQLiteKeyStore) and keys.path == f"{path}.keys"
    assert store.key_store() is keys
    assert stat.S_IMODE((tmp_path / "cases.db.keys").stat().st_mode) == 0o600
    key = keys.create("case-1", "p1", 1, os.urandom(32))
    got: list[KeyStore] = []
    thread = threading.Thread(target=lambda: got.append(store.key_store()))
    thread.start()
    thread.join()
    assert got == [keys]
    store.close()
    with pytest.raises(StoreError):  # closed with the store
        keys.get("case-1", "p1", 1)
    again = SQLiteStore(path)
    assert again.key_store().get("case-1", "p1", 1) == key
    again.close()


def test_an_in_memory_sqlite_store_keeps_its_keys_in_memory() -> None:
    store = SQLiteStore(":memory:")
    assert isinstance(store.key_store(), MemoryKeyStore)
    assert store.key_store() is store.key_store()
    store.close()


def test_a_sqlite_store_on_a_host_connection_names_the_key_file_after_its_database(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "host.db", isolation_level=None, check_same_thread=False)
    store = SQLiteStore(connection=conn)
    keys = store.key_store()
    assert isinstance(keys, SQLiteKeyStore)
    assert Path(keys.path) == (tmp_path / "host.db.keys").resolve()
    store.close()
    conn.close()
    memory = SQLiteStore(connection=sqlite3.connect(":memory:", check_same_thread=False))
    assert isinstance(memory.key_store(), MemoryKeyStore)


@pytest.mark.postgres
def test_the_postgres_store_keeps_its_keys_in_a_schema_beside_its_own() -> None:
    import psycopg

    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema() as url:
        case_id = f"key-store-test-{uuid.uuid4().hex}"
        store = PostgresStore(url)
        keys = store.key_store()
        # a store in schema S keeps its keys in S_keys (in public: mediation_keys)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT current_schema()").fetchone()
        assert row is not None
        assert isinstance(keys, _postgres_key_store()) and keys.schema == f"{row[0]}_keys"
        assert store.key_store() is keys
        key = keys.create(case_id, "p1", 1, os.urandom(32))
        store.close()
        with pytest.raises(StoreError):  # closed with the store
            keys.get(case_id, "p1", 1)
        # the store on a host's connection reaches the same keys through its parameters
        with psycopg.connect(url, autocommit=True) as conn:
            hosted = PostgresStore(connection=conn)
            assert hosted.key_store().get(case_id, "p1", 1) == key
            assert hosted.key_store().destroy(case_id) == 1
            hosted.close()


class _Counting(MemoryKeyStore):
    """A memory key store that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, case_id: str, subject: str, epoch: int) -> bytes | None:
        self.reads += 1
        return super().get(case_id, subject, epoch)

    def destroyed(self, case_id: str, subject: str) -> bool:
        self.reads += 1
        return super().destroyed(case_id, subject)


def test_a_verification_run_reads_each_key_of_a_case_once_and_keeps_one_case() -> None:
    keys = _Counting()
    a, b = keys.create("c1", "p1", 1, os.urandom(32)), keys.create("c2", "p1", 1, os.urandom(32))
    keys.destroy("c1", "p2")
    run = ReadThrough(keys)
    for _ in range(3):  # one case's values, read over and over: the store is asked once each
        assert run.get("c1", "p1", 1) == a and run.get("c1", "p9", 1) is None
        assert run.destroyed("c1", "p2") and not run.destroyed("c1", "p1")
    assert keys.reads == 4
    assert run.get("c2", "p1", 1) == b and keys.reads == 5  # another case: read from the store
    assert run.get("c1", "p1", 1) == a and keys.reads == 6  # the first one was forgotten
    for write in (
        lambda: run.create("c1", "p3", 1, os.urandom(32)),
        lambda: run.destroy("c1"),
        run.rotate,
    ):
        with pytest.raises(TypeError):
            write()
    assert keys.get("c1", "p3", 1) is None and keys.get("c1", "p1", 1) == a and keys.epoch() == 1


def test_verifying_a_case_reads_each_of_its_keys_once() -> None:
    """``verify`` with the service's vault opens every sealed value, reading each key of the case
    from the key store once, not once per value (a network round trip each, for a KMS)."""
    from mediation import AESGCMVault, CaseService, verify
    from mediation import demo as demo_module

    keys = _Counting()
    store = MemoryStore()
    service = CaseService(
        store,
        directory=demo_module.directory(),
        clock=demo_module.StepClock(),
        vault=AESGCMVault(keys),
    )
    case_id = demo_module.noise_dispute(service)
    records = store.read(case_id)
    sealed = sum(r.body.count(b'"sealed":') for r in records)
    names = {(c, s, e) for (c, s, e) in keys._keys if c == case_id}
    assert sealed > len(names) >= 3
    keys.reads = 0
    assert verify(records, case_id, vault=service.vault).ok
    assert keys.reads == len(names)
    keys.reads = 0
    assert service.verify(case_id).ok
    assert keys.reads == len(names)
