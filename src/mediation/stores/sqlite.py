"""The default store: one SQLite file (stdlib ``sqlite3``), WAL, one durable transaction per append.

Schema (created by :meth:`SQLiteStore.create_schema`, idempotent, version in ``mediation_meta``):

- ``mediation_events(case_id, seq, hash, body, request_id)``, primary key ``(case_id, seq)``: the
  exact body bytes and their hash, and the client's request id (unique per case when given).
  Triggers refuse UPDATE and DELETE inside the database.
- ``mediation_cases``: one summary row per case (state, committee, level, category, ..., the
  workflow version), written in the same transaction as the events, indexed for the list queries.

Threads: a store opened on a path gives every thread its own connection (WAL lets readers run
beside the one writer); an append is ``BEGIN IMMEDIATE`` … ``COMMIT``, so writers in other threads
and other processes wait for each other (up to ``timeout`` seconds) instead of failing.  One store
(and one :class:`~mediation.CaseService`) can be shared by every thread of a process, and any number
of processes can open the same file.  :meth:`SQLiteStore.transaction` is one such transaction
around several appends, on the calling thread's connection.

A host that wants its own writes and a case's events to commit together passes its own connection
(``SQLiteStore(connection=conn)``) and opens the transaction itself; the store then works inside a
SAVEPOINT and leaves COMMIT or ROLLBACK to the host.  That one connection is shared: the store
serializes its own use of it with a lock, and the host's transaction belongs to the host's thread.

Every ``sqlite3`` error becomes one of the library's errors in one place, :func:`_translate`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .._case import CaseSummary
from .._errors import OutcomeUnknown, StoreError
from .._events import StoredEvent
from .._keys import KeyStore, MemoryKeyStore, SQLiteKeyStore, key_file
from ._base import (
    DEFAULT_WORKFLOW,
    SUMMARY_COLUMNS,
    WARNINGS_TABLE,
    DeadlineWarning,
    StatEvent,
    Store,
    check_batch,
    checked_record,
    request_taken,
    seq_taken,
    stat_event,
    stat_events_sql,
    summary_filter,
    summary_from_row,
    summary_select,
    summary_values,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 3

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS mediation_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mediation_events (
    case_id TEXT    NOT NULL,
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    hash    TEXT    NOT NULL CHECK (length(hash) = 64),
    body    BLOB    NOT NULL,
    request_id TEXT,
    PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS mediation_events_request
    ON mediation_events (case_id, request_id) WHERE request_id IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS mediation_events_no_update
BEFORE UPDATE ON mediation_events
BEGIN SELECT RAISE(ABORT, 'mediation_events is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS mediation_events_no_delete
BEFORE DELETE ON mediation_events
BEGIN SELECT RAISE(ABORT, 'mediation_events is append-only: DELETE refused'); END;
CREATE TABLE IF NOT EXISTS mediation_cases (
    case_id        TEXT PRIMARY KEY,
    committee      TEXT NOT NULL,
    state          TEXT NOT NULL,
    level          TEXT NOT NULL,
    category       TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    head           TEXT NOT NULL,
    opened_at      TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    registered_at  TEXT,
    paused         INTEGER NOT NULL,
    paused_seconds INTEGER NOT NULL,
    extra_days     INTEGER NOT NULL,
    workflow       TEXT NOT NULL DEFAULT '{DEFAULT_WORKFLOW}'
);
CREATE INDEX IF NOT EXISTS mediation_cases_state ON mediation_cases (state, committee);
CREATE INDEX IF NOT EXISTS mediation_cases_committee ON mediation_cases (committee, state);
CREATE INDEX IF NOT EXISTS mediation_cases_level ON mediation_cases (level);
CREATE INDEX IF NOT EXISTS mediation_cases_category ON mediation_cases (category);
{WARNINGS_TABLE};
"""

