"""Web benchmark: commands/s and latency through the reference web app (examples/webapp) under
uvicorn, with 1 and with 4 worker processes, on SQLite and on PostgreSQL (run by hand; not part of
the test suite).

Client processes (``--client-procs``, each with ``--threads`` threads, one keep-alive HTTP
connection per thread) drive the demo's noise dispute (examples/webapp/scenario.py) over and over,
each thread on cases of its own: twenty ``POST`` requests per case through all six stages, each
with an ``Idempotency-Key`` as a host would send. Every request is timed on the client, from send
to answer; the first second of each run is not counted. Runs of 1 and 4 workers alternate, so that
both see the same disk and the same neighbours, and the median round is reported. Afterwards every
case of every run is verified from the store.

The server, the clients and PostgreSQL share the machine: on 2 cores the clients take a good part
of the CPU, so the figures are what the app does beside its load generator, not alone.

    python benchmarks/bench_web.py [--seconds 8] [--rounds 3] [--quick] [--dir DIR]
    MEDIATION_PG_DSN=postgresql://mediation:mediation@127.0.0.1:5432/mediation_test \\
        python benchmarks/bench_web.py            # PostgreSQL too (skipped without a DSN)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench_core import filesystem_of, machine  # noqa: E402
from examples.webapp.scenario import noise_case, request  # noqa: E402

from mediation import Store, verify  # noqa: E402

DIRECTORY = ROOT / "examples" / "webapp" / "directory.json"
WARM_UP = 1.0  # seconds of each run that are not counted


# -- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(workers: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """``uvicorn examples.webapp.app:app --workers N`` on a loopback port; yields its URL."""
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    full_env.update(env, MEDIATION_DIRECTORY=str(DIRECTORY))
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    command = [
        sys.executable, "-m", "uvicorn", "examples.webapp.app:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        "--no-access-log",
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, timeout=2.0) as http:
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start:\n{log.read_text()[-3000:]}")
                try:
                    # every worker has started once a burst of requests all succeed
                    if all(http.get("/commands").status_code == 200 for _ in range(4 * workers)):
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        time.sleep(0.5 * workers)  # let the last workers finish importing
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# -- the clients ---------------------------------------------------------------------------------


def _thread(url: str, tag: str, start: float, stop: float, out: list[Any]) -> None:
    """Drive fresh cases until ``stop``; append (latencies counted, errors, commands)."""
    latencies: list[float] = []
    errors = commands = 0
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    transport = httpx.HTTPTransport(socket_options=nodelay)
    with httpx.Client(base_url=url, timeout=30.0, transport=transport) as http:
        for n in itertools.count():
            case_id: str | None = None
            for p, phase in enumerate(noise_case(n)):
                for s, step in enumerate(phase):
                    if time.time() >= stop:
                        out.append((latencies, errors, commands))
                        return
                    path, body = request(step, case_id)
                    headers = {"X-Actor": step.actor, "Idempotency-Key": f"{tag}-{n}-{p}.{s}"}
                    sent = time.perf_counter()
                    response = http.post(path, json=body, headers=headers)
                    took = time.perf_counter() - sent
                    if response.status_code != 201:
                        errors += 1
                        break
                    commands += 1
                    if time.time() >= start:
                        latencies.append(took)
                    if step.opens:
                        case_id = response.json()["case_id"]


def _client(url: str, tag: str, threads: int, start: float, stop: float, results: Any) -> None:
    out: list[Any] = []
    workers = [
        threading.Thread(target=_thread, args=(url, f"{tag}.{t}", start, stop, out))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(out)


def load(url: str, procs: int, threads: int, seconds: float, tag: str) -> dict[str, Any]:
    """Run the clients for ``WARM_UP + seconds``; commands/s and latency over the counted part."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    begin = time.time() + 1.0  # time for the client processes to start
    start, stop = begin + WARM_UP, begin + WARM_UP + seconds
    clients = [
        ctx.Process(target=_client, args=(url, f"{tag}.{i}", threads, start, stop, results))
        for i in range(procs)
    ]
    for c in clients:
        c.start()
    rows = [row for _ in clients for row in results.get(timeout=seconds + 120)]
    for c in clients:
        c.join(30)
    latencies = sorted(t for lat, _, _ in rows for t in lat)
    if not latencies:
        raise RuntimeError("no command was answered")
    return {
        "commands_per_s": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "counted": len(latencies),
        "errors": sum(e for _, e, _ in rows),
        "commands": sum(c for _, _, c in rows),
    }


def in_process(store: Store, seconds: float) -> dict[str, Any]:
    """The same requests as :func:`_thread`, one by one through ``CaseService`` in this process:
    what the library costs without HTTP, uvicorn or FastAPI."""
    from examples.webapp.app import load_directory

    from mediation import Actor, CaseService
    from mediation.web import command_from_json

    people = load_directory(str(DIRECTORY))
    service = CaseService(store, directory=people)
    latencies: list[float] = []
    start = time.perf_counter()
    for n in itertools.count():
        case_id = ""
        for p, phase in enumerate(noise_case(n)):
            for s, step in enumerate(phase):
                actor = Actor(step.actor, people.grants_of(step.actor))
                command = command_from_json(step.command, step.payload)
                key = f"lib-{n}-{p}.{s}"
                sent = time.perf_counter()
                if step.opens:
                    case_id = service.open(actor, command, request_id=key).id
                else:
                    service.execute(actor, case_id, command, request_id=key)
                latencies.append(time.perf_counter() - sent)
        if time.perf_counter() - start > seconds:
            break
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "commands_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def check(store: Store) -> int:
    """Verify every case in ``store``; returns the number of events."""
    events = 0
    for case_id, group in itertools.groupby(store.scan(), key=lambda r: r.case_id):
        verdict = verify(group, case_id)
        if not verdict.ok:
            raise AssertionError(verdict.describe())
        events += verdict.events
    return events


