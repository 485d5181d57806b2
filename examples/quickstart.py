"""The 天鹅堡 noise dispute (荣悦调解室, 胜利办, 华龙区) through all six stages, on SQLite.

申请 — 登记 — 会议 — 协商 — 协议 — 回访: the platform's early warning opens the case, the
committee registers it, a street cadre is invited ("1+N"), the parties meet, negotiate, sign, and a
follow-up visit confirms performance.  The history is then printed and verified from the database.

    python examples/quickstart.py [DB_PATH]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import tempfile

from mediation import Actor, CaseService, SQLiteStore, StaticDirectory, verify
from mediation import commands as cmd

COMMITTEE = "rongyue"  # 荣悦社区人民调解委员会


def doc(title: str, media_type: str = "application/pdf") -> cmd.DocRef:
    """A document the host keeps; the log holds only its hash."""
    return cmd.DocRef(hashlib.sha256(title.encode()).hexdigest(), media_type, title)


class StepClock:
    """A clock that moves one hour per command, so the printed timeline reads like a case."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(hours=1)
        return self.now


def run(db_path: str) -> int:
    directory = StaticDirectory()
    platform = Actor.with_roles("platform", {COMMITTEE: ["system"]})
    director = directory.add(Actor.with_roles("dir-li", {COMMITTEE: ["director"]}))
    mediator = directory.add(Actor.with_roles("med-wang", {COMMITTEE: ["mediator"]}))
    upstairs = Actor("res-1502")  # the complainant, 15th floor
    downstairs = Actor("res-1402")  # the respondent below

    store = SQLiteStore(db_path)
    service = CaseService(
        store, directory=directory, clock=StepClock(dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC))
    )

    # 申请: the platform's early warning picks up repeated noise complaints
    case = service.open(
        platform,
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
    # 登记: the respondent agrees to mediation, the director registers and assigns
    service.execute(downstairs, cid, cmd.RecordConsent())
    service.execute(director, cid, cmd.Register(cmd.Scope(civil=True)))
    service.execute(director, cid, cmd.AssignMediator("med-wang", lead=True))
    # the "N" of "1+N": both parties accept the street cadre, who signs a confidentiality undertaking
    for party in (upstairs, downstairs):
        service.execute(party, cid, cmd.Consent("invitee", "cadre-zhao"))
    service.execute(
        mediator,
        cid,
        cmd.Invite("cadre-zhao", "street_cadre", undertaking=doc("保密承诺书-赵")),
    )
    # 会议: rights and duties notified, a non-public meeting (privacy is involved)
    service.execute(mediator, cid, cmd.NotifyRights(("res-1502", "res-1402")))
    service.execute(
        mediator,
        cid,
        cmd.ScheduleMeeting(dt.datetime(2026, 3, 5, 19, tzinfo=dt.UTC), "荣悦调解室"),
    )
    # 协商
    service.execute(mediator, cid, cmd.OpenSession())
    service.execute(mediator, cid, cmd.RecordMinutes("双方陈述；赵科长讲解《噪声污染防治法》"))
    service.execute(mediator, cid, cmd.ShareProposal("晚十点后停止装修与健身器材使用"))
    service.execute(mediator, cid, cmd.ReviseProposal(1, "晚十点后停止；跑步机加装减震垫"))
    # 协议
    service.execute(
        mediator,
        cid,
        cmd.DraftAgreement(
            cmd.AgreementContent(
                facts="14 楼夜间使用跑步机、装修噪声影响 15 楼休息",
                issues="夜间噪声",
                responsibilities="刘先生承担减噪义务",
                obligations="刘先生晚十点后不使用跑步机，一周内加装减震垫",
                performance_method="自行整改，物业见证",
                performance_place="天鹅堡 14 楼",
                performance_deadline=dt.date(2026, 3, 12),
            ),
            document=doc("调解协议书"),
        ),
    )
    service.execute(upstairs, cid, cmd.Sign())
    service.execute(downstairs, cid, cmd.Sign("fingerprint"))
    service.execute(mediator, cid, cmd.Sign())
    service.execute(
        director, cid, cmd.Sign("seal")
    )  # the committee seal: the agreement is in effect
    # 回访
    service.execute(mediator, cid, cmd.RecordFollowUp("减震垫已安装，夜间无噪声", "yes", 5))
    service.execute(mediator, cid, cmd.ConfirmPerformed("双方满意"))
    service.execute(director, cid, cmd.Archive())

    # print the history as the auditor sees it, then verify it from the database bytes
    print(f"case {cid} ({case.category}/{case.subtype}) in {db_path}")
    for event in service.history(cid):
        spec = event.type
        print(
            f"  {event.seq:>2} {event.at:%Y-%m-%d %H:%M} {spec:<22} {event.actor:<11} "
            f"as {event.acted_as:<13} -> {event.state:<19} {event.hash[:12]}"
        )
    verdict = verify(SQLiteStore(db_path).read(cid), cid)
    print(verdict.describe("en"))
    print(verdict.describe("zh"))
    store.close()
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "mediation.db")
    sys.exit(run(path))
