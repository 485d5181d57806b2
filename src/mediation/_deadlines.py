"""Deadlines (时限) and the policy that sets them.  An overdue case is an early warning, not an error.

Defaults from DOMAIN.md, each overridable by :class:`Policy`: the mediation term runs 30 days from
registration to agreement (R2002 33; extendable with every party's consent, NB27, SZ25); labour
disputes 15 days from application (LDL14); acceptance decided within 3 working days (by analogy
with ODR2021 12); judicial confirmation applied for within 30 days of effectiveness (PML33; a last
day on a holiday moves to the next working day, CC203); the first follow-up visit by the
agreement's performance deadline, else 30 days after effectiveness (PML31; policy); a
building/grid (L0) case should be escalated after 7 days (NB12; policy).

Every period is counted on the committee's local dates (:class:`~mediation.Calendar`, default
Asia/Shanghai): the day it starts from is not counted (CC201), and the deadline is the end of its
last day.  Working days follow China's holiday and make-up working-day (调休) arrangements.  Time
stops while a case is paused: the paused time moves the start.  Due dates are computed, never
recorded, so replay reproduces them from the log (``docs/deadlines.md``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from typing import Any

import attrs

from ._calendar import Calendar, CalendarNotCovered
from ._case import Case, CaseSummary
from ._events import parse_time
from ._spec import DeadlineSpec, known
from ._validators import int_in, one_of, plain_word
from ._vocab import RecusalProfile

__all__ = ["Deadline", "Policy", "deadlines", "summary_deadlines"]


def _days(lo: int, hi: int) -> Any:
    return attrs.field(default=None, validator=attrs.validators.optional(int_in(lo, hi)))


def _calendar(_: object, __: object, value: object) -> None:
    if not isinstance(value, Calendar):
        raise TypeError(f"Policy.calendar must be a Calendar, not {type(value).__name__}")


@attrs.frozen
class Policy:
    """Configurable rules: the recusal profile new cases take, deadlines in days, when to warn,
    and the working calendar.

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
    #: days after effectiveness for the first follow-up when the agreement states no performance
    #: deadline
    follow_up_days: int | None = _days(1, 365)
    #: a deadline is nearly due (临期预警) from this many days before its last day
    warn_days_before: int = attrs.field(default=3, validator=int_in(0, 60))
    #: the working calendar and the committee's time zone
    calendar: Calendar = attrs.field(factory=Calendar, validator=_calendar)

    def days(self, spec: DeadlineSpec) -> int:
        """The days of deadline ``spec``: this policy's override, else the declared ones."""
        value = getattr(self, spec.policy) if spec.policy else None
        return spec.days if value is None else int(value)


@attrs.frozen
class Deadline:
    #: the declared deadline's kind ("acceptance", "term", "labour_term", "l0_escalation",
    #: "judicial_window", "first_follow_up")
    kind: str
    #: the instant the deadline passes: the end of its last local day, in UTC
    due: _dt.datetime
    #: past due (never for a window a party may use: ``warns`` False)
    overdue: bool
    basis: str
    #: the last day, a local date of the committee's calendar
    due_date: _dt.date | None = None
    #: within ``Policy.warn_days_before`` days of the last day, not yet overdue
    nearly_due: bool = False
    #: whether passing it is an early warning (False: a window a party may use)
    warns: bool = True


def add_working_days(start: _dt.datetime, days: int, calendar: Calendar | None = None) -> _dt.date:
    """The local date ``days`` working days after ``start``'s local date (not counted)."""
    cal = calendar or Calendar()
    return cal.add_working_days(cal.local_date(start), days)


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


def _performance_deadline(row: CaseSummary | Case) -> _dt.date | None:
    agreement = getattr(row, "agreement", None)
    if not isinstance(agreement, dict):
        return None
    content = agreement.get("content")
    value = content.get("performance_deadline") if isinstance(content, dict) else None
    value = value or agreement.get("performance_deadline")
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def due_date(spec: DeadlineSpec, row: CaseSummary | Case, policy: Policy) -> _dt.date | None:
    """The last day of deadline ``spec`` for the case (None when it does not apply)."""
    start = getattr(row, spec.start, None)
    if start is None or not _applies(spec, row):
        return None
    cal = policy.calendar
    if spec.due_from == "performance_deadline":
        stated = _performance_deadline(row)
        if stated is not None:
            return stated
    days = policy.days(spec) + (row.extra_days if spec.extendable else 0)
    paused = _dt.timedelta(seconds=row.paused_seconds)
    try:
        first = cal.local_date(parse_time(start) + paused)
        if spec.working_days:
            return cal.add_working_days(first, days)
        last = first + _dt.timedelta(days=days)
    except OverflowError:  # a case that runs at the end of the calendar: due at its end
        return _dt.date.max
    if spec.rolls_over:
        # past a holiday (CC203) where the calendar knows the year; in a year it does not cover
        # yet the last day is not extended (as judicial_window_end records it)
        with contextlib.suppress(CalendarNotCovered):
            last = cal.roll_forward(last)
    return last


def _deadline(
    spec: DeadlineSpec, row: CaseSummary | Case, now: _dt.datetime, policy: Policy
) -> Deadline | None:
    last = due_date(spec, row, policy)
    if last is None:
        return None
    cal = policy.calendar
    if last >= _dt.date.max - _dt.timedelta(days=2):
        due = _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
    else:
        due = cal.day_end(last)
    overdue = spec.warns and now >= due
    try:
        today = cal.local_date(now)
        nearly = (
            spec.warns
            and not overdue
            and today >= last - _dt.timedelta(days=policy.warn_days_before)
        )
    except OverflowError:
        nearly = False
    return Deadline(spec.kind, due, overdue, spec.basis, last, nearly, spec.warns)


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
    judicial-confirmation window and the first follow-up, from the agreement's effect)."""
    if case.paused:
        return ()
    out = (_deadline(spec, case, now, policy) for spec in case.workflow.deadlines)
    return tuple(d for d in out if d is not None)


def judicial_window_end(case: Case, policy: Policy) -> _dt.datetime | None:
    """The instant the judicial-confirmation window of ``case`` closes under ``policy`` (the
    service records it in the application, so that G11 decides the same on replay).

    The window's last day moves past a holiday (CC203) only where the calendar knows the year:
    for a year it does not cover yet, the window ends on its last calendar day, not extended (an
    application the window refuses can still be made to the court, PML33).  Recording the
    application is never blocked for want of holiday data."""
    for spec in case.workflow.deadlines:
        if spec.kind == "judicial_window" and case.effective_at is not None:
            start = case.effective_at
            cal = policy.calendar
            first = cal.local_date(parse_time(start))
            last = first + _dt.timedelta(days=policy.days(spec))
            with contextlib.suppress(CalendarNotCovered):  # not extended: see above
                last = cal.roll_forward(last)
            return cal.day_end(last)
    return None


_SUMMARY_TIMES = frozenset(("opened_at", "registered_at"))


def needs_case(s: CaseSummary) -> bool:
    """Whether a deadline of the case in its state runs from facts its summary row lacks (the
    agreement's effect, its performance deadline): then the case itself must be read."""
    workflow = known(s.workflow)
    if workflow is None:
        return False
    return any(
        s.state in spec.states and (spec.start not in _SUMMARY_TIMES or spec.due_from)
        for spec in workflow.deadlines
    )
