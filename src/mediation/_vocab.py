"""The closed vocabularies of the domain, as enums: stages, roles, relations and the values of the
payload fields that take one of a fixed set of words.  A leaf module: it imports nothing of the
library, so the declaration, the payload classes and the fold can all use it."""

from __future__ import annotations

import enum

__all__ = [
    "CLOSE_RELATIVES",
    "NEW",
    "PERSONAL_CONSENTS",
    "Category",
    "ConsentSubject",
    "DeadlineKind",
    "HandledElsewhere",
    "InviteeKind",
    "JudicialStatus",
    "Level",
    "PartyKind",
    "PauseReason",
    "Performed",
    "RecusalProfile",
    "Relation",
    "ReportSource",
    "ReservedMatter",
    "Role",
    "Route",
    "SignMethod",
    "Stage",
    "Standing",
    "Subtype",
    "TieKind",
    "TransferTarget",
]


class Stage(enum.Enum):
    """The six stages of the flow 申请—登记—会议—协商—协议—回访."""

    APPLY = ("apply", "申请")
    REGISTER = ("register", "登记")
    MEETING = ("meeting", "会议")
    NEGOTIATE = ("negotiate", "协商")
    AGREE = ("agree", "协议")
    FOLLOW_UP = ("follow_up", "回访")

    @property
    def en(self) -> str:
        return self.value[0]

    @property
    def zh(self) -> str:
        return self.value[1]


class Role(str, enum.Enum):
    """Global roles, asserted by the host app per committee."""

    MEDIATOR = "mediator"
    DIRECTOR = "director"
    GRID_WORKER = "grid_worker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    SYSTEM = "system"


class Relation(str, enum.Enum):
    """Relations to one case, derived from that case's own event log."""

    APPLICANT = "applicant"
    RESPONDENT = "respondent"
    AGENT = "agent"
    LEAD_MEDIATOR = "lead_mediator"
    CO_MEDIATOR = "co_mediator"
    INVITEE = "invitee"


# -- the words of the payloads ---------------------------------------------------------------------
#
# The values are the strings written on the wire (payloads, events, the JSON Schema); a payload
# class accepts a member or its value, and always holds (and writes) the plain string.


class PartyKind(str, enum.Enum):
    """当事人类型 — ``Party.kind``."""

    PERSON = "person"
    ORGANISATION = "organisation"


class TieKind(str, enum.Enum):
    """回避事由 — ``Tie.kind``: a close relative under CC1045, or another ground for recusal."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    GRANDPARENT = "grandparent"
    GRANDCHILD = "grandchild"
    INTEREST = "interest"
    EMPLOYEE = "employee"
    OTHER = "other"


#: the tie kinds that are close relatives under CC1045
CLOSE_RELATIVES = (
    TieKind.SPOUSE,
    TieKind.PARENT,
    TieKind.CHILD,
    TieKind.SIBLING,
    TieKind.GRANDPARENT,
    TieKind.GRANDCHILD,
)


class HandledElsewhere(str, enum.Enum):
    """``Scope.handled_elsewhere`` — the organ that already accepted or decided the matter (the
    field is ``""`` when none did)."""

    COURT = "court"
    ARBITRATION = "arbitration"
    POLICE = "police"
    ADMINISTRATIVE = "administrative"


class ReservedMatter(str, enum.Enum):
    """``Scope.reserved_matter`` — a matter reserved to another authority (``""`` when none)."""

    MARRIAGE_STATUS = "marriage_status"
    ADOPTION_STATUS = "adoption_status"
    IDENTITY = "identity"


class Category(str, enum.Enum):
    """纠纷类别 — the 司法部 statistical classes of a dispute (``category``)."""

    MARRIAGE_FAMILY = "婚姻家庭"
    NEIGHBOURHOOD = "邻里"
    HOUSING_HOMESTEAD = "房屋宅基地"
    CONTRACT = "合同"
    BUSINESS = "生产经营"
    DAMAGES = "损害赔偿"
    FOREST_LAND = "山林土地"
    LAND_REQUISITION = "征地拆迁"
    POLLUTION = "环境污染"
    LABOUR = "劳动争议"
    CONSUMER = "消费"
    MEDICAL = "医疗"
    ROAD_TRAFFIC = "道路交通事故"
    PROPERTY_MANAGEMENT = "物业"
    OTHER = "其他"


class Subtype(str, enum.Enum):
    """纠纷子类 — the community's finer classes (``subtype``; ``""`` when none)."""

    NOISE = "噪声"
    RENOVATION_LEAK = "装修/渗漏水"
    PARKING = "停车"
    PETS = "宠物"
    THROWN_OBJECTS = "高空抛物"
    COMMON_AREAS = "占用公共部位"
    SUPPORT = "赡养/抚养"
    TENANCY = "租赁"


