"""The default store: one SQLite file (stdlib ``sqlite3``), WAL, one durable transaction per append.

Schema (created by :meth:`SQLiteStore.create_schema`, idempotent, version in ``mediation_meta``):

- ``mediation_events(case_id, seq, hash, body)``, primary key ``(case_id, seq)``: the exact body bytes
  and their hash.  Triggers refuse UPDATE and DELETE inside the database.
- ``mediation_cases``: one summary row per case (state, committee, level, category, ...), written in
  the same transaction as the events, indexed for the list queries.

A host that wants its own writes and a case's events to commit together passes its own connection
(``SQLiteStore(connection=conn)``) and opens the transaction itself; the store then works inside a
SAVEPOINT and leaves COMMIT or ROLLBACK to the host.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from .._case import CaseSummary
from .._errors import ConcurrencyConflict, StoreError
from .._events import StoredEvent
from ._base import Store, check_batch, summary_filter

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 1

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
    PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;
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
    ``synchronous=FULL``: an append returns only once it is durable.  ``":memory:"`` works for tests.
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
        self._owned = connection is None
        try:
            if connection is None:
                assert path is not None
                connection = sqlite3.connect(
                    os.fspath(path), isolation_level=None, timeout=timeout,
                    check_same_thread=False,
                )  # fmt: skip
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._conn = connection
        self.path = os.fspath(path) if path is not None else None
        if create:
            self.create_schema()
        else:
            self._check_schema()

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    # -- schema ------------------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the tables, triggers and indexes if missing, and record the schema version."""
        try:
            if self._conn.in_transaction:
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        self._conn.execute(statement)
            else:
                self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO mediation_meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the mediation schema: {exc}") from exc
        self._check_schema()

    def schema_version(self) -> int | None:
        try:
            row = self._conn.execute(
                "SELECT value FROM mediation_meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.Error:
            return None
        return int(row[0]) if row else None

    def _check_schema(self) -> None:
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"database schema version is {version}, this library needs {SCHEMA_VERSION}"
                + ("" if version else " (run create_schema())")
            )

    # -- writing -----------------------------------------------------------------------------------

    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        case_id = summary.case_id
        check_batch(case_id, expected_seq, records)
        conn = self._conn
        nested = conn.in_transaction
        try:
            conn.execute("SAVEPOINT mediation_append" if nested else "BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT max(seq) FROM mediation_events WHERE case_id = ?", (case_id,)
                ).fetchone()
                current = row[0] or 0
                if current != expected_seq:
                    raise ConcurrencyConflict(
                        f"case {case_id} is at seq {current}, not {expected_seq}",
                        expected_seq=expected_seq,
                        case=case_id,
                        seq=current,
                    )
                conn.executemany(
                    "INSERT INTO mediation_events (case_id, seq, hash, body) VALUES (?, ?, ?, ?)",
                    [(r.case_id, r.seq, r.hash, r.body) for r in records],
                )
                conn.execute(_UPSERT, _summary_row(summary))
            except BaseException:
                if nested:
                    conn.execute("ROLLBACK TO mediation_append")
                    conn.execute("RELEASE mediation_append")
                else:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("RELEASE mediation_append" if nested else "COMMIT")
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):  # a CHECK or NOT NULL violation is no race
                raise StoreError(f"append to case {case_id} failed: {exc}", case=case_id) from exc
            raise ConcurrencyConflict(
                f"case {case_id}: another writer appended seq {expected_seq + 1} first",
                expected_seq=expected_seq,
                case=case_id,
            ) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"append to case {case_id} failed: {exc}", case=case_id) from exc

    # -- reading -----------------------------------------------------------------------------------

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        try:
            rows = self._conn.execute(
                "SELECT seq, hash, body FROM mediation_events "
                "WHERE case_id = ? AND seq > ? ORDER BY seq",
                (case_id, after_seq),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"reading case {case_id} failed: {exc}", case=case_id) from exc
        return [
            StoredEvent(case_id, seq, h, body if type(body) is bytes else _as_bytes(body))
            for seq, h, body in rows
        ]

    def scan(self, low: str | None = None, high: str | None = None) -> Iterator[StoredEvent]:
        """Every record by case id then seq; only case ids in ``[low, high)`` when given (the
        ranges ``mediation verify --jobs`` hands its processes)."""
        bounds = [
            (op, b) for op, b in (("case_id >= ?", low), ("case_id < ?", high)) if b is not None
        ]
        where = " WHERE " + " AND ".join(op for op, _ in bounds) if bounds else ""
        try:
            cursor = self._conn.execute(
                "SELECT case_id, seq, hash, body FROM mediation_events"
                + where
                + " ORDER BY case_id, seq",
                [b for _, b in bounds],
            )
            for case_id, seq, h, body in cursor:
                yield StoredEvent(case_id, seq, h, body if type(body) is bytes else _as_bytes(body))
        except sqlite3.Error as exc:
            raise StoreError(f"scanning events failed: {exc}") from exc

    def case_ids(self) -> list[str]:
        try:
            rows = self._conn.execute(
                "SELECT DISTINCT case_id FROM mediation_events ORDER BY case_id"
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"listing cases failed: {exc}") from exc
        return [r[0] for r in rows]

    def summary(self, case_id: str) -> CaseSummary | None:
        try:
            row = self._conn.execute(_SELECT_SUMMARY + " WHERE case_id = ?", (case_id,)).fetchone()
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
            rows = self._conn.execute(sql + " ORDER BY case_id", args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"listing cases failed: {exc}") from exc
        return [_row_to_summary(r) for r in rows]

    def close(self) -> None:
        if self._owned:
            self._conn.close()
