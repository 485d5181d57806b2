"""The working calendar (工作日历): China's public holidays and make-up working days (调休).

Working days come from the State Council's yearly holiday notice (国务院办公厅关于某年部分节假日安排的
通知) as packaged by ``chinesecalendar`` (PyPI; pinned to a compatible range in pyproject.toml):
it lists every holiday *and* every make-up working day (a Saturday or Sunday worked in exchange
for a bridge day), and refuses a year it has no data for.  A host adds or removes days
(a local holiday, a notice published after the package) with ``extra_holidays`` and
``extra_workdays``.  Days are the committee's local dates: ``zone`` (default ``Asia/Shanghai``).

A day in a year the data does not cover raises :class:`CalendarNotCovered`; never a silent count of
weekends alone.  How the data is updated each year: ``docs/deadlines.md``.
"""

from __future__ import annotations

import datetime as _dt
import zoneinfo
from collections.abc import Iterable
from typing import Any

import attrs
import chinese_calendar  # type: ignore[import-untyped]

from ._errors import MediationError

__all__ = ["Calendar", "CalendarNotCovered"]


class CalendarNotCovered(MediationError):
    """A working-day count reached a date the calendar has no holiday data for.

    ``day`` is the date (ISO), ``year`` its year, ``covered`` the (first, last) years the data
    covers.  Upgrade ``chinesecalendar`` once the State Council's notice for that year is out, or
    declare the year's days with ``Calendar(extra_holidays=..., extra_workdays=...)`` and list the
    year in ``Calendar(years=...)``.
    """

    def __init__(
        self, message: str, *, day: str, year: int, covered: tuple[int, int], **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.day = day
        self.year = year
        self.covered = tuple(covered)

    @classmethod
    def at(cls, day: _dt.date, covered: tuple[int, int]) -> CalendarNotCovered:
        """The error for ``day``, outside the ``covered`` years."""
        return cls(
            f"no holiday data for {day.isoformat()}: the calendar covers {covered[0]}-{covered[1]}; "
            "upgrade chinesecalendar or declare the year's holidays and make-up working days",
            message_zh=f"缺少 {day.year} 年的节假日安排数据（现有 {covered[0]}-{covered[1]} 年），"
            "请更新 chinesecalendar 或补充该年的节假日与调休工作日",
            day=day.isoformat(),
            year=day.year,
            covered=covered,
        )

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out.update(day=self.day, year=self.year, covered=list(self.covered))
        return out


def _dates(values: Iterable[_dt.date | str]) -> frozenset[_dt.date]:
    out = set()
    for v in values:
        if isinstance(v, str):
            v = _dt.date.fromisoformat(v)
        if isinstance(v, _dt.datetime) or not isinstance(v, _dt.date):
            raise TypeError(f"a calendar day must be a date or an ISO date string, not {v!r}")
        out.add(v)
    return frozenset(out)


def _years(values: Iterable[int]) -> frozenset[int]:
    return frozenset(int(v) for v in values)


def _zone(value: str) -> str:
    zoneinfo.ZoneInfo(value)  # raises for an unknown zone
    return value


def _covered() -> tuple[int, int]:
    years = [d.year for d in (*chinese_calendar.holidays, *chinese_calendar.workdays)]
    return (min(years), max(years))


_COVERED = _covered()


@attrs.frozen
class Calendar:
    """Which local dates are working days.

    ``extra_holidays`` / ``extra_workdays``: days the host declares off / worked, over the
    package's data.  ``years``: years the host declares complete by those days (a year the package
    does not cover yet); any other date outside the package's years raises
    :class:`CalendarNotCovered`.
    """

    zone: str = attrs.field(default="Asia/Shanghai", converter=_zone)
    extra_holidays: frozenset[_dt.date] = attrs.field(default=frozenset(), converter=_dates)
    extra_workdays: frozenset[_dt.date] = attrs.field(default=frozenset(), converter=_dates)
    years: frozenset[int] = attrs.field(default=frozenset(), converter=_years)

    def __attrs_post_init__(self) -> None:
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise ValueError(f"days declared both holiday and working day: {sorted(both)}")

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.zone)

    @property
    def covered(self) -> tuple[int, int]:
        """The first and last year of the package's data."""
        return _COVERED

    def local_date(self, when: _dt.datetime) -> _dt.date:
        """The committee's local date of an aware instant."""
        if when.tzinfo is None:
            raise ValueError(f"a naive datetime has no local date: {when!r}")
        return when.astimezone(self.tz).date()

    def day_end(self, day: _dt.date) -> _dt.datetime:
        """The instant local ``day`` ends (the next local midnight), in UTC."""
        nxt = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(), self.tz)
        return nxt.astimezone(_dt.timezone.utc)

    def is_working_day(self, day: _dt.date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if day.year in self.years:
            return day.weekday() < 5
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            raise CalendarNotCovered.at(day, _COVERED) from None

    def add_working_days(self, start: _dt.date, days: int) -> _dt.date:
        """The ``days``-th working day after ``start`` (``start`` itself is not counted)."""
        out = start
        while days > 0:
            out += _dt.timedelta(days=1)
            if self.is_working_day(out):
                days -= 1
        return out

    def roll_forward(self, day: _dt.date) -> _dt.date:
        """``day`` if it is a working day, else the next one (CC 203: a period whose last day is a
        holiday ends on the day after the holiday)."""
        while not self.is_working_day(day):
            day += _dt.timedelta(days=1)
        return day

    def working_days_between(self, first: _dt.date, last: _dt.date) -> int:
        """The working days from ``first`` to ``last``, both included."""
        n, day = 0, first
        while day <= last:
            n += self.is_working_day(day)
            day += _dt.timedelta(days=1)
        return n

    def __repr__(self) -> str:
        extra: list[Any] = []
        if self.extra_holidays:
            extra.append(f"extra_holidays={len(self.extra_holidays)}")
        if self.extra_workdays:
            extra.append(f"extra_workdays={len(self.extra_workdays)}")
        if self.years:
            extra.append(f"years={sorted(self.years)}")
        return f"Calendar({self.zone!r}{''.join(', ' + e for e in extra)})"
