"""The PostgreSQL store (psycopg 3 and psycopg_pool; install ``mediation[postgres]``).

Schema (created by :meth:`PostgresStore.create_schema`, idempotent, version in ``mediation_meta``;
:meth:`PostgresStore.schema_sql` returns the same DDL for a host's own migrations):

- ``mediation_events(case_id, seq, hash, body, request_id)``, primary key ``(case_id, seq)``: the
  exact body bytes (``bytea``), their hash (64 lowercase hex digits) and the client's request id,
  unique per case where given.  A statement trigger refuses UPDATE,
  DELETE and TRUNCATE inside the database.
- ``mediation_cases``: one summary row per case (with the case's workflow version), upserted in the
  same transaction as the events, indexed on state, committee, level and category for the list
  queries.

Tables are not schema-qualified: they live in the first schema of the connection's ``search_path``.

Concurrency is optimistic and per case.  An append is one statement (one round trip) that checks
the case's last seq is the expected one, inserts the records and upserts the summary, all in one
transaction; of two writers racing for the same seq, the primary key lets one commit and the other
gets :class:`~mediation.ConcurrencyConflict`.  Nothing locks a table, so writers on different cases
never wait for each other.  The pool makes one store safe to share between threads.  When the
connection breaks after the statement was sent, the append raises
:class:`~mediation.OutcomeUnknown`: the server may have committed it.
:meth:`PostgresStore.transaction` holds one connection for the calling thread until it ends, and
the appends in it run on that connection.

A host that wants its own writes and a case's events to commit together passes its own connection
(``PostgresStore(connection=conn)``) and opens the transaction itself; the store then works inside a
SAVEPOINT (psycopg's nested ``conn.transaction()``) and never commits or rolls back the host's
transaction.

Every ``psycopg`` error becomes one of the library's errors in one place, :func:`_translate`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from .._case import CaseSummary
from .._errors import OutcomeUnknown, StoreError
from .._events import StoredEvent
from .._keys import KeyStore
from ._base import (
    DEFAULT_WORKFLOW,
    SUMMARY_COLUMNS,
    WARNINGS_TABLE,
    DeadlineWarning,
    MalformedRecord,
    StatEvent,
    Store,
    check_batch,
    request_taken,
    seq_taken,
    stat_event,
    stat_events_sql,
    summary_filter,
    summary_from_row,
    summary_select,
    summary_values,
)
from .postgres_keys import DEFAULT_SCHEMA, PostgresKeyStore

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

SCHEMA_VERSION = 3

#: the warnings table, its case ids compared by code point like the other tables
_WARNINGS_TABLE = WARNINGS_TABLE.replace("case_id   text", 'case_id   text COLLATE "C"', 1)

#: Creates the schema, or brings one of version 1 (no request ids) or 2 (no workflow version in
#: the summary rows) to this version: every statement is idempotent, and the columns a version
#: lacked are added before anything uses them.
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
ALTER TABLE mediation_events ADD COLUMN IF NOT EXISTS request_id text;
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
    extra_days     integer NOT NULL,
    workflow       text    NOT NULL DEFAULT '{DEFAULT_WORKFLOW}'
);
ALTER TABLE mediation_cases
    ADD COLUMN IF NOT EXISTS workflow text NOT NULL DEFAULT '{DEFAULT_WORKFLOW}';
CREATE INDEX IF NOT EXISTS mediation_cases_state ON mediation_cases (state, committee);
CREATE INDEX IF NOT EXISTS mediation_cases_committee ON mediation_cases (committee, state);
CREATE INDEX IF NOT EXISTS mediation_cases_level ON mediation_cases (level);
CREATE INDEX IF NOT EXISTS mediation_cases_category ON mediation_cases (category);
{_WARNINGS_TABLE};
INSERT INTO mediation_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
ON CONFLICT (key) DO NOTHING;
UPDATE mediation_meta SET value = '{SCHEMA_VERSION}'
WHERE key = 'schema_version' AND value IN ('1', '2');
"""
#: the earlier versions: read as they are with create=False, migrated by _SCHEMA (a database of any
#: other version is never touched)
_LEGACY = (1, 2)

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
    INSERT INTO mediation_cases ({", ".join(SUMMARY_COLUMNS)})
    SELECT {", ".join(f"%(s_{c})s::{_SUMMARY_TYPES.get(c, 'text')}" for c in SUMMARY_COLUMNS)}
    WHERE EXISTS (SELECT FROM inserted)
    ON CONFLICT (case_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in SUMMARY_COLUMNS[1:])}
    RETURNING 1
)
SELECT tip.seq, (SELECT count(*) FROM inserted), (SELECT count(*) FROM projected) FROM tip
"""
#: errors that mean "another transaction got in the way; nothing was written, retry"
_CONFLICTS = (pg_errors.UniqueViolation, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_scan_ids = itertools.count(1)


@contextlib.contextmanager
def _translate(
    failed: str,
    *,
    case: str | None = None,
    batch: tuple[int, Sequence[StoredEvent]] | None = None,
    lost: psycopg.Connection[Any] | None = None,
    seq: int | None = None,
) -> Iterator[None]:
    """The one place where ``psycopg`` errors become the library's (the original as ``__cause__``).

    ``failed`` begins the message of a :class:`StoreError` (``"reading case k1 failed"``).  With
    ``batch`` (an append's expected seq and records), a unique violation, serialization failure or
    deadlock is the append's conflict: :class:`~mediation.RequestConflict` on the request index,
    else :class:`~mediation.ConcurrencyConflict`.  With ``lost`` (the connection of a transaction
    the block commits), an error that broke that connection raises
    :class:`~mediation.OutcomeUnknown` (with ``seq``, the first seq the transaction wrote): the
    server may have committed it.
    """
    try:
        yield
    except psycopg.Error as exc:
        if batch is not None and isinstance(exc, _CONFLICTS):
            assert case is not None
            if getattr(exc.diag, "constraint_name", None) == "mediation_events_request":
                raise request_taken(case, batch[1]) from exc
            raise seq_taken(case, batch[0]) from exc
        if lost is not None and lost.broken and isinstance(exc, psycopg.OperationalError):
            raise OutcomeUnknown(
                f"{failed}: the connection broke ({exc}) and whether it was written is unknown; "
                "retry with the same request id",
                case=case,
                seq=seq,
            ) from exc
        raise StoreError(f"{failed}: {exc}", case=case) from exc


class PostgresStore(Store):
    """A store in PostgreSQL.  Give it exactly one of:

    - ``conninfo``: a connection string (``postgresql://user:pw@host/db`` or ``key=value`` pairs);
      the store opens its own pool of up to ``pool_size`` autocommit connections and closes it in
      :meth:`close`.
    - ``pool``: a ``psycopg_pool.ConnectionPool`` the host owns (not closed by :meth:`close`).
    - ``connection``: a ``psycopg.Connection`` the host owns.  Appends run in a SAVEPOINT when the
      host has a transaction open, so the host's own writes and the case's events commit or roll
      back together; the store never commits the host's transaction.

    ``create`` (the default) creates the schema if missing, or migrates one of an earlier version;
    with ``create=False`` the store only checks the schema: at an earlier version (1 or 2) it is read
    as it is and an append is refused until :meth:`create_schema` has migrated it.  ``timeout``
    bounds the wait for a server connection, in seconds.
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
        self._conninfo = conninfo
        #: the default key store (:meth:`key_store`), opened on first use
        self._keys: PostgresKeyStore | None = None
        self._keys_lock = threading.Lock()
        self._closed = False
        self._set_version(SCHEMA_VERSION)
        self._pool: ConnectionPool[Any] | None = pool
        self._owns_pool = False
        #: the connection of the calling thread's open transaction() block, if any
        self._local = threading.local()
        self.scan_batch = scan_batch
        if conninfo is not None:
            # One direct connection first: it reports the server's own error (bad password, no
            # such database) where a pool would only time out, and it sets up the schema.
            with _translate("cannot connect to PostgreSQL"):
                probe = psycopg.connect(
                    conninfo, autocommit=True, connect_timeout=max(1, round(timeout))
                )
            with probe:
                self._prepare(probe, create)
            with _translate("cannot open a PostgreSQL connection pool"):
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
        """The connection to work on: this thread's transaction's, the host's, or a pooled one."""
        held: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        if self._conn is not None:
            yield self._conn
            return
        assert self._pool is not None
        with _translate("PostgreSQL failed"), self._pool.connection() as conn:
            yield conn

    # -- schema ------------------------------------------------------------------------------------

    @staticmethod
    def schema_sql() -> str:
        """The DDL :meth:`create_schema` runs, for a host that manages its schema in migrations.

        It is idempotent (``IF NOT EXISTS``, ``CREATE OR REPLACE``; PostgreSQL 14 or newer),
        creates the schema or migrates one of version 1 or 2 in place, and records the schema
        version.  Run it in the schema the store's connections will use.
        """
        return _SCHEMA

    def create_schema(self) -> None:
        """Create tables, trigger and indexes if missing (or migrate a schema of version 1 or 2),
        and record the schema version.

        Safe to call from many processes at once (a transaction-scoped advisory lock serializes
        them); a schema that is already at this version is left untouched.
        """
        with self._connection() as conn:
            self._create_schema(conn)

    def schema_version(self) -> int | None:
        """The version recorded in ``mediation_meta``, or None if there is no schema."""
        with self._connection() as conn:
            return self._version_on(conn)

    def _set_version(self, version: int) -> None:
        #: the version of a schema opened read-only because it is older than this library's
        self._legacy = version if version != SCHEMA_VERSION else None
        self._rid = "NULL" if version == 1 else "request_id"
        self._select_summary = summary_select(has_workflow=version >= 3)

    def _prepare(self, conn: psycopg.Connection[Any], create: bool) -> None:
        if create:
            self._create_schema(conn)
            return
        version = self._version_on(conn)
        if version in _LEGACY:  # read it as it is, never write it
            assert version is not None
            self._set_version(version)
            return
        self._check_version(version)

    def _version_on(self, conn: psycopg.Connection[Any]) -> int | None:
        with (
            _translate("reading the schema version failed"),
            self._read_block(conn),
            conn.cursor() as cur,
        ):
            return self._read_version(cur)

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
        with (
            _translate("cannot create the mediation schema"),
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext('mediation.schema:' || "
                "coalesce(current_schema(), '')))"
            )
            version = self._read_version(cur)
            if version is None or version in _LEGACY:
                cur.execute(_SCHEMA)
                version = self._read_version(cur)
        self._check_version(version)
        self._set_version(SCHEMA_VERSION)

    # -- writing -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """See :meth:`Store.transaction`.  The block holds one connection (from the pool, or the
        host's) for the calling thread, and every call of this thread in it runs on that
        connection; an inner block, or a block inside the host's transaction, is a SAVEPOINT."""
        held = getattr(self._local, "conn", None)
        with self._connection() as conn:
            self._local.conn = conn
            try:
                with self._block(conn):
                    yield
            finally:
                self._local.conn = held

    @staticmethod
    @contextlib.contextmanager
    def _block(conn: psycopg.Connection[Any]) -> Iterator[None]:
        """``conn.transaction()`` around the block, its own statements' errors translated (those
        of the block are left as they are).  A COMMIT that broke the connection of a transaction
        this block began raises :class:`~mediation.OutcomeUnknown`."""
        failed = "the transaction failed"
        own = conn.info.transaction_status == pq.TransactionStatus.IDLE
        tx = conn.transaction()
        with _translate(failed):
            tx.__enter__()
        try:
            yield
        except BaseException as exc:
            with _translate(failed):
                swallowed = tx.__exit__(type(exc), exc, exc.__traceback__)
            if not swallowed:  # only psycopg.Rollback is swallowed
                raise
            return
        with _translate(failed, lost=conn if own else None):
            tx.__exit__(None, None, None)

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
        params: dict[str, Any] = {
            "case_id": case_id,
            "expected_seq": expected_seq,
            "seqs": [r.seq for r in records],
            "hashes": [r.hash for r in records],
            "bodies": [r.body for r in records],
            "requests": [r.request_id for r in records],
        }
        params.update(
            zip((f"s_{c}" for c in SUMMARY_COLUMNS), summary_values(summary), strict=True)
        )
        with self._connection() as conn:
            # the statement is its own transaction (or one the store opens): if the connection
            # breaks once it was sent, only the server knows whether it committed
            own = conn.info.transaction_status == pq.TransactionStatus.IDLE
            with (
                _translate(
                    f"append to case {case_id} failed",
                    case=case_id,
                    batch=(expected_seq, records),
                    lost=conn if own else None,
                    seq=expected_seq + 1,
                ),
                self._write_block(conn),
                conn.cursor() as cur,
            ):
                cur.execute(_APPEND, params)
                row = cur.fetchone()
        assert row is not None
        current, inserted, projected = row
        if current != expected_seq:
            raise seq_taken(case_id, expected_seq, current)
        if (inserted, projected) != (len(records), 1):  # pragma: no cover - a broken schema
            raise StoreError(f"append to case {case_id} wrote {inserted} records", case=case_id)

    @staticmethod
    def _write_block(conn: psycopg.Connection[Any]) -> contextlib.AbstractContextManager[Any]:
        """The transaction an append runs in.  On an idle autocommit connection the statement is
        its own transaction; inside an open transaction (the host's, or a :meth:`transaction`
        block) it gets a SAVEPOINT, so that a failed append leaves that transaction usable; on an
        idle classic connection, BEGIN and COMMIT, so that the store never leaves a transaction
        open."""
        if conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            return contextlib.nullcontext()
        return conn.transaction()

    # -- reading -----------------------------------------------------------------------------------

    # -- deadline warnings -------------------------------------------------------------------------

    def record_warning(self, warning: DeadlineWarning) -> bool:
        """See :meth:`Store.record_warning`: one ``INSERT ... ON CONFLICT DO NOTHING`` on the
        warnings' key."""
        with (
            self._connection() as conn,
            _translate(f"recording a warning on case {warning.case_id} failed"),
            self._write_block(conn),
            conn.cursor() as cur,
        ):
            cur.execute(
                "INSERT INTO mediation_warnings (case_id, kind, due, level, at, committee) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (*warning.key, warning.at, warning.committee),
            )
            return cur.rowcount == 1

    def warnings(self, case_id: str | None = None) -> list[DeadlineWarning]:
        where, args = ("", ()) if case_id is None else (" WHERE case_id = %s", (case_id,))
        with (
            self._connection() as conn,
            _translate("reading warnings failed"),
            self._read_block(conn),
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT case_id, kind, due, level, at, committee FROM mediation_warnings"
                + where
                + ' ORDER BY at, case_id COLLATE "C", kind, due, level',
                args,
            )
            rows = cur.fetchall()
        return [DeadlineWarning(*row) for row in rows]

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        with (
            self._connection() as conn,
            _translate(f"reading case {case_id} failed", case=case_id),
            self._read_block(conn),
            conn.cursor(binary=True) as cur,
        ):
            cur.execute(
                f"SELECT seq, hash, body, {self._rid} FROM mediation_events "
                "WHERE case_id = %s AND seq > %s ORDER BY seq",
                (case_id, after_seq),
            )
            rows = cur.fetchall()
        return [StoredEvent(case_id, seq, h, bytes(body), rid) for seq, h, body, rid in rows]

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        if self._legacy == 1:
            return None
        with (
            self._connection() as conn,
            _translate(f"reading case {case_id} failed", case=case_id),
            self._read_block(conn),
            conn.cursor(binary=True) as cur,
        ):
            cur.execute(
                "SELECT seq, hash, body FROM mediation_events WHERE case_id = %s AND request_id = %s",
                (case_id, request_id),
            )
            row = cur.fetchone()
        if row is None:
            return None
        seq, h, body = row
        return StoredEvent(case_id, seq, h, bytes(body), request_id)

    def scan(self, start: str | None = None, stop: str | None = None) -> Iterator[StoredEvent]:
        """Every record by case id then seq, of the case ids in ``[start, stop)`` (None:
        unbounded), streamed through a server-side cursor.

        The cursor lives in a transaction of its own (or in the open one: the host's, or this
        thread's :meth:`transaction` block); with a pool, the generator holds one connection until
        it is exhausted or closed.
        """
        bounds = [
            (op, b) for op, b in (("case_id >= %s", start), ("case_id < %s", stop)) if b is not None
        ]
        where = " WHERE " + " AND ".join(op for op, _ in bounds) if bounds else ""
        with (
            self._connection() as conn,
            _translate("scanning events failed"),
            self._read_block(conn, cursor=True),
            conn.cursor(name=f"mediation_scan_{next(_scan_ids)}", binary=True) as cur,
        ):
            cur.itersize = self.scan_batch
            cur.execute(
                f"SELECT case_id, seq, hash, body, {self._rid} FROM mediation_events"
                + where
                + " ORDER BY case_id, seq",
                [b for _, b in bounds],
            )
            for case_id, seq, h, body, rid in cur:
                yield StoredEvent(case_id, seq, h, bytes(body), rid)

    def stat_events(self, before: str | None = None) -> Iterator[StatEvent]:
        """The statistics' projection of the events, computed by PostgreSQL's ``jsonb`` in one
        query streamed through a server-side cursor (no body is hashed or replayed in Python)."""
        sql, args = stat_events_sql(
            "convert_from(body, 'UTF8')::jsonb", "({b} ->> '{m}')", "%s", before
        )
        with (
            self._connection() as conn,
            _translate("reading events for statistics failed"),
            self._read_block(conn, cursor=True),
            conn.cursor(name=f"mediation_stats_{next(_scan_ids)}") as cur,
        ):
            cur.itersize = self.scan_batch
            try:
                cur.execute(sql, args)
                for row in cur:
                    yield stat_event(*row)
            except psycopg.DataError as exc:  # a body that is not JSON or not UTF-8
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise MalformedRecord(
                    f"malformed event body: not a JSON event ({why}); mediation verify names it",
                    message_zh=f"事件内容格式错误：不是 JSON 事件（{why}）；mediation verify 可指出是哪一条",
                ) from exc

    @staticmethod
    def _read_block(
        conn: psycopg.Connection[Any], *, cursor: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        """The transaction a read runs in: the open one if any (without a savepoint: the host may
        use the connection between two rows of a scan), else one of its own where it is needed,
        so that the store never leaves a transaction open on a host's connection.

        A server-side ``cursor`` always needs a transaction; a plain read on an autocommit
        connection needs none.
        """
        if conn.info.transaction_status == pq.TransactionStatus.INTRANS:
            return contextlib.nullcontext()
        if conn.autocommit and not cursor:
            return contextlib.nullcontext()
        return conn.transaction()

    def case_ids(self) -> list[str]:
        with (
            self._connection() as conn,
            _translate("listing cases failed"),
            self._read_block(conn),
        ):
            # from the events, not the summary rows: a case whose row was deleted still counts
            rows = conn.execute("SELECT DISTINCT case_id FROM mediation_events ORDER BY case_id")
            return [r[0] for r in rows.fetchall()]

    def summary(self, case_id: str) -> CaseSummary | None:
        with (
            self._connection() as conn,
            _translate(f"reading case {case_id} failed", case=case_id),
            self._read_block(conn),
        ):
            row = conn.execute(self._select_summary + " WHERE case_id = %s", (case_id,)).fetchone()
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
            "%s", state=state, committee=committee, level=level, category=category
        )
        with (
            self._connection() as conn,
            _translate("listing cases failed"),
            self._read_block(conn),
        ):
            rows = conn.execute(self._select_summary + where + " ORDER BY case_id", args).fetchall()
        return [summary_from_row(r) for r in rows]

    # -- keys --------------------------------------------------------------------------------------

    def key_store(self) -> KeyStore:
        """See :meth:`Store.key_store`: a :class:`~mediation.stores.postgres_keys.PostgresKeyStore`
        in the schema ``mediation_keys`` of the store's database (``<schema>_keys`` for a store
        whose tables live in another schema than ``public``; created if missing), opened on
        first use on a connection of its own (the store's connection string; the pool's, or the
        host's connection's parameters), the same one on every call, closed with the store.  A host
        may instead give the vault a key store of its own (another schema, another database)."""
        with self._keys_lock:
            if self._keys is None:
                if self._closed:
                    raise StoreError("the PostgreSQL store is closed")
                self._keys = PostgresKeyStore(self._key_conninfo(), self._key_schema())
            return self._keys

    def _key_schema(self) -> str:
        """``mediation_keys`` for a store in ``public``; ``<schema>_keys`` for a store in another
        schema (several stores in one database keep their keys apart, like their events)."""
        # on a connection of its own: a host's connection must not be left in a transaction
        with (
            _translate("reading the current schema failed"),
            psycopg.connect(self._key_conninfo(), autocommit=True) as conn,
        ):
            row = conn.execute("SELECT current_schema()").fetchone()
        schema = row[0] if row is not None else None
        return DEFAULT_SCHEMA if schema in (None, "public") else f"{schema}_keys"

    def _key_conninfo(self) -> str:
        """The connection string of the key store's connection: the store's own, its pool's, or
        the host connection's parameters (with the password it was opened with)."""
        if self._conninfo is not None:
            return self._conninfo
        if self._pool is not None:
            conninfo = self._pool.conninfo  # a string, or a function that returns one
            return conninfo() if callable(conninfo) else conninfo
        assert self._conn is not None
        password = self._conn.pgconn.password
        extra = {"password": password.decode()} if password else {}
        return make_conninfo(self._conn.info.dsn, **extra)

    def close(self) -> None:
        """Close the pool the store opened and its key store, if opened; a host's pool or
        connection is left open."""
        self._closed = True
        with self._keys_lock:
            if self._keys is not None:
                self._keys.close()
        if self._owns_pool and self._pool is not None:
            self._pool.close()
