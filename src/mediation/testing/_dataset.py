"""A generated data set for the statistics: 120 cases of one committee with known outcomes, dates
and holidays, driven through the real service with a controlled clock (docs/evaluation.md).

Ten blocks ``b = 0..9`` of twelve cases, one of each kind ``k = 0..11``; case ``s{b}-{k}`` opens on
its block's first day ``BLOCK_DAYS[b]`` and every event happens at 00:30 Asia/Shanghai (16:30 UTC
the day before, so that a figure counted on UTC dates comes out wrong).  With ``e = b % 3`` (the
days negotiation takes beyond two) and ``d`` the day counted from the opening day (day 0):

====  =================================================================================
kind  history
====  =================================================================================
0     registered day 1, meeting day 3, negotiating day 4, drafted day 6+e, signed (effective)
      day 7+e, followed up day 14+e (satisfaction 5, performed), resolved day 20+e
1     as 0 up to the follow-up day 14+e (satisfaction 3, not performed): stays following up
2-4   as 0 up to the agreement's effect day 7+e: stays agreement_effective
5     as 0 up to negotiating day 4; oral agreement day 6+e
6     as 0 up to negotiating day 4; termination proposed and decided day 6+e: failed
7     as 0 up to negotiating day 4; withdrawn day 5
8     withdrawn day 1, before registration
9     refused day 1 (even blocks), not accepted day 2 (odd blocks)
10    registered day 1; transferred to a court day 2
11    as 0 up to negotiating day 4: stays negotiating
====  =================================================================================

Categories by kind: 邻里 (subtype 噪声) for k ≡ 0 (mod 3), 合同 (subtype 租赁) for k ≡ 1, 损害赔偿
(no subtype) for k ≡ 2.  The lead mediator is ``med1``, ``med2``, ``med3`` for ``b % 3`` = 0, 1,
2 (kinds 8 and 9 never get one).  Block 9 opens at the building level (L0); its kinds 0-7 and 10
are escalated to L1 on the day of registration, right after it.  Blocks 4 and 5 straddle the
National Day holidays (:data:`HOLIDAYS`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import attrs

from .. import commands as cmd
from .._service import CaseService
from .._vocab import TransferTarget
from ._paths import PathOptions, follow, routes
from ._world import World, party

__all__ = ["BLOCK_DAYS", "HOLIDAYS", "ZONE", "Dataset", "generate_dataset"]

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
#: the first day of each block (local dates)
BLOCK_DAYS = tuple(
    dt.date.fromisoformat(d)
    for d in (
        "2025-09-01", "2025-09-08", "2025-09-15", "2025-09-22", "2025-09-29",
        "2025-10-09", "2025-10-13", "2025-10-20", "2025-10-27", "2025-11-03",
    )
)  # fmt: skip
#: the official 2025 National Day / Mid-Autumn holidays (国务院办公厅 2024-11-12): 1-8 October off,
#: Sunday 28 September and Saturday 11 October make-up working days
HOLIDAYS = tuple(dt.date(2025, 10, d) for d in range(1, 9))
MAKEUP_WORKDAYS = (dt.date(2025, 9, 28), dt.date(2025, 10, 11))
_CATEGORY = (("邻里", "噪声"), ("合同", "租赁"), ("损害赔偿", ""))
_MEDIATORS = ("med1", "med2", "med3")


@attrs.define
class _Clock:
    now: dt.datetime = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


def moment(day: dt.date) -> dt.datetime:
    """00:30 on the local ``day``, in UTC (16:30 the day before)."""
    return dt.datetime.combine(day, dt.time(0, 30), ZONE).astimezone(dt.timezone.utc)


@attrs.frozen
class Dataset:
    world: World
    service: CaseService
    #: case id -> (block, kind)
    cases: dict[str, tuple[int, int]]


def generate_dataset(store: Any | None = None) -> Dataset:
    """Drive the 120 cases into ``store`` (a new memory store by default)."""
    world = World()
    clock = _Clock()
    service = world.service(store, clock=clock)
    cases: dict[str, tuple[int, int]] = {}
    for b, first in enumerate(BLOCK_DAYS):
        for k in range(12):
            case_id = f"s{b}-{k}"
            cases[case_id] = (b, k)
            _drive(service, world, clock, case_id, b, k, first)
    return Dataset(world, service, cases)


def _drive(
    service: CaseService, world: World, clock: _Clock, case_id: str, b: int, k: int, first: dt.date
) -> None:
    category, subtype = _CATEGORY[k % 3]
    opening = cmd.Apply(
        committee=world.committee,
        category=category,
        subtype=subtype,
        level="L0" if b == 9 else "L1",
        description="生成的数据集",
        applicants=(party("p1"),),
        respondents=(party("p2"),),
    )
    table = routes(PathOptions(opening=opening, lead=_MEDIATORS[b % 3]))
    e = b % 3

    def at(day: int) -> None:
        clock.now = moment(first + dt.timedelta(days=day))

    def leg(kind: type[cmd.Command]) -> None:
        follow(service, world, case_id, table.leg(kind).steps)

    def do(who: str, command: cmd.Command) -> None:
        service.execute(world[who], case_id, command)

    at(0)
    leg(cmd.Apply)
    if k == 8:
        at(1)
        leg(cmd.Withdraw)
        return
    if k == 9:
        at(1 if b % 2 == 0 else 2)
        leg(cmd.Refuse if b % 2 == 0 else cmd.NotAccept)
        return
    at(1)
    leg(cmd.Register)
    if b == 9 and k != 11:
        do("director", cmd.Escalate("涉及多户，提交社区调委会"))
    if k == 10:
        at(2)
        # to a court (an outside body): the case leaves the committees' figures and no linked case
        # is opened in the store (a transfer to another committee would open one, PML25)
        do("director", cmd.Transfer(TransferTarget.COURT, "区人民法院", "涉及确权，移交人民法院"))
        return
    at(3)
    leg(cmd.ScheduleMeeting)
    at(4)
    leg(cmd.OpenSession)
    if k == 11:
        return
    if k == 7:
        at(5)
        leg(cmd.Withdraw)
        return
    if k == 5:
        at(6 + e)
        leg(cmd.RecordOralAgreement)
        return
    if k == 6:
        at(6 + e)
        leg(cmd.Terminate)
        return
    at(6 + e)
    leg(cmd.DraftAgreement)
    at(7 + e)
    leg(cmd.Sign)
    if k == 0:
        at(14 + e)
        leg(cmd.RecordFollowUp)
        at(20 + e)
        leg(cmd.ConfirmPerformed)
    elif k == 1:
        at(14 + e)
        lead = service.case(case_id).lead
        assert lead is not None
        do(lead, cmd.RecordFollowUp("部分履行", cmd.Performed.PARTIAL, 3))
