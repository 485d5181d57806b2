"""Several processes write to the same cases at once; the log stays one valid chain per case.

Four writer processes (spawned) each issue 250 commands, round-robin over the same three cases,
through plain ``CaseService.execute``: a writer whose cached case is stale loses the append, reads
the events it missed, decides again and appends (the service's own attempts, not the caller's).  Afterwards every case's chain
verifies, seqs are 1..n without gaps or duplicates, the summary row matches the last event, and the
number of events is exactly the setup events plus the commands the writers report as done.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import pg
from mediation import CaseService, ConcurrencyConflict, MemoryStore, SQLiteStore, Store, verify
from mediation import commands as cmd
from mediation._service import utc_now
from mediation.testing import PathOptions, World, drive

WRITERS = 4
COMMANDS = 250
CASES = ("case-a", "case-b", "case-c")
#: the service's own attempts (its default), with nothing on top
ATTEMPTS = CaseService(MemoryStore()).attempts  # the default, with nothing on top


# -- helpers shared with test_crash.py -------------------------------------------------------------


def open_store(kind: str, target: str) -> Store:
    """A store of ``kind`` ("sqlite": a file path; "postgres": a conninfo), as a process opens it."""
    if kind == "sqlite":
        return SQLiteStore(target)
    from mediation.stores.postgres import PostgresStore

    store: Store = PostgresStore(target, pool_size=1)
    return store


def service_for(store: Store) -> tuple[World, CaseService]:
    world = World()
    return world, world.service(store, clock=utc_now)


def to_negotiating(store: Store, case_ids: Sequence[str]) -> int:
    """Open each case and drive it to ``negotiating`` along its path; returns the events per case."""
    world, service = service_for(store)
    for cid in case_ids:
        drive(service, world, cid, "negotiating", PathOptions(minutes=False))
    return service.case(case_ids[0]).seq


def negotiation_step(i: int, note: str) -> cmd.Command:
    """A command the lead mediator may issue again and again while negotiating."""
    return cmd.RecordMinutes(note) if i % 2 == 0 else cmd.ShareProposal(note)


def check_log(store: Store, case_ids: Sequence[str]) -> int:
    """Assert each case is one gapless, verified chain with a matching summary; count events."""
    total = 0
    for cid in case_ids:
        records = store.read(cid)
        assert [r.seq for r in records] == list(range(1, len(records) + 1)), cid
        verdict = verify(records, cid)
        assert verdict.ok, verdict.describe()
        summary = store.summary(cid)
        assert summary is not None
        assert (summary.seq, summary.head, summary.state) == (
            len(records),
            records[-1].hash,
            verdict.state,
        )
        total += len(records)
    return total


# -- the writers -----------------------------------------------------------------------------------


class _CountingStore(Store):
    """Passes everything to ``inner`` and counts the appends that lost a race."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.conflicts = 0

    def append(self, summary: Any, records: Any, expected_seq: int) -> None:
        try:
            self.inner.append(summary, records, expected_seq)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise

    def transaction(self) -> Any:
        return self.inner.transaction()

    def read(self, case_id: str, after_seq: int = 0) -> list[Any]:
        return self.inner.read(case_id, after_seq)

    def find_request(self, case_id: str, request_id: str) -> Any:
        return self.inner.find_request(case_id, request_id)

    def summary(self, case_id: str) -> Any:
        return self.inner.summary(case_id)

    def cases(self, **filters: Any) -> list[Any]:
        return self.inner.cases(**filters)

    def key_store(self) -> Any:  # the sealing keys live beside the events of ``inner``
        return self.inner.key_store()

    def close(self) -> None:
        self.inner.close()


def _writer(
    kind: str, target: str, writer: int, barrier: Any, results: Any, attempts: int
) -> None:  # pragma: no cover - runs in a child process
    try:
        store = _CountingStore(open_store(kind, target))
        world, service = service_for(store)
        service.attempts = attempts
        done = lost = 0
        barrier.wait(120)
        for i in range(COMMANDS):
            cid = CASES[(writer + i) % len(CASES)]
            command = negotiation_step(i, f"writer {writer} command {i}")
            try:
                service.execute(world["med1"], cid, command)
            except ConcurrencyConflict:
                lost += 1
            else:
                done += 1
        store.close()
        results.put((writer, done, lost, store.conflicts, None))
    except BaseException:
        results.put((writer, 0, 0, 0, traceback.format_exc()))


def run_writers(kind: str, target: str, attempts: int = ATTEMPTS) -> tuple[int, int, int]:
    """Run the writers to the end; returns the commands done, the commands given up after
    ``attempts`` conflicts, and the appends that lost a race."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(kind, target, w, barrier, results, attempts))
        for w in range(WRITERS)
    ]
    for p in procs:
        p.start()
    reports: dict[int, tuple[int, int, int]] = {}
    try:
        while len(reports) < WRITERS:
            try:
                writer, done, lost, conflicts, error = results.get(timeout=1)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"a writer died: exit codes {[p.exitcode for p in procs]}"
                continue
            assert error is None, f"writer {writer} failed:\n{error}"
            reports[writer] = (done, lost, conflicts)
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():  # pragma: no cover - only on failure
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    done, lost, conflicts = (sum(column) for column in zip(*reports.values(), strict=True))
    return done, lost, conflicts


def _check(store: Store, setup_per_case: int, done: int, lost: int, conflicts: int) -> None:
    print(f"{done} commands done, {lost} given up, {conflicts} appends lost a race")
    assert conflicts > 0, "the writers never raced: the test did not exercise conflicts"
    assert done + lost == WRITERS * COMMANDS
    assert lost == 0, f"{lost} commands gave up after {ATTEMPTS} attempts"
    total = check_log(store, CASES)
    assert total == setup_per_case * len(CASES) + done
    assert sum(1 for _ in store.scan()) == total  # nothing outside these cases
    assert store.case_ids() == sorted(CASES)


# -- the tests -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_processes_on_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "cases.db")
    with SQLiteStore(path) as store:
        setup = to_negotiating(store, CASES)
    outcome = run_writers("sqlite", path)
    with SQLiteStore(path) as store:
        _check(store, setup, *outcome)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema("conc") as url:
        yield url


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_processes_on_one_database(pg_url: str) -> None:
    with open_store("postgres", pg_url) as store:
        setup = to_negotiating(store, CASES)
    outcome = run_writers("postgres", pg_url)
    with open_store("postgres", pg_url) as store:
        _check(store, setup, *outcome)
