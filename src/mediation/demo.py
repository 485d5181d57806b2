"""The worked example: two disputes at the 荣悦调解室 (胜利办, 华龙区, 濮阳), step by step.

This module is meant to be read.  It is what ``mediation demo`` runs and what
``examples/quickstart.py`` and ``examples/failed_case.py`` call, and each function below is one
case told as the list of commands a host app would issue, in order.

- :func:`noise_dispute`: the 天鹅堡 noise complaint through all six stages,
  申请 — 登记 — 会议 — 协商 — 协议 — 回访, to ``resolved``, then archived.
- :func:`leak_dispute`: a water leak between two flats where the parties cannot agree; the lead
  mediator proposes termination with a referral route (litigation), the director terminates with the
  parties informed (PML26), and the case ends ``failed``, then archived.

The cast is fixed (:data:`PLATFORM`, :data:`DIRECTOR`, :data:`MEDIATOR`, the residents), the clock
moves one hour per command (:class:`StepClock`), so the printed timeline reads like a real case.
Personal data here is invented.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from . import commands as cmd
from ._authz import Actor, StaticDirectory
from ._service import CaseService
from .stores._base import Store

__all__ = [
    "COMMITTEE",
    "DIRECTOR",
    "MEDIATOR",
    "PLATFORM",
    "REGISTRAR",
    "SCENARIOS",
    "START",
    "StepClock",
    "directory",
    "doc",
    "leak_dispute",
    "new_service",
    "noise_dispute",
    "record_roster",
]

#: 荣悦社区人民调解委员会, the committee of both cases
COMMITTEE = "rongyue"

#: the platform's early-warning process (智能预警), which may report a dispute
PLATFORM = Actor.with_roles("platform", {COMMITTEE: ["system"]})
#: 调委会主任 李: registers, seals, terminates, archives
DIRECTOR = Actor.with_roles("dir-li", {COMMITTEE: ["director"]})
#: 人民调解员 王: the lead mediator of both cases
MEDIATOR = Actor.with_roles("med-wang", {COMMITTEE: ["mediator"]})

#: when the first case opens (08:00 UTC, 2 March 2026), plus one hour per command
START = dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc)


class StepClock:
    """A clock that moves one hour per command, so a printed timeline reads like a case."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(hours=1)
        return self.now


def directory() -> StaticDirectory:
    """Who holds which role in the committee (G3 asks it whether an assignee is a mediator)."""
    people = StaticDirectory()
    for actor in (PLATFORM, DIRECTOR, MEDIATOR):
        people.add(actor)
    return people


#: the committee office's directory sync, which keeps the roster (人员名录) in the store
REGISTRAR = Actor("hr-sync")


def record_roster(service: CaseService) -> None:
    """Record the committee's roles in the store's roster (:meth:`CaseService.sync_roster`), so
    that verification checks every role claim of the cases against it."""
    holders = {a.id: [g.role.value for g in a.grants] for a in (PLATFORM, DIRECTOR, MEDIATOR)}
    service.sync_roster(
        REGISTRAR,
        COMMITTEE,
        holders,
        basis="居民会议推选调委会委员（人民调解法第九条）；调委会聘任人民调解员（第十三条）",
    )


def doc(title: str, media_type: str = "application/pdf") -> cmd.DocRef:
    """A document the host keeps; the log holds only its hash (never the file itself)."""
    return cmd.DocRef(hashlib.sha256(title.encode()).hexdigest(), media_type, title)


def new_service(
    store: Store,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    new_id: Callable[[], str] | None = None,
) -> CaseService:
    """A service over ``store`` with the demo's directory and a :class:`StepClock`."""
    return CaseService(store, directory=directory(), clock=clock or StepClock(), new_id=new_id)


