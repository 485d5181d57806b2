"""The store conformance suite: the contract of :class:`mediation.stores.Store`, as test methods.

Every backend in this package passes it, and a third-party store reuses it by subclassing::

    from mediation.testing import StoreConformance

    class TestMyStore(StoreConformance):
        def make_store(self):
            return MyStore(...)           # a fresh, empty store

        def reopen(self, store):          # optional: the same data through a new connection
            return MyStore(...)

The methods use plain ``assert`` and need no pytest (pytest collects them; ``unittest`` runs them
when the subclass also derives from ``unittest.TestCase``).

:class:`KeyStoreConformance` does the same for a :class:`mediation._keys.KeyStore` (where the
sealing keys live)::

    class TestMyKeyStore(KeyStoreConformance):
        def make_key_store(self):
            return MyKeyStore(...)        # a fresh, empty key store

        def reopen_key_store(self, keys): # optional: the same keys through a new handle
            return MyKeyStore(...)

        def key_store_opener(self, keys): # optional: opens it in another process (picklable)
            return functools.partial(MyKeyStore, ...)
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs

from .. import commands as cmd
from .._audit import verify
from .._case import CaseSummary
from .._errors import (
    ConcurrencyConflict,
    KeyDestroyed,
    MediationError,
    RequestConflict,
    StoreError,
)
from .._events import GENESIS, StoredEvent, canonical_bytes, event_hash, parse_body
from .._keys import CASE, KeyStore
from .._workflow import WORKFLOW
from ..stores._base import (
    DEFAULT_WORKFLOW,
    STAT_PAYLOAD_TYPES,
    DeadlineWarning,
    StatEvent,
    Store,
)
from ._paths import PathOptions, drive
from ._world import World

__all__ = [
    "KeyStoreConformance",
    "StoreConformance",
    "raises",
    "synthetic_records",
    "synthetic_summary",
]


# the states the synthetic summaries name, from the declaration: where an opened case is, where a
# registered one is, an ending, and a state no synthetic case is in
_OPENED = WORKFLOW.opening[0].target or ""
_REGISTERED = WORKFLOW.command(cmd.Register.name).target or ""
_ENDED = next(s.name for s in WORKFLOW.states if s.failed)
_UNUSED = next(s.name for s in WORKFLOW.states if s.agreed and s.terminal)


@contextlib.contextmanager
def raises(kind: type[BaseException]) -> Iterator[None]:
    """``with raises(X):`` without pytest."""
    try:
        yield
    except kind:
        return
    raise AssertionError(f"{kind.__name__} was not raised")


def synthetic_records(
    case_id: str, n: int, start: int = 1, prev: str = GENESIS
) -> list[StoredEvent]:
    """``n`` chained records with arbitrary bodies (store tests do not replay them)."""
    out = []
    for seq in range(start, start + n):
        body = canonical_bytes({"case": case_id, "seq": seq, "prev": prev, "note": "記録 ✓"})
        rec = StoredEvent(case_id, seq, event_hash(body), body)
        out.append(rec)
        prev = rec.hash
    return out


def synthetic_summary(
    case_id: str, seq: int, *, state: str = _OPENED, committee: str = "c1", level: str = "L1",
    category: str = "邻里", head: str = GENESIS, workflow: str | None = None,
) -> CaseSummary:  # fmt: skip
    summary = CaseSummary(
        case_id=case_id, committee=committee, state=state, level=level, category=category,
        seq=seq, head=head, opened_at="2026-01-05T08:00:00.000000Z",
        updated_at="2026-01-05T08:00:00.000000Z",
    )  # fmt: skip
    return summary if workflow is None else attrs.evolve(summary, workflow=workflow)


class _Abort(Exception):
    """Raised inside a transaction to make it roll back."""


class StoreConformance:
    """Subclass and implement :meth:`make_store`; every ``test_*`` method checks one rule."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        """The same data through a fresh handle; in-memory stores return ``store`` itself."""
        return store

    def drop_summary(self, store: Store, case_id: str) -> bool:
        """Optional: delete ``case_id``'s summary row behind the store's back (as a database
        administrator could) and return True; the default returns False, and the test that needs
        it checks nothing more."""
        return False

    # -- helpers -----------------------------------------------------------------------------------

    def _append(
        self, store: Store, case_id: str, n: int, expected: int = 0, **kw: str
    ) -> list[StoredEvent]:
        head = store.read(case_id)[-1].hash if expected else GENESIS
        recs = synthetic_records(case_id, n, expected + 1, head)
        store.append(
            synthetic_summary(case_id, expected + n, head=recs[-1].hash, **kw), recs, expected
        )
        return recs

    # -- the contract ------------------------------------------------------------------------------

    def test_round_trip_keeps_exact_bytes_and_hash(self) -> None:
        store = self.make_store()
        recs = self._append(store, "k1", 3)
        got = store.read("k1")
        assert got == recs
        assert all(type(r.body) is bytes for r in got)
        assert self.reopen(store).read("k1") == recs

    def test_read_after_seq(self) -> None:
        store = self.make_store()
        recs = self._append(store, "k1", 5)
        assert store.read("k1", after_seq=3) == recs[3:]
        assert store.read("k1", after_seq=5) == []

    def test_unknown_case_reads_empty(self) -> None:
        store = self.make_store()
        assert store.read("nope") == []
        assert store.summary("nope") is None

    def test_stale_writer_gets_conflict_and_writes_nothing(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 2)
        stale = synthetic_records("k1", 1, start=2)
        with raises(ConcurrencyConflict):
            store.append(synthetic_summary("k1", 2, state=_ENDED), stale, 1)
        assert [r.seq for r in store.read("k1")] == [1, 2]
        summary = store.summary("k1")
        assert summary is not None and summary.state == _OPENED

    def test_expected_seq_ahead_of_the_log_is_a_conflict(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 1)
        with raises(ConcurrencyConflict):
            store.append(synthetic_summary("k1", 4), synthetic_records("k1", 1, start=4), 3)
        assert len(store.read("k1")) == 1

    def test_new_case_conflicts_when_it_exists(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 1)
        with raises(ConcurrencyConflict):
            store.append(synthetic_summary("k1", 1), synthetic_records("k1", 1), 0)

    def test_batch_is_all_or_nothing(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 2)
        recs = self._append(store, "k1", 3, expected=2)
        assert [r.seq for r in store.read("k1")] == [1, 2, 3, 4, 5]
        assert store.read("k1")[2:] == recs

    def test_malformed_batch_is_refused(self) -> None:
        store = self.make_store()
        bad = synthetic_records("k1", 2)
        with raises(StoreError):
            store.append(synthetic_summary("k1", 2), [bad[1], bad[0]], 0)
        with raises(StoreError):
            store.append(synthetic_summary("k1", 1), synthetic_records("other", 1), 0)
        with raises(StoreError):
            store.append(synthetic_summary("k1", 0), [], 0)
        assert store.read("k1") == [] and store.read("other") == []

    def test_summary_is_written_with_the_events(self) -> None:
        store = self.make_store()
        recs = self._append(store, "k1", 2, state=_REGISTERED, level="L0", category="物业")
        s = store.summary("k1")
        assert s is not None
        assert (s.state, s.level, s.category, s.seq, s.head) == (
            _REGISTERED,
            "L0",
            "物业",
            2,
            recs[-1].hash,
        )

    def test_queries_filter_on_summary_columns(self) -> None:
        store = self.make_store()
        opened, registered = _OPENED, _REGISTERED
        self._append(store, "a", 1, state=opened, committee="c1", level="L0", category="邻里")
        self._append(store, "b", 1, state=registered, committee="c1", level="L1", category="物业")
        self._append(store, "c", 1, state=registered, committee="c2", level="L1", category="邻里")

        def ids(rows: list[CaseSummary]) -> list[str]:
            return [r.case_id for r in rows]

        assert ids(store.cases()) == ["a", "b", "c"]
        assert ids(store.cases(state=registered)) == ["b", "c"]
        assert ids(store.cases(committee="c1", state=registered)) == ["b"]
        assert ids(store.cases(level="L0")) == ["a"]
        assert ids(store.cases(category="邻里")) == ["a", "c"]
        assert ids(store.cases(state=_UNUSED)) == []

    def test_roster_streams_are_kept_but_not_listed_as_cases(self) -> None:
        """A roster stream (``@roster:<committee>``) is stored, read, scanned and counted among
        the stream ids like a case, but :meth:`Store.cases` lists cases only."""
        store = self.make_store()
        self._append(store, "a", 1, committee="c1")
        self._append(store, "@roster:c1", 2, committee="c1")
        self._append(store, "B", 1, committee="c1")
        assert [r.case_id for r in store.cases()] == ["B", "a"]
        assert [r.case_id for r in store.cases(committee="c1")] == ["B", "a"]
        summary = store.summary("@roster:c1")
        assert summary is not None and summary.seq == 2
        assert [r.seq for r in store.read("@roster:c1")] == [1, 2]
        assert "@roster:c1" in store.case_ids()
        assert [(r.case_id, r.seq) for r in store.scan("@", "A")] == [
            ("@roster:c1", 1), ("@roster:c1", 2),
        ]  # fmt: skip
        assert [r.case_id for r in store.scan()] == ["@roster:c1"] * 2 + ["B", "a"]

    def test_cases_are_independent_and_scan_is_ordered(self) -> None:
        store = self.make_store()
        self._append(store, "b", 2)
        self._append(store, "a", 3)
        assert store.case_ids() == ["a", "b"]
        assert [(r.case_id, r.seq) for r in store.scan()] == [
            ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2),
        ]  # fmt: skip

    def test_case_ids_come_from_the_events_not_the_summary_rows(self) -> None:
        """Every case with events is listed, whatever the summary table says (the signer
        enumerates the cases to checkpoint with :meth:`Store.case_ids`)."""
        store = self.make_store()
        self._append(store, "b", 2)
        self._append(store, "a", 1)
        self._append(store, "c", 1)
        assert store.case_ids() == sorted({r.case_id for r in store.scan()}) == ["a", "b", "c"]
        if not self.drop_summary(store, "b"):
            return
        assert store.summary("b") is None
        assert store.case_ids() == ["a", "b", "c"]
        assert self.reopen(store).case_ids() == ["a", "b", "c"]

    def test_request_ids_are_kept_found_and_unique_per_case(self) -> None:
        store = self.make_store()
        first = attrs.evolve(synthetic_records("k1", 1)[0], request_id="req-1")
        store.append(synthetic_summary("k1", 1, head=first.hash), [first], 0)
        assert store.read("k1") == [first]
        assert store.find_request("k1", "req-1") == first
        assert self.reopen(store).find_request("k1", "req-1") == first
        assert store.find_request("k1", "req-2") is None
        assert store.find_request("k2", "req-1") is None
        again = attrs.evolve(synthetic_records("k1", 1, 2, first.hash)[0], request_id="req-1")
        with raises(RequestConflict):
            store.append(synthetic_summary("k1", 2, head=again.hash), [again], 1)
        assert store.read("k1") == [first]
        summary = store.summary("k1")
        assert summary is not None and summary.seq == 1
        # the same request id on another case, and records without one, are no conflict
        other = attrs.evolve(synthetic_records("k2", 1)[0], request_id="req-1")
        store.append(synthetic_summary("k2", 1, head=other.hash), [other], 0)
        self._append(store, "k1", 2, expected=1)
        assert [r.request_id for r in store.read("k1")] == ["req-1", None, None]
        assert [r.request_id for r in store.scan()] == ["req-1", None, None, "req-1"]

    def test_concurrent_appends_from_threads_write_each_seq_once(self) -> None:
        store = self.make_store()
        winners: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(8)

        def writer(n: int) -> None:
            barrier.wait()
            for _ in range(40):
                seq = len(store.read("k1"))
                prev = store.read("k1")[-1].hash if seq else GENESIS
                rec = synthetic_records("k1", 1, seq + 1, prev)[0]
                try:
                    store.append(synthetic_summary("k1", seq + 1, head=rec.hash), [rec], seq)
                except ConcurrencyConflict:
                    continue
                with lock:
                    winners.append(seq + 1)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        records = store.read("k1")
        assert sorted(winners) == [r.seq for r in records] == list(range(1, len(records) + 1))
        assert all(b.body.count(a.hash.encode()) for a, b in itertools.pairwise(records))
        summary = store.summary("k1")
        assert summary is not None and summary.seq == len(records)

    def test_deadline_warnings_are_recorded_once_per_key(self) -> None:
        store = self.make_store()
        first = DeadlineWarning("k1", "term", "2026-02-04", "nearly_due", "2026-02-01T00:00:00Z")
        assert store.record_warning(first) is True
        again = attrs.evolve(first, at="2026-02-02T00:00:00Z", committee="c1")
        assert store.record_warning(again) is False  # same key: the first one stays
        overdue = attrs.evolve(first, level="overdue", at="2026-02-05T00:00:00Z", committee="c1")
        other = attrs.evolve(first, case_id="k2", kind="acceptance", due="2026-01-08")
        assert store.record_warning(overdue) and store.record_warning(other)
        assert store.warnings() == [first, other, overdue]
        assert store.warnings("k1") == [first, overdue]
        assert store.warnings("k3") == []
        assert self.reopen(store).warnings("k1") == [first, overdue]

    def test_concurrent_warnings_are_recorded_once(self) -> None:
        store = self.make_store()
        won: list[tuple[str, ...]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(6)

        def writer(n: int) -> None:
            barrier.wait()
            for i in range(20):
                w = DeadlineWarning(
                    f"k{i % 4}", "term", f"2026-02-{i % 5 + 1:02}", "overdue", str(n)
                )
                if store.record_warning(w):
                    with lock:
                        won.append(w.key)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(won) == sorted(set(won)) == sorted(w.key for w in store.warnings())
        assert len(won) == 20

    def test_summary_keeps_the_workflow_version(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 1)
        self._append(store, "k2", 2, workflow="mediation-workflow/9")
        default = DEFAULT_WORKFLOW
        for seen in (store, self.reopen(store)):
            first, second = seen.summary("k1"), seen.summary("k2")
            assert first is not None and second is not None
            assert (first.workflow, second.workflow) == (default, "mediation-workflow/9")
            assert [s.workflow for s in seen.cases()] == [default, "mediation-workflow/9"]
        self._append(store, "k2", 1, expected=2, workflow="mediation-workflow/10")
        summary = self.reopen(store).summary("k2")
        assert summary is not None and summary.workflow == "mediation-workflow/10"
        assert summary == synthetic_summary(
            "k2", 3, head=store.read("k2")[-1].hash, workflow="mediation-workflow/10"
        )

    # -- range scans -------------------------------------------------------------------------------

    def test_scan_takes_a_half_open_range_of_case_ids(self) -> None:
        store = self.make_store()
        ids = ["b", "a", "ba", "b-1", "c", "B", "é", "调解-1"]
        for n, case_id in enumerate(ids):
            self._append(store, case_id, 1 + n % 3)

        def scanned(start: str | None = None, stop: str | None = None) -> list[str]:
            return [f"{r.case_id}#{r.seq}" for r in store.scan(start, stop)]

        everything = scanned()
        assert everything == [
            f"{r.case_id}#{r.seq}" for case_id in sorted(ids) for r in store.read(case_id)
        ]
        assert [r.case_id for r in store.scan()] == sorted(r.case_id for r in store.scan())
        assert {e.split("#")[0] for e in scanned("b")} == {i for i in ids if i >= "b"}
        assert {e.split("#")[0] for e in scanned(None, "b")} == {i for i in ids if i < "b"}
        assert {e.split("#")[0] for e in scanned("b", "c")} == {"b", "b-1", "ba"}
        assert scanned("b", stop="b") == [] and scanned("调解-2") == [] and scanned("c", "b") == []
        only_a = [f"a#{r.seq}" for r in store.read("a")]
        assert scanned(start="a", stop="a-") == scanned("a", "b") == only_a
        assert scanned("bb") == scanned("c")  # a start between two ids
        # consecutive ranges cover everything, in order, whatever the cuts
        for cuts in (["b"], ["a", "b-1", "c"], ["", "B", "ba", "调"]):
            bounds = [None, *cuts, None]
            pieces = [scanned(lo, hi) for lo, hi in itertools.pairwise(bounds)]
            assert [e for piece in pieces for e in piece] == everything
        assert list(self.reopen(store).scan("b", "c")) == list(store.scan("b", "c"))

    # -- transactions ------------------------------------------------------------------------------

    def test_a_transaction_commits_its_appends_together(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 1)
        with store.transaction():
            added = self._append(store, "k1", 2, expected=1, state=_REGISTERED)
            new = self._append(store, "k2", 3)
            # what the block wrote, it reads
            assert store.read("k1")[1:] == added and store.read("k2") == new
            summary = store.summary("k2")
            assert summary is not None and summary.seq == 3
        fresh = self.reopen(store)
        assert fresh.read("k1")[1:] == added and fresh.read("k2") == new
        assert [(s.case_id, s.seq, s.state) for s in fresh.cases()] == [
            ("k1", 3, _REGISTERED),
            ("k2", 3, _OPENED),
        ]

    def test_a_transaction_that_raises_writes_nothing(self) -> None:
        store = self.make_store()
        before = self._append(store, "k1", 2)
        with raises(_Abort), store.transaction():
            self._append(store, "k1", 1, expected=2, state=_ENDED)
            first = attrs.evolve(synthetic_records("k2", 1)[0], request_id="req-1")
            store.append(synthetic_summary("k2", 1, head=first.hash), [first], 0)
            self._append(store, "k2", 2, expected=1)
            raise _Abort
        for seen in (store, self.reopen(store)):
            assert seen.read("k1") == before and seen.read("k2") == []
            summary = seen.summary("k1")
            assert summary is not None and (summary.seq, summary.state) == (2, _OPENED)
            assert seen.summary("k2") is None
            assert [s.case_id for s in seen.cases()] == ["k1"]
            assert seen.find_request("k2", "req-1") is None
            assert list(seen.scan()) == before
        # the ids and seqs are free again
        again = attrs.evolve(synthetic_records("k2", 1)[0], request_id="req-1")
        store.append(synthetic_summary("k2", 1, head=again.hash), [again], 0)
        assert store.find_request("k2", "req-1") == again
        self._append(store, "k1", 1, expected=2)

    def test_a_failed_append_leaves_the_transaction_usable(self) -> None:
        store = self.make_store()
        self._append(store, "k1", 1)
        with store.transaction():
            first = self._append(store, "k2", 1)
            with raises(ConcurrencyConflict):
                store.append(synthetic_summary("k1", 1), synthetic_records("k1", 1), 0)
            tagged = attrs.evolve(synthetic_records("k3", 1)[0], request_id="req-1")
            store.append(synthetic_summary("k3", 1, head=tagged.hash), [tagged], 0)
            twice = attrs.evolve(synthetic_records("k3", 1, 2, tagged.hash)[0], request_id="req-1")
            with raises(RequestConflict):
                store.append(synthetic_summary("k3", 2, head=twice.hash), [twice], 1)
            last = self._append(store, "k2", 1, expected=1)
        fresh = self.reopen(store)
        assert fresh.read("k2") == first + last
        assert [r.seq for r in fresh.read("k1")] == [1] and fresh.read("k3") == [tagged]
        summary = fresh.summary("k3")
        assert summary is not None and summary.seq == 1

    def test_transactions_nest_as_savepoints(self) -> None:
        store = self.make_store()
        with store.transaction():
            outer = self._append(store, "k1", 1)
            with raises(_Abort), store.transaction():
                self._append(store, "k1", 1, expected=1)
                self._append(store, "k2", 1)
                raise _Abort
            assert store.read("k1") == outer and store.read("k2") == []
            with store.transaction():
                inner = self._append(store, "k2", 2)
            kept = self._append(store, "k1", 1, expected=1)
        assert store.read("k1") == outer + kept and store.read("k2") == inner
        # an outer block that raises takes its committed inner blocks with it
        with raises(_Abort), store.transaction():
            with store.transaction():
                self._append(store, "k3", 1)
            self._append(store, "k1", 1, expected=2)
            raise _Abort
        fresh = self.reopen(store)
        assert fresh.read("k3") == [] and fresh.summary("k3") is None
        assert fresh.read("k1") == outer + kept and fresh.read("k2") == inner

    def test_other_threads_never_see_a_transaction_that_rolls_back(self) -> None:
        """Another thread's reads see none of the block's appends before it commits (they may wait
        for it to end), and its own appends stand when the block rolls back."""
        store = self.make_store()
        self._append(store, "k0", 1)
        seen: list[object] = []

        def other() -> None:
            try:
                seen.append(len(store.read("k1")))
                seen.append(store.summary("k1"))
                seen.append(len(self._append(store, "k2", 1)))
            except BaseException as exc:  # pragma: no cover - reported by the assertion below
                seen.append(exc)

        thread = threading.Thread(target=other)
        with raises(_Abort), store.transaction():
            self._append(store, "k1", 2)
            thread.start()
            thread.join(0.3)  # the other thread may have to wait for the block: do not wait long
            raise _Abort
        thread.join(60)
        assert seen == [0, None, 1]
        fresh = self.reopen(store)
        assert fresh.read("k1") == [] and len(fresh.read("k2")) == 1

    def test_a_real_case_verifies_from_the_store(self) -> None:
        world = World()
        store = self.make_store()
        service = world.service(store)
        try:  # opened, consented to and registered (without a mediator): three events
            drive(service, world, "case-1", _REGISTERED, PathOptions(lead=None))
        except MediationError as exc:  # pragma: no cover - a conformance failure
            raise AssertionError(exc.fields()) from exc
        fresh = self.reopen(store)
        verdict = verify(fresh.read("case-1"), "case-1")
        assert verdict.ok, verdict.describe()
        assert verdict.state == _REGISTERED
        summary = fresh.summary("case-1")
        assert summary is not None and summary.state == _REGISTERED and summary.seq == 3

    def test_stat_events_project_the_stored_bodies(self) -> None:
        """:meth:`Store.stat_events` gives, for every event of every case (roster streams left
        out), what its body says: ``at``, ``type``, ``state``, ``workflow`` and, for the commands
        the statistics read, the payload; ``before`` keeps the events earlier than it."""
        world = World()
        store = self.make_store()
        service = world.service(store)
        try:
            drive(service, world, "case-1", _REGISTERED, PathOptions(lead="med1"))
            drive(service, world, "case-0", _REGISTERED, PathOptions(lead=None))
        except MediationError as exc:  # pragma: no cover - a conformance failure
            raise AssertionError(exc.fields()) from exc
        self._append(store, "@roster:c1", 1, committee="c1")
        fresh = self.reopen(store)
        expected = []
        for rec in fresh.scan():
            if rec.case_id.startswith("@"):
                continue
            body = parse_body(rec.body)
            wanted = body["type"] in STAT_PAYLOAD_TYPES
            expected.append(
                StatEvent(
                    rec.case_id,
                    rec.seq,
                    body["at"],
                    body["type"],
                    body["state"],
                    body["workflow"],
                    body["payload"] if wanted else None,
                    body["actor"],
                    body["as"],
                )
            )
        got = list(fresh.stat_events())
        assert got == expected
        assert [e.case_id for e in got][:1] == ["case-0"]
        assert any(e.type == cmd.AssignMediator.name and e.payload for e in got)
        cut = got[len(got) // 2].at
        assert list(fresh.stat_events(cut)) == [e for e in expected if e.at < cut]


# -- key stores ------------------------------------------------------------------------------------


_T = TypeVar("_T")


def _create_key(name: tuple[str, str, int], keys: KeyStore) -> bytes:
    """Create the key ``name`` with a key of this process's own; the one stored."""
    return keys.create(*name, os.urandom(32))


