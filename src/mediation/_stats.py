"""Evaluation (可评估): counts, success rate, durations and overdue cases.

What a supervisor (司法所/街道) may see: categories, counts and durations, never a party or a text
(DOMAIN.md, Confidentiality).  Success rate = cases whose agreement took effect (effective,
following up, resolved) over cases that reached a decision (those plus failed).

:func:`compute_statistics` counts summary rows (what :meth:`CaseService.statistics` reads: fast,
but the rows are not evidence: anyone with database access can edit them).
:func:`verified_statistics` replays every case's events instead, counts the cases that verify, and
says where the summary rows disagree with them (``mediation stats --verified``).
"""

from __future__ import annotations

import datetime as _dt
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._case import CaseSummary
from ._deadlines import Policy, summary_deadlines
from ._events import parse_time
from ._spec import StateSpec, known

if TYPE_CHECKING:
    from ._audit import Verdict
    from ._authz import Directory
    from .stores._base import Store

__all__ = [
    "Disagreement",
    "Statistics",
    "VerifiedStatistics",
    "compute_statistics",
    "statistics_json",
    "verified_statistics",
]


@attrs.frozen
class Statistics:
    committees: tuple[str, ...]
    cases: int
    by_state: Mapping[str, int]
    by_category: Mapping[str, int]
    by_level: Mapping[str, int]
    agreed: int
    decided: int
    overdue: int
    median_days_to_close: float | None

    @property
    def success_rate(self) -> float | None:
        """Agreements over decided cases (the source reports 80%), or None before any decision."""
        return self.agreed / self.decided if self.decided else None


def _state(row: CaseSummary) -> StateSpec | None:
    """The declaration of a row's state in its case's version (None if this process does not know
    the version or the state: the row is counted, but neither agreed, failed nor closed)."""
    workflow = known(row.workflow)
    if workflow is None:
        return None
    try:
        return workflow.state(row.state)
    except KeyError:
        return None


def compute_statistics(
    rows: Iterable[CaseSummary], committees: Iterable[str], now: _dt.datetime, policy: Policy
) -> Statistics:
    rows = list(rows)
    specs = [_state(r) for r in rows]
    durations = [
        (parse_time(r.updated_at) - parse_time(r.opened_at)) / _dt.timedelta(days=1)
        for r, spec in zip(rows, specs, strict=True)
        if spec is not None and spec.terminal
    ]
    return Statistics(
        committees=tuple(sorted(set(committees))),
        cases=len(rows),
        by_state=dict(sorted(Counter(r.state for r in rows).items())),
        by_category=dict(sorted(Counter(r.category for r in rows).items())),
        by_level=dict(sorted(Counter(r.level for r in rows).items())),
        agreed=sum(spec is not None and spec.agreed for spec in specs),
        decided=sum(spec is not None and (spec.agreed or spec.failed) for spec in specs),
        overdue=sum(any(d.overdue for d in summary_deadlines(r, now, policy)) for r in rows),
        median_days_to_close=round(statistics.median(durations), 2) if durations else None,
    )


def statistics_json(stats: Statistics) -> dict[str, Any]:
    """The statistics as one JSON object (``mediation stats --json``)."""
    rate = stats.success_rate
    return {
        "committees": list(stats.committees),
        "cases": stats.cases,
        "by_state": dict(stats.by_state),
        "by_category": dict(stats.by_category),
        "by_level": dict(stats.by_level),
        "agreed": stats.agreed,
        "decided": stats.decided,
        "success_rate": None if rate is None else round(rate, 4),
        "overdue": stats.overdue,
        "median_days_to_close": stats.median_days_to_close,
    }


# -- from verified events -------------------------------------------------------------------------


@attrs.frozen
class Disagreement:
    """A case whose summary row does not say what its verified events say (or a row without
    events, or events without a row): the message names the columns.  A row whose ``case_id`` is
    not text (NULL, a BLOB) has ``case_id`` ``""``."""

    case_id: str
    message: str


