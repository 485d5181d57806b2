"""An in-memory store: for tests, examples and hosts that persist elsewhere."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

from .._case import CaseSummary
from .._events import StoredEvent
from .._keys import KeyStore, MemoryKeyStore
from ._base import DeadlineWarning, Store, check_batch, in_range, request_taken, seq_taken

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keeps records in per-case lists; thread-safe; gone when the process ends.

    Every call holds the store's lock, and :meth:`transaction` holds it for the whole block (other
    threads wait until it ends), keeping an undo step per append to roll the block back.
    """

    def __init__(self) -> None:
        self._events: dict[str, list[StoredEvent]] = {}
        self._summaries: dict[str, CaseSummary] = {}
        #: (case id, request id) -> the record that carries it
        self._requests: dict[tuple[str, str], StoredEvent] = {}
        self._lock = threading.RLock()
        self._warnings: dict[tuple[str, str, str, str], DeadlineWarning] = {}
        #: the undo steps of each open transaction, innermost last (only the thread that holds the
        #: lock, the one whose transaction it is, touches them)
        self._undo: list[list[Callable[[], None]]] = []
        self._keys = MemoryKeyStore()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            undo: list[Callable[[], None]] = []
            self._undo.append(undo)
            try:
                yield
            except BaseException:
                for step in reversed(undo):
                    step()
                raise
            finally:
                self._undo.pop()
            if self._undo:  # a savepoint released: the enclosing block may still undo it
                self._undo[-1].extend(undo)

    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        case_id = summary.case_id
        check_batch(case_id, expected_seq, records)
        with self._lock:
            log = self._events.get(case_id)
            current = len(log) if log is not None else 0
            if current != expected_seq:
                raise seq_taken(case_id, expected_seq, current)
            requests = {(case_id, r.request_id): r for r in records if r.request_id is not None}
            if requests:
                repeated = len(requests) < sum(r.request_id is not None for r in records)
                if repeated or not self._requests.keys().isdisjoint(requests):
                    raise request_taken(case_id, records)
            if self._undo:
                self._undo[-1].append(self._undo_step(case_id, current, list(requests)))
            self._requests.update(requests)
            if log is None:
                log = self._events[case_id] = []
            log.extend(records)
            self._summaries[case_id] = summary

    def _undo_step(
        self, case_id: str, length: int, requests: list[tuple[str, str]]
    ) -> Callable[[], None]:
        """What puts ``case_id`` back as it is now (``length`` records), before an append."""
        summary = self._summaries.get(case_id)

        def undo() -> None:
            for key in requests:
                del self._requests[key]
            if length:
                del self._events[case_id][length:]
            else:
                del self._events[case_id]
            if summary is None:
                del self._summaries[case_id]
            else:
                self._summaries[case_id] = summary

        return undo

    def key_store(self) -> KeyStore:
        """The store's key store: a :class:`~mediation.MemoryKeyStore` of its own (the same one on
        every call), gone with the process like the events.  A host may instead give the vault a
        key store of its own."""
        return self._keys

    def record_warning(self, warning: DeadlineWarning) -> bool:
        with self._lock:
            if warning.key in self._warnings:
                return False
            self._warnings[warning.key] = warning
            return True

    def warnings(self, case_id: str | None = None) -> list[DeadlineWarning]:
        with self._lock:
            rows = [w for w in self._warnings.values() if case_id in (None, w.case_id)]
        return sorted(rows, key=lambda w: (w.at, w.key))

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        with self._lock:
            return self._requests.get((case_id, request_id))

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        with self._lock:
            return list(self._events.get(case_id, ())[max(after_seq, 0) :])

    def scan(self, start: str | None = None, stop: str | None = None) -> Iterator[StoredEvent]:
        with self._lock:  # the records as they are now, whatever is appended while they are read
            logs = [
                (case_id, list(log))
                for case_id, log in self._events.items()
                if in_range(case_id, start, stop)
            ]
        for _, log in sorted(logs, key=lambda item: item[0]):
            yield from log

    def case_ids(self) -> list[str]:
        with self._lock:  # the cases with events, whatever the summaries hold
            return sorted(case_id for case_id, log in self._events.items() if log)

    def summary(self, case_id: str) -> CaseSummary | None:
        with self._lock:
            return self._summaries.get(case_id)

    def cases(
        self,
        *,
        state: str | None = None,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
    ) -> list[CaseSummary]:
        with self._lock:
            rows = list(self._summaries.values())
        return sorted(
            (
                s
                for s in rows
                if not s.case_id.startswith("@")  # a roster stream's row is not a case
                and (state is None or s.state == state)
                and (committee is None or s.committee == committee)
                and (level is None or s.level == level)
                and (category is None or s.category == category)
            ),
            key=lambda s: s.case_id,
        )
