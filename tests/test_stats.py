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
