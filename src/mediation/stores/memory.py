"""An in-memory store: for tests, examples and hosts that persist elsewhere."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .._case import CaseSummary
from .._events import StoredEvent
from ._base import Store, check_batch, request_taken, seq_taken

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keeps records in per-case lists; thread-safe; gone when the process ends."""

    def __init__(self) -> None:
        self._events: dict[str, list[StoredEvent]] = {}
        self._summaries: dict[str, CaseSummary] = {}
        #: (case id, request id) -> the record that carries it
        self._requests: dict[tuple[str, str], StoredEvent] = {}
        self._lock = threading.Lock()

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
                self._requests.update(requests)
            if log is None:
                log = self._events[case_id] = []
            log.extend(records)
            self._summaries[case_id] = summary

    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        with self._lock:
            return self._requests.get((case_id, request_id))

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        with self._lock:
            return list(self._events.get(case_id, ())[max(after_seq, 0) :])

    def summary(self, case_id: str) -> CaseSummary | None:
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
                if (state is None or s.state == state)
                and (committee is None or s.committee == committee)
                and (level is None or s.level == level)
                and (category is None or s.category == category)
            ),
            key=lambda s: s.case_id,
        )
