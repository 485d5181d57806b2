"""The default store: one SQLite file (stdlib ``sqlite3``), WAL, one durable transaction per append.

Schema (created by :meth:`SQLiteStore.create_schema`, idempotent, version in ``mediation_meta``):

- ``mediation_events(case_id, seq, hash, body, request_id)``, primary key ``(case_id, seq)``: the
  exact body bytes and their hash, and the client's request id (unique per case when given).
  Triggers refuse UPDATE and DELETE inside the database.
- ``mediation_cases``: one summary row per case (state, committee, level, category, ...), written in
  the same transaction as the events, indexed for the list queries.

Threads: a store opened on a path gives every thread its own connection (WAL lets readers run
beside the one writer); an append is ``BEGIN IMMEDIATE`` … ``COMMIT``, so writers in other threads
and other processes wait for each other (up to ``timeout`` seconds) instead of failing.  One store
(and one :class:`~mediation.CaseService`) can be shared by every thread of a process, and any number
of processes can open the same file.

A host that wants its own writes and a case's events to commit together passes its own connection
(``SQLiteStore(connection=conn)``) and opens the transaction itself; the store then works inside a
SAVEPOINT and leaves COMMIT or ROLLBACK to the host.  That one connection is shared: the store
serializes its own use of it with a lock, and the host's transaction belongs to the host's thread.
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
from ._base import Store, check_batch, request_taken, seq_taken, summary_filter

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 2

_SCHEMA = """
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
    extra_days     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mediation_cases_state ON mediation_cases (state, committee);
