"""A host app's own table and a case's events, committed (or rolled back) in one transaction.

The host (a street office's intake desk) writes a receipt row for every dispute it takes in, and
opens the mediation case in the same database transaction: either both exist afterwards or
neither does.  The store gets the host's own connection and works inside a SAVEPOINT; it never
commits or rolls back the host's transaction.

    python examples/host_transaction.py [DB_PATH]       # SQLite (a temporary file by default)
    MEDIATION_PG_DSN=postgresql://... python examples/host_transaction.py   # PostgreSQL

With PostgreSQL the example works in a schema of its own (``mediation_example_<random>``), which it
drops at the end.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from mediation import Actor, CaseService, StaticDirectory, Store, verify
from mediation import commands as cmd

COMMITTEE = "shengli"  # 胜利街道人民调解委员会

RECEIPTS = """CREATE TABLE IF NOT EXISTS intake_receipts (
    receipt_no TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL,
    clerk      TEXT NOT NULL
)"""


class SQLiteHost:
    """The host's SQLite connection: autocommit mode, explicit BEGIN/COMMIT/ROLLBACK."""

    def __init__(self, path: str) -> None:
        from mediation import SQLiteStore

        self.where = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(RECEIPTS)
        self.store: Store = SQLiteStore(connection=self.conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def add_receipt(self, receipt_no: str, case_id: str, clerk: str) -> None:
        self.conn.execute(
            "INSERT INTO intake_receipts VALUES (?, ?, ?)", (receipt_no, case_id, clerk)
        )

    def receipts_for(self, case_id: str) -> int:
        sql = "SELECT count(*) FROM intake_receipts WHERE case_id = ?"
        return int(self.conn.execute(sql, (case_id,)).fetchone()[0])

    def close(self) -> None:
        self.store.close()
        self.conn.close()


class PostgresHost:
    """The host's psycopg connection: autocommit mode, ``conn.transaction()`` blocks."""

    def __init__(self, dsn: str) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        from mediation.stores.postgres import PostgresStore

        self.dsn = dsn
        self.schema = f"mediation_example_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dsn, autocommit=True) as setup:
            setup.execute(f"CREATE SCHEMA {self.schema}")
        self.where = f"PostgreSQL, schema {self.schema}"
        self.conn = psycopg.connect(
            make_conninfo(dsn, options=f"-c search_path={self.schema}"), autocommit=True
        )
        self.conn.execute(RECEIPTS)
        self.store: Store = PostgresStore(connection=self.conn)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self.conn.transaction()

    def add_receipt(self, receipt_no: str, case_id: str, clerk: str) -> None:
        self.conn.execute(
            "INSERT INTO intake_receipts VALUES (%s, %s, %s)", (receipt_no, case_id, clerk)
        )

    def receipts_for(self, case_id: str) -> int:
        sql = "SELECT count(*) FROM intake_receipts WHERE case_id = %s"
        row = self.conn.execute(sql, (case_id,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        import psycopg

        self.store.close()
        self.conn.close()
        with psycopg.connect(self.dsn, autocommit=True) as cleanup:
            cleanup.execute(f"DROP SCHEMA {self.schema} CASCADE")


def intake(host: SQLiteHost | PostgresHost, service: CaseService, receipt_no: str) -> str:
    """Take in one dispute: open the case and write the receipt, in one host transaction."""
    case_id = f"sl-{uuid.uuid4().hex[:10]}"
    resident = Actor("res-0301")
    try:
        with host.transaction():
            service.open(
                resident,
                cmd.Apply(
                    committee=COMMITTEE,
                    category="物业",
                    description="楼道堆放杂物，物业多次劝说无果",
                    applicants=(cmd.Party("res-0301", "孙先生"),),
                    respondents=(cmd.Party("pm-01", "胜利物业"),),
                ),
                case_id=case_id,
            )
            host.add_receipt(receipt_no, case_id, clerk="窗口-赵")  # fails on a reused number
    except Exception as exc:
        # the host rolled back: the case's events went with it; drop the service's cached copy
        service.forget(case_id)
        print(f"  receipt {receipt_no}: rolled back ({type(exc).__name__})")
    else:
        print(f"  receipt {receipt_no}: committed")
    return case_id


def run(host: SQLiteHost | PostgresHost) -> int:
    service = CaseService(host.store, directory=StaticDirectory())
    print(f"intake desk on {host.where}")
    run_id = uuid.uuid4().hex[:6]
    kept = intake(host, service, f"R-{run_id}-001")
    dropped = intake(host, service, f"R-{run_id}-001")  # the clerk reused the receipt number
    ok = True
    for case_id, expected in ((kept, True), (dropped, False)):
        events = host.store.read(case_id)
        receipts = host.receipts_for(case_id)
        exists = bool(events) and receipts == 1
        ok &= exists == expected and (bool(events) == bool(receipts))
        verdict = verify(events, case_id).describe("en") if events else "no events"
        print(f"  case {case_id}: {len(events)} event(s), {receipts} receipt(s); {verdict}")
    host.close()
    print("both or neither, every time" if ok else "MISMATCH between receipts and cases")
    return 0 if ok else 1


if __name__ == "__main__":
    dsn = os.environ.get("MEDIATION_PG_DSN")
    if dsn:
        sys.exit(run(PostgresHost(dsn)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "intake.db")
    sys.exit(run(SQLiteHost(path)))
