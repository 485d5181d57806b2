"""The demo's noise dispute (``mediation.demo.noise_dispute``) as the HTTP requests a front end
sends, stage by stage: 申请 — 登记 — 会议 — 协商 — 协议 — 回访, then the archive.

:func:`noise_case` lists the requests in phases: the requests of one phase do not depend on each
other (both parties consenting to an invitee, the four signatures of the agreement) and may be sent
at once; a phase starts when the one before it is done.  :func:`drive` sends them one by one.  The
tests and the web benchmark use both; the people are those of ``directory.json``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

COMMITTEE = "rongyue"
DIRECTOR = "dir-li"
MEDIATORS = ("med-wang", "med-zhou")


@dataclass(frozen=True)
class Step:
    """One request: ``actor`` (the X-Actor header) issues ``command`` with ``payload``."""

    actor: str
    command: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def opens(self) -> bool:
        return self.command in ("apply", "report")


def doc(title: str, media_type: str = "application/pdf") -> dict[str, str]:
    """A document the host keeps: the log holds only its SHA-256."""
    return {
        "sha256": hashlib.sha256(title.encode()).hexdigest(),
        "media_type": media_type,
        "title": title,
    }


def noise_case(n: int = 0, mediator: str = MEDIATORS[0]) -> list[list[Step]]:
    """The phases of case ``n``: residents ``res-{n}-15`` (upstairs, who applies) and
    ``res-{n}-14`` (downstairs), the lead ``mediator``, the director; ends ``archived``."""
    up, down = f"res-{n}-15", f"res-{n}-14"
    cadre = f"cadre-{n}"
    agreement = {
        "facts": "14 楼夜间使用跑步机、装修噪声影响 15 楼休息",
        "issues": "夜间噪声",
        "responsibilities": "14 楼住户承担减噪义务",
        "obligations": "晚十点后不使用跑步机，一周内加装减震垫",
        "performance_method": "自行整改，物业见证",
        "performance_place": "天鹅堡 14 楼",
        "performance_deadline": "2026-03-12",
    }
    return [
        # 申请
        [
            Step(
                up,
                "apply",
                {
                    "committee": COMMITTEE,
                    "category": "邻里",
                    "subtype": "噪声",
                    "description": "楼下夜间噪声，多次沟通无果",
                    "applicants": [{"id": up, "name": "陈女士", "phone": "13800001502"}],
                    "respondents": [{"id": down, "name": "刘先生", "phone": "13900001402"}],
                    "involves_privacy": True,
                },
            )
        ],
        # 登记
        [Step(down, "record_consent")],
        [Step(DIRECTOR, "register", {"scope": {"civil": True}})],
        [Step(DIRECTOR, "assign_mediator", {"mediator": mediator, "lead": True})],
        [
            Step(up, "consent", {"subject": "invitee", "person": cadre}),
            Step(down, "consent", {"subject": "invitee", "person": cadre}),
        ],
        [
            Step(
                mediator,
                "invite",
                {"invitee": cadre, "kind": "street_cadre", "undertaking": doc(f"保密承诺书-{n}")},
            )
        ],
        # 会议
        [Step(mediator, "notify_rights", {"parties": [up, down]})],
        [Step(mediator, "schedule_meeting", {"at": "2026-03-05T11:00:00Z", "place": "荣悦调解室"})],
        # 协商
        [Step(mediator, "open_session")],
        [
            Step(mediator, "record_minutes", {"text": "双方陈述；街道干部讲解《噪声污染防治法》"}),
            Step(mediator, "share_proposal", {"text": "晚十点后停止使用跑步机"}),
        ],
        # 协议: the four signatures may come in any order; the last one puts it in effect
        [Step(mediator, "draft_agreement", {"content": agreement, "document": doc("调解协议书")})],
        [
            Step(up, "sign"),
            Step(down, "sign", {"method": "fingerprint"}),
            Step(mediator, "sign"),
            Step(DIRECTOR, "sign", {"method": "seal"}),
        ],
        # 回访
        [
            Step(
                mediator,
                "record_follow_up",
                {"note": "减震垫已安装，夜间无噪声", "performed": "yes", "satisfaction": 5},
            )
        ],
        [Step(mediator, "confirm_performed", {"note": "双方满意"})],
        [Step(DIRECTOR, "archive")],
    ]


def request(step: Step, case_id: str | None) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of ``step`` (``case_id`` is None for the opening)."""
    if step.opens:
        return "/cases", {"command": step.command, "payload": step.payload}
    return f"/cases/{case_id}/commands/{step.command}", step.payload


def drive(http: Any, phases: list[list[Step]], key_prefix: str | None = None) -> str:
    """Send every step in order through ``http`` (an ``httpx.Client``, or FastAPI's
    ``TestClient``); with ``key_prefix``, each request carries an Idempotency-Key.  Returns the
    case id; raises on the first answer that is not 201."""
    case_id: str | None = None
    for p, phase in enumerate(phases):
        for s, step in enumerate(phase):
            path, body = request(step, case_id)
            headers = {"X-Actor": step.actor}
            if key_prefix is not None:
                headers["Idempotency-Key"] = f"{key_prefix}-{p}.{s}"
            response = http.post(path, json=body, headers=headers)
            if response.status_code != 201:
                raise AssertionError(f"{step.command}: {response.status_code} {response.text}")
            if step.opens:
                case_id = response.json()["case_id"]
    assert case_id is not None
    return case_id
