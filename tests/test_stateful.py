"""A memory store and a SQLite file, driven side by side, must never disagree.

A hypothesis state machine issues random commands by random actors on several cases at once, the
same command to two services: one over a :class:`MemoryStore`, one over a :class:`SQLiteStore` in a
temporary file, with identical injected clocks and case ids.  After every step: both services
reached the same outcome (the same exception type, or the same event bytes), a denied command
appended nothing, every chain verifies, replay equals each service's live case, and the two stores
hold the same records and summary rows.  The SQLite service is sometimes rebuilt on a fresh
connection, or its cache dropped, so its cases are also rebuilt from the file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from helpers import case_fields
from mediation import (
    CaseService,
    Event,
    MediationError,
    MemoryStore,
    SQLiteStore,
    replay,
    verify,
)
from mediation._events import parse_body
from mediation.testing._strategies import TickClock, World, guided_step, opening_step
from test_properties import case_invariants

MAX_CASES = 3
Outcome = tuple[str, Any]


class TwoStores(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.tmp = Path(tempfile.mkdtemp(prefix="mediation-stateful-"))
        self.path = self.tmp / "cases.db"
        # the two stores must hold the same bytes: sealing (on by default) draws random nonces,
        # so it is off here; sealed histories are checked by test_properties and test_privacy
        self.memory = self.world.service(MemoryStore(), clock=TickClock(), sealing=False)
        self.sqlite_store = SQLiteStore(self.path)
        self.sqlite = self.world.service(self.sqlite_store, clock=TickClock(), sealing=False)
        self.case_ids: list[str] = []
        self.opened = 0
        self.denied = 0

    @property
    def services(self) -> tuple[CaseService, CaseService]:
        return (self.memory, self.sqlite)

    def both(self, case_id: str, issue: Callable[[CaseService], Event]) -> Outcome:
        """Issue the same command on both services; they must agree, and a denial writes nothing."""
        outcomes: list[Outcome] = []
        for service in self.services:
            before = (service.store.read(case_id), service.store.summary(case_id))
            try:
                event = issue(service)
            except MediationError as exc:
                outcomes.append(("denied", type(exc)))
                assert (service.store.read(case_id), service.store.summary(case_id)) == before
            else:
                outcomes.append(("done", event.stored))
                assert service.store.read(case_id)[-1] == event.stored
        assert outcomes[0] == outcomes[1], f"memory: {outcomes[0]}, sqlite: {outcomes[1]}"
        note(f"{case_id}: {outcomes[0][0]} {getattr(outcomes[0][1], '__name__', '')}")
        self.denied += outcomes[0][0] == "denied"
        return outcomes[0]

    # -- rules -------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.case_ids) < MAX_CASES)
    @rule(data=st.data())
    def open_case(self, data: st.DataObject) -> None:
        self.opened += 1
        case_id = f"k{self.opened}"
        actor, command = data.draw(opening_step(self.world, case_id), label="opening")
        kind, _ = self.both(case_id, lambda s: s.execute(actor, case_id, command))
        if kind == "done":
            self.case_ids.append(case_id)

    @precondition(lambda self: bool(self.case_ids))
    @rule(data=st.data())
    def act(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(self.case_ids), label="case")
        case = self.memory.case(case_id)
        legal_only = data.draw(st.integers(0, 3), label="legal only") > 0
        actor, command = data.draw(guided_step(self.world, case, legal_only, 8), label="step")
        kind, stored = self.both(case_id, lambda s: s.execute(actor, case_id, command))
        # a transfer to a committee opened the linked case there, in both stores alike
        link = case.workflow.command(command.name).link
        if kind == "done" and link is not None:
            opened = parse_body(stored.body)["payload"].get(link[1])
            if opened:
                self.case_ids.append(opened)

    @precondition(lambda self: bool(self.case_ids))
    @rule(data=st.data())
    def open_an_existing_case(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(self.case_ids), label="case")
        actor, command = data.draw(opening_step(self.world, case_id), label="opening")
        kind, _ = self.both(case_id, lambda s: s.execute(actor, case_id, command))
        assert kind == "denied"

    @rule()
    def reconnect_sqlite(self) -> None:
        """A new connection and a new service: every case is rebuilt from the file."""
        self.sqlite_store.close()
        self.sqlite_store = SQLiteStore(self.path)
        self.sqlite = self.world.service(self.sqlite_store, clock=self.sqlite.clock, sealing=False)

    @precondition(lambda self: bool(self.case_ids))
    @rule(data=st.data())
    def forget_one(self, data: st.DataObject) -> None:
        self.sqlite.forget(data.draw(st.sampled_from(self.case_ids), label="forget"))

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def the_stores_agree(self) -> None:
        assert self.memory.store.cases() == self.sqlite.store.cases()
        assert [s.case_id for s in self.memory.store.cases()] == sorted(self.case_ids)

    @invariant()
    def every_chain_verifies_and_replays_to_the_live_case(self) -> None:
        for case_id in self.case_ids:
            records = self.memory.store.read(case_id)
            assert self.sqlite.store.read(case_id) == records
            verdict = verify(records, case_id, directory=self.world.directory)
            assert verdict.ok, verdict.describe()
            replayed = case_fields(replay(records, case_id))
            for service in self.services:
                live = service.case(case_id)
                assert case_fields(live) == replayed
                assert not case_invariants(live, records), case_invariants(live, records)
                assert service.store.summary(case_id) == live.summary()

    def teardown(self) -> None:
        for case_id in self.case_ids:
            event(f"a case ended in {self.memory.case(case_id).state}")
        note(f"{len(self.case_ids)} cases, {self.denied} denied")
        self.sqlite_store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# The profile's example count would make this the slowest file by far (each example runs up to 80
# steps on two stores, SQLite syncing every append, with every invariant checked after each step):
# a third of it, at most 100, and the rest of the loaded profile ("ci": 100 machines, ~30 s on two
# cores; "dev": 13).
TestTwoStores = TwoStores.TestCase
_profile = settings()  # the profile tests/conftest.py loaded
TestTwoStores.settings = settings(
    _profile,
    max_examples=min(_profile.max_examples // 3, 100),
    stateful_step_count=80,
)