@attrs.frozen
class VerifiedStatistics:
    """Statistics from the replayed events, beside those the summary rows give."""

    #: from the cases whose events verify (each rebuilt by replaying them)
    verified: Statistics
    #: from the summary rows as stored (:func:`compute_statistics`, what the service reads)
    summary: Statistics
    #: the summary rows that disagree with the replayed cases, in case-id order
    disagreements: tuple[Disagreement, ...]
    #: the cases whose events do not verify (left out of :attr:`verified`), one verdict each
    unverified: tuple[Verdict, ...]

    @property
    def agree(self) -> bool:
        """The summary rows say what the verified events say, and every case verified."""
        return not self.disagreements and not self.unverified


def verified_statistics(
    store: Store,
    now: _dt.datetime,
    policy: Policy,
    committees: Iterable[str] | None = None,
    *,
    strict: bool = False,
    directory: Directory | None = None,
) -> VerifiedStatistics:
    """Statistics computed from the store's verified events: every case is replayed
    (:func:`mediation.verify`, ``strict`` and ``directory`` as there) and counted from the case
    it rebuilds; a case whose events do not verify is left out (:attr:`VerifiedStatistics.
    unverified`).  The summary rows are compared with the replayed cases, and the statistics they
    give are computed too: :attr:`VerifiedStatistics.disagreements` says where they differ.

    ``committees``: only these committees' cases (by the replayed case's committee, and by the
    row's for the rows); every committee by default."""
    from ._audit import verify
    from ._events import by_stream
    from ._roster import rosters_of
    from ._verify_store import malformed_rows, summary_fault

    wanted = None if committees is None else frozenset(committees)
    listing = store.cases()
    rows = {r.case_id: r for r in listing if type(r.case_id) is str}
    replayed: list[CaseSummary] = []
    disagreements: list[Disagreement] = []
    unverified: list[Verdict] = []
    seen: set[str] = set()
    rosters = rosters_of(store)  # role claims are judged on the committees' rosters
    for case_id, records in by_stream(store.scan()):
        if case_id.startswith("@"):
            # not a case: no case id starts with "@" (the id format), the streams that do are the
            # host's records beside the cases (the committees' rosters); ``verify`` judges them
            continue
        seen.add(case_id)
        verdict = verify(records, case_id, strict=strict, directory=directory, rosters=rosters)
        case = verdict.case if verdict.ok else None
        row = rows.get(case_id)
        committee = case.committee if case is not None else getattr(row, "committee", None)
        if wanted is not None and committee not in wanted:
            continue
        if case is None:
            unverified.append(verdict.without_case())
        else:
            replayed.append(case.summary())
        fault = summary_fault(verdict, row, None if case is None else case.summary())
        if fault is not None:
            disagreements.append(Disagreement(case_id, fault.message))
    for case_id, row in rows.items():
        if case_id not in seen and (wanted is None or row.committee in wanted):
            disagreements.append(
                Disagreement(case_id, "a summary row without events (the events were deleted)")
            )
    # a row whose case_id is not text names no case (only a write past the library leaves one):
    # the service counts it, so the summary figures do too, and it is a disagreement of its own
    odd = [r for r in listing if type(r.case_id) is not str]
    odd = [r for r in odd if wanted is None or r.committee in wanted]
    disagreements += [Disagreement("", message) for message in malformed_rows(odd)]
    disagreements.sort(key=lambda d: d.case_id)
    chosen = [r for r in listing if wanted is None or r.committee in wanted]
    names = wanted if wanted is not None else {s.committee for s in (*replayed, *chosen)}
    names = {n for n in names if type(n) is str}
    return VerifiedStatistics(
        verified=compute_statistics(replayed, names, now, policy),
        summary=compute_statistics(chosen, names, now, policy),
        disagreements=tuple(disagreements),
        unverified=tuple(unverified),
    )
