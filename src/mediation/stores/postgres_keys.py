"""The PostgreSQL key store (psycopg 3; install ``mediation[postgres]``): the sealing keys of
:mod:`mediation._keys` in a schema of their own, apart from the events.

Schema ``mediation_keys`` by default (created if missing, with every privilege of ``PUBLIC``
revoked), holding:

- ``keys(case_id, subject, epoch, key)``, primary key ``(case_id, subject, epoch)``;
- ``tombstones(case_id, subject)``: the destroyed subjects of each case, ``subject`` NULL for the
  whole case;
- ``meta(id, epoch)``: its one row holds the current epoch.

Every call runs on the store's one connection, under a lock (threads) and in the database's
transactions (processes): :meth:`PostgresKeyStore.create` and :meth:`PostgresKeyStore.destroy` of a
case hold a transaction-scoped advisory lock on it, so that no key is created beside a tombstone,
and :meth:`PostgresKeyStore.rotate` is one ``UPDATE ... RETURNING``.  A broken connection is
replaced on the next call.

:meth:`PostgresKeyStore.destroy` deletes the keys, records the tombstone and commits, then rewrites
the keys table (``VACUUM FULL``) so that the deleted rows' bytes stay in none of its files.  A row a
transaction still open elsewhere could see (a ``REPEATABLE READ`` one that began before the delete)
is copied by the rewrite and stays until a later destroy; and the server's write-ahead log and
backups keep what they kept (they are the database administrator's to age out).

Every ``psycopg`` error becomes a :class:`~mediation.StoreError` in one place, :func:`_translate`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from .._errors import StoreError
from .._keys import destroyed_error

__all__ = ["DEFAULT_SCHEMA", "PostgresKeyStore"]

T = TypeVar("T")

#: the schema a :class:`PostgresKeyStore` keeps its tables in unless told otherwise
DEFAULT_SCHEMA = "mediation_keys"

_SCHEMA = """\
CREATE SCHEMA IF NOT EXISTS {schema};
REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
CREATE TABLE IF NOT EXISTS {schema}.keys (
    case_id text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL,
    epoch   bigint NOT NULL CHECK (epoch >= 1),
    key     bytea  NOT NULL,
    PRIMARY KEY (case_id, subject, epoch)
);
CREATE TABLE IF NOT EXISTS {schema}.tombstones (
    case_id text COLLATE "C" NOT NULL,
    subject text COLLATE "C"
);
CREATE UNIQUE INDEX IF NOT EXISTS tombstones_name
    ON {schema}.tombstones (case_id, coalesce(subject, ''), (subject IS NULL));
