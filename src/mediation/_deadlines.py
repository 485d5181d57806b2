"""Deadlines (时限) and the policy that sets them.  An overdue case is an early warning, not an error.

Defaults from DOMAIN.md: the mediation term runs 30 days from registration to agreement (R2002 33;
extendable with every party's consent, NB27, SZ25); labour disputes 15 days from application (LDL14);
acceptance decided within 3 working days (by analogy with ODR2021 12); judicial confirmation within
30 days of effectiveness (PML33); a building/grid (L0) case should be escalated after 7 days.
Time stops while a case is paused.
"""

from __future__ import annotations

import datetime as _dt

import attrs

from ._case import Case, CaseSummary
from ._events import parse_time
from ._validators import int_in, one_of, plain_word
from ._vocab import Category, DeadlineKind, JudicialStatus, Level, RecusalProfile

__all__ = ["Deadline", "Policy", "deadlines", "summary_deadlines"]

_OPEN_BEFORE_AGREEMENT = ("registered", "meeting_scheduled", "negotiating", "agreement_drafted")


@attrs.frozen
class Policy:
    """Configurable rules: deadlines in days and the recusal profile new cases take."""

    #: a :class:`RecusalProfile`: "default" (ties disqualify; the director decides requests), "sz"
    #: (one party's request removes the person, SZ23), "court" (every party may waive a tie,
    #: TY2016 15; ODR2021 13)
    recusal: str = attrs.field(
        default=RecusalProfile.DEFAULT, converter=plain_word, validator=one_of(*RecusalProfile)
    )
    term_days: int = attrs.field(default=30, validator=int_in(1, 365))
    labour_term_days: int = attrs.field(default=15, validator=int_in(1, 365))
    acceptance_working_days: int = attrs.field(default=3, validator=int_in(1, 60))
    judicial_window_days: int = attrs.field(default=30, validator=int_in(1, 365))
    l0_days: int = attrs.field(default=7, validator=int_in(1, 365))


@attrs.frozen
class Deadline:
    kind: str  # a DeadlineKind value: "acceptance", "term", "labour_term", ...
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


def summary_deadlines(s: CaseSummary, now: _dt.datetime, policy: Policy) -> tuple[Deadline, ...]:
    """The deadlines an open case is under, from its summary row alone (no replay)."""
    out: list[Deadline] = []
    opened = parse_time(s.opened_at)
    paused = _dt.timedelta(seconds=s.paused_seconds)
    if s.paused:
        return ()  # the clock is stopped
    if s.state == "applied":
        due = add_working_days(opened, policy.acceptance_working_days)
        out.append(
            Deadline(DeadlineKind.ACCEPTANCE.value, due, now > due, "ODR2021 12 (by analogy)")
        )
    if s.state in ("applied", *_OPEN_BEFORE_AGREEMENT):
        if s.category == Category.LABOUR:
            due = opened + _dt.timedelta(days=policy.labour_term_days + s.extra_days) + paused
            out.append(Deadline(DeadlineKind.LABOUR_TERM.value, due, now > due, "LDL14"))
        elif s.registered_at is not None:
            start = parse_time(s.registered_at)
            due = start + _dt.timedelta(days=policy.term_days + s.extra_days) + paused
            out.append(Deadline(DeadlineKind.TERM.value, due, now > due, "R2002 33; NB27; SZ25"))
        if s.level == Level.L0:
            due = opened + _dt.timedelta(days=policy.l0_days) + paused
            out.append(Deadline(DeadlineKind.L0_ESCALATION.value, due, now > due, "policy"))
    return tuple(out)


def deadlines(case: Case, now: _dt.datetime, policy: Policy) -> tuple[Deadline, ...]:
    """The deadlines of a case, including the judicial-confirmation window once effective."""
    out = list(summary_deadlines(case.summary(), now, policy))
    if case.effective_at is not None and case.judicial == JudicialStatus.NONE:
        due = parse_time(case.effective_at) + _dt.timedelta(days=policy.judicial_window_days)
        out.append(Deadline(DeadlineKind.JUDICIAL_WINDOW.value, due, False, "PML33"))
    return tuple(out)
