"""In-memory benchmarks: the command path against a bare ``transitions`` trigger, memory per open
case, and the cost of opening a case as their number grows.

Run through ``python benchmarks/run.py`` (or ``make bench``); this module also holds the helpers
that ``bench_sqlite.py`` shares.  Timings are medians of batches, with ``time.perf_counter_ns``.
"""

from __future__ import annotations

import contextlib
import cProfile
import datetime as dt
import gc
import io
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mediation import (
    WORKFLOW,
    Actor,
    CaseService,
    CaseSummary,
    MemoryKeyStore,
    MemoryStore,
    StaticDirectory,
    Store,
    StoredEvent,
)
from mediation import commands as cmd

COMMITTEE = "c1"
EPOCH = dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc)
perf_ns = time.perf_counter_ns

# -- shared helpers ---------------------------------------------------------------------------------


class Cast:
    """The committee's people."""

    def __init__(self) -> None:
        self.directory = StaticDirectory()
        self.director = self.directory.add(Actor.with_roles("dir", {COMMITTEE: ["director"]}))
        self.mediator = self.directory.add(Actor.with_roles("med", {COMMITTEE: ["mediator"]}))
        self.platform = Actor.with_roles("platform", {COMMITTEE: ["system"]})

    def service(
        self, store: Store, cache_size: int = 10_000, *, sealing: bool = True
    ) -> CaseService:
        """A service with the default clock (UTC now), as a host would run it (personal data
        sealed, the default, unless ``sealing`` is False)."""
        return CaseService(store, directory=self.directory, cache_size=cache_size, sealing=sealing)


def opening(i: int) -> cmd.Report:
    """The report that opens case number ``i``; its personal data is its own (not shared text)."""
    return cmd.Report(
        committee=COMMITTEE,
        category="邻里",
        subtype="噪声",
        description=f"第 {i} 号：楼上夜间噪声，多次投诉",
        applicants=(
            cmd.Party(f"res-{i}-a", f"陈女士{i}", phone=f"138{i:08d}", address=f"天鹅堡 {i} 号"),
        ),
        respondents=(
            cmd.Party(
                f"res-{i}-r", f"刘先生{i}", phone=f"139{i:08d}", address=f"天鹅堡 {i} 号楼下"
            ),
        ),
        source="early_warning",
    )


def negotiating_case(service: CaseService, cast: Cast, i: int = 0) -> str:
    """Open case ``i`` and bring it to ``negotiating`` (7 events); return its id."""
    report = opening(i)
    cid = service.open(cast.platform, report).id
    applicant, respondent = report.applicants[0].id, report.respondents[0].id
    service.execute(Actor(respondent), cid, cmd.RecordConsent())
    service.execute(cast.director, cid, cmd.Register())
    service.execute(cast.director, cid, cmd.AssignMediator(cast.mediator.id, lead=True))
    service.execute(cast.mediator, cid, cmd.NotifyRights((applicant, respondent)))
    service.execute(cast.mediator, cid, cmd.ScheduleMeeting(EPOCH, "调解室"))
    service.execute(cast.mediator, cid, cmd.OpenSession())
    return cid


#: the repeatable command every timing uses: legal from ``negotiating``, state unchanged
MINUTES = cmd.RecordMinutes("双方陈述；楼上同意晚十点后停止使用跑步机，楼下同意一周内再观察")


def batch_us(fn: Callable[[], object], n: int) -> float:
    """Microseconds per call of ``fn`` over one batch of ``n`` calls."""
    start = perf_ns()
    for _ in range(n):
        fn()
    return (perf_ns() - start) / n / 1000


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import sqlite3

    import transitions

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return {
        "cpu": cpu,
        "load average at start": load,
        "nproc": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": platform.platform(),
        "transitions": getattr(transitions, "__version__", "?"),
        "sqlite": sqlite3.sqlite_version,
    }


