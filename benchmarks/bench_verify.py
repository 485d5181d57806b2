"""How fast ``mediation verify`` checks a large store (run by hand; not part of the test suite).

    python benchmarks/bench_verify.py [--events 1000000] [--db PATH] [--jobs N ...] [--strict | --both]
                                      [--no-seals]
                                      [--repeat R] [--profile] [--reference]

Builds (once; reused while it exists) a SQLite store of about ``--events`` events: the worked
example's two cases (:mod:`mediation.demo`, 21 and 13 events) run through the real service over
and over, each batch in a :class:`~mediation.MemoryStore`, then bulk-inserted.  Then it times
``mediation verify --db PATH -q`` in-process, end to end (worker start-up included), which reads
every record, recomputes every hash and link and replays every transition, permission and guard;
``--strict`` times ``verify --strict`` (payload re-validation and canonical form too), ``--both``
times each.  ``--jobs N`` (repeatable) passes ``--jobs N``; without it the CLI's default (one
worker per CPU) applies.  Each run is repeated ``--repeat`` times; it prints events per second.
With ``--jobs 1`` it also prints events per CPU second of the process (its process time), which
a busy machine disturbs less than the wall clock.  ``--profile`` profiles one run in one process
instead (top functions by own time).  ``--reference`` also times, in the same run, a reference that only canonicalizes and hashes the
same bodies: every row read with :mod:`sqlite3`, ``rfc8785.dumps(json.loads(body))`` and SHA-256
of the domain tag and the result (the ``rfc8785`` package of the test extra); once reading the
rows, once on the bodies already in memory.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import sqlite3
import sys
import time

from mediation import MemoryStore, SQLiteKeyStore, SQLiteStore
from mediation.cli import main
from mediation.demo import START, StepClock, leak_dispute, new_service, noise_dispute

BATCH_CASES = 2000


def build(path: str, target: int) -> int:
    """Create the store at ``path`` with at least ``target`` events; returns the event count."""
    SQLiteStore(path).close()  # the schema
    SQLiteKeyStore(path + ".keys").close()  # the key store's, beside it (as the store names it)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("ATTACH DATABASE ? AS keys", (path + ".keys",))
    total = cases = 0
    started = time.perf_counter()
    while total < target:
        memory = MemoryStore()
        clock = StepClock()
        ids = iter([f"case-{n:07d}" for n in range(cases, cases + BATCH_CASES)])
        service = new_service(memory, clock=clock, new_id=ids.__next__)
        for i in range(BATCH_CASES):
            clock.now = START  # every case starts on the same morning
            (noise_dispute if i % 2 == 0 else leak_dispute)(service)
        cases += BATCH_CASES
        conn.execute("BEGIN")
        for summary in memory.cases():
            records = memory.read(summary.case_id)
            conn.executemany(
                "INSERT INTO mediation_events (case_id, seq, hash, body) VALUES (?, ?, ?, ?)",
                [(r.case_id, r.seq, r.hash, r.body) for r in records],
            )
            conn.execute(
                "INSERT INTO mediation_cases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    summary.case_id, summary.committee, summary.state, summary.level,
                    summary.category, summary.seq, summary.head, summary.opened_at,
                    summary.updated_at, summary.registered_at, int(summary.paused),
                    summary.paused_seconds, summary.extra_days, summary.workflow,
                ),
            )  # fmt: skip
            total += len(records)
        # the keys the batch sealed with: verify opens every sealed value with them (the default)
        conn.executemany(
            "INSERT INTO keys.mediation_keys (case_id, subject, epoch, key) VALUES (?, ?, ?, ?)",
            [(*name, key) for name, key in memory.key_store()._keys.items()],  # type: ignore[attr-defined]
        )
        conn.execute("COMMIT")
        rate = total / (time.perf_counter() - started)
        print(f"  built {cases} cases, {total} events ({rate:,.0f} events/s)", file=sys.stderr)
    conn.close()
    return total


def count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM mediation_events").fetchone()[0])
    finally:
        conn.close()


def reference(path: str, repeat: int) -> tuple[float, float]:
    """Events per CPU second of canonicalizing and hashing every body of ``path`` (rfc8785 +
    hashlib): reading the rows included, and on the bodies in memory; best of ``repeat``."""
    import rfc8785

    tag = b"mediation.event.v1\x00"
    sha256, loads, canonical = hashlib.sha256, json.loads, rfc8785.dumps
    with_reading, in_memory = 0.0, 0.0
    for _ in range(repeat):
        conn = sqlite3.connect(path)
        started = time.process_time()
        bodies = []
        for (body,) in conn.execute("SELECT body FROM mediation_events ORDER BY case_id, seq"):
            sha256(tag + canonical(loads(body))).hexdigest()
            bodies.append(body)
        with_reading = max(with_reading, len(bodies) / (time.process_time() - started))
        conn.close()
        started = time.process_time()
        for body in bodies:
            sha256(tag + canonical(loads(body))).hexdigest()
        in_memory = max(in_memory, len(bodies) / (time.process_time() - started))
    return with_reading, in_memory


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default=os.path.join("benchmarks", "verify-bench.db"))
    parser.add_argument("--jobs", type=int, action="append", help="repeatable; default: the CLI's")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--strict", action="store_true", help="time verify --strict")
    mode.add_argument("--both", action="store_true", help="time verify and verify --strict")
    parser.add_argument(
        "--no-seals", action="store_true", help="pass --no-seals (the sealed values stay closed)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--reference", action="store_true", help="also time rfc8785 + hashlib on the same bodies"
    )
    args = parser.parse_args(argv)

    if os.path.exists(args.db) and count(args.db) >= args.events:
        events = count(args.db)
        print(f"reusing {args.db}: {events} events", file=sys.stderr)
    else:
        for suffix in ("", "-wal", "-shm", ".keys", ".keys-journal"):
            if os.path.exists(args.db + suffix):
                os.unlink(args.db + suffix)
        print(f"building {args.db} ...", file=sys.stderr)
        events = build(args.db, args.events)

    argv_verify = ["verify", "--db", args.db, "-q", "--lang", "en"]
    if args.no_seals:
        argv_verify.append("--no-seals")
    if args.profile:
        out, err = io.StringIO(), io.StringIO()
        profiler = cProfile.Profile()
        extra = ["--jobs", "1"] + (["--strict"] if args.strict else [])
        code = profiler.runcall(main, argv_verify + extra, None, out, err)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return code
    modes = [[], ["--strict"]] if args.both else [["--strict"]] if args.strict else [[]]
    jobs = [["--jobs", str(n)] for n in args.jobs] if args.jobs else [[]]
    code = 0
    for strict in modes:
        for job in jobs:
            rates, cpu_rates = [], []
            for _ in range(args.repeat):
                out, err = io.StringIO(), io.StringIO()
                started, cpu_started = time.perf_counter(), time.process_time()
                code = main(argv_verify + strict + job, stdout=out, stderr=err) or code
                elapsed = time.perf_counter() - started
                rates.append(events / elapsed)
                cpu_rates.append(events / (time.process_time() - cpu_started))
                if code != 0:
                    print(out.getvalue()[-2000:], err.getvalue(), file=sys.stderr)
                    return code
            label = " ".join(["mediation verify", *strict, *job])
            print(out.getvalue().strip().splitlines()[-1])
            print(
                f"{label}: {events} events, best {events / max(rates):.1f} s = "
                f"{max(rates):,.0f} events/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
            )
            if job == ["--jobs", "1"]:  # one process: its CPU time is the run's, whatever the load
                print(f"  per CPU second of this process: best {max(cpu_rates):,.0f} events/s")
    if args.reference:
        with_reading, in_memory = reference(args.db, args.repeat)
        print(
            f"reference (rfc8785 + hashlib), per CPU second: {with_reading:,.0f} events/s reading "
            f"the rows, {in_memory:,.0f} events/s on the bodies in memory"
        )
    return code


if __name__ == "__main__":
    sys.exit(main_())