def noise_dispute(service: CaseService) -> str:
    """The 天鹅堡 noise dispute, all six stages to ``resolved``; returns the case id."""
    upstairs = Actor("res-1502")  # 陈女士, 15th floor: the complaints come from her
    downstairs = Actor("res-1402")  # 刘先生, the flat below

    # 申请 — the platform's early warning picks up repeated night-time noise complaints
    case = service.open(
        PLATFORM,
        cmd.Report(
            committee=COMMITTEE,
            category="邻里",
            subtype="噪声",
            description="天鹅堡小区 15 楼住户多次投诉 14 楼夜间噪声",
            applicants=(cmd.Party("res-1502", "陈女士", phone="13800001502"),),
            respondents=(cmd.Party("res-1402", "刘先生", phone="13900001402"),),
            source="early_warning",
            source_ref="platform-alert-0417",
            involves_privacy=True,
        ),
    )
    cid = case.id

    # 登记 — the respondent agrees to mediation; the director registers and assigns a mediator
    service.execute(downstairs, cid, cmd.RecordConsent())
    service.execute(DIRECTOR, cid, cmd.Register(cmd.Scope(civil=True)))
    service.execute(DIRECTOR, cid, cmd.AssignMediator("med-wang", lead=True))
    # the "N" of "1+N": both parties accept a street cadre, who signs a confidentiality undertaking
    for party in (upstairs, downstairs):
        service.execute(party, cid, cmd.Consent("invitee", "cadre-zhao"))
    service.execute(
        MEDIATOR, cid, cmd.Invite("cadre-zhao", "street_cadre", undertaking=doc("保密承诺书-赵"))
    )

    # 会议 — rights and duties notified; a non-public meeting, since privacy is involved
    service.execute(MEDIATOR, cid, cmd.NotifyRights(("res-1502", "res-1402")))
    meeting_at = dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc)  # 19:00 in 濮阳
    service.execute(MEDIATOR, cid, cmd.ScheduleMeeting(meeting_at, "荣悦调解室"))

    # 协商 — minutes and proposals are confidential to the case's mediators (PML15(4))
    service.execute(MEDIATOR, cid, cmd.OpenSession())
    service.execute(MEDIATOR, cid, cmd.RecordMinutes("双方陈述；赵科长讲解《噪声污染防治法》"))
    service.execute(MEDIATOR, cid, cmd.ShareProposal("晚十点后停止装修与健身器材使用"))
    service.execute(MEDIATOR, cid, cmd.ReviseProposal(1, "晚十点后停止；跑步机加装减震垫"))

    # 协议 — a written agreement with everything PML29 asks for; it takes effect once both
    # parties and the mediator have signed and the director has applied the committee seal
    agreement = cmd.AgreementContent(
        facts="14 楼夜间使用跑步机、装修噪声影响 15 楼休息",
        issues="夜间噪声",
        responsibilities="刘先生承担减噪义务",
        obligations="刘先生晚十点后不使用跑步机，一周内加装减震垫",
        performance_method="自行整改，物业见证",
        performance_place="天鹅堡 14 楼",
        performance_deadline=dt.date(2026, 3, 12),
    )
    service.execute(MEDIATOR, cid, cmd.DraftAgreement(agreement, document=doc("调解协议书")))
    service.execute(upstairs, cid, cmd.Sign())
    service.execute(downstairs, cid, cmd.Sign("fingerprint"))
    service.execute(MEDIATOR, cid, cmd.Sign())
    service.execute(DIRECTOR, cid, cmd.Sign("seal"))  # the seal: the agreement is in effect

    # 回访 — the follow-up visit shows performance; the case closes and is archived
    service.execute(MEDIATOR, cid, cmd.RecordFollowUp("减震垫已安装，夜间无噪声", "yes", 5))
    service.execute(MEDIATOR, cid, cmd.ConfirmPerformed("双方满意"))
    service.execute(DIRECTOR, cid, cmd.Archive())
    return cid


def leak_dispute(service: CaseService) -> str:
    """A water leak the parties cannot settle: terminated with a referral route; returns the id."""
    below = Actor("res-1101")  # 孙先生, 11th floor: water comes through his bathroom ceiling
    above = Actor("res-1201")  # 周女士, the flat above

    # 申请 — the resident below applies himself
    case = service.open(
        below,
        cmd.Apply(
            committee=COMMITTEE,
            category="邻里",
            subtype="装修/渗漏水",
            description="天鹅堡小区 12 楼卫生间渗水至 11 楼，天花板霉变，双方对赔偿金额有争议",
            applicants=(cmd.Party("res-1101", "孙先生", phone="13700001101"),),
            respondents=(cmd.Party("res-1201", "周女士", phone="13600001201"),),
            evidence=(doc("渗水照片", "image/jpeg"),),
        ),
    )
    cid = case.id

    # 登记
    service.execute(above, cid, cmd.RecordConsent())
    service.execute(DIRECTOR, cid, cmd.Register(cmd.Scope(civil=True)))
    service.execute(DIRECTOR, cid, cmd.AssignMediator("med-wang", lead=True))

    # 会议
    service.execute(MEDIATOR, cid, cmd.NotifyRights(("res-1101", "res-1201")))
    meeting_at = dt.datetime(2026, 3, 4, 2, tzinfo=dt.timezone.utc)  # 10:00 in 濮阳
    service.execute(MEDIATOR, cid, cmd.ScheduleMeeting(meeting_at, "荣悦调解室"))

    # 协商 — two sessions' worth of minutes and a proposal the respondent will not accept
    service.execute(MEDIATOR, cid, cmd.OpenSession())
    service.execute(MEDIATOR, cid, cmd.RecordMinutes("孙先生要求赔偿 8000 元；周女士只认 2000 元"))
    service.execute(MEDIATOR, cid, cmd.ShareProposal("周女士修复防水层并赔偿 4500 元"))
    service.execute(MEDIATOR, cid, cmd.RecordMinutes("周女士拒绝方案，要求先做渗漏鉴定"))

    # the mediator proposes to end mediation and records the route the parties can take (PML26);
    # the director confirms, with the parties told of that route in writing
    service.execute(
        MEDIATOR,
        cid,
        cmd.ProposeTermination("双方对赔偿金额分歧过大，调解无法达成协议", "litigation"),
    )
    service.execute(
        DIRECTOR, cid, cmd.Terminate(parties_informed=True, notice=doc("终止调解告知书"))
    )
    service.execute(DIRECTOR, cid, cmd.Archive())
    return cid


#: ``mediation demo --scenario NAME`` runs one of these
SCENARIOS: dict[str, Callable[[CaseService], str]] = {
    "noise": noise_dispute,
    "leak": leak_dispute,
}
