"""Evaluation (可评估): statistics come from summary rows and only to entitled roles."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation import Actor, NotPermitted
from mediation import commands as cmd
from mediation.testing import World, follow, path_to


def _open(world: World, service: object, case_id: str, category: str = "邻里") -> None:
    from mediation import CaseService

    assert isinstance(service, CaseService)
    service.execute(
        world["p1"],
        case_id,
        cmd.Apply(
            committee=world.committee,
            category=category,
            description="纠纷",
            applicants=(cmd.Party("p1", "陈女士"),),
            respondents=(cmd.Party("p2", "刘先生"),),
        ),
    )


def test_counts_success_rate_and_durations() -> None:
    world = World()
    service = world.service()
    for i, category in enumerate(("邻里", "物业", "邻里", "合同")):
        _open(world, service, f"k{i}", category)
    # k0 fails after registration; k1 is withdrawn; k2 and k3 stay open
    for case_id, state in (("k0", "failed"), ("k1", "withdrawn")):
        follow(service, world, case_id, path_to(state))  # opened already: the rest of the path

    stats = service.statistics(world["supervisor"])
    assert stats.cases == 4
    assert stats.by_state == {"applied": 2, "failed": 1, "withdrawn": 1}
    assert stats.by_category == {"合同": 1, "物业": 1, "邻里": 2}
    assert (stats.agreed, stats.decided) == (0, 1)
    assert stats.success_rate == 0.0
    assert stats.median_days_to_close is not None and stats.median_days_to_close > 0
    # nothing overdue yet; three working days later the two open cases await acceptance
    assert stats.overdue == 0
    later = dt.datetime(2026, 1, 20, tzinfo=dt.timezone.utc)
    service.clock = lambda: later
    assert service.statistics(world["supervisor"]).overdue == 2


def test_only_entitled_roles_and_committees() -> None:
    world = World()
    service = world.service()
    _open(world, service, "k0")
    with pytest.raises(NotPermitted):
        service.statistics(world["med1"])  # a mediator is not a supervisor
    with pytest.raises(NotPermitted):
        service.statistics(world["supervisor"], committees=["c2"])
    street = Actor.with_roles("street", {"c1": ["supervisor"], "c2": ["supervisor"]})
    assert service.statistics(street).committees == ("c1", "c2")
    assert service.statistics(street).cases == 1


def test_the_service_measures_days_to_close_to_the_outcome_not_the_archive() -> None:
    """A case resolved, then archived a month later: the median days to close end at the outcome
    (the events say when), not at the archive (the summary row's last event)."""
    import datetime as _dt

    from mediation import Actor, CaseService, MemoryStore
    from mediation import commands as _cmd
    from mediation.testing import PathOptions, World, drive

    world = World()
    store = MemoryStore()
    now = [_dt.datetime(2026, 4, 1, 2, tzinfo=_dt.timezone.utc)]

    def clock() -> _dt.datetime:
        now[0] += _dt.timedelta(hours=1)
        return now[0]

    service = CaseService(store, directory=world.directory, clock=clock)
    from mediation import WORKFLOW

    resolved_state = next(s.name for s in WORKFLOW.states if s.terminal and s.agreed)
    case = drive(service, world, "c", resolved_state, PathOptions(lead="med1"))
    resolved = _dt.datetime.fromisoformat(case.updated_at[:-1]).replace(tzinfo=_dt.timezone.utc)
    opened = _dt.datetime.fromisoformat(case.opened_at[:-1]).replace(tzinfo=_dt.timezone.utc)
    now[0] += _dt.timedelta(days=30)
    service.execute(world["director"], "c", _cmd.Archive())
    auditor = Actor.with_roles("aud", {world.committee: ["auditor"]})
    figures = service.statistics(auditor)
    assert figures.median_days_to_close is not None
    assert figures.median_days_to_close < 30
    evaluated = service.evaluation(auditor)
    assert evaluated.days_to_outcome["all"].n == 1
    assert evaluated.days_to_outcome["all"].median == figures.median_days_to_close
    assert abs(figures.median_days_to_close - (resolved - opened) / _dt.timedelta(days=1)) < 0.5
