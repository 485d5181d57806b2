"""The reference web app under a real server: uvicorn with 4 worker processes, 32 HTTP clients.

Once on one SQLite file and once on PostgreSQL, 32 client threads drive 20 cases through all six
stages to ``resolved`` and the archive over HTTP, phase by phase
(:func:`examples.webapp.scenario.noise_case`):

- contested commands on the same case: both parties consenting at once, the four signatures of the
  agreement at once, minutes and a proposal at once, and races where two clients send the same
  state-changing command under different keys (exactly one may win, the other gets a 409);
- retried requests: the same Idempotency-Key sent again after the answer, and sent twice at once;
- a worker process killed with SIGKILL mid-run (uvicorn starts another): the clients whose
  connection broke send the same request again, with the same key, until they get an answer.

Afterwards: no answer was a 5xx; the store holds exactly the events the 2xx command answers
acknowledged (one per distinct case and seq, with the acknowledged hash), and no request id twice;
every case verifies (``mediation.verify`` over the stored records, and for SQLite also
``mediation verify --db FILE --directory ...`` in a subprocess); every case is resolved and archived.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import pg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # examples/ is not installed: import it from the checkout
    sys.path.insert(0, str(ROOT))

from examples.webapp.scenario import MEDIATORS, Step, noise_case, request  # noqa: E402

from mediation import SQLiteStore, Store, verify  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL and /proc"),
]

WORKERS = 4
CLIENTS = 32
CASES = 20
DIRECTORY = ROOT / "examples" / "webapp" / "directory.json"
#: phases (of noise_case) whose one command two clients race for under different keys
RACED = ("register", "open_session", "confirm_performed", "archive")
#: bounds: every wait below ends by itself
REQUEST_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
ATTEMPTS = 40  # per request, on a broken connection
RUN_DEADLINE = 150.0  # seconds for the whole drive
KILL_AFTER = 0.4  # of the expected events acknowledged


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _established(port: int) -> set[int]:
    """Socket inodes of the established TCP connections to local ``port`` (``/proc/net/tcp``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":  # ESTABLISHED
                inodes.add(int(cols[9]))
    return inodes


def _sockets(pid: int) -> set[int]:
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


class Server:
    """``uvicorn examples.webapp.app:app --workers 4`` on a free loopback port, in its own
    session (so that it and its workers can always be killed together)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [
            sys.executable, "-m", "uvicorn", "examples.webapp.app:app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(WORKERS), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        full_env.update(env, MEDIATION_DIRECTORY=str(DIRECTORY), PYTHONPATH=path)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def workers(self) -> list[int]:
        """The worker processes: the master's children that run uvicorn's spawned servers."""
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        return sorted(
            pid for pid in pids if _ppid(pid) == self.proc.pid and "spawn_main" in _cmdline(pid)
        )

    def connections(self) -> dict[int, int]:
        """Worker pid -> how many client connections it holds now."""
        established = _established(self.port)
        return {pid: len(_sockets(pid) & established) for pid in self.workers()}

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"uvicorn exited:\n{self.output()}"
                try:
                    if http.get("/commands").status_code == 200 and len(self.workers()) == WORKERS:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise AssertionError(f"uvicorn not ready in {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the master stops its workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        # whatever is left of the session: the master, a worker, the resource tracker
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Server]]:
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env, tmp_path / f"uvicorn-{len(started)}.log")
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


# -- the clients ---------------------------------------------------------------------------------


@dataclass
class Task:
    """One request of one phase of one case, sent until it gets an answer."""

    case: int
    phase: int
    step: Step
    key: str
    group: str  # the tasks of a race or of a concurrent duplicate share it
    resend: bool = False  # send again with the same key once answered: same event expected


@dataclass
class Answer:
    task: Task
    status: int
    body: Any


@dataclass
class Ledger:
    """Everything the clients saw, filled from many threads under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: list[Answer] = field(default_factory=list)
    #: (case id, seq) -> (hash, request id) of every 2xx command answer
    acked: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    broken: int = 0  # requests whose connection failed (then sent again)
    in_flight: int = 0  # requests sent and not yet answered
    resent: int = 0  # deliberate retries with the same key
    #: the times of the events answered to a request sent again after its connection broke
    recovered: list[str] = field(default_factory=list)

    def ack(self, event: dict[str, Any], key: str) -> None:
        where = (event["case"], event["seq"])
        with self.lock:
            seen = self.acked.setdefault(where, (event["hash"], key))
            if seen != (event["hash"], key):
                self.errors.append(f"{where} acknowledged twice: {seen} and {event['hash']}, {key}")


class Drive:
    """Runs the phases of every case with ``CLIENTS`` threads; a case's next phase is queued when
    every task of its current phase has an answer."""

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.phases = [noise_case(n, MEDIATORS[n % 2]) for n in range(CASES)]
        self.case_ids: dict[int, str] = {}
        self.pending: dict[int, int] = {}
        self.finished: set[int] = set()
        self.queue: collections.deque[Task] = collections.deque()
        self.cv = threading.Condition()
        self.stop = threading.Event()
        self.expected_events = sum(len(s) for p in self.phases for s in p)

    # the plan

    def tasks(self, n: int, p: int) -> list[Task]:
        out = []
        for s, step in enumerate(self.phases[n][p]):
            key = f"c{n}-p{p}-s{s}"
            first = Task(n, p, step, key, key, resend=self.rng.random() < 0.2)
            out.append(first)
            if step.command in RACED:  # a second client (or tab) sends the same command
                out.append(Task(n, p, step, key + "-rival", key))
            elif (n + p) % 5 == 0:  # the same request twice at once (a double click)
                out.append(Task(n, p, step, key, key))
        self.rng.shuffle(out)
        return out

    def start_phase(self, n: int, p: int) -> None:
        if p == len(self.phases[n]):
            self.finished.add(n)
            if len(self.finished) == CASES:
                self.stop.set()
            return
        tasks = self.tasks(n, p)
        self.pending[n] = len(tasks)
        self.queue.extend(tasks)
        self.cv.notify_all()

    def done(self, task: Task, answer: Answer | None) -> None:
        with self.cv:
            if answer is None:  # gave up (the error is recorded): stop the run, the test fails
                self.stop.set()
                return
            if task.step.opens and answer.status == 201:
                self.case_ids[task.case] = answer.body["case_id"]
            self.pending[task.case] -= 1
            if self.pending[task.case] == 0:
                self.start_phase(task.case, task.phase + 1)

    # the clients

    def send(self, http: httpx.Client, task: Task) -> Answer | None:
        path, body = request(task.step, self.case_ids.get(task.case))
        headers = {"X-Actor": task.step.actor, "Idempotency-Key": task.key}
        broke = False
        for attempt in range(ATTEMPTS):
            if self.stop.is_set():
                return None
            with self.ledger.lock:
                self.ledger.in_flight += 1
            try:
                response = http.post(path, json=body, headers=headers)
            except httpx.TransportError:  # the worker died under us: the same request again
                broke = True
                with self.ledger.lock:
                    self.ledger.broken += 1
                    self.ledger.in_flight -= 1
                time.sleep(min(0.5, 0.02 * 2**attempt) * random.random())
                continue
            try:
                content = response.json()
            except ValueError:
                content = response.text
            answer = Answer(task, response.status_code, content)
            with self.ledger.lock:
                self.ledger.in_flight -= 1
                self.ledger.answers.append(answer)
                self.ledger.statuses[response.status_code] += 1
            if response.status_code >= 500:
                with self.ledger.lock:
                    self.ledger.errors.append(f"{task.key}: {response.status_code} {response.text}")
                time.sleep(0.05)
                continue  # recorded as a failure; sent again so the run can go on
            if 200 <= response.status_code < 300:
                event = answer.body["event"] if task.step.opens else answer.body
                if event.get("request_id") != task.key:
                    self.ledger.errors.append(
                        f"{task.key}: answered with {event.get('request_id')}"
                    )
                self.ledger.ack(event, task.key)
                if broke:
                    with self.ledger.lock:
                        self.ledger.recovered.append(event["at"])
            return answer
        with self.ledger.lock:
            self.ledger.errors.append(f"{task.key}: no answer after {ATTEMPTS} attempts")
        return None

    def client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT) as http:
            while not self.stop.is_set():
                with self.cv:
                    while not self.queue and not self.stop.is_set():
                        self.cv.wait(0.2)
                    if self.stop.is_set():
                        return
                    task = self.queue.popleft()
                try:
                    answer = self.send(http, task)
                    if answer is not None and task.resend and 200 <= answer.status < 300:
                        with self.ledger.lock:
                            self.ledger.resent += 1
                        again = self.send(http, task)
                        if again is None or again.body != answer.body:
                            self.ledger.errors.append(f"{task.key}: resent, answered differently")
                except Exception as exc:  # a bug in the test: report it, do not hang
                    with self.ledger.lock:
                        self.ledger.errors.append(f"{task.key}: {exc!r}")
                    answer = None
                self.done(task, answer)

    def run(self, kill: Callable[[], None]) -> float:
        start = time.monotonic()
        with self.cv:
            for n in range(CASES):
                self.start_phase(n, 0)
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        killed = False
        while not self.stop.wait(0.05):
            if time.monotonic() - start > RUN_DEADLINE:
                self.ledger.errors.append(f"the run did not finish in {RUN_DEADLINE:.0f} s")
                self.stop.set()
            done = len(self.ledger.acked) / self.expected_events
            busy = self.ledger.in_flight >= CLIENTS // 2  # so that the victim has work in hand
            if not killed and done >= KILL_AFTER and (busy or done >= 1.5 * KILL_AFTER):
                kill()
                killed = True
        for t in threads:
            t.join(REQUEST_TIMEOUT.read or 20.0)
        assert killed, "the run ended before a worker was killed"
        return time.monotonic() - start