CREATE TABLE IF NOT EXISTS {schema}.meta (
    id    integer PRIMARY KEY CHECK (id = 1),
    epoch bigint  NOT NULL CHECK (epoch >= 1)
);
INSERT INTO {schema}.meta (id, epoch) VALUES (1, 1) ON CONFLICT DO NOTHING;
REVOKE ALL ON {schema}.keys, {schema}.tombstones, {schema}.meta FROM PUBLIC;
"""
#: whether a tombstone covers (case_id, subject): the subject's own, or the whole case's
_DEAD = (
    "EXISTS (SELECT FROM {schema}.tombstones WHERE case_id = %(case_id)s "
    "AND (subject IS NULL OR subject = %(subject)s))"
)

#: the condition naming one key
_KEY = "case_id = %(case_id)s AND subject = %(subject)s AND epoch = %(epoch)s"
#: the statements, by name: ``{schema}`` is the key store's schema, ``{lock}`` the prefix of the
#: names of its advisory locks (a case's creations and destructions take the case's)
_STATEMENTS = {
    "schema": _SCHEMA,
    "schema lock": "SELECT pg_advisory_xact_lock(hashtextextended({lock} || '*schema', 0))",
    "lock": "SELECT pg_advisory_xact_lock(hashtextextended({lock} || %(case_id)s, 0))",
    "dead": "SELECT " + _DEAD,
    "get": f"SELECT key FROM {{schema}}.keys WHERE {_KEY} AND NOT {_DEAD}",
    "insert": "INSERT INTO {schema}.keys (case_id, subject, epoch, key) "
    "VALUES (%(case_id)s, %(subject)s, %(epoch)s, %(key)s) ON CONFLICT DO NOTHING",
    "stored": f"SELECT key FROM {{schema}}.keys WHERE {_KEY}",
    "delete": "DELETE FROM {schema}.keys WHERE case_id = %(case_id)s "
    "AND (%(subject)s::text IS NULL OR subject = %(subject)s)",
    "tombstone": "INSERT INTO {schema}.tombstones (case_id, subject) "
    "VALUES (%(case_id)s, %(subject)s) ON CONFLICT DO NOTHING",
    "vacuum": "VACUUM FULL {schema}.keys",
    "epoch": "SELECT epoch FROM {schema}.meta WHERE id = 1",
    "rotate": "UPDATE {schema}.meta SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch",
}


@contextlib.contextmanager
def _translate(failed: str, case: str | None = None) -> Iterator[None]:
    """The one place where ``psycopg`` errors become :class:`~mediation.StoreError` (the original
    as ``__cause__``); ``failed`` begins the message."""
    try:
        yield
    except psycopg.Error as exc:
        raise StoreError(f"{failed}: {exc}", case=case) from exc


class PostgresKeyStore:
    """Keys in PostgreSQL, in the schema ``schema`` of the database ``dsn`` names (a connection
    string, ``postgresql://user:pw@host/db`` or ``key=value`` pairs); the schema and its tables are
    created if missing.  ``timeout`` bounds the wait for a connection, in seconds.

    Safe to share between threads (one autocommit connection, used under a lock) and between
    processes: of two creating the same key, both get the first one's; a rotation is one atomic
    ``UPDATE``.
    """

    def __init__(self, dsn: str, schema: str = DEFAULT_SCHEMA, *, timeout: float = 30.0) -> None:
        self._dsn = dsn
        #: the schema of the key store's tables
        self.schema = schema
        self._timeout = timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        names = {"schema": sql.Identifier(schema), "lock": sql.Literal(f"mediation.keys:{schema}:")}
        self._sql = {name: sql.SQL(text).format(**names) for name, text in _STATEMENTS.items()}
        failed = f"cannot create the key store schema {schema!r}"
        with self._using(failed) as conn, conn.transaction():
            conn.execute(self._sql["schema lock"])
            conn.execute(self._sql["schema"])

    @contextlib.contextmanager
    def _using(self, failed: str, case: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        """The store's connection (opened, or replaced when broken), held by this thread, with the
        block's ``psycopg`` errors translated."""
        with self._lock, _translate(failed, case):
            if self._closed:
                raise StoreError(f"{failed}: the key store is closed", case=case)
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=max(1, round(self._timeout))
                )
            yield self._conn

    def _call(
        self, failed: str, work: Callable[[psycopg.Connection[Any]], T], case: str | None = None
    ) -> T:
        """``work(connection)``, run again once on a fresh connection when the server ended the
        one it ran on (a restart, an administrator's terminate): every call but :meth:`rotate`
        may run twice (reads, and writes that leave the same state however often they run)."""
        for attempt in (1, 2):
            try:
                with self._using(failed, case) as conn:
                    return work(conn)
            except StoreError as exc:
                ended = isinstance(exc.__cause__, psycopg.OperationalError) and (
                    self._conn is None or self._conn.closed or self._conn.broken
                )
                if attempt == 2 or not ended:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, case_id: str, subject: str, epoch: int) -> bytes | None:
        name = {"case_id": case_id, "subject": subject, "epoch": epoch}

        def work(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(self._sql["get"], name).fetchone()

        row = self._call(f"reading a key of case {case_id} failed", work, case_id)
        return None if row is None else bytes(row[0])

    def create(self, case_id: str, subject: str, epoch: int, key: bytes) -> bytes:
        name = {"case_id": case_id, "subject": subject, "epoch": epoch, "key": bytes(key)}

        def work(conn: psycopg.Connection[Any]) -> Any:
            with conn.transaction():
                conn.execute(self._sql["lock"], name)
                dead = conn.execute(self._sql["dead"], name).fetchone()
                if dead is not None and dead[0]:
                    raise destroyed_error(case_id, subject)
                conn.execute(self._sql["insert"], name)
                return conn.execute(self._sql["stored"], name).fetchone()

        row = self._call(f"creating a key of case {case_id} failed", work, case_id)
        assert row is not None
        return bytes(row[0])

    def destroy(self, case_id: str, subject: str | None = None) -> int:
        """See :meth:`KeyStore.destroy`: delete, leave the tombstone, commit, then ``VACUUM FULL``
        the keys table (which waits for the transactions using it to end)."""
        name = {"case_id": case_id, "subject": subject}
        warnings: list[str] = []

        def work(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                conn.execute(self._sql["lock"], name)
                count = conn.execute(self._sql["delete"], name).rowcount
                conn.execute(self._sql["tombstone"], name)
            # autocommit: outside any transaction.  VACUUM skips a table it may not rewrite (not
            # the owner's) with a mere warning: that is an error here
            warnings.clear()

            def note(diag: psycopg.errors.Diagnostic) -> None:
                if diag.severity_nonlocalized == "WARNING":
                    warnings.append(diag.message_primary or "")

            conn.add_notice_handler(note)
            try:
                conn.execute(self._sql["vacuum"])
            finally:
                conn.remove_notice_handler(note)
            return count

        count = self._call(f"destroying the keys of case {case_id} failed", work, case_id)
        if warnings:
            raise StoreError(
                f"the keys of case {case_id} were destroyed, but rewriting the keys table to "
                f"erase their bytes failed ({'; '.join(warnings)}): run destroy again as the "
                "table's owner",
                case=case_id,
            )
        return count

    def destroyed(self, case_id: str, subject: str) -> bool:
        name = {"case_id": case_id, "subject": subject}

        def work(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(self._sql["dead"], name).fetchone()

        row = self._call(f"reading the tombstones of case {case_id} failed", work, case_id)
        return bool(row is not None and row[0])

    def epoch(self) -> int:
        def work(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(self._sql["epoch"]).fetchone()

        row = self._call("reading the key epoch failed", work)
        assert row is not None
        return int(row[0])

    def rotate(self) -> int:
        """Start a new epoch; not run again on a connection the server ended (it is not
        idempotent): the :class:`~mediation.StoreError` then leaves the outcome to be read."""
        with self._using("rotating the key epoch failed") as conn:
            row = conn.execute(self._sql["rotate"]).fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"PostgresKeyStore(schema={self.schema!r})"