class Level(str, enum.Enum):
    """调解层级 — building/grid (L0), community (L1), street (L2) (``level``; NB12)."""

    L0 = "L0"
    L1 = "L1"
    L2 = "L2"


class RecusalProfile(str, enum.Enum):
    """回避规则 — the recusal policy profile (DOMAIN.md G4): ``default`` (ties disqualify; the
    director decides requests), ``sz`` (one party's request removes the person, SZ23), ``court``
    (every party may waive a tie, TY2016 15; ODR2021 13)."""

    DEFAULT = "default"
    SZ = "sz"
    COURT = "court"


class ReportSource(str, enum.Enum):
    """线索来源 — how a proactively opened case came in (``Report.source``)."""

    GRID = "grid"
    EARLY_WARNING = "early_warning"
    COURT_REFERRAL = "court_referral"
    POLICE_REFERRAL = "police_referral"
    HOTLINE = "hotline"


class Route(str, enum.Enum):
    """其他途径 — where a declined or terminated case is referred (``route``)."""

    LITIGATION = "litigation"
    ARBITRATION = "arbitration"
    ADMINISTRATIVE = "administrative"
    POLICE = "police"
    OTHER_COMMITTEE = "other_committee"
    OTHER = "other"


class ConsentSubject(str, enum.Enum):
    """当事人同意事项 — what a party consents to (``Consent.subject``)."""

    INVITEE = "invitee"
    WAIVE_RECUSAL = "waive_recusal"
    EXTEND_TERM = "extend_term"
    REOPEN = "reopen"
    NON_PUBLIC = "non_public"


#: the consent subjects that name a person (``Consent.person``)
PERSONAL_CONSENTS = (ConsentSubject.INVITEE, ConsentSubject.WAIVE_RECUSAL)


class InviteeKind(str, enum.Enum):
    """协助调解人员 — who an invitee is (``Invite.kind``; PML20)."""

    STREET_CADRE = "street_cadre"
    POLICE = "police"
    LEGAL_ADVISER = "legal_adviser"
    PROPERTY_MANAGER = "property_manager"
    ZONGZHI = "zongzhi"
    OTHER = "other"


class SignMethod(str, enum.Enum):
    """签署方式 — ``Sign.method``."""

    SIGNATURE = "signature"
    SEAL = "seal"
    FINGERPRINT = "fingerprint"


class Performed(str, enum.Enum):
    """履行情况 — ``RecordFollowUp.performed``."""

    NO = "no"
    PARTIAL = "partial"
    YES = "yes"


class TransferTarget(str, enum.Enum):
    """移交对象 — ``Transfer.to``."""

    STREET_COMMITTEE = "street_committee"
    POLICE = "police"
    AUTHORITY = "authority"
    COURT = "court"


class PauseReason(str, enum.Enum):
    """中止计时事由 — ``Pause.reason`` (ODR2021 26)."""

    APPRAISAL = "appraisal"
    RISK_REPORT = "risk_report"
    OTHER = "other"


class JudicialStatus(str, enum.Enum):
    """司法确认 — where a case's judicial confirmation stands: ``none`` until the parties apply;
    a ``record_judicial_confirmation`` payload's ``status`` is one of the other three."""

    NONE = "none"
    APPLIED = "applied"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Standing(str, enum.Enum):
    """查看身份 — the standing a viewer has on one case, which sets what a view redacts."""

    PARTY = "party"
    MEDIATOR = "mediator"
    DIRECTOR = "director"
    INVITEE = "invitee"
    AUDITOR = "auditor"
    SUPERVISOR = "supervisor"


class DeadlineKind(str, enum.Enum):
    """时限 — the kinds of ``Deadline``."""

    ACCEPTANCE = "acceptance"
    TERM = "term"
    LABOUR_TERM = "labour_term"
    L0_ESCALATION = "l0_escalation"
    JUDICIAL_WINDOW = "judicial_window"


#: The state of a case before its first event (the "—" of DOMAIN.md); not a domain state.
NEW = "new"