# -- the test ------------------------------------------------------------------------------------


def check(drive: Drive, store: Store) -> None:
    ledger = drive.ledger
    assert not ledger.errors, "\n".join(ledger.errors[:30])
    assert not [s for s in ledger.statuses if s >= 500], ledger.statuses
    assert drive.finished == set(range(CASES))

    # every race had one winner, every concurrent duplicate one event, and nothing else failed
    groups: dict[str, list[Answer]] = collections.defaultdict(list)
    for answer in ledger.answers:
        groups[answer.task.group].append(answer)
    for group, answers in groups.items():
        ok = [a for a in answers if 200 <= a.status < 300]
        keys = {a.task.key for a in answers}
        if len(keys) > 1:  # a race: one winner, the rivals refused as a conflict
            assert len({a.task.key for a in ok}) == 1, f"{group}: {[a.status for a in answers]}"
            assert all(a.status == 409 for a in answers if a not in ok), group
        else:
            assert len(ok) == len(answers), f"{group}: {[(a.status, a.body) for a in answers]}"
            events = {json.dumps(a.body, sort_keys=True) for a in ok}
            assert len(events) == 1, f"{group}: a retried request got different answers"

    # the store holds exactly what was acknowledged, and every request once
    records = list(store.scan())
    stored = {(r.case_id, r.seq): (r.hash, r.request_id) for r in records}
    assert len(records) == len(stored) == len(ledger.acked), (len(records), len(ledger.acked))
    assert stored == ledger.acked
    request_ids = [r.request_id for r in records]
    assert len(set(request_ids)) == len(request_ids)
    assert len(records) == drive.expected_events

    records_of: dict[str, list[Any]] = collections.defaultdict(list)
    for r in records:
        records_of[r.case_id].append(r)
    for n in range(CASES):
        case_id = drive.case_ids[n]
        verdict = verify(store.read(case_id), case_id)
        assert verdict.ok, verdict.describe()
        assert verdict.state == "resolved", (case_id, verdict.state)
        assert json.loads(records_of[case_id][-1].body)["type"] == "archive", case_id
    assert sorted(store.case_ids()) == sorted(drive.case_ids.values())