# -- the backends --------------------------------------------------------------------------------


def run_sqlite(
    workers: int, clients: tuple[int, int], args: argparse.Namespace, workdir: str, tag: str
) -> dict[str, Any]:
    from mediation import SQLiteStore

    db = os.path.join(workdir, f"{tag}.db")
    with server(workers, {"MEDIATION_DB": db}, Path(workdir) / "uvicorn.log") as url:
        result = load(url, *clients, args.seconds, tag)
    with SQLiteStore(db) as store:
        events = check(store)
    assert events == result["commands"], (events, result["commands"])
    return result


def library_sqlite(args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    from mediation import SQLiteStore

    with SQLiteStore(os.path.join(workdir, "library.db")) as store:
        return in_process(store, args.seconds)


def library_postgres(args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from mediation.stores.postgres import PostgresStore

    schema = f"mediation_bench_web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        with PostgresStore(make_conninfo(args.dsn, options=f"-c search_path={schema}")) as store:
            return in_process(store, args.seconds)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def run_postgres(
    workers: int, clients: tuple[int, int], args: argparse.Namespace, workdir: str, tag: str
) -> dict[str, Any]:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from mediation.stores.postgres import PostgresStore

    schema = f"mediation_bench_web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    conninfo = make_conninfo(args.dsn, options=f"-c search_path={schema}")
    try:
        PostgresStore(conninfo).close()  # the schema, once, before the workers start
        env = {"MEDIATION_PG_DSN": conninfo, "MEDIATION_PG_POOL": str(args.pool)}
        with server(workers, env, Path(workdir) / "uvicorn.log") as url:
            result = load(url, *clients, args.seconds, tag)
        with PostgresStore(conninfo) as store:
            events = check(store)
        assert events == result["commands"], (events, result["commands"])
        return result
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="counted seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 1 and 4 workers")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="client threads per process")
    parser.add_argument("--pool", type=int, default=8, help="PostgreSQL connections per worker")
    parser.add_argument("--dsn", default=os.environ.get("MEDIATION_PG_DSN"))
    parser.add_argument("--dir", help="directory for the SQLite files")
    parser.add_argument("--quick", action="store_true", help="one short round (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 2.0, 1

    info = machine()
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    backends = [("SQLite", run_sqlite, library_sqlite)]
    if args.dsn:
        backends.append(("PostgreSQL", run_postgres, library_postgres))
    else:
        print("PostgreSQL: skipped (set MEDIATION_PG_DSN or pass --dsn)")
    workdir = tempfile.mkdtemp(prefix="mediation-bench-web-", dir=args.dir)
    clients = args.client_procs * args.threads
    print(f"SQLite files on {filesystem_of(workdir)}; {clients} client threads in "
          f"{args.client_procs} processes; {args.seconds:g} s counted per run", flush=True)  # fmt: skip
    results: dict[str, Any] = {
        "machine": info,
        "clients": clients,
        "runs": [],
        "single": {},
        "library": {},
    }
    try:
        for name, run, library in backends:
            # the library alone, in this process, one command after another: no HTTP at all
            res = library(args, workdir)
            results["library"][name] = res
            print(f"  {name}, library only, in process: {res['commands_per_s']:.0f} commands/s, "
                  f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms", flush=True)  # fmt: skip
            # one client, one worker: the latency of a command with nothing else going on
            res = run(1, (1, 1), args, workdir, f"{name[:2].lower()}single")
            results["single"][name] = res
            print(f"  {name}, 1 worker, 1 client: {res['commands_per_s']:.0f} commands/s, "
                  f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms", flush=True)  # fmt: skip
            for r in range(args.rounds):
                for workers in (1, 4):
                    tag = f"{name[:2].lower()}{r}w{workers}"
                    res = run(workers, (args.client_procs, args.threads), args, workdir, tag)
                    res.update(backend=name, workers=workers, round=r + 1)
                    results["runs"].append(res)
                    print(f"  {name}, {workers} worker(s), round {r + 1}: "
                          f"{res['commands_per_s']:.0f} commands/s, p50 {res['p50_ms']:.1f} ms, "
                          f"p99 {res['p99_ms']:.1f} ms, {res['errors']} errors", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        "\n| store | workers | clients | commands/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|"
    )
    for name, _, _ in backends:
        lib = results["library"][name]
        print(f"| {name}, library only | – | 1 | {lib['commands_per_s']:.0f} | "
              f"{lib['p50_ms']:.2f} | {lib['p99_ms']:.2f} |")  # fmt: skip
        one = results["single"][name]
        print(f"| {name} | 1 | 1 | {one['commands_per_s']:.0f} | {one['p50_ms']:.2f} | "
              f"{one['p99_ms']:.2f} |")  # fmt: skip
        for workers in (1, 4):
            runs = [r for r in results["runs"] if r["backend"] == name and r["workers"] == workers]
            mid = sorted(runs, key=lambda r: r["commands_per_s"])[len(runs) // 2]  # the median
            spread = ", ".join(f"{r['commands_per_s']:.0f}" for r in runs)
            print(f"| {name} | {workers} | {clients} | {mid['commands_per_s']:.0f} ({spread}) | "
                  f"{mid['p50_ms']:.1f} | {mid['p99_ms']:.1f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
