"""The working calendar: China's holidays and make-up working days (调休), on local dates."""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import Env
from mediation import Calendar, CalendarNotCovered, MediationError, Policy

D = dt.date
UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("applied", "due", "why"),
    [
        # 国庆 and 中秋 2025: 1-8 October off, Saturday 11 October worked
        (D(2025, 9, 30), D(2025, 10, 11), "国庆: 9, 10 October and the make-up Saturday"),
        (D(2025, 9, 26), D(2025, 9, 30), "Sunday 28 September is a make-up working day"),
        # 春节 2025: 28 January - 4 February off, Sunday 26 January and Saturday 8 February worked
        (D(2025, 1, 27), D(2025, 2, 7), "春节"),
        (D(2025, 1, 24), D(2025, 2, 5), "春节, counting the make-up Sunday 26 January"),
        # 劳动节 2025: 1-5 May off, Sunday 27 April worked
        (D(2025, 4, 30), D(2025, 5, 8), "劳动节"),
        (D(2025, 4, 25), D(2025, 4, 29), "the make-up Sunday before 劳动节"),
        # year ends: 元旦 2026 is 1-3 January, Sunday 4 January worked
        (D(2025, 12, 30), D(2026, 1, 5), "across the year end"),
        (D(2024, 12, 31), D(2025, 1, 6), "元旦 2025"),
    ],
)
def test_three_working_days(applied: dt.date, due: dt.date, why: str) -> None:
    assert Calendar().add_working_days(applied, 3) == due, why


def test_acceptance_deadline_across_guoqing_through_the_service() -> None:
    e = Env()
    e.clock.now = dt.datetime(2025, 9, 30, 2, tzinfo=UTC)  # 10:00 in Shanghai
    e.open()
    (acceptance,) = (d for d in e.service.deadlines(e.case_id) if d.kind == "acceptance")
    assert acceptance.due_date == D(2025, 10, 11)  # a make-up Saturday
    assert acceptance.due == dt.datetime(2025, 10, 11, 16, tzinfo=UTC)  # midnight in Shanghai


def test_make_up_days_and_holidays() -> None:
    cal = Calendar()
    assert cal.is_working_day(D(2025, 10, 11))  # a Saturday worked
    assert not cal.is_working_day(D(2025, 10, 8))  # a Wednesday off
    assert cal.working_days_between(D(2025, 10, 1), D(2025, 10, 12)) == 3


def test_local_dates_follow_the_zone() -> None:
    late = dt.datetime(2026, 1, 8, 16, 30, tzinfo=UTC)  # Friday 00:30 in Shanghai
    assert Calendar().local_date(late) == D(2026, 1, 9)
    assert Calendar(zone="UTC").local_date(late) == D(2026, 1, 8)
    assert Calendar().day_end(D(2026, 1, 9)) == dt.datetime(2026, 1, 9, 16, tzinfo=UTC)
    with pytest.raises(ValueError):
        Calendar().local_date(dt.datetime(2026, 1, 8))
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo's own error
        Calendar(zone="Mars/Olympus")


def test_the_host_adds_and_removes_days() -> None:
    monday = D(2026, 1, 5)
    assert Calendar().add_working_days(monday, 3) == D(2026, 1, 8)
    local_holiday = Calendar(extra_holidays=[D(2026, 1, 6)])
    assert local_holiday.add_working_days(monday, 3) == D(2026, 1, 9)
    worked_saturday = Calendar(extra_workdays=["2026-01-10"], extra_holidays=["2026-01-07"])
    assert worked_saturday.add_working_days(D(2026, 1, 8), 2) == D(2026, 1, 10)
    with pytest.raises(ValueError):
        Calendar(extra_holidays=[monday], extra_workdays=[monday])
    with pytest.raises(TypeError):
        Calendar(extra_holidays=[dt.datetime(2026, 1, 6)])


def test_a_year_without_data_is_an_error_not_a_weekend_count() -> None:
    cal = Calendar()
    first, last = cal.covered
    assert first <= 2025 <= last
    beyond = D(last + 1, 1, 4)
    with pytest.raises(CalendarNotCovered) as caught:
        cal.is_working_day(beyond)
    err = caught.value
    assert isinstance(err, MediationError)
    assert (err.day, err.year, err.covered) == (beyond.isoformat(), last + 1, (first, last))
    assert err.fields()["year"] == last + 1 and "chinesecalendar" in str(err)
    assert str(last + 1) in err.message_zh
    with pytest.raises(CalendarNotCovered):
        cal.add_working_days(D(last, 12, 30), 3)


