"""Deadlines (时限) and the policy that sets them.  An overdue case is an early warning, not an error.

Defaults from DOMAIN.md: the mediation term runs 30 days from registration to agreement (R2002 33;
extendable with every party's consent, NB27, SZ25); labour disputes 15 days from application (LDL14);
acceptance decided within 3 working days (by analogy with ODR2021 12); judicial confirmation within
30 days of effectiveness (PML33); a building/grid (L0) case should be escalated after 7 days.
Time stops while a case is paused.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import attrs

from ._case import Case, CaseSummary
from ._events import parse_time
from ._spec import DeadlineSpec, known
from ._validators import int_in, one_of, plain_word
from ._vocab import RecusalProfile

__all__ = ["Deadline", "Policy", "deadlines", "summary_deadlines"]


def _days(lo: int, hi: int) -> Any:
    return attrs.field(default=None, validator=attrs.validators.optional(int_in(lo, hi)))


@attrs.frozen
class Policy:
    """Configurable rules: the recusal profile new cases take, and deadlines in days.

    A deadline left ``None`` takes the days its workflow version declares (``docs/workflow.md``);
    a value set here overrides it for every case.
    """

    #: "default" (ties disqualify; the director decides requests), "sz" (one party's request removes
    #: the person, SZ23), "court" (every party may waive a tie, TY2016 15; ODR2021 13)
    recusal: str = attrs.field(
        default=RecusalProfile.DEFAULT, converter=plain_word, validator=one_of(*RecusalProfile)
    )
    term_days: int | None = _days(1, 365)
    labour_term_days: int | None = _days(1, 365)
    acceptance_working_days: int | None = _days(1, 60)
    judicial_window_days: int | None = _days(1, 365)
    l0_days: int | None = _days(1, 365)

    def days(self, spec: DeadlineSpec) -> int:
        """The days of deadline ``spec``: this policy's override, else the declared ones."""
        value = getattr(self, spec.policy) if spec.policy else None
        return spec.days if value is None else int(value)


@attrs.frozen
class Deadline:
    #: the declared deadline's kind ("acceptance", "term", "labour_term", "l0_escalation", ...)
    kind: str
    due: _dt.datetime
    overdue: bool
    basis: str


def add_working_days(start: _dt.datetime, days: int) -> _dt.datetime:
    out = start
    while days > 0:
        out += _dt.timedelta(days=1)
        if out.weekday() < 5:
            days -= 1
    return out


def _applies(spec: DeadlineSpec, row: CaseSummary | Case) -> bool:
    if row.state not in spec.states:
        return False
    if spec.category is not None and row.category != spec.category:
        return False
    if spec.unless_category is not None and row.category == spec.unless_category:
        return False
    if spec.level is not None and row.level != spec.level:
        return False
    if spec.open_while is not None:
        attribute, value = spec.open_while
        if getattr(row, attribute) != value:
            return False
    return True


def _deadline(
    spec: DeadlineSpec, row: CaseSummary | Case, now: _dt.datetime, policy: Policy
) -> Deadline | None:
    start = getattr(row, spec.start, None)
    if start is None or not _applies(spec, row):
        return None
    days = policy.days(spec) + (row.extra_days if spec.extendable else 0)
    paused = _dt.timedelta(seconds=row.paused_seconds)
    begin = parse_time(start)
    try:
        if spec.working_days:
            due = add_working_days(begin, days) + paused
        else:
            due = begin + _dt.timedelta(days=days) + paused
    except OverflowError:  # a case that runs at the end of the calendar: due at its end
        due = _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
    return Deadline(spec.kind, due, spec.warns and now > due, spec.basis)


def summary_deadlines(s: CaseSummary, now: _dt.datetime, policy: Policy) -> tuple[Deadline, ...]:
    """The deadlines an open case is under, from its summary row alone (no replay): those its
    workflow version declares that run from a time the row holds."""
    if s.paused:
        return ()  # the clock is stopped
    workflow = known(s.workflow)
    if workflow is None:  # a version this process does not know: its deadlines are not known
        return ()
    out = (_deadline(spec, s, now, policy) for spec in workflow.deadlines)
    return tuple(d for d in out if d is not None)


def deadlines(case: Case, now: _dt.datetime, policy: Policy) -> tuple[Deadline, ...]:
    """The deadlines of a case, including those that run from times only the case holds (the
    judicial-confirmation window, from the agreement's effect)."""
    if case.paused:
        return ()
    out = (_deadline(spec, case, now, policy) for spec in case.workflow.deadlines)
    return tuple(d for d in out if d is not None)
