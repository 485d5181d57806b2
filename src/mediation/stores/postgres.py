"""The PostgreSQL store (psycopg 3 and psycopg_pool; install ``mediation[postgres]``).

Schema (created by :meth:`PostgresStore.create_schema`, idempotent, version in ``mediation_meta``;
:meth:`PostgresStore.schema_sql` returns the same DDL for a host's own migrations):

- ``mediation_events(case_id, seq, hash, body, request_id)``, primary key ``(case_id, seq)``: the
  exact body bytes (``bytea``), their hash (64 lowercase hex digits) and the client's request id,
  unique per case where given.  A statement trigger refuses UPDATE,
  DELETE and TRUNCATE inside the database.
- ``mediation_cases``: one summary row per case, upserted in the same transaction as the events,
  indexed on state, committee, level and category for the list queries.

Tables are not schema-qualified: they live in the first schema of the connection's ``search_path``.

Concurrency is optimistic and per case.  An append is one statement (one round trip) that checks
the case's last seq is the expected one, inserts the records and upserts the summary, all in one
transaction; of two writers racing for the same seq, the primary key lets one commit and the other
gets :class:`~mediation.ConcurrencyConflict`.  Nothing locks a table, so writers on different cases
never wait for each other.  The pool makes one store safe to share between threads.  When the
connection breaks after the statement was sent, the append raises
:class:`~mediation.OutcomeUnknown`: the server may have committed it.

A host that wants its own writes and a case's events to commit together passes its own connection
(``PostgresStore(connection=conn)``) and opens the transaction itself; the store then works inside a
SAVEPOINT (psycopg's nested ``conn.transaction()``) and never commits or rolls back the host's
transaction.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg_pool import ConnectionPool

from .._case import CaseSummary
from .._errors import OutcomeUnknown, StoreError
from .._events import StoredEvent
from ._base import Store, check_batch, request_taken, seq_taken, summary_filter

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

SCHEMA_VERSION = 2

_SCHEMA = f"""\
CREATE TABLE IF NOT EXISTS mediation_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS mediation_events (
    case_id text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL CHECK (seq >= 1),
    hash    text   NOT NULL CHECK (hash ~ '^[0-9a-f]{{64}}$'),
    body    bytea  NOT NULL,
    request_id text,
    PRIMARY KEY (case_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS mediation_events_request
    ON mediation_events (case_id, request_id) WHERE request_id IS NOT NULL;
CREATE OR REPLACE FUNCTION mediation_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'mediation_events is append-only: % refused', TG_OP;
END
$$;
CREATE OR REPLACE TRIGGER mediation_events_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON mediation_events
FOR EACH STATEMENT EXECUTE FUNCTION mediation_events_refuse_change();
CREATE TABLE IF NOT EXISTS mediation_cases (
    case_id        text COLLATE "C" PRIMARY KEY,
    committee      text    NOT NULL,
    state          text    NOT NULL,
    level          text    NOT NULL,
    category       text    NOT NULL,
    seq            bigint  NOT NULL,
    head           text    NOT NULL,
    opened_at      text    NOT NULL,
    updated_at     text    NOT NULL,
    registered_at  text,
    paused         boolean NOT NULL,
    paused_seconds bigint  NOT NULL,
    extra_days     integer NOT NULL
);
CREATE INDEX IF NOT EXISTS mediation_cases_state ON mediation_cases (state, committee);
CREATE INDEX IF NOT EXISTS mediation_cases_committee ON mediation_cases (committee, state);
CREATE INDEX IF NOT EXISTS mediation_cases_level ON mediation_cases (level);
CREATE INDEX IF NOT EXISTS mediation_cases_category ON mediation_cases (category);
INSERT INTO mediation_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
ON CONFLICT (key) DO NOTHING;
"""

_SUMMARY_COLUMNS = (
    "case_id", "committee", "state", "level", "category", "seq", "head", "opened_at",
    "updated_at", "registered_at", "paused", "paused_seconds", "extra_days",
)  # fmt: skip
_SELECT_SUMMARY = f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM mediation_cases"
#: schema version 1 had no request ids: what create_schema() runs to bring it to version 2
_MIGRATE_1_TO_2 = """\
ALTER TABLE mediation_events ADD COLUMN IF NOT EXISTS request_id text;
CREATE UNIQUE INDEX IF NOT EXISTS mediation_events_request
    ON mediation_events (case_id, request_id) WHERE request_id IS NOT NULL;
UPDATE mediation_meta SET value = '2' WHERE key = 'schema_version';
"""
_SUMMARY_TYPES = {
    "seq": "bigint",
    "paused": "boolean",
    "paused_seconds": "bigint",
    "extra_days": "integer",
}
#: One statement, so one round trip and (in autocommit) its own transaction: read the case's last
#: seq, insert the records only if it is the expected one, upsert the summary only if they were
#: inserted, and report (last seq seen, records inserted, summaries written).  Of two writers that
#: both saw the same last seq, the second blocks on the primary key until the first ends, then
#: fails with a unique violation (the first committed) or goes ahead (it rolled back).
_APPEND = f"""\
WITH tip AS (
    SELECT coalesce(max(seq), 0) AS seq FROM mediation_events WHERE case_id = %(case_id)s
), inserted AS (
    INSERT INTO mediation_events (case_id, seq, hash, body, request_id)
    SELECT %(case_id)s::text, r.seq, r.hash, r.body, r.request_id
    FROM tip, unnest(
        %(seqs)s::bigint[], %(hashes)s::text[], %(bodies)s::bytea[], %(requests)s::text[]
    ) AS r (seq, hash, body, request_id)
    WHERE tip.seq = %(expected_seq)s
    RETURNING 1
), projected AS (
    INSERT INTO mediation_cases ({", ".join(_SUMMARY_COLUMNS)})
    SELECT {", ".join(f"%(s_{c})s::{_SUMMARY_TYPES.get(c, 'text')}" for c in _SUMMARY_COLUMNS)}
    WHERE EXISTS (SELECT FROM inserted)
    ON CONFLICT (case_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_COLUMNS[1:])}
    RETURNING 1
)
SELECT tip.seq, (SELECT count(*) FROM inserted), (SELECT count(*) FROM projected) FROM tip
"""
#: errors that mean "another transaction got in the way; nothing was written, retry"
_CONFLICTS = (pg_errors.UniqueViolation, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_scan_ids = itertools.count(1)


def _summary_row(s: CaseSummary) -> tuple[Any, ...]:
    return (
        s.case_id, s.committee, s.state, s.level, s.category, s.seq, s.head, s.opened_at,
        s.updated_at, s.registered_at, s.paused, s.paused_seconds, s.extra_days,
    )  # fmt: skip


def _row_to_summary(row: Sequence[Any]) -> CaseSummary:
    return CaseSummary(**dict(zip(_SUMMARY_COLUMNS, row, strict=True)))


class PostgresStore(Store):
    """A store in PostgreSQL.  Give it exactly one of:

    - ``conninfo``: a connection string (``postgresql://user:pw@host/db`` or ``key=value`` pairs);
      the store opens its own pool of up to ``pool_size`` autocommit connections and closes it in
      :meth:`close`.
    - ``pool``: a ``psycopg_pool.ConnectionPool`` the host owns (not closed by :meth:`close`).
    - ``connection``: a ``psycopg.Connection`` the host owns.  Appends run in a SAVEPOINT when the
      host has a transaction open, so the host's own writes and the case's events commit or roll
      back together; the store never commits the host's transaction.

    ``create`` (the default) creates the schema if missing; with ``create=False`` the store only
    checks that the schema exists at the version this library needs.  ``timeout`` bounds the wait
    for a server connection, in seconds.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        connection: psycopg.Connection[Any] | None = None,
        create: bool = True,
        pool_size: int = 4,
        timeout: float = 30.0,
        scan_batch: int = 1000,
    ) -> None:
        if sum(x is not None for x in (conninfo, pool, connection)) != 1:
            raise StoreError("give PostgresStore exactly one of conninfo, pool or connection")
        if pool_size < 1 or scan_batch < 1:
            raise StoreError("pool_size and scan_batch must be at least 1")
        self._conn = connection
        self._legacy = False
        self._rid = "request_id"
        self._pool: ConnectionPool[Any] | None = pool
        self._owns_pool = False
        self.scan_batch = scan_batch
        if conninfo is not None:
            # One direct connection first: it reports the server's own error (bad password, no
            # such database) where a pool would only time out, and it sets up the schema.
            try:
                probe = psycopg.connect(
                    conninfo, autocommit=True, connect_timeout=max(1, round(timeout))
                )
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
            with probe:
                self._prepare(probe, create)
            try:
                self._pool = ConnectionPool(
                    conninfo,
                    min_size=1,
                    max_size=pool_size,
                    kwargs={"autocommit": True},
                    # a connection the server ended while it sat in the pool (a restart, an idle
                    # timeout) is replaced before use, so it never makes an append's outcome unknown
                    check=ConnectionPool.check_connection,
                    timeout=timeout,
                    open=True,
                    name="mediation",
                )
            except psycopg.Error as exc:  # pragma: no cover - the probe connected just before
                raise StoreError(f"cannot open a PostgreSQL connection pool: {exc}") from exc
            self._owns_pool = True
        else:
            with self._connection() as conn:
                self._prepare(conn, create)

    @property
    def pool(self) -> ConnectionPool[Any] | None:
        """The connection pool in use (None when the store works on a host's connection)."""
        return self._pool

    @property
    def connection(self) -> psycopg.Connection[Any] | None:
        """The host's connection, when the store was given one."""
        return self._conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._conn is not None:
            yield self._conn
            return
        assert self._pool is not None
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL failed: {exc}") from exc

    # -- schema ------------------------------------------------------------------------------------

    @staticmethod
    def schema_sql() -> str:
        """The DDL :meth:`create_schema` runs, for a host that manages its schema in migrations.

        It is idempotent (``IF NOT EXISTS``, ``CREATE OR REPLACE``; PostgreSQL 14 or newer) and
        records the schema version.  Run it in the schema the store's connections will use.
        """
        return _SCHEMA

    def create_schema(self) -> None:
        """Create tables, trigger and indexes if missing, and record the schema version.

        Safe to call from many processes at once (a transaction-scoped advisory lock serializes
        them); a schema that is already at this version is left untouched.
        """
        with self._connection() as conn:
            self._create_schema(conn)

    def schema_version(self) -> int | None:
        """The version recorded in ``mediation_meta``, or None if there is no schema."""
        with self._connection() as conn:
            try:
                with self._read_block(conn), conn.cursor() as cur:
                    return self._read_version(cur)
            except psycopg.Error as exc:
                raise StoreError(f"reading the schema version failed: {exc}") from exc

    def _prepare(self, conn: psycopg.Connection[Any], create: bool) -> None:
        if create:
            self._create_schema(conn)
            return
        try:
            with self._read_block(conn), conn.cursor() as cur:
                version = self._read_version(cur)
        except psycopg.Error as exc:
            raise StoreError(f"reading the schema version failed: {exc}") from exc
        if version == 1:  # mediation 0.1's schema, without request ids: read it, never write it
            self._legacy = True
            self._rid = "NULL"
            return
        self._check_version(version)

    @staticmethod
    def _read_version(cur: psycopg.Cursor[Any]) -> int | None:
        # to_regclass first: selecting from a missing table would abort a host's transaction
        cur.execute("SELECT to_regclass('mediation_meta') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return None
        cur.execute("SELECT value FROM mediation_meta WHERE key = 'schema_version'")
        row = cur.fetchone()
        return int(row[0]) if row else None

    @staticmethod
    def _check_version(version: int | None) -> None:
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"database schema version is {version}, this library needs {SCHEMA_VERSION}"
                + ("" if version else " (run create_schema() or schema_sql())")
            )

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('mediation.schema:' || "
                    "coalesce(current_schema(), '')))"
                )
                version = self._read_version(cur)
                if version == 1:
                    cur.execute(_MIGRATE_1_TO_2)
                    version = self._read_version(cur)
                if version is None:
                    cur.execute(_SCHEMA)
                    version = self._read_version(cur)
        except psycopg.Error as exc:
            raise StoreError(f"cannot create the mediation schema: {exc}") from exc
        self._check_version(version)

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
        params: dict[str, Any] = {
            "case_id": case_id,
            "expected_seq": expected_seq,
            "seqs": [r.seq for r in records],
            "hashes": [r.hash for r in records],
            "bodies": [r.body for r in records],
            "requests": [r.request_id for r in records],
        }
        params.update(zip((f"s_{c}" for c in _SUMMARY_COLUMNS), _summary_row(summary), strict=True))
        with self._connection() as conn:
            # the statement is its own transaction (or one the store opens): if the connection
            # breaks once it was sent, only the server knows whether it committed
            own = conn.info.transaction_status == pq.TransactionStatus.IDLE
            try:
                with self._write_block(conn), conn.cursor() as cur:
                    cur.execute(_APPEND, params)
                    row = cur.fetchone()
            except _CONFLICTS as exc:
                constraint = getattr(exc.diag, "constraint_name", None)
                if constraint == "mediation_events_request":
                    raise request_taken(case_id, records) from exc
                raise seq_taken(case_id, expected_seq) from exc
            except psycopg.OperationalError as exc:
                if own and conn.broken:
                    raise OutcomeUnknown(
                        f"the connection broke while appending to case {case_id} ({exc}): "
                        "whether the event was written is unknown; retry with the same request id",
                        case=case_id,
                        seq=expected_seq + 1,
                    ) from exc
                raise StoreError(f"append to case {case_id} failed: {exc}", case=case_id) from exc
            except psycopg.Error as exc:
                raise StoreError(f"append to case {case_id} failed: {exc}", case=case_id) from exc
        assert row is not None
        current, inserted, projected = row
        if current != expected_seq:
            raise seq_taken(case_id, expected_seq, current)
        if (inserted, projected) != (len(records), 1):  # pragma: no cover - a broken schema
            raise StoreError(f"append to case {case_id} wrote {inserted} records", case=case_id)

    @staticmethod
    def _write_block(conn: psycopg.Connection[Any]) -> contextlib.AbstractContextManager[Any]:
        """The transaction an append runs in.  On an idle autocommit connection the statement is
        its own transaction; inside the host's transaction it gets a SAVEPOINT, so that a failed
        append leaves the host's transaction usable; on an idle classic connection, BEGIN and
        COMMIT, so that the store never leaves a transaction open."""
        if conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            return contextlib.nullcontext()
        return conn.transaction()

    # -- reading -----------------------------------------------------------------------------------

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        with self._connection() as conn:
            try:
                with self._read_block(conn), conn.cursor(binary=True) as cur:
                    cur.execute(
                        f"SELECT seq, hash, body, {self._rid} FROM mediation_events "
                        "WHERE case_id = %s AND seq > %s ORDER BY seq",
                        (case_id, after_seq),
                    )
                    rows = cur.fetchall()
            except psycopg.Error as exc:
                raise StoreError(f"reading case {case_id} failed: {exc}", case=case_id) from exc
        return [StoredEvent(case_id, seq, h, bytes(body), rid) for seq, h, body, rid in rows]

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        if self._legacy:
            return None
        with self._connection() as conn:
            try:
                with self._read_block(conn), conn.cursor(binary=True) as cur:
                    cur.execute(
                        "SELECT seq, hash, body FROM mediation_events "
                        "WHERE case_id = %s AND request_id = %s",
                        (case_id, request_id),
                    )
                    row = cur.fetchone()
            except psycopg.Error as exc:
                raise StoreError(f"reading case {case_id} failed: {exc}", case=case_id) from exc
        if row is None:
            return None
        seq, h, body = row
        return StoredEvent(case_id, seq, h, bytes(body), request_id)

    def scan(self) -> Iterator[StoredEvent]:
        """Every record by case id then seq, streamed through a server-side cursor.

        The cursor lives in a transaction of its own (or in the host's open transaction); with a
        pool, the generator holds one connection until it is exhausted or closed.
        """
        with self._connection() as conn:
            try:
                with (
                    self._read_block(conn, cursor=True),
                    conn.cursor(name=f"mediation_scan_{next(_scan_ids)}", binary=True) as cur,
                ):
                    cur.itersize = self.scan_batch
                    cur.execute(
                        f"SELECT case_id, seq, hash, body, {self._rid} FROM mediation_events "
                        "ORDER BY case_id, seq"
                    )
                    for case_id, seq, h, body, rid in cur:
                        yield StoredEvent(case_id, seq, h, bytes(body), rid)
            except psycopg.Error as exc:
                raise StoreError(f"scanning events failed: {exc}") from exc

    @staticmethod
    def _read_block(
        conn: psycopg.Connection[Any], *, cursor: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        """The transaction a read runs in: the host's open one if any (without a savepoint: the
        host may use the connection between two rows of a scan), else one of its own where it
        is needed, so that the store never leaves a transaction open on a host's connection.

        A server-side ``cursor`` always needs a transaction; a plain read on an autocommit
        connection needs none.
        """
        if conn.info.transaction_status == pq.TransactionStatus.INTRANS:
            return contextlib.nullcontext()
        if conn.autocommit and not cursor:
            return contextlib.nullcontext()
        return conn.transaction()

    def case_ids(self) -> list[str]:
        with self._connection() as conn:
            try:
                with self._read_block(conn):
                    rows = conn.execute("SELECT case_id FROM mediation_cases ORDER BY case_id")
                    return [r[0] for r in rows.fetchall()]
            except psycopg.Error as exc:
                raise StoreError(f"listing cases failed: {exc}") from exc

    def summary(self, case_id: str) -> CaseSummary | None:
        with self._connection() as conn:
            try:
                with self._read_block(conn):
                    cur = conn.execute(_SELECT_SUMMARY + " WHERE case_id = %s", (case_id,))
                    row = cur.fetchone()
            except psycopg.Error as exc:
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
            "%s", state=state, committee=committee, level=level, category=category
        )
        sql = _SELECT_SUMMARY + where
        with self._connection() as conn:
            try:
                with self._read_block(conn):
                    rows = conn.execute(sql + " ORDER BY case_id", args).fetchall()
            except psycopg.Error as exc:
                raise StoreError(f"listing cases failed: {exc}") from exc
        return [_row_to_summary(r) for r in rows]

    def close(self) -> None:
        """Close the pool the store opened; a host's pool or connection is left open."""
        if self._owns_pool and self._pool is not None:
            self._pool.close()
