"""PostgreSQL store benchmark (run by hand; not part of the test suite).

Measures, against the server in ``MEDIATION_PG_DSN`` (or ``--dsn``), in a scratch schema that is
dropped afterwards:

1. single-command latency: one process issues ``record_minutes`` commands one after another on
   one case (each is one durable transaction);
2. throughput with 1 and with 4 writer processes, each on its own cases (no conflicts), for a fixed
   time, in alternating rounds; the ratio shows how well independent cases scale.  Measured
   durable (the default ``synchronous_commit=on``: every command waits for its WAL flush) and with
   ``synchronous_commit=off`` (no flush wait: what is left is CPU and locking);
3. replay + verify: stream every event back (server-side cursor) and verify every case's chain,
   transitions and permissions.

    MEDIATION_PG_DSN=postgresql://mediation:mediation@127.0.0.1:5432/mediation_test \\
        python benchmarks/bench_postgres.py [--seconds 5] [--latency 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import multiprocessing as mp
import os
import queue
import statistics
import sys
import time
import uuid
from typing import Any

from mediation import Actor, CaseService, StaticDirectory, verify
from mediation import commands as cmd
from mediation.stores.postgres import PostgresStore

COMMITTEE = "bench"


def _service(conninfo: str) -> tuple[CaseService, dict[str, Actor]]:
    directory = StaticDirectory()
    people = {
        "director": directory.add(Actor.with_roles("director", {COMMITTEE: ["director"]})),
        "med": directory.add(Actor.with_roles("med", {COMMITTEE: ["mediator"]})),
        "p1": Actor("p1"),
        "p2": Actor("p2"),
    }
    return CaseService(PostgresStore(conninfo, pool_size=1), directory=directory), people


def _negotiating(service: CaseService, people: dict[str, Actor], case_id: str) -> None:
    service.open(
        people["p1"],
        cmd.Apply(
            committee=COMMITTEE,
            category="邻里",
            description="噪声",
            applicants=(cmd.Party("p1", "陈女士"),),
            respondents=(cmd.Party("p2", "刘先生"),),
        ),
        case_id=case_id,
    )
    med = people["med"]
    service.execute(people["p2"], case_id, cmd.RecordConsent())
    service.execute(people["director"], case_id, cmd.Register())
    service.execute(people["director"], case_id, cmd.AssignMediator("med", lead=True))
    service.execute(med, case_id, cmd.NotifyRights(("p1", "p2")))
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    service.execute(med, case_id, cmd.ScheduleMeeting(when, "调解室"))
    service.execute(med, case_id, cmd.OpenSession())


def latency(conninfo: str, n: int, batch: int = 50) -> tuple[list[float], list[float]]:
    """Per-command times of ``n`` commands, and of ``n`` raw single-row INSERTs of the same size
    (autocommit, same table shape), measured in alternating batches so both see the same load."""
    import psycopg

    service, people = _service(conninfo)
    _negotiating(service, people, "latency-1")
    body = service.store.read("latency-1")[-1].body
    command_times: list[float] = []
    insert_times: list[float] = []
    with psycopg.connect(conninfo, autocommit=True) as raw:
        raw.execute(
            "CREATE TABLE bench_raw (case_id text, seq bigint, hash text, body bytea, "
            "PRIMARY KEY (case_id, seq))"
        )
        for start in range(0, n, batch):
            for i in range(start, min(n, start + batch)):
                t = time.perf_counter()
                service.execute(people["med"], "latency-1", cmd.RecordMinutes(f"第 {i} 次笔录"))
                command_times.append(time.perf_counter() - t)
            for i in range(start, min(n, start + batch)):
                t = time.perf_counter()
                raw.execute(
                    "INSERT INTO bench_raw VALUES (%s, %s, %s, %s)", ("raw", i, "0" * 64, body)
                )
                insert_times.append(time.perf_counter() - t)
    service.store.close()
    return command_times, insert_times


def _writer(
    conninfo: str, run: str, writer: int, cases: int, seconds: float, barrier: Any, out: Any
) -> None:
    service, people = _service(conninfo)
    ids = [f"{run}-w{writer}-c{i}" for i in range(cases)]
    for cid in ids:
        _negotiating(service, people, cid)
    barrier.wait()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    for cid in itertools.cycle(ids):
        service.execute(people["med"], cid, cmd.RecordMinutes(f"{writer}:{done}"))
        done += 1
        if time.perf_counter() >= deadline:
            break
    out.put((done, time.perf_counter() - start))
    service.store.close()


def throughput(conninfo: str, writers: int, seconds: float, run: str) -> float:
    """Commands per second, summed over ``writers`` processes on distinct cases."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(conninfo, run, w, 4, seconds, barrier, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    results: list[tuple[int, float]] = []
    while len(results) < writers:
        try:
            results.append(out.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise SystemExit("a writer process failed") from None
    for p in procs:
        p.join()
    return sum(done / elapsed for done, elapsed in results)


def replay(conninfo: str) -> tuple[int, float, float]:
    """(events, scan events/s, scan + verify events/s) over the whole store."""
    with PostgresStore(conninfo) as store:
        start = time.perf_counter()
        events = sum(1 for _ in store.scan())
        scan_s = time.perf_counter() - start
        start = time.perf_counter()
        checked = 0
        for case_id, records in itertools.groupby(store.scan(), key=lambda r: r.case_id):
            batch = list(records)
            verdict = verify(batch, case_id)
            assert verdict.ok, verdict.describe()
            checked += len(batch)
        verify_s = time.perf_counter() - start
    assert checked == events
    return events, events / scan_s, events / verify_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("MEDIATION_PG_DSN"))
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    parser.add_argument("--latency", type=int, default=1000, help="commands in the latency run")
    parser.add_argument("--rounds", type=int, default=3, help="1-vs-4-writer rounds")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("set MEDIATION_PG_DSN or pass --dsn")
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    schema = f"mediation_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        version = admin.execute("SHOW server_version").fetchone()
    conninfo = make_conninfo(args.dsn, options=f"-c search_path={schema}")
    try:
        PostgresStore(conninfo).close()  # create the schema once, before the writers race
        print(f"PostgreSQL {version[0] if version else '?'}, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}")  # fmt: skip
        times, raw_times = latency(conninfo, args.latency)
        ms = sorted(t * 1000 for t in times)
        raw_ms = statistics.median(raw_times) * 1000
        print(f"single command: median {statistics.median(ms):.2f} ms, "
              f"p95 {ms[int(len(ms) * 0.95)]:.2f} ms; raw INSERT median {raw_ms:.2f} ms; "
              f"command / raw INSERT {statistics.median(ms) / raw_ms:.2f}x")  # fmt: skip
        # 1 and 4 writers alternate, so that both see the same disk and the same neighbours
        nosync = make_conninfo(
            conninfo, options=f"-c search_path={schema} -c synchronous_commit=off"
        )
        for label, target in (("durable", conninfo), ("synchronous_commit=off", nosync)):
            ratios = []
            for r in range(args.rounds):
                one = throughput(target, 1, args.seconds, f"{label[:3]}{r}a")
                four = throughput(target, 4, args.seconds, f"{label[:3]}{r}b")
                ratios.append(four / one)
                print(f"throughput ({label}), round {r + 1}: 1 writer {one:.0f} commands/s, "
                      f"4 writers {four:.0f} commands/s: {four / one:.2f}x")  # fmt: skip
            print(f"  median 4-writer speed-up ({label}): {statistics.median(ratios):.2f}x")
        events, scan_rate, verify_rate = replay(conninfo)
        print(f"replay: {events} events; scan {scan_rate:.0f} events/s; "
              f"scan + verify {verify_rate:.0f} events/s")  # fmt: skip
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