def run_against(server: Server) -> Drive:
    """Drive every case, SIGKILL one worker mid-run, and wait for its replacement."""
    seed = int(os.environ.get("MEDIATION_WEB_SEED") or random.randrange(2**32))
    drive = Drive(server.url, seed)
    before = server.workers()
    victim: list[int] = []
    killed_at: list[float] = []

    def kill() -> None:
        held = server.connections()  # the busiest worker: it has requests in flight
        pid = max(held, key=lambda p: held[p])
        os.kill(pid, signal.SIGKILL)
        killed_at.append(time.time())
        victim.append(pid)
        print(f"\nconnections per worker when killed: {held}")

    elapsed = drive.run(kill)
    # the supervisor notices the death within a second or so and starts another worker
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = server.workers()
        if len(now) == WORKERS and victim[0] not in now:
            break
        time.sleep(0.2)
    now = server.workers()
    assert victim[0] in before and victim[0] not in now and len(now) == WORKERS, (before, now)
    ledger = drive.ledger
    if ledger.errors:
        print(f"uvicorn's output:\n{server.output()}")
    # requests whose first attempt was recorded before the kill, answered to their retry
    before_kill = sum(
        1
        for at in ledger.recovered
        if dt.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() < killed_at[0]
    )
    print(
        f"{CASES} cases, {len(ledger.acked)} events in {elapsed:.1f} s (seed {seed}); answers "
        f"{dict(sorted(ledger.statuses.items()))}; worker {victim[0]} killed; "
        f"{ledger.broken} requests sent again after a broken connection, {before_kill} of them "
        f"recorded before the kill and answered to the retry; "
        f"{ledger.resent} answered requests sent again"
    )
    return drive


def test_sqlite_four_workers(serve: Callable[[dict[str, str]], Server], tmp_path: Path) -> None:
    db = tmp_path / "web.db"
    server = serve({"MEDIATION_DB": str(db)})
    drive = run_against(server)
    server.stop()
    with SQLiteStore(db) as store:
        check(drive, store)
    done = subprocess.run(
        [
            sys.executable, "-c", "import sys; from mediation.cli import main; sys.exit(main())",
            "verify", "--db", str(db), "--directory", str(DIRECTORY), "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema("web") as url:
        yield url


@pytest.mark.postgres
def test_postgres_four_workers(pg_url: str, serve: Callable[[dict[str, str]], Server]) -> None:
    from mediation.stores.postgres import PostgresStore

    server = serve({"MEDIATION_PG_DSN": pg_url, "MEDIATION_PG_POOL": "6"})
    drive = run_against(server)
    server.stop()
    with PostgresStore(pg_url) as store:
        check(drive, store)
