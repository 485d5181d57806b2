"""SQLite benchmarks: one durable command per transaction against a raw single-row INSERT
transaction, and replay + verification throughput from the database.

Both sides of the durable comparison use the same directory (same file system), the same pragmas
(``journal_mode=WAL``, ``synchronous=FULL``), the same row layout and row size, and alternate in
blocks so that they see the same disk.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
from typing import Any

from bench_core import MINUTES, Cast, filesystem_of, negotiating_case, perf_ns

from mediation import MemoryStore, SQLiteStore, verify
from mediation import commands as cmd


def _raw_connection(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE events (case_id TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, "
        "body BLOB NOT NULL, PRIMARY KEY (case_id, seq)) WITHOUT ROWID"
    )
    return conn


def durable_command(
    directory: str | None = None, rounds: int = 10, per_round: int = 50
) -> dict[str, Any]:
    """Median ms per durable ``RecordMinutes`` through the service on ``SQLiteStore``, and per raw
    ``BEGIN IMMEDIATE; INSERT one row; COMMIT`` with the same row size, alternating in blocks."""
    workdir = tempfile.mkdtemp(prefix="mediation-bench-", dir=directory)
    store = SQLiteStore(os.path.join(workdir, "service.db"))
    cast = Cast()
    service = cast.service(store)
    cid = negotiating_case(service, cast)
    sample = service.execute(cast.mediator, cid, MINUTES).stored
    raw = _raw_connection(os.path.join(workdir, "raw.db"))
    body, digest = sample.body, sample.hash
    raw_seq = itertools.count(1)

    def command() -> None:
        service.execute(cast.mediator, cid, MINUTES)

    def insert() -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "INSERT INTO events (case_id, seq, hash, body) VALUES (?, ?, ?, ?)",
            (cid, next(raw_seq), digest, body),
        )
        raw.execute("COMMIT")

    def block(fn: Any, out: list[float]) -> None:
        for _ in range(per_round):
            start = perf_ns()
            fn()
            out.append((perf_ns() - start) / 1e6)

    service_ms: list[float] = []
    raw_ms: list[float] = []
    block(command, [])  # warm up both
    block(insert, [])
    for _ in range(rounds):
        block(command, service_ms)
        block(insert, raw_ms)
    s, r = statistics.median(service_ms), statistics.median(raw_ms)
    verdict = verify(store.read(cid), cid)
    assert verdict.ok, verdict.describe()
    store.close()
    raw.close()
    fs = filesystem_of(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "service_ms": s,
        "raw_insert_ms": r,
        "ratio": s / r,
        "samples": len(service_ms),
        "row_bytes": len(body) + len(digest) + len(cid),
        "filesystem": fs,
    }


def replay_verify(
    cases: int = 1000, events_per_case: int = 100, directory: str | None = None
) -> dict[str, Any]:
    """Build ``cases`` × ``events_per_case`` real events, store them in SQLite, then time reading
    and verifying every case from the database (per case, and by one ordered scan)."""
    workdir = tempfile.mkdtemp(prefix="mediation-bench-", dir=directory)
    path = os.path.join(workdir, "replay.db")
    # the events are made by the real command path (in memory, which is quicker to fill) ...
    cast = Cast()
    memory = MemoryStore()
    service = cast.service(memory, cache_size=16)
    ids = []
    for i in range(cases):
        cid = negotiating_case(service, cast, i)
        for j in range(events_per_case - 7):
            service.execute(
                cast.mediator, cid, cmd.RecordMinutes(f"第 {j + 1} 次陈述：双方各自说明情况")
            )
        ids.append(cid)
    # ... and copied into SQLite, one transaction per case
    store = SQLiteStore(path)
    for cid in ids:
        summary = memory.summary(cid)
        assert summary is not None
        store.append(summary, memory.read(cid), 0)
    store.close()
    total = cases * events_per_case
    db_mb = os.path.getsize(path) / 1e6

    store = SQLiteStore(path, create=False)
    start = perf_ns()
    for cid in store.case_ids():
        verdict = verify(store.read(cid), cid)
        if not verdict.ok:
            raise AssertionError(verdict.describe())
    per_case_s = (perf_ns() - start) / 1e9

    start = perf_ns()
    verified = 0
    for cid, group in itertools.groupby(store.scan(), key=lambda r: r.case_id):
        verdict = verify(group, cid)
        if not verdict.ok:
            raise AssertionError(verdict.describe())
        verified += verdict.events
    scan_s = (perf_ns() - start) / 1e9
    assert verified == total

    records = {cid: store.read(cid) for cid in ids}
    start = perf_ns()
    for cid, recs in records.items():
        verify(recs, cid)
    verify_only_s = (perf_ns() - start) / 1e9

    # the reference: canonicalize and hash the same bodies (rfc8785 + hashlib), nothing else
    reference_s = None
    try:
        import rfc8785
    except ImportError:  # the test extra is not installed
        pass
    else:
        tag, bodies = b"mediation.event.v1\x00", [r.body for recs in records.values() for r in recs]
        start = perf_ns()
        for body in bodies:
            hashlib.sha256(tag + rfc8785.dumps(json.loads(body))).hexdigest()
        reference_s = (perf_ns() - start) / 1e9
    store.close()
    fs = filesystem_of(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "cases": cases,
        "events": total,
        "db_mb": db_mb,
        "read_verify_per_case_eps": total / per_case_s,
        "scan_verify_eps": total / scan_s,
        "verify_only_eps": total / verify_only_s,
        "reference_eps": None if reference_s is None else total / reference_s,
        "read_verify_per_case_s": per_case_s,
        "filesystem": fs,
    }