_UPSERT = (
    f"INSERT INTO mediation_cases ({', '.join(SUMMARY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SUMMARY_COLUMNS))}) "
    "ON CONFLICT(case_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SUMMARY_COLUMNS[1:])
)
#: what create_schema() adds to a schema of version n to bring it to version n + 1: (table,
#: column, its declaration) and the statements that follow
_MIGRATIONS: dict[int, tuple[tuple[str, str, str], tuple[str, ...]]] = {
    # version 1 had no request ids
    1: (
        ("mediation_events", "request_id", "TEXT"),
        (
            "CREATE UNIQUE INDEX IF NOT EXISTS mediation_events_request "
            "ON mediation_events (case_id, request_id) WHERE request_id IS NOT NULL",
        ),
    ),
    # version 2 kept no workflow version in the summary rows: theirs is the first one
    2: (("mediation_cases", "workflow", f"TEXT NOT NULL DEFAULT '{DEFAULT_WORKFLOW}'"), ()),
}


@contextlib.contextmanager
def _translate(
    failed: str,
    *,
    case: str | None = None,
    batch: tuple[int, Sequence[StoredEvent]] | None = None,
    committing: sqlite3.Connection | None = None,
    seq: int | None = None,
) -> Iterator[None]:
    """The one place where ``sqlite3`` errors become the library's (the original as ``__cause__``).

    ``failed`` begins the message of a :class:`StoreError` (``"reading case k1 failed"``).  With
    ``batch`` (an append's expected seq and records), a unique violation is the append's conflict:
    on the request index :class:`~mediation.RequestConflict`, else (the primary key)
    :class:`~mediation.ConcurrencyConflict`.  With ``committing`` (the connection whose COMMIT runs
    in the block), a COMMIT that failed and left the transaction open is rolled back
    (:class:`StoreError`: nothing was written), and one whose transaction is gone raises
    :class:`~mediation.OutcomeUnknown` (with ``seq``, the first seq the transaction wrote).
    """
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        if batch is not None and isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in text:
            expected_seq, records = batch
            assert case is not None
            if "request_id" in text:
                raise request_taken(case, records) from exc
            raise seq_taken(case, expected_seq) from exc
        if committing is not None:
            if committing.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    committing.execute("ROLLBACK")
            else:
                raise OutcomeUnknown(
                    f"{failed}: COMMIT failed ({exc}) and whether it was written is unknown; "
                    "retry with the same request id",
                    case=case,
                    seq=seq,
                ) from exc
        raise StoreError(f"{failed}: {exc}", case=case) from exc