CREATE INDEX IF NOT EXISTS mediation_cases_committee ON mediation_cases (committee, state);
CREATE INDEX IF NOT EXISTS mediation_cases_level ON mediation_cases (level);
CREATE INDEX IF NOT EXISTS mediation_cases_category ON mediation_cases (category);
"""

_SUMMARY_COLUMNS = (
    "case_id", "committee", "state", "level", "category", "seq", "head", "opened_at",
    "updated_at", "registered_at", "paused", "paused_seconds", "extra_days",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO mediation_cases ({', '.join(_SUMMARY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_SUMMARY_COLUMNS))}) "
    "ON CONFLICT(case_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_COLUMNS[1:])
)
_SELECT_SUMMARY = f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM mediation_cases"
#: schema version 1 had no request ids: what create_schema() runs to bring it to version 2
_MIGRATE_1_TO_2 = (
    "ALTER TABLE mediation_events ADD COLUMN request_id TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS mediation_events_request "
    "ON mediation_events (case_id, request_id) WHERE request_id IS NOT NULL",
    "UPDATE mediation_meta SET value = '2' WHERE key = 'schema_version'",
)


def _as_bytes(body: object) -> bytes:
    """The stored body as bytes, whatever SQLite type someone gave it (verification then decides).

    The library writes BLOBs; a row edited by hand may hold TEXT, an integer or NULL.
    """
    if isinstance(body, bytes):
        return body
    return b"" if body is None else str(body).encode("utf-8", "surrogatepass")


def _row_to_summary(row: Sequence[Any]) -> CaseSummary:
    values = dict(zip(_SUMMARY_COLUMNS, row, strict=True))
    values["paused"] = bool(values["paused"])
    return CaseSummary(**values)


def _summary_row(s: CaseSummary) -> tuple[Any, ...]:
    return (
        s.case_id, s.committee, s.state, s.level, s.category, s.seq, s.head, s.opened_at,
        s.updated_at, s.registered_at, int(s.paused), s.paused_seconds, s.extra_days,
    )  # fmt: skip


class SQLiteStore(Store):
    """A store in one SQLite database file.

    ``SQLiteStore("cases.db")`` opens (and by default creates) the file with WAL journaling and
    ``synchronous=FULL``: an append returns only once it is durable.  Every thread that uses the
    store gets its own connection.  ``":memory:"`` works for tests (one connection, shared under a
    lock, since each connection to ``:memory:`` would be a database of its own).
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
        if connection is not None or self.path == ":memory:":
            self._shared = connection if connection is not None else self._connect()
            self._lock = threading.RLock()
            try:
                self._shared.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot use the SQLite connection: {exc}") from exc
        else:
            self._conn()  # open this thread's connection now: a bad path fails here
        if create:
            self.create_schema()
        else:
            self._check_schema()

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=self._timeout, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
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
        version of this library, and record the schema version."""
        with self._using() as conn:
            try:
                if conn.in_transaction:
                    self._create(conn)
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        self._create(conn)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot create the mediation schema: {exc}") from exc
        self._check_schema()

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        version = SQLiteStore._read_version(conn)
        if version == 1:
            for statement in _MIGRATE_1_TO_2:
                conn.execute(statement)
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
        except sqlite3.Error:
            return None
        return int(row[0]) if row else None

    def schema_version(self) -> int | None:
        with self._using() as conn:
            return self._read_version(conn)

    def _check_schema(self) -> None:
        version = self.schema_version()
        #: a version-1 file (no request ids) opened with create=False can be read, not written
        self._legacy = version == 1
        self._rid = "NULL" if self._legacy else "request_id"
        if version != SCHEMA_VERSION and not self._legacy:
            raise StoreError(
                f"database schema version is {version}, this library needs {SCHEMA_VERSION}"
                " (run create_schema())"
            )

    # -- writing -----------------------------------------------------------------------------------

    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        case_id = summary.case_id
        check_batch(case_id, expected_seq, records)
        if self._legacy:
            raise StoreError(
                "database schema version is 1: it can be read, and written once create_schema() "
                "has migrated it",
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

    def _append(
        self,
        conn: sqlite3.Connection,
        summary: CaseSummary,
        records: Sequence[StoredEvent],
        expected_seq: int,
    ) -> None:
        case_id = summary.case_id
        nested = conn.in_transaction
        committing = False
        try:
            conn.execute("SAVEPOINT mediation_append" if nested else "BEGIN IMMEDIATE")
            try:
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
                conn.execute(_UPSERT, _summary_row(summary))
            except BaseException:
                if nested:
                    conn.execute("ROLLBACK TO mediation_append")
                    conn.execute("RELEASE mediation_append")
                else:
                    conn.execute("ROLLBACK")
                raise
            committing = True
            conn.execute("RELEASE mediation_append" if nested else "COMMIT")
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):  # a CHECK or NOT NULL violation is no race
                raise StoreError(f"append to case {case_id} failed: {exc}", case=case_id) from exc
            if "request_id" in str(exc):
                raise request_taken(case_id, records) from exc
            raise seq_taken(case_id, expected_seq) from exc
        except sqlite3.Error as exc:
            if committing and not nested:
                if conn.in_transaction:  # COMMIT failed and left the transaction open
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                else:
                    raise OutcomeUnknown(
                        f"COMMIT of case {case_id} failed ({exc}): whether the event was "
                        "written is unknown; retry with the same request id",
                        case=case_id,
                        seq=expected_seq + 1,
                    ) from exc
            raise StoreError(f"append to case {case_id} failed: {exc}", case=case_id) from exc

    # -- reading -----------------------------------------------------------------------------------

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        try:
            with self._using() as conn:
                rows = conn.execute(
                    f"SELECT seq, hash, body, {self._rid} FROM mediation_events "
                    "WHERE case_id = ? AND seq > ? ORDER BY seq",
                    (case_id, after_seq),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"reading case {case_id} failed: {exc}", case=case_id) from exc
        return [
            StoredEvent(case_id, seq, h, body if type(body) is bytes else _as_bytes(body), rid)
            for seq, h, body, rid in rows
        ]

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        if self._legacy:
            return None
        try:
            with self._using() as conn:
                row = conn.execute(
                    "SELECT seq, hash, body FROM mediation_events "
                    "WHERE case_id = ? AND request_id = ?",
                    (case_id, request_id),
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"reading case {case_id} failed: {exc}", case=case_id) from exc
        if row is None:
            return None
        seq, h, body = row
        return StoredEvent(case_id, seq, h, _as_bytes(body), request_id)

    def scan(self, low: str | None = None, high: str | None = None) -> Iterator[StoredEvent]:
        """Every record by case id then seq; only case ids in ``[low, high)`` when given (the
        ranges ``mediation verify --jobs`` hands its processes)."""
        bounds = [
            (op, b) for op, b in (("case_id >= ?", low), ("case_id < ?", high)) if b is not None
        ]
        where = " WHERE " + " AND ".join(op for op, _ in bounds) if bounds else ""
        sql = (
            f"SELECT case_id, seq, hash, body, {self._rid} FROM mediation_events"
            + where
            + " ORDER BY case_id, seq"
        )
        try:
            if self._lock is None:
                rows: Any = self._conn().execute(sql, [b for _, b in bounds])
            else:  # a shared connection cannot stay busy with a cursor between two yields
                with self._using() as conn:
                    rows = conn.execute(sql, [b for _, b in bounds]).fetchall()
            for case_id, seq, h, body, rid in rows:
                yield StoredEvent(
                    case_id, seq, h, body if type(body) is bytes else _as_bytes(body), rid
                )
        except sqlite3.Error as exc:
            raise StoreError(f"scanning events failed: {exc}") from exc

    def case_ids(self) -> list[str]:
        try:
            with self._using() as conn:
                rows = conn.execute(
                    "SELECT DISTINCT case_id FROM mediation_events ORDER BY case_id"
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"listing cases failed: {exc}") from exc
        return [r[0] for r in rows]

    def summary(self, case_id: str) -> CaseSummary | None:
        try:
            with self._using() as conn:
                row = conn.execute(_SELECT_SUMMARY + " WHERE case_id = ?", (case_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"reading case {case_id} failed: {exc}", case=case_id) from exc
        return _row_to_summary(row) if row else None

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
        sql = _SELECT_SUMMARY + where
        try:
            with self._using() as conn:
                rows = conn.execute(sql + " ORDER BY case_id", args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"listing cases failed: {exc}") from exc
        return [_row_to_summary(r) for r in rows]

    def close(self) -> None:
        """Close every connection the store opened (in any thread); a host's is left open."""
        self._closed = True
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
