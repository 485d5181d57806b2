"""Evaluation (可评估): counts, success rate, durations and overdue cases, from summary rows only.

What a supervisor (司法所/街道) may see: categories, counts and durations, never a party or a text
(DOMAIN.md, Confidentiality).  Success rate = cases whose agreement took effect (effective,
following up, resolved) over cases that reached a decision (those plus failed).
"""

from __future__ import annotations

import datetime as _dt
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping

import attrs

from ._case import CaseSummary
from ._deadlines import Policy, summary_deadlines
from ._events import parse_time
from ._spec import StateSpec, known

__all__ = ["Statistics", "compute_statistics"]


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