@contextlib.contextmanager
def _transaction(
    conn: sqlite3.Connection,
    failed: str = "the transaction failed",
    *,
    case: str | None = None,
    seq: int | None = None,
) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` around the block, or a SAVEPOINT when ``conn`` is in a
    transaction already (the host's, or an enclosing block's); rolled back if the block raises.
    Errors of the block itself are left as they are."""
    nested = conn.in_transaction
    with _translate(failed, case=case):
        conn.execute("SAVEPOINT mediation" if nested else "BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with _translate(failed, case=case):
            if nested:
                conn.execute("ROLLBACK TO mediation")
                conn.execute("RELEASE mediation")
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        raise
    if nested:
        with _translate(failed, case=case):
            conn.execute("RELEASE mediation")
    else:
        with _translate(failed, case=case, committing=conn, seq=seq):
            conn.execute("COMMIT")


def _as_bytes(body: object) -> bytes:
    """The stored body as bytes, whatever SQLite type someone gave it (verification then decides).

    The library writes BLOBs; a row edited by hand may hold TEXT, an integer or NULL.
    """
    if isinstance(body, bytes):
        return body
    return b"" if body is None else str(body).encode("utf-8", "surrogatepass")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


class SQLiteStore(Store):
    """A store in one SQLite database file.

    ``SQLiteStore("cases.db")`` opens (and by default creates) the file with WAL journaling and
    ``synchronous=FULL``: an append returns only once it is durable.  Every thread that uses the
    store gets its own connection.  ``":memory:"`` works for tests (one connection, shared under a
    lock, since each connection to ``:memory:`` would be a database of its own).

    With ``create=False`` the store only checks the schema; a file of an earlier schema version (1
    or 2) is then read as it is (request ids and workflow versions as those versions had them) and
    an append is refused until :meth:`create_schema` has migrated it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        connection: sqlite3.Connection | None = None,
        create: bool = True,
        timeout: float = 30.0,
    ) -> None:
        if (path is None) == (connection is None):
            raise StoreError("give SQLiteStore a path or a connection, not both or neither")
        self.path = os.fspath(path) if path is not None else None
        self._timeout = timeout
        self._owned = connection is None
        self._local = threading.local()
        #: every connection opened for a thread, by the thread (closed once the thread is gone)
        self._opened: dict[threading.Thread, sqlite3.Connection] = {}
        self._opened_lock = threading.Lock()
        self._writing = threading.Lock()
        self._closed = False
        #: one connection for every thread (a host's, or ``:memory:``), used under this lock
        self._shared: sqlite3.Connection | None = None
        self._lock: threading.RLock | None = None
        #: the default key store (:meth:`key_store`), opened on first use
        self._keys: KeyStore | None = None
        self._keys_lock = threading.Lock()
        if connection is not None or self.path == ":memory:":
            self._shared = connection if connection is not None else self._connect()
            self._lock = threading.RLock()
            with _translate("cannot use the SQLite connection"):
                self._shared.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        else:
            self._conn()  # open this thread's connection now: a bad path fails here
        if create:
            self.create_schema()
        else:
            self._check_schema()

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        with _translate(f"cannot open SQLite database {self.path!r}"):
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=self._timeout, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            # sorts and temporary tables stay in memory: no temporary file holds the store's data
            conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """The calling thread's connection (opened on first use)."""
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError(f"the store on {self.path!r} is closed")
            conn = self._local.conn = self._connect()
            with self._opened_lock:
                gone = [t for t in self._opened if not t.is_alive()]
                for thread in gone:
                    self._opened.pop(thread).close()
                self._opened[threading.current_thread()] = conn
        return conn

    @contextlib.contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The connection to work on, held exclusively when it is shared between threads."""
        if self._lock is None:
            yield self._conn()
            return
        with self._lock:
            yield self._conn()

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection of the calling thread (the host's, when the store was given one)."""
        return self._conn()

    # -- schema ------------------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the tables, triggers and indexes if missing, migrate a schema of an earlier
        version of this library (1 or 2, step by step), and record the schema version."""
        failed = "cannot create the mediation schema"
        with self._using() as conn, _transaction(conn, failed), _translate(failed):
            self._create(conn)
        self._check_schema()

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        version = SQLiteStore._read_version(conn)
        while version in _MIGRATIONS:
            (table, column, declaration), then = _MIGRATIONS[version]
            if column not in _columns(conn, table):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for statement in then:
                conn.execute(statement)
            version += 1
            conn.execute(
                "UPDATE mediation_meta SET value = ? WHERE key = 'schema_version'", (str(version),)
            )
        for statement in _SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT OR IGNORE INTO mediation_meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    @staticmethod
    def _read_version(conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute(
                "SELECT value FROM mediation_meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.Error:  # no such table (or no database at all): no schema
            return None
        return int(row[0]) if row else None

    def schema_version(self) -> int | None:
        with self._using() as conn:
            return self._read_version(conn)

    def _check_schema(self) -> None:
        version = self.schema_version()
        #: a file of version 1 or 2 opened with create=False can be read, not written
        self._legacy = version if version in _MIGRATIONS else None
        self._rid = "NULL" if version == 1 else "request_id"
        self._select_summary = summary_select(has_workflow=self._legacy is None)
        if version != SCHEMA_VERSION and self._legacy is None:
            raise StoreError(
                f"database schema version is {version}, this library needs {SCHEMA_VERSION}"
                " (run create_schema())"
            )

    # -- writing -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """See :meth:`Store.transaction`: ``BEGIN IMMEDIATE`` … ``COMMIT`` on the calling thread's
        connection (a SAVEPOINT inside an open transaction, the host's included).  On a shared
        connection (``:memory:``, a host's) other threads wait until the block ends."""
        with self._using() as conn, _transaction(conn):
            yield

    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        case_id = summary.case_id
        check_batch(case_id, expected_seq, records)
        if self._legacy is not None:
            raise StoreError(
                f"database schema version is {self._legacy}: it can be read, and written once "
                "create_schema() has migrated it",
                case=case_id,
            )
        with self._using() as conn:
            if conn.in_transaction or self._lock is not None:
                self._append(conn, summary, records, expected_seq)
                return
            # this process's writers queue on a lock, which wakes the next one as soon as the
            # file is free; SQLite's busy handler, left to writers of other processes, sleeps in
            # steps of up to 100 ms
            with self._writing:
                self._append(conn, summary, records, expected_seq)

    @staticmethod
    def _append(
        conn: sqlite3.Connection,
        summary: CaseSummary,
        records: Sequence[StoredEvent],
        expected_seq: int,
    ) -> None:
        case_id = summary.case_id
        failed = f"append to case {case_id} failed"
        with (
            _transaction(conn, failed, case=case_id, seq=expected_seq + 1),
            _translate(failed, case=case_id, batch=(expected_seq, records)),
        ):
            row = conn.execute(
                "SELECT max(seq) FROM mediation_events WHERE case_id = ?", (case_id,)
            ).fetchone()
            current = row[0] or 0
            if current != expected_seq:
                raise seq_taken(case_id, expected_seq, current)
            conn.executemany(
                "INSERT INTO mediation_events (case_id, seq, hash, body, request_id) "
                "VALUES (?, ?, ?, ?, ?)",
                [(r.case_id, r.seq, r.hash, r.body, r.request_id) for r in records],
            )
            conn.execute(_UPSERT, summary_values(summary))

    # -- reading -----------------------------------------------------------------------------------

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        with _translate(f"reading case {case_id} failed", case=case_id), self._using() as conn:
            rows = conn.execute(
                f"SELECT seq, hash, body, {self._rid} FROM mediation_events "
                "WHERE case_id = ? AND seq > ? ORDER BY seq",
                (case_id, after_seq),
            ).fetchall()
        return [
            checked_record(case_id, seq, h, body if type(body) is bytes else _as_bytes(body), rid)
            for seq, h, body, rid in rows
        ]

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        if self._legacy == 1:
            return None
        with _translate(f"reading case {case_id} failed", case=case_id), self._using() as conn:
            row = conn.execute(
                "SELECT seq, hash, body FROM mediation_events WHERE case_id = ? AND request_id = ?",
                (case_id, request_id),
            ).fetchone()
        if row is None:
            return None
        seq, h, body = row
        return checked_record(case_id, seq, h, _as_bytes(body), request_id)

    def scan(self, start: str | None = None, stop: str | None = None) -> Iterator[StoredEvent]:
        """Every record by case id then seq, of the case ids in ``[start, stop)`` (None: unbounded),
        in one query on the primary key (the ranges ``mediation verify --jobs`` hands its
        processes)."""
        bounds = [
            (op, b) for op, b in (("case_id >= ?", start), ("case_id < ?", stop)) if b is not None
        ]
        where = " WHERE " + " AND ".join(op for op, _ in bounds) if bounds else ""
        sql = (
            f"SELECT case_id, seq, hash, body, {self._rid} FROM mediation_events"
            + where
            + " ORDER BY case_id, seq"
        )
        with _translate("scanning events failed"):
            if self._lock is None:
                rows: Any = self._conn().execute(sql, [b for _, b in bounds])
            else:  # a shared connection cannot stay busy with a cursor between two yields
                with self._using() as conn:
                    rows = conn.execute(sql, [b for _, b in bounds]).fetchall()
            for case_id, seq, h, body, rid in rows:
                if type(body) is not bytes:
                    body = _as_bytes(body)
                # checked_record's test, inline (this loop runs once per event of a store)
                if (
                    type(case_id) is str
                    and type(seq) is int
                    and type(h) is str
                    and (rid is None or type(rid) is str)
                ):
                    yield StoredEvent(case_id, seq, h, body, rid)
                else:
                    yield checked_record(case_id, seq, h, body, rid)  # raises MalformedRecord

    def stat_events(self, before: str | None = None) -> Iterator[StatEvent]:
        """The statistics' projection of the events, computed by SQLite's JSON functions in one
        query (no body is hashed or replayed in Python)."""
        # a body that is not JSON (written past the library) reads as {}: a malformed record, not
        # a failed query
        body = "CASE WHEN json_valid(CAST(body AS TEXT)) THEN CAST(body AS TEXT) ELSE '{}' END"
        sql, args = stat_events_sql(body, "json_extract({b}, '$.{m}')", "?", before)
        with _translate("reading events for statistics failed"), self._using() as conn:
            rows = conn.execute(sql, args).fetchall()
        for row in rows:
            yield stat_event(*row)

    def case_ids(self) -> list[str]:
        with _translate("listing cases failed"), self._using() as conn:
            rows = conn.execute(
                "SELECT DISTINCT case_id FROM mediation_events ORDER BY case_id"
            ).fetchall()
        return [r[0] for r in rows]

    def summary(self, case_id: str) -> CaseSummary | None:
        with _translate(f"reading case {case_id} failed", case=case_id), self._using() as conn:
            row = conn.execute(self._select_summary + " WHERE case_id = ?", (case_id,)).fetchone()
        return summary_from_row(row) if row else None

    def cases(
        self,
        *,
        state: str | None = None,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
    ) -> list[CaseSummary]:
        where, args = summary_filter(
            "?", state=state, committee=committee, level=level, category=category
        )
        with _translate("listing cases failed"), self._using() as conn:
            rows = conn.execute(self._select_summary + where + " ORDER BY case_id", args).fetchall()
        return [summary_from_row(r) for r in rows]

    # -- deadline warnings -------------------------------------------------------------------------

    def record_warning(self, warning: DeadlineWarning) -> bool:
        """See :meth:`Store.record_warning`: one ``INSERT OR IGNORE`` on the warnings' key (the
        table is created here when a database of an earlier release lacks it)."""
        failed = f"recording a warning on case {warning.case_id} failed"
        with self._using() as conn, _translate(failed, case=warning.case_id):
            conn.execute(WARNINGS_TABLE)
            cur = conn.execute(
                "INSERT OR IGNORE INTO mediation_warnings "
                "(case_id, kind, due, level, at, committee) VALUES (?, ?, ?, ?, ?, ?)",
                (*warning.key, warning.at, warning.committee),
            )
            return cur.rowcount == 1

    def warnings(self, case_id: str | None = None) -> list[DeadlineWarning]:
        where, args = ("", ()) if case_id is None else (" WHERE case_id = ?", (case_id,))
        with self._using() as conn, _translate("reading warnings failed"):
            if "case_id" not in _columns(conn, "mediation_warnings"):
                return []  # a database of an earlier release: none recorded yet
            rows = conn.execute(
                "SELECT case_id, kind, due, level, at, committee FROM mediation_warnings"
                + where
                + " ORDER BY at, case_id, kind, due, level",
                args,
            ).fetchall()
        return [DeadlineWarning(*row) for row in rows]

    # -- keys --------------------------------------------------------------------------------------

    def key_store(self) -> KeyStore:
        """See :meth:`Store.key_store`: a :class:`~mediation.SQLiteKeyStore` in a file of its own
        beside the events', ``<path>.keys`` (mode 0600), opened on first use, the same one on every
        call, closed with the store.  On a host's connection, the file is named after the database
        the connection has open; for ``:memory:`` (or a host's in-memory database) it is a
        :class:`~mediation.MemoryKeyStore`, gone with the process like the events.  A host may
        instead give the vault a key store of its own."""
        with self._keys_lock:
            if self._keys is None:
                if self._closed:
                    raise StoreError(f"the store on {self.path!r} is closed")
                events = self.path
                if self._shared is not None and not self._owned:
                    with self._using() as conn, _translate("cannot name the key store's file"):
                        row = conn.execute(
                            "SELECT file FROM pragma_database_list WHERE name = 'main'"
                        ).fetchone()
                    events = row[0] if row else ""
                if not events or events == ":memory:":
                    self._keys = MemoryKeyStore()
                else:
                    self._keys = SQLiteKeyStore(key_file(events), timeout=self._timeout)
            return self._keys

    def close(self) -> None:
        """Close every connection the store opened (in any thread) and its key store, if opened; a
        host's connection is left open."""
        self._closed = True
        with self._keys_lock:
            if self._keys is not None:
                self._keys.close()
        if not self._owned:
            return
        if self._shared is not None:
            self._shared.close()
            return
        with self._opened_lock:
            opened = list(self._opened.values())
            self._opened.clear()
        for conn in opened:
            conn.close()