def test_a_year_declared_by_the_host() -> None:
    last = Calendar().covered[1]
    new_year = D(last + 1, 1, 1)
    cal = Calendar(years=[last + 1], extra_holidays=[new_year])
    assert not cal.is_working_day(new_year)
    assert cal.add_working_days(D(last, 12, 31), 1) == cal.roll_forward(new_year)


def test_deadlines_into_an_uncovered_year_raise() -> None:
    last = Calendar().covered[1]
    e = Env()
    e.clock.now = dt.datetime(last, 12, 30, 2, tzinfo=UTC)
    e.open()
    with pytest.raises(CalendarNotCovered):
        e.service.deadlines(e.case_id)
    declared = Policy(calendar=Calendar(years=[last + 1]))
    e2 = Env(policy=declared, store=e.store, clock=e.clock)
    assert {d.kind for d in e2.service.deadlines(e.case_id)} == {"acceptance"}


def test_policy_takes_only_a_calendar() -> None:
    with pytest.raises(TypeError):
        Policy(calendar="Asia/Shanghai")  # type: ignore[arg-type]


def test_statistics_count_a_deadline_in_an_uncovered_year_as_not_yet_due() -> None:
    """Opened on 30 December of the last year the data covers: the acceptance deadline falls in
    a year it does not, so ``deadlines`` says so, but the case is certainly not overdue today,
    and the statistics count it as such instead of failing."""
    import datetime as _dt

    from mediation import Actor, CalendarNotCovered, CaseService, MemoryStore, Policy
    from mediation import commands as cmd
    from mediation._stats import compute_statistics

    last = Policy().calendar.covered[1]
    now = _dt.datetime(last, 12, 30, 3, tzinfo=_dt.timezone.utc)
    store = MemoryStore()
    service = CaseService(store, clock=lambda: now)
    service.open(
        Actor("p1"),
        cmd.Apply(
            committee="c1",
            category="邻里",
            description="噪声",
            applicants=(cmd.Party("p1", "陈女士"),),
            respondents=(cmd.Party("p2", "刘先生"),),
        ),
    )
    case_id = store.cases()[0].case_id
    with pytest.raises(CalendarNotCovered):
        service.deadlines(case_id)
    assert compute_statistics(store.cases(), ["c1"], now, Policy()).overdue == 0
    later = _dt.datetime(last + 1, 2, 1, tzinfo=_dt.timezone.utc)
    with pytest.raises(CalendarNotCovered):
        compute_statistics(store.cases(), ["c1"], later, Policy())


def test_a_judicial_window_ending_in_an_uncovered_year_is_recorded_not_blocked() -> None:
    """An agreement that takes effect late in the last year the holiday data covers: its 30-day
    window ends in a year the data does not cover.  Applying for judicial confirmation is not
    blocked for want of holiday data: the window ends on its last calendar day (not extended past
    a holiday, documented), the service records it, ``deadlines()`` shows the same day, and
    replay decides alike."""
    import datetime as _dt

    from mediation import CaseService, MemoryStore, verify
    from mediation import commands as _cmd
    from mediation._deadlines import judicial_window_end
    from mediation.testing import PathOptions, World, drive

    last = Policy().calendar.covered[1]
    now = [_dt.datetime(last, 12, 10, 2, tzinfo=_dt.timezone.utc)]

    def clock() -> _dt.datetime:
        now[0] += _dt.timedelta(minutes=10)
        return now[0]

    world = World()
    service = CaseService(MemoryStore(), directory=world.directory, clock=clock)
    effective = next(s.name for s in service.workflow.states if s.agreed and not s.terminal)
    case = drive(service, world, "c", effective, PathOptions(lead="med1"))
    ends = judicial_window_end(case, Policy())
    assert ends is not None and ends.year == last + 1
    window = [d for d in service.deadlines("c") if d.kind == "judicial_window"]
    assert window and window[0].due == ends
    parties = case.party_ids
    event = service.execute(
        world[parties[0]],
        "c",
        _cmd.RecordJudicialConfirmation("applied", joint_applicants=tuple(parties)),
    )
    assert event.payload["window_ends"]
    assert verify(service.store.read("c"), strict=True).ok