def filesystem_of(path: str) -> str:
    """The file system type holding ``path``, from /proc/mounts (best effort)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best = ("", "unknown")
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return f"{best[1]} (mount point {best[0]})"


# -- 1. the command path against a bare transitions trigger ---------------------------------------


class _Model:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def bare_trigger() -> Callable[[], object]:
    """A shared machine without models, one guarded transition, triggered on a given model."""
    from transitions import Machine

    def guard(event: Any) -> bool:
        return True

    machine = Machine(
        model=None,
        states=["negotiating", "other"],
        initial="negotiating",
        transitions=[dict(trigger="go", source="negotiating", dest=None, conditions=[guard])],
        auto_transitions=False,
        send_event=True,
    )
    event = machine.events["go"]
    model = _Model("negotiating")
    return lambda: event.trigger(model)


def command_path(batches: int = 40, per_batch: int = 1000) -> dict[str, Any]:
    """Median µs of ``RecordMinutes`` through ``CaseService`` on a ``MemoryStore``, and of the bare
    trigger, measured in alternating batches so both see the same machine state."""
    cast = Cast()
    service = cast.service(MemoryStore())
    cid = negotiating_case(service, cast)
    execute, mediator = service.execute, cast.mediator

    def command() -> object:
        return execute(mediator, cid, MINUTES)

    trigger = bare_trigger()
    for fn in (command, trigger):  # warm up
        batch_us(fn, per_batch)
    cmd_us, bare_us = [], []
    for _ in range(batches):
        cmd_us.append(batch_us(command, per_batch))
        bare_us.append(batch_us(trigger, per_batch))
    c, b = statistics.median(cmd_us), statistics.median(bare_us)
    assert service.verify(cid).ok
    return {
        "command_us": c,
        "command_us_range": (min(cmd_us), max(cmd_us)),
        "bare_trigger_us": b,
        "bare_trigger_us_range": (min(bare_us), max(bare_us)),
        "ratio": c / b,
        "batches": batches,
        "per_batch": per_batch,
    }


def sealing_cost(batches: int = 20, per_batch: int = 500) -> dict[str, Any]:
    """Median µs of ``RecordMinutes`` (its text sealed: one AES-GCM encryption and two key-store
    reads) and of the same command with sealing off, on ``MemoryStore``, in alternating batches;
    and of opening a case's view as its mediator (every sealed value of 7 events opened)."""
    cast = Cast()
    sealed = cast.service(MemoryStore())
    plain = cast.service(MemoryStore(), sealing=False)
    ids = (negotiating_case(sealed, cast), negotiating_case(plain, cast))
    mediator = cast.mediator

    def on(service: CaseService, cid: str) -> Callable[[], object]:
        return lambda: service.execute(mediator, cid, MINUTES)

    fns = (on(sealed, ids[0]), on(plain, ids[1]))
    for fn in fns:
        batch_us(fn, per_batch)
    sealed_us: list[float] = []
    plain_us: list[float] = []
    for _ in range(batches):
        sealed_us.append(batch_us(fns[0], per_batch))
        plain_us.append(batch_us(fns[1], per_batch))
    fresh = cast.service(MemoryStore())
    cid = negotiating_case(fresh, cast)
    view_us = batch_us(lambda: fresh.view(mediator, cid), per_batch)
    s, p = statistics.median(sealed_us), statistics.median(plain_us)
    return {
        "sealed_command_us": s,
        "plain_command_us": p,
        "ratio": s / p,
        "mediator_view_us": view_us,
        "batches": batches,
        "per_batch": per_batch,
    }


def profile_command(n: int = 50_000, top: int = 18) -> str:
    """cProfile of ``n`` RecordMinutes commands: the top functions by own time."""
    cast = Cast()
    service = cast.service(MemoryStore())
    cid = negotiating_case(service, cast)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        service.execute(cast.mediator, cid, MINUTES)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- 2. memory per open case -----------------------------------------------------------------------


class DiscardStore(Store):
    """Accepts every append and keeps nothing, so that only the service's cache is measured."""

    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        return None

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        return []

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        return None

    def summary(self, case_id: str) -> CaseSummary | None:
        return None

    def key_store(self) -> MemoryKeyStore:
        """Keys in memory, like the events it does not keep."""
        keys: MemoryKeyStore | None = self.__dict__.get("_keys")
        if keys is None:
            keys = self.__dict__.setdefault("_keys", MemoryKeyStore())
        return keys

    def cases(
        self,
        *,
        state: str | None = None,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
    ) -> list[CaseSummary]:
        return []

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def scan(self, start: str | None = None, stop: str | None = None) -> Iterator[StoredEvent]:
        return iter(())


_SHARED = frozenset(("", "person", "organisation"))


def _data_bytes(case: Any) -> int:
    """The case's own data: the party dicts it keeps from the opening payload, with their text."""
    total = 0
    for party in case.parties.values():
        total += sys.getsizeof(party)
        total += sum(
            sys.getsizeof(v) for v in party.values() if isinstance(v, str) and v not in _SHARED
        )
    return total


def memory_per_case(n: int = 10_000) -> dict[str, Any]:
    """Open ``n`` cases in one service whose cache holds them all; traced bytes per case."""
    from mediation._decide import machine_of

    cast = Cast()
    service = cast.service(DiscardStore(), cache_size=n + 1)
    ids: list[str] = [""] * n  # allocated before tracing starts
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        ids[i] = service.open(cast.platform, opening(i)).id
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    cases = [service.case(cid) for cid in ids[:: max(n // 200, 1)]]
    per_case = (after - before) / n
    data = statistics.mean(_data_bytes(c) for c in cases)
    return {
        "cases": n,
        "per_case_bytes": per_case,
        "data_bytes": data,
        "beyond_data_bytes": per_case - data,
        "case_object_bytes": sys.getsizeof(cases[0]),
        "machine_models": len(machine_of(WORKFLOW).models),
    }


# -- 3. opening the 20,000th case costs what the first did -----------------------------------------


def _open_times(n: int, cache_size: int) -> list[float]:
    cast = Cast()
    service = cast.service(MemoryStore(), cache_size=cache_size)
    reports = [opening(i) for i in range(n)]
    open_, actor = service.open, cast.platform
    times = []
    for report in reports:
        start = perf_ns()
        open_(actor, report)
        times.append((perf_ns() - start) / 1000)
    return times


def open_growth(n: int = 20_000, window: int = 1000) -> dict[str, Any]:
    """Time every open of ``n`` cases on a ``MemoryStore``; compare the first ``window`` opens
    with the last.  Twice: with the service's default cache (10,000 cases, so the last opens also
    evict), and with a cache that holds every case (no eviction), to tell the two costs apart."""
    from mediation._decide import machine_of

    out: dict[str, Any] = {"cases": n, "window": window}
    for label, cache_size in (("default_cache", 10_000), ("cache_holds_all", n + 1)):
        times = _open_times(n, cache_size)
        first, last = statistics.median(times[:window]), statistics.median(times[-window:])
        out[label] = {"first_us": first, "last_us": last, "ratio": last / first}
    out["machine_models"] = len(machine_of(WORKFLOW).models)
    return out
