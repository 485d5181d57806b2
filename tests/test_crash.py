"""A writer killed with SIGKILL at random moments never leaves a half-written event or batch.

A child process appends in a loop: commands through the service on two real cases, and batches of
four synthetic records (one ``append`` call each) on a third case.  The parent kills it at a random
moment, 20 times per store; after every kill the store opens, every chain verifies, the batched
case holds only whole batches, and each summary row matches its case's last event.

Set ``MEDIATION_CRASH_SEED`` to replay a run's kill moments (the seed is in the failure message).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pg
from mediation import ConcurrencyConflict, SQLiteStore, Store, event_hash
from mediation.testing import synthetic_records, synthetic_summary
from test_concurrency import check_log, negotiation_step, open_store, service_for, to_negotiating

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL"),
]

KILLS = 20
BATCH = 4
REAL = ("crash-a", "crash-b")
BATCHED = "crash-batch"
GENESIS = "0" * 64


def _append_batch(store: Store) -> None:
    """Append the next whole batch of the batched case (re-reading its tail after a conflict)."""
    while True:
        tail = store.read(BATCHED)
        seq, head = (tail[-1].seq, tail[-1].hash) if tail else (0, GENESIS)
        recs = synthetic_records(BATCHED, BATCH, seq + 1, head)
        try:
            store.append(synthetic_summary(BATCHED, seq + BATCH, head=recs[-1].hash), recs, seq)
            return
        except ConcurrencyConflict:  # pragma: no cover - the killed writer's commit landed late
            continue


def _appender(
    kind: str, target: str, life: int, started: Any, inside: Any
) -> None:  # pragma: no cover - runs in a child process
    """The child: append forever (until killed); ``started`` is set once appends are flowing,
    ``inside.value`` is 1 while a command or batch is being appended."""
    store = open_store(kind, target)
    world, service = service_for(store)
    step = 0
    while True:
        inside.value = 1
        if step % 3 == 2:
            _append_batch(store)
        else:
            command = negotiation_step(step, f"life {life} step {step}")
            service.execute_with_retry(world["med1"], REAL[step % 2], command, attempts=20)
        inside.value = 0
        step += 1
        if step == 3:
            started.set()


def _check_batched(store: Store) -> int:
    records = store.read(BATCHED)
    assert len(records) % BATCH == 0, f"a partial batch: {len(records)} records"
    prev = GENESIS
    for seq, rec in enumerate(records, start=1):
        assert rec.seq == seq
        assert event_hash(rec.body) == rec.hash, f"record {seq} does not hash to its hash"
        assert json.loads(rec.body)["prev"] == prev, f"record {seq} breaks the chain"
        prev = rec.hash
    summary = store.summary(BATCHED)
    if records:
        assert summary is not None and (summary.seq, summary.head) == (len(records), prev)
    else:
        assert summary is None
    return len(records)


def _check(store: Store) -> int:
    total = check_log(store, REAL) + _check_batched(store)
    assert sum(1 for _ in store.scan()) == total
    return total


def crash_many_times(kind: str, target: str) -> None:
    seed = int(os.environ.get("MEDIATION_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    ctx = mp.get_context("spawn")
    with open_store(kind, target) as store:
        to_negotiating(store, REAL)
        before = _check(store)
    mid_append = 0
    for life in range(KILLS):
        started = ctx.Event()
        inside = ctx.Value("i", 0, lock=False)
        child = ctx.Process(
            target=_appender, args=(kind, target, life, started, inside), daemon=True
        )
        child.start()
        try:
            ready = started.wait(60)
            assert ready, f"life {life}: the writer never got going (exit code {child.exitcode})"
            time.sleep(rng.uniform(0.0, 0.05))
            assert child.is_alive(), f"life {life}: the writer died on its own ({child.exitcode})"
            os.kill(child.pid or 0, signal.SIGKILL)
            child.join(30)
            mid_append += inside.value
        finally:
            if child.is_alive():  # pragma: no cover - only on failure
                child.kill()
                child.join(30)
        assert child.exitcode == -signal.SIGKILL
        try:
            with open_store(kind, target) as store:
                after = _check(store)
        except AssertionError as exc:
            raise AssertionError(
                f"after kill {life + 1} (MEDIATION_CRASH_SEED={seed}): {exc}"
            ) from exc
        assert after > before  # each life committed its first appends before the kill
        before = after
    print(f"{KILLS} kills, {mid_append} inside an append, {before} events (seed {seed})")
    # appends are most of the writer's time: kills that all missed them would test nothing
    assert mid_append > 0


def test_sqlite_survives_sigkill(tmp_path: Path) -> None:
    crash_many_times("sqlite", str(tmp_path / "cases.db"))
    with SQLiteStore(tmp_path / "cases.db") as store:  # and it still takes appends
        _append_batch(store)
        _check(store)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema("crash") as url:
        yield url


@pytest.mark.postgres
def test_postgres_survives_sigkill(pg_url: str) -> None:
    crash_many_times("postgres", pg_url)
    with open_store("postgres", pg_url) as store:
        _append_batch(store)
        _check(store)