def _rotations(times: int, keys: KeyStore) -> list[int]:
    return [keys.rotate() for _ in range(times)]


def _in_process(
    opener: Callable[[], KeyStore],
    task: Callable[[KeyStore], object],
    barrier: Any,
    results: Any,
) -> None:
    """A process of :meth:`KeyStoreConformance._race`: open the key store, wait for the others,
    run ``task`` on it, and put its result (or the repr of its error) in ``results``."""
    try:
        keys = opener()
        try:
            barrier.wait(120)
            results.put(("ok", task(keys)))
        finally:
            keys.close()
    except BaseException as exc:  # reported to the test, which fails on it
        results.put(("error", repr(exc)))


class KeyStoreConformance:
    """The contract of a :class:`mediation._keys.KeyStore`: subclass and implement
    :meth:`make_key_store`; every ``test_*`` method checks one rule.  The tests that need a second
    handle (:meth:`reopen_key_store`) or other processes (:meth:`key_store_opener`) check what the
    store offers: a key store in memory shares nothing beyond its process."""

    def make_key_store(self) -> KeyStore:
        """A fresh, empty key store (closed by the subclass, if it must be)."""
        raise NotImplementedError

    def reopen_key_store(self, keys: KeyStore) -> KeyStore:
        """The same keys through a second handle (a new connection to the same file or database);
        a key store in memory returns ``keys`` itself."""
        return keys

    def key_store_opener(self, keys: KeyStore) -> Callable[[], KeyStore] | None:
        """A picklable function of no arguments that opens the same keys in another process (for
        instance ``functools.partial(SQLiteKeyStore, path)``), or None (the default) when they
        cannot be shared between processes: the tests that need it then check nothing more."""
        return None

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _key() -> bytes:
        return os.urandom(32)

    def _race(
        self, keys: KeyStore, task: Callable[[KeyStore], object], processes: int = 2
    ) -> list[Any] | None:
        """``task``'s results in ``processes`` processes that each open the key store and start it
        at once; None when the key store cannot be opened in another process."""
        opener = self.key_store_opener(keys)
        if opener is None:
            return None
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads or locks
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(target=_in_process, args=(opener, task, barrier, results))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        try:
            outcomes = [results.get(timeout=180) for _ in workers]
        except queue.Empty:  # pragma: no cover - a conformance failure
            raise AssertionError("a process of the race never reported") from None
        finally:
            for worker in workers:
                worker.join(60)
                if worker.is_alive():  # pragma: no cover
                    worker.kill()
        errors = [value for status, value in outcomes if status != "ok"]
        assert not errors, errors
        return [value for _, value in outcomes]

    @staticmethod
    def _threads(n: int, work: Callable[[int], _T]) -> list[_T]:
        """``work(i)`` for i in range(n), in ``n`` threads started at once; their results."""
        barrier = threading.Barrier(n)
        results: dict[int, _T] = {}
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                barrier.wait(60)
                results[i] = work(i)
            except BaseException as exc:  # pragma: no cover - a conformance failure
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        return [results[i] for i in range(n)]

    # -- the contract ------------------------------------------------------------------------------

    def test_a_fresh_key_store_holds_nothing_at_epoch_1(self) -> None:
        keys = self.make_key_store()
        assert isinstance(keys, KeyStore)
        assert keys.get("k1", "p1", 1) is None
        assert keys.get("k1", CASE, 1) is None
        assert not keys.destroyed("k1", "p1")
        assert keys.epoch() == 1

    def test_create_stores_the_key_under_its_whole_name(self) -> None:
        keys = self.make_key_store()
        key = self._key()
        stored = keys.create("k1", "p1", 1, key)
        assert type(stored) is bytes and stored == key
        assert keys.get("k1", "p1", 1) == key
        # each part of the name counts
        for other in (("k2", "p1", 1), ("k1", "p2", 1), ("k1", CASE, 1), ("k1", "p1", 2)):
            assert keys.get(*other) is None, other

    def test_create_keeps_the_first_key(self) -> None:
        keys = self.make_key_store()
        first, second = self._key(), self._key()
        assert keys.create("k1", "p1", 1, first) == first
        assert keys.create("k1", "p1", 1, second) == first
        assert keys.get("k1", "p1", 1) == first

    def test_creating_from_threads_at_once_gives_all_the_first_key(self) -> None:
        keys = self.make_key_store()
        offered = [self._key() for _ in range(8)]
        got = self._threads(8, lambda i: keys.create("k1", "p1", 1, offered[i]))
        assert len(set(got)) == 1
        assert got[0] in offered
        assert keys.get("k1", "p1", 1) == got[0]

    def test_creating_from_processes_at_once_gives_all_the_first_key(self) -> None:
        keys = self.make_key_store()
        for round_ in range(3):  # the race is brief: run it a few times
            name = ("k1", f"p{round_}", 1)
            got = self._race(keys, functools.partial(_create_key, name))
            if got is None:
                return  # a key store of one process
            assert len(set(got)) == 1, got
            assert keys.get(*name) == got[0]

    def test_destroying_a_subject_destroys_its_keys_of_every_epoch_and_no_other(self) -> None:
        keys = self.make_key_store()
        made = {
            name: keys.create(*name, self._key())
            for name in (
                ("k1", "p1", 1), ("k1", "p1", 2), ("k1", "p1", 7), ("k1", "p2", 1),
                ("k1", "p10", 1), ("k1", CASE, 1), ("k2", "p1", 1), ("k10", "p1", 1),
            )
        }  # fmt: skip
        assert keys.destroy("k1", "p1") == 3
        for name, key in made.items():
            assert keys.get(*name) == (None if name[:2] == ("k1", "p1") else key), name
        assert keys.destroy("k1", "p1") == 0  # again: not an error

    def test_destroying_the_case_subject_leaves_the_persons_keys(self) -> None:
        keys = self.make_key_store()
        text, person = self._key(), self._key()
        keys.create("k1", CASE, 1, text)
        keys.create("k1", "p1", 1, person)
        assert keys.destroy("k1", CASE) == 1
        assert keys.get("k1", CASE, 1) is None
        assert keys.get("k1", "p1", 1) == person
        assert keys.destroyed("k1", CASE) and not keys.destroyed("k1", "p1")

    def test_destroying_a_case_destroys_every_subject_of_it_and_no_other_case(self) -> None:
        keys = self.make_key_store()
        made = {
            name: keys.create(*name, self._key())
            for name in (
                ("k1", "p1", 1), ("k1", "p2", 2), ("k1", CASE, 1), ("k10", "p1", 1),
                ("k", "p1", 1), ("K1", "p1", 1), ("k_", "p1", 1), ("k%", "p1", 1),
            )
        }  # fmt: skip
        assert keys.destroy("k1") == 3
        for name, key in made.items():
            assert keys.get(*name) == (None if name[0] == "k1" else key), name
        assert keys.destroy("k1") == 0
        # LIKE patterns are no wildcards
        assert keys.destroy("k_") == 1 and keys.destroy("k%") == 1
        assert keys.get("k10", "p1", 1) == made["k10", "p1", 1]

    def test_a_destroyed_subject_gets_no_key_again(self) -> None:
        keys = self.make_key_store()
        keys.create("k1", "p1", 1, self._key())
        other = keys.create("k1", "p2", 1, self._key())
        keys.destroy("k1", "p1")
        assert keys.destroyed("k1", "p1")
        assert not keys.destroyed("k1", "p2") and not keys.destroyed("k1", CASE)
        assert not keys.destroyed("k2", "p1")
        for epoch in (1, 2):  # neither the destroyed epoch nor a later one
            with raises(KeyDestroyed):
                keys.create("k1", "p1", epoch, self._key())
            assert keys.get("k1", "p1", epoch) is None
        assert keys.get("k1", "p2", 1) == other
        fresh = self._key()
        assert keys.create("k1", "p3", 1, fresh) == fresh
        assert keys.create("k2", "p1", 1, fresh) == fresh

    def test_a_destroyed_case_gets_no_key_again_for_anyone(self) -> None:
        keys = self.make_key_store()
        keys.create("k1", "p1", 1, self._key())
        assert keys.destroy("k1") == 1
        assert keys.destroy("k9") == 0  # a case without keys gets its tombstone all the same
        for case_id in ("k1", "k9"):
            for subject in ("p1", "never seen", CASE):
                assert keys.destroyed(case_id, subject)
                with raises(KeyDestroyed):
                    keys.create(case_id, subject, 1, self._key())
                assert keys.get(case_id, subject, 1) is None
        assert not keys.destroyed("k10", "p1")

    def test_the_error_of_a_destroyed_subject_names_the_case(self) -> None:
        keys = self.make_key_store()
        keys.destroy("k1", "p1")
        try:
            keys.create("k1", "p1", 1, self._key())
        except KeyDestroyed as exc:
            assert exc.case == "k1" and isinstance(exc, MediationError)
        else:  # pragma: no cover - a conformance failure
            raise AssertionError("KeyDestroyed was not raised")

    def test_rotation_starts_the_next_epoch(self) -> None:
        keys = self.make_key_store()
        assert keys.epoch() == 1
        assert keys.rotate() == 2
        assert keys.epoch() == 2
        assert keys.rotate() == 3 and keys.epoch() == 3

    def test_rotations_from_threads_at_once_each_start_an_epoch(self) -> None:
        keys = self.make_key_store()
        got = self._threads(8, lambda _: keys.rotate())
        assert sorted(got) == list(range(2, 10))
        assert keys.epoch() == 9

    def test_rotations_from_processes_at_once_each_start_an_epoch(self) -> None:
        keys = self.make_key_store()
        got = self._race(keys, functools.partial(_rotations, 5))
        if got is None:
            return  # a key store of one process
        epochs = sorted(e for rotations in got for e in rotations)
        assert epochs == list(range(2, 12)), epochs
        assert keys.epoch() == 11

    def test_a_second_handle_shares_keys_tombstones_and_epoch(self) -> None:
        keys = self.make_key_store()
        other = self.reopen_key_store(keys)
        key = keys.create("k1", "p1", 1, self._key())
        assert other.get("k1", "p1", 1) == key
        assert other.create("k1", "p1", 1, self._key()) == key
        assert other.destroy("k1", "p1") == 1
        assert keys.get("k1", "p1", 1) is None and keys.destroyed("k1", "p1")
        with raises(KeyDestroyed):
            keys.create("k1", "p1", 1, self._key())
        assert keys.rotate() == 2 and other.epoch() == 2
        assert other.rotate() == 3 and keys.epoch() == 3

    def test_keys_tombstones_and_epoch_survive_reopening(self) -> None:
        keys = self.make_key_store()
        key = keys.create("k1", "p1", 1, self._key())
        keys.create("k1", "p2", 1, self._key())
        keys.destroy("k1", "p2")
        keys.destroy("k2")
        keys.rotate()
        again = self.reopen_key_store(keys)
        if again is not keys:
            keys.close()
        assert again.get("k1", "p1", 1) == key
        assert again.get("k1", "p2", 1) is None
        assert again.destroyed("k1", "p2") and again.destroyed("k2", "p1")
        assert not again.destroyed("k1", "p1")
        assert again.epoch() == 2
