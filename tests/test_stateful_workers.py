"""Worker processes with their own clocks on one SQLite file, as a state machine.

Three services stand for three worker processes (or servers): each opens the file through its own
:class:`SQLiteStore` and runs its own clock, offset from the others by up to two seconds and
sometimes stepping back.  A hypothesis state machine routes random commands by random actors to a
random worker, sometimes with a request id, sometimes retrying an earlier request on another
worker, sometimes dropping a worker's cache.  After every step:

- a command that returned was written exactly once, at the seq and with the hash it returned;
- a command that raised wrote nothing;
- a retried request returned the event it first returned and wrote nothing;
- every case verifies strictly from the file, with the host's directory, and every worker's
  ``case()`` equals the replay of what the file holds (no worker answers on stale state).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from helpers import case_fields
from mediation import CaseService, ClockSkew, MediationError, SQLiteStore, replay, verify
from mediation.testing._strategies import World, guided_step, opening_step

WORKERS = 3
MAX_CASES = 3
EPOCH = dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc)


@attrs.define
class SkewedClock:
    """A worker's clock: the shared true time plus this worker's offset."""

    true: list[dt.datetime]
    offset: dt.timedelta = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return self.true[0] + self.offset


class Workers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.tmp = Path(tempfile.mkdtemp(prefix="mediation-workers-"))
        self.path = self.tmp / "cases.db"
        self.true = [EPOCH]
        self.clocks = [SkewedClock(self.true) for _ in range(WORKERS)]
        self.stores = [SQLiteStore(self.path) for _ in range(WORKERS)]
        self.workers = [
            CaseService(store, directory=self.world.directory, clock=clock)
            for store, clock in zip(self.stores, self.clocks, strict=True)
        ]
        self.case_ids: list[str] = []
        #: request id -> (worker-independent) what was asked and what came back
        self.requests: dict[str, tuple[str, Any, Any, Any]] = {}
        self.opened = 0

    def issue(
        self,
        worker: int,
        case_id: str,
        actor: Any,
        command: Any,
        request: str | None,
        repeat: bool = False,
    ) -> Any:
        store = self.stores[0]
        before = store.read(case_id)
        try:
            event = self.workers[worker].execute(actor, case_id, command, request_id=request)
        except ClockSkew as exc:  # the offsets stay far inside the tolerance of five minutes
            raise AssertionError(f"a skew within the tolerance was refused: {exc}") from exc
        except MediationError as exc:
            note(f"worker {worker}: {command.name} on {case_id} denied: {type(exc).__name__}")
            assert store.read(case_id) == before, "a refused command wrote something"
            return exc
        after = store.read(case_id)
        assert after[: len(before)] == before
        assert after[event.seq - 1] == event.stored
        if repeat:  # a request the case already held: its event, and nothing written
            assert after == before
        else:
            assert len(after) == len(before) + 1 and event.seq == len(after)
        note(f"worker {worker}: {command.name} on {case_id} -> seq {event.seq}")
        return event

    # -- rules -------------------------------------------------------------------------------------

    @rule(worker=st.integers(0, WORKERS - 1), ms=st.integers(-1500, 1500))
    def set_offset(self, worker: int, ms: int) -> None:
        """Servers' clocks differ (and NTP steps them, back too) by up to 1.5 s."""
        self.clocks[worker].offset = dt.timedelta(milliseconds=ms)

    @rule(ms=st.integers(0, 3_600_000))
    def time_passes(self, ms: int) -> None:
        self.true[0] += dt.timedelta(milliseconds=ms)

    @precondition(lambda self: len(self.case_ids) < MAX_CASES)
    @rule(data=st.data(), worker=st.integers(0, WORKERS - 1))
    def open_case(self, data: st.DataObject, worker: int) -> None:
        self.opened += 1
        case_id = f"k{self.opened}"
        actor, command = data.draw(opening_step(self.world, case_id), label="opening")
        if not isinstance(self.issue(worker, case_id, actor, command, None), MediationError):
            self.case_ids.append(case_id)

    @precondition(lambda self: bool(self.case_ids))
    @rule(data=st.data(), steps=st.integers(1, 8))
    def act(self, data: st.DataObject, steps: int) -> None:
        """A few commands on one case, each reaching a random worker, some with a request id."""
        case_id = data.draw(st.sampled_from(self.case_ids), label="case")
        for _ in range(steps):
            case = replay(self.stores[0].read(case_id), case_id)
            actor, command = data.draw(guided_step(self.world, case, True, 9), label="step")
            worker = data.draw(st.integers(0, WORKERS - 1), label="worker")
            request = f"r{len(self.requests)}" if data.draw(st.booleans(), label="req") else None
            outcome = self.issue(worker, case_id, actor, command, request)
            if request is not None:
                self.requests[request] = (case_id, actor, command, outcome)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), worker=st.integers(0, WORKERS - 1))
    def retry_a_request(self, data: st.DataObject, worker: int) -> None:
        """A client retries (a timeout, a double click), reaching any worker."""
        request = data.draw(st.sampled_from(sorted(self.requests)), label="request")
        case_id, actor, command, first = self.requests[request]
        before = self.stores[0].read(case_id)
        held = not isinstance(first, MediationError)
        again = self.issue(worker, case_id, actor, command, request, repeat=held)
        if not held:
            # nothing was written the first time: the retry was a new decision
            self.requests[request] = (case_id, actor, command, again)
            return
        assert not isinstance(again, MediationError), again
        assert again.stored == first.stored
        assert self.stores[0].read(case_id) == before

    @precondition(lambda self: bool(self.case_ids))
    @rule(data=st.data(), worker=st.integers(0, WORKERS - 1))
    def forget(self, data: st.DataObject, worker: int) -> None:
        self.workers[worker].forget(data.draw(st.sampled_from(self.case_ids), label="forget"))

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def every_case_verifies_and_no_worker_is_stale(self) -> None:
        for case_id in self.case_ids:
            records = self.stores[0].read(case_id)
            verdict = verify(records, case_id, directory=self.world.directory, strict=True)
            assert verdict.ok, verdict.describe()
            replayed = case_fields(replay(records, case_id))
            for worker in self.workers:
                assert case_fields(worker.case(case_id)) == replayed

    def teardown(self) -> None:
        for case_id in self.case_ids:
            event(f"a case reached {replay(self.stores[0].read(case_id), case_id).state}")
        held = sum(
            1 for *_, outcome in self.requests.values() if not isinstance(outcome, Exception)
        )
        event(f"requests held: {min(held, 3)}+")
        for store in self.stores:
            store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


TestWorkers = Workers.TestCase
_profile = settings()
TestWorkers.settings = settings(
    _profile, max_examples=min(_profile.max_examples // 4, 100), stateful_step_count=40
)
