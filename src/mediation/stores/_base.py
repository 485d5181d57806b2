"""The one store interface every backend implements, and its contract.

A store keeps, per case, the records of :class:`~mediation.StoredEvent` (seq, hash, the exact body
bytes, the client's request id) in an append-only sequence, plus one :class:`~mediation.CaseSummary`
row per case, written in the same transaction, which serves the list queries without replaying
cases.  Every store is safe to share between threads.  The contract is
checked by :class:`mediation.testing.StoreConformance`, which a third-party store can reuse.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from types import TracebackType

from .._case import CaseSummary
from .._errors import ConcurrencyConflict, RequestConflict, StoreError
from .._events import StoredEvent

__all__ = ["Store", "check_batch", "request_taken", "seq_taken", "summary_filter"]


def check_batch(case_id: str, expected_seq: int, records: Sequence[StoredEvent]) -> None:
    """Refuse a batch that is not the next consecutive records of ``case_id``."""
    if not records:
        raise StoreError("nothing to append", case=case_id)
    for i, rec in enumerate(records, start=expected_seq + 1):
        if rec.case_id != case_id or rec.seq != i:
            raise StoreError(
                f"records must be consecutive events of case {case_id} from seq "
                f"{expected_seq + 1}; got {rec.case_id}#{rec.seq}",
                case=case_id,
                seq=rec.seq,
            )


def seq_taken(case_id: str, expected_seq: int, current: int | None = None) -> ConcurrencyConflict:
    """The error of an append whose ``expected_seq`` is no longer the case's last seq."""
    if current is None:
        message = f"case {case_id}: another writer appended seq {expected_seq + 1} first"
    else:
        message = f"case {case_id} is at seq {current}, not {expected_seq}"
    return ConcurrencyConflict(message, expected_seq=expected_seq, case=case_id, seq=current)


def request_taken(case_id: str, records: Sequence[StoredEvent]) -> RequestConflict:
    """The error of an append whose request id the case already holds."""
    request = next((r.request_id for r in records if r.request_id), "")
    return RequestConflict(
        f"case {case_id} already holds an event of request {request}",
        request_id=request,
        case=case_id,
    )


def summary_filter(placeholder: str, **filters: str | None) -> tuple[str, list[str]]:
    """The ``" WHERE state = ? AND ..."`` clause (or ``""``) and its arguments for the summary
    columns given a value: what :meth:`Store.cases` means, for the SQL stores."""
    given = [(column, value) for column, value in filters.items() if value is not None]
    if not given:
        return "", []
    clause = " AND ".join(f"{column} = {placeholder}" for column, _ in given)
    return " WHERE " + clause, [value for _, value in given]


class Store(abc.ABC):
    """Append-only, per-case event storage with optimistic concurrency."""

    @abc.abstractmethod
    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        """Append ``records`` to ``summary.case_id`` if its last seq is ``expected_seq``.

        All or nothing: on any failure nothing is written.  A stale ``expected_seq`` (another
        writer got there first) raises :class:`~mediation.ConcurrencyConflict`; a record whose
        ``request_id`` the case already holds raises :class:`~mediation.RequestConflict`.  When the
        outcome cannot be known (the connection was lost after the commit was sent), it raises
        :class:`~mediation.OutcomeUnknown`.
        """

    @abc.abstractmethod
    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        """The case's record that carries ``request_id``, or None."""

    @abc.abstractmethod
    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        """The case's records with seq > ``after_seq``, in seq order (empty for an unknown case)."""

    @abc.abstractmethod
    def summary(self, case_id: str) -> CaseSummary | None:
        """The case's summary row, or None."""

    @abc.abstractmethod
    def cases(
        self,
        *,
        state: str | None = None,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
    ) -> list[CaseSummary]:
        """Summaries matching every given filter, ordered by case id."""

    def case_ids(self) -> list[str]:
        """Every case id that has events, in order."""
        return [s.case_id for s in self.cases()]

    def scan(self) -> Iterator[StoredEvent]:
        """Every record of every case, by case id then seq (stores may stream this faster)."""
        for case_id in self.case_ids():
            yield from self.read(case_id)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default does nothing."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
