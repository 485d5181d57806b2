"""The workflow, declared once, as data.

Every fact the library knows about a state, a command, a guard or a deadline is here, on the
declaration (the types are in :mod:`mediation._spec`): which command may move a case from where to
where, who may issue it, which guards apply and on what legal basis, its payload class, what it
does to the case (:mod:`mediation._fold`), who may read its payload, which payload members carry
personal data or name people; which states are terminal, agreed or failed; the deadlines.  The
one decision (:mod:`mediation._decide`, whose ``transitions`` machine is built from it), the fold,
replay, views, the vault, deadlines, statistics, the diagrams, ``docs/workflow.md`` and the
hypothesis strategies of :mod:`mediation.testing` all read :data:`WORKFLOW`.  It is registered as
version ``mediation-workflow/1``; later versions are derived with :meth:`Workflow.evolve` and
registered beside it.

Sources of law are abbreviated as in DOMAIN.md: PML 人民调解法, R2002 《人民调解工作若干规定》,
NB 宁波市人民调解条例, SZ 深圳经济特区矛盾纠纷多元化解条例, TY2016 《特邀调解的规定》,
ODR2021 《人民法院在线调解规则》, PIPL 个人信息保护法, CC 民法典, LDL 劳动争议调解仲裁法.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from . import _commands as C
from . import _fold as F
from ._spec import (
    CommandSpec,
    Confidentiality,
    DeadlineSpec,
    Effect,
    FieldKind,
    GuardSpec,
    PeopleRule,
    PersonalField,
    StateSpec,
    Workflow,
    register,
    registered,
    workflow_of,
)
from ._vocab import NEW, Relation, Role, Stage

__all__ = [
    "ACTIVE",
    "FIELD_ZH",
    "NEW",
    "WORD_ZH",
    "WORKFLOW",
    "WORKFLOW_V1",
    "CommandSpec",
    "Confidentiality",
    "DeadlineSpec",
    "GuardSpec",
    "PeopleRule",
    "Relation",
    "Role",
    "Stage",
    "StateSpec",
    "Workflow",
    "register",
    "registered",
    "workflow_of",
]


def _s(
    name: str,
    stage: Stage | None,
    zh: str,
    en: str,
    terminal: bool = False,
    *,
    agreed: bool = False,
    failed: bool = False,
) -> StateSpec:
    return StateSpec(name, stage, zh, en, terminal, agreed, failed)


STATES = (
    _s(
        "applied",
        Stage.APPLY,
        "已申请（待征询/待受理）",
        "applied, awaiting consent and acceptance",
    ),
    _s("registered", Stage.REGISTER, "已受理登记", "accepted and registered"),
    _s("not_accepted", Stage.REGISTER, "不予受理", "not accepted", True),
    _s("refused", Stage.REGISTER, "对方拒绝调解", "respondent refused mediation", True),
    _s("meeting_scheduled", Stage.MEETING, "调解会已安排", "mediation meeting scheduled"),
    _s("negotiating", Stage.NEGOTIATE, "协商中", "negotiating"),
    _s("agreement_drafted", Stage.AGREE, "协议待签", "agreement drafted, awaiting signatures"),
    _s("agreement_effective", Stage.AGREE, "协议生效", "agreement in effect", agreed=True),
    _s(
        "following_up",
        Stage.FOLLOW_UP,
        "回访中（履行监督）",
        "following up on performance",
        agreed=True,
    ),
    _s("resolved", Stage.FOLLOW_UP, "已履行结案", "performed and closed", True, agreed=True),
    _s(
        "failed",
        None,
        "调解终止（已告知其他途径）",
        "mediation ended, other routes explained",
        True,
        failed=True,
    ),
    _s("withdrawn", None, "当事人撤回", "withdrawn by a party", True),
    _s("transferred", None, "移交（上级调委会/公安/主管部门）", "transferred", True),
)


def _g(name: str, zh: str, en: str, basis: str, *, impl: str = "") -> GuardSpec:
    return GuardSpec(name, zh, en, basis, impl)


GUARDS = (
    _g(
        "parties_named",
        "当事人已列明、纠纷已描述",
        "parties named and the dispute described",
        "PML17; R2002 23",
    ),
    _g("source_recorded", "线索来源已记录", "the source of the report is recorded", "PML17-18"),
    _g(
        "reason_and_route",
        "已记录不予受理理由及应循途径",
        "reason and the route to take recorded",
        "R2002 24",
    ),
    _g(
        "G1",
        "被申请人均已同意调解且无人拒绝",
        "every respondent consented and nobody refused",
        "PML17, 23(2)",
    ),
    _g(
        "G2",
        "属于受理范围（民间纠纷、未由他机关处理、非专属事项、无刑事治安情形）",
        "within scope: a civil dispute not handled elsewhere, not reserved, no criminal flag",
        "R2002 22; PML25; CC1076",
    ),
    _g(
        "G3",
        "调解员具有本调委会调解员身份",
        "the mediator holds the mediator role of this committee",
        "PML13",
    ),
    _g(
        "G4",
        "回避：与当事人无近亲属、利害或其他可能影响公正的关系",
        "recusal: no close relative, interest or other tie to a party that may affect impartiality",
        "R2002 25; SZ23; TY2016 15; ODR2021 13; CC1045",
    ),
    _g(
        "G5",
        "各方当事人同意邀请并已签署保密承诺",
        "every party consents to the invitee, who signed a confidentiality undertaking",
        "PML20, 15(4)",
    ),
    _g(
        "G6",
        "首次调解前已告知当事人权利义务",
        "parties told their rights and duties before the first session",
        "R2002 30",
    ),
    _g(
        "G7",
        "涉及隐私、商业秘密或当事人反对的，不公开调解",
        "non-public when privacy or trade secrets are involved or any party objects",
        "PML23(3); R2002 29",
    ),
    _g(
        "G8a",
        "协议载明当事人基本情况、主要事实、争议事项、各方责任、权利义务及履行方式地点期限",
        "agreement states parties, facts, issues, responsibilities, obligations and the method, "
        "place and deadline of performance",
        "PML29; R2002 35",
    ),
    _g(
        "G8b",
        "各方当事人签名（盖章、按指印），调解员签名并加盖调委会印章",
        "every party signed, a mediator signed, the committee seal applied",
        "PML29",
    ),
    _g(
        "G9",
        "已记录终止理由及其他救济途径并告知当事人",
        "termination reason and referral route recorded and the parties informed",
        "PML26; NB23, 27",
    ),
    _g(
        "G11",
        "协议生效之日起三十日内共同申请司法确认，且不涉及身份、婚姻、收养关系",
        "joint application within 30 days of effectiveness, not on identity, marriage or adoption",
        "PML33",
    ),
    _g("G12", "回访记录显示已履行", "a follow-up record shows performance", "PML31"),
    _g("G13", "卷宗材料齐全", "the case file holds the required documents", "PML27"),
    _g(
        "all_parties_consent",
        "各方当事人均已同意",
        "every party has consented",
        "NB27; SZ25; PML33",
    ),
    _g("not_paused", "案件未中止", "the case is not paused", "ODR2021 26"),
    _g("paused", "案件处于中止状态", "the case is paused", "ODR2021 26"),
    _g("level_L0", "案件处于楼栋/网格层级", "the case is at building/grid level (L0)", "NB12"),
    _g("recusal_pending", "存在待决的回避申请", "a recusal request is pending", "R2002 25"),
    _g(
        "termination_proposed",
        "调解员已提出终止",
        "the lead mediator proposed termination",
        "PML26",
    ),
    _g("proposal_exists", "存在可修改的方案", "the proposal exists", "PML22"),
    _g("not_signed_yet", "尚未签署", "has not signed yet", "PML29"),
    _g("not_archived", "尚未归档", "not archived yet", "PML27"),
    _g(
        "respondent_side",
        "由被申请人或其代理人作出",
        "made by a respondent or a respondent's agent",
        "PML17",
    ),
    _g(
        "erasure_subject",
        "删除对象为本案当事人或代理人（或整个案件），写明依据，尚未删除，且其信息未曾以明文记录",
        "the person erased is a party or agent of the case (or the whole case is), on a stated "
        "basis, not erased before, and none of their data was recorded in plain text",
        "PIPL 47",
    ),
)

#: the members of a person object that hold personal information: sealed in the log under that
#: person's key and masked in views by kind (DOMAIN.md, Confidentiality)
PERSONAL = (
    PersonalField("name", FieldKind.NAME, "姓名", "PIPL 4", natural_only=True),
    PersonalField("phone", FieldKind.PHONE, "电话", "PIPL 4, 51"),
    PersonalField("id_number", FieldKind.ID_NUMBER, "证件号码", "PIPL 28, 51"),
    PersonalField("address", FieldKind.ADDRESS, "地址", "PIPL 4, 28 (行踪/location)"),
    PersonalField("employer", FieldKind.EMPLOYER, "用人单位", "PIPL 4"),
    PersonalField("health", FieldKind.HEALTH, "健康信息", "PIPL 28"),
    PersonalField("minor", FieldKind.MINOR, "未成年人信息", "PIPL 28, 31"),
    PersonalField("bank_account", FieldKind.BANK, "银行账户", "PIPL 28"),
)

#: the agreement's text members (its performance deadline, a date, stays readable: deadlines run
#: on it), from the content's declaration
_AGREEMENT_TEXT = tuple(
    f"content.{a.name}" for a in attrs.fields(C.AgreementContent) if a.type in (str, "str")
)

# source sets used below
ACTIVE = (
    "applied",
    "registered",
    "meeting_scheduled",
    "negotiating",
    "agreement_drafted",
    "agreement_effective",
    "following_up",
)
_REGISTERED_ON = ACTIVE[1:]
_BEFORE_AGREEMENT = ACTIVE[1:4]  # registered .. negotiating
_UNTIL_DRAFTED = ACTIVE[1:5]  # registered .. agreement_drafted
_BEFORE_EFFECT = ACTIVE[:5]  # applied .. agreement_drafted
_TERMINAL = tuple(s.name for s in STATES if s.terminal)

R, L = Role, Relation
_PARTIES = (L.APPLICANT, L.RESPONDENT, L.AGENT)
_MEDIATORS = (L.LEAD_MEDIATOR, L.CO_MEDIATOR)


def _c(
    name: str,
    zh: str,
    en: str,
    sources: Iterable[str],
    target: str | None,
    *,
    roles: Iterable[Role] = (),
    relations: Iterable[Relation] = (),
    guards: Iterable[str] = (),
    basis: str,
    payload: type,
    effect: Effect,
    completes_when: str | None = None,
    confidentiality: Confidentiality = Confidentiality.OPEN,
    persons: tuple[str, ...] = (),
    people: tuple[tuple[str, PeopleRule], ...] = (),
    sealed: tuple[str, ...] = (),
    erases: bool = False,
) -> CommandSpec:
    return CommandSpec(
        name,
        zh,
        en,
        tuple(sources),
        target,
        tuple(roles),
        tuple(relations),
        tuple(guards),
        basis,
        payload,
        effect,
        completes_when,
        confidentiality,
        persons,
        people,
        sealed=sealed,
        erases=erases,
    )


COMMANDS = (
    _c(
        "apply",
        "申请调解",
        "apply for mediation",
        (NEW,),
        "applied",
        relations=(L.APPLICANT,),
        roles=(R.MEDIATOR,),
        guards=("parties_named",),
        basis="PML17; R2002 23",
        payload=C.Apply,
        effect=F.opening,
        sealed=("description", "evidence.*.title"),
        persons=("applicants", "respondents"),
    ),
    _c(
        "report",
        "报告纠纷线索",
        "report a dispute",
        (NEW,),
        "applied",
        roles=(R.GRID_WORKER, R.SYSTEM, R.DIRECTOR),
        guards=("parties_named", "source_recorded"),
        basis="PML17-18",
        payload=C.Report,
        effect=F.opening,
        sealed=("description", "evidence.*.title"),
        persons=("applicants", "respondents"),
    ),
    _c(
        "record_consent",
        "同意调解",
        "consent to mediation",
        ("applied",),
        None,
        relations=(L.RESPONDENT, L.AGENT),
        guards=("respondent_side",),
        basis="PML17",
        payload=C.RecordConsent,
        effect=F.record_consent,
        sealed=("document.title",),
    ),
    _c(
        "refuse",
        "拒绝调解",
        "refuse mediation",
        ("applied",),
        "refused",
        relations=(L.RESPONDENT, L.AGENT),
        guards=("respondent_side",),
        basis="PML17, 23(2)",
        payload=C.Refuse,
        effect=F.nothing,
        sealed=("reason",),
    ),
    _c(
        "register",
        "受理登记",
        "accept and register",
        ("applied",),
        "registered",
        roles=(R.DIRECTOR,),
        guards=("G1", "G2"),
        basis="R2002 22-23",
        payload=C.Register,
        effect=F.register,
        sealed=("note",),
    ),
    _c(
        "not_accept",
        "不予受理",
        "decline to accept",
        ("applied",),
        "not_accepted",
        roles=(R.DIRECTOR,),
        guards=("reason_and_route",),
        basis="R2002 24",
        payload=C.NotAccept,
        effect=F.nothing,
        sealed=("reason",),
    ),
    _c(
        "appoint_agent",
        "委托代理人",
        "appoint an agent",
        ACTIVE,
        None,
        relations=(L.APPLICANT, L.RESPONDENT),
        basis="R2002 26",
        payload=C.AppointAgent,
        effect=F.appoint_agent,
        sealed=("power_of_attorney.title",),
        persons=("agent",),
        people=(("agent", PeopleRule.NEW_PERSON),),
    ),
    _c(
        "assign_mediator",
        "指定/选定调解员",
        "assign a mediator",
        _BEFORE_AGREEMENT,
        None,
        roles=(R.DIRECTOR,),
        relations=(L.APPLICANT, L.RESPONDENT, L.AGENT),
        guards=("G3", "G4"),
        basis="PML19, 23(1)",
        payload=C.AssignMediator,
        effect=F.assign,
        sealed=("ties.*.note",),
        people=(("ties", PeopleRule.TIES),),
    ),
    _c(
        "request_recusal",
        "申请回避",
        "request recusal",
        _REGISTERED_ON,
        None,
        relations=_PARTIES,
        basis="R2002 25; SZ23",
        payload=C.RequestRecusal,
        effect=F.request_recusal,
        sealed=("grounds", "ties.*.note"),
        people=(("person", PeopleRule.MEDIATOR_OR_INVITEE), ("ties", PeopleRule.TIES)),
    ),
    _c(
        "declare_conflict",
        "主动申明回避",
        "declare a conflict of interest",
        _REGISTERED_ON,
        None,
        relations=(*_MEDIATORS, L.INVITEE),
        basis="R2002 25; SZ23",
        payload=C.DeclareConflict,
        effect=F.declare_conflict,
        sealed=("ties.*.note",),
        people=(("ties", PeopleRule.TIES),),
    ),
    _c(
        "decide_recusal",
        "决定回避",
        "decide on recusal",
        _REGISTERED_ON,
        None,
        roles=(R.DIRECTOR,),
        guards=("recusal_pending",),
        basis="R2002 25",
        payload=C.DecideRecusal,
        effect=F.decide_recusal,
        sealed=("reason",),
    ),
    _c(
        "consent",
        "当事人同意事项",
        "a party consents",
        _REGISTERED_ON,
        None,
        relations=_PARTIES,
        basis="PML20; NB27; PML33",
        payload=C.Consent,
        effect=F.consent,
    ),
    _c(
        "invite",
        "邀请协助调解人员",
        "invite a participant",
        _BEFORE_AGREEMENT,
        None,
        relations=(L.LEAD_MEDIATOR,),
        guards=("G4", "G5"),
        basis="PML20",
        payload=C.Invite,
        effect=F.invite,
        sealed=("undertaking.title", "ties.*.note"),
        people=(("ties", PeopleRule.TIES),),
    ),
    _c(
        "notify_rights",
        "告知权利义务",
        "notify parties of their rights and duties",
        ("registered", "meeting_scheduled"),
        None,
        relations=_MEDIATORS,
        basis="R2002 30",
        payload=C.NotifyRights,
        effect=F.notify_rights,
        sealed=("document.title",),
        people=(("parties", PeopleRule.PARTIES),),
    ),
    _c(
        "schedule_meeting",
        "安排调解会",
        "schedule the mediation meeting",
        ("registered",),
        "meeting_scheduled",
        relations=(L.LEAD_MEDIATOR,),
        guards=("G6", "G7"),
        basis="R2002 29-30",
        payload=C.ScheduleMeeting,
        effect=F.schedule,
        sealed=("place",),
    ),
    _c(
        "open_session",
        "开始调解",
        "open the session",
        ("meeting_scheduled",),
        "negotiating",
        relations=(L.LEAD_MEDIATOR,),
        guards=("G1",),
        basis="PML27",
        payload=C.OpenSession,
        effect=F.nothing,
    ),
    _c(
        "record_minutes",
        "记录调解笔录",
        "record minutes",
        ("negotiating",),
        None,
        relations=_MEDIATORS,
        basis="PML27",
        payload=C.RecordMinutes,
        effect=F.minutes,
        sealed=("text", "document.title"),
        confidentiality=Confidentiality.MEDIATORS,
    ),
    _c(
        "share_proposal",
        "提出调解方案",
        "share a proposal",
        ("negotiating",),
        None,
        relations=_MEDIATORS,
        basis="PML22",
        payload=C.ShareProposal,
        effect=F.proposal,
        sealed=("text",),
        confidentiality=Confidentiality.MEDIATORS,
    ),
    _c(
        "revise_proposal",
        "修改调解方案",
        "revise a proposal",
        ("negotiating",),
        None,
        relations=_MEDIATORS,
        guards=("proposal_exists",),
        basis="PML22",
        payload=C.ReviseProposal,
        effect=F.nothing,
        sealed=("text",),
        confidentiality=Confidentiality.MEDIATORS,
    ),
    _c(
        "draft_agreement",
        "制作调解协议",
        "draft the agreement",
        ("negotiating",),
        "agreement_drafted",
        relations=(L.LEAD_MEDIATOR,),
        guards=("G8a",),
        basis="PML29; R2002 35",
        payload=C.DraftAgreement,
        effect=F.draft,
        sealed=(*_AGREEMENT_TEXT, "document.title"),
        confidentiality=Confidentiality.AGREEMENT,
    ),
    _c(
        "sign",
        "签署/盖章",
        "sign or seal",
        ("agreement_drafted",),
        "agreement_effective",
        relations=(*_PARTIES, *_MEDIATORS),
        roles=(R.DIRECTOR,),
        guards=("not_signed_yet",),
        basis="PML29",
        completes_when="G8b",
        payload=C.Sign,
        effect=F.sign,
    ),
    _c(
        "record_oral_agreement",
        "记录口头协议",
        "record an oral agreement",
        ("negotiating",),
        "agreement_effective",
        relations=_MEDIATORS,
        basis="PML28, 30; R2002 34",
        payload=C.RecordOralAgreement,
        effect=F.oral,
        sealed=("summary",),
        confidentiality=Confidentiality.AGREEMENT,
    ),
    _c(
        "record_follow_up",
        "回访记录",
        "record a follow-up visit",
        ("agreement_effective", "following_up"),
        "following_up",
        relations=_MEDIATORS,
        basis="PML31",
        payload=C.RecordFollowUp,
        effect=F.follow_up,
        sealed=("note",),
    ),
    _c(
        "confirm_performed",
        "确认履行结案",
        "confirm performance and close",
        ("following_up",),
        "resolved",
        relations=_MEDIATORS,
        roles=(R.DIRECTOR,),
        guards=("G12",),
        basis="PML31",
        payload=C.ConfirmPerformed,
        effect=F.nothing,
        sealed=("note",),
    ),
    _c(
        "reopen",
        "重新调解",
        "reopen negotiation",
        ("agreement_effective", "following_up"),
        "negotiating",
        relations=(L.LEAD_MEDIATOR,),
        guards=("all_parties_consent",),
        basis="PML33; R2002",
        payload=C.Reopen,
        effect=F.reopen,
        sealed=("reason",),
    ),
    _c(
        "propose_termination",
        "提出终止调解",
        "propose termination",
        _UNTIL_DRAFTED,
        None,
        relations=(L.LEAD_MEDIATOR,),
        basis="PML26",
        payload=C.ProposeTermination,
        effect=F.propose_termination,
        sealed=("reason",),
    ),
    _c(
        "terminate",
        "终止调解",
        "terminate mediation",
        _UNTIL_DRAFTED,
        "failed",
        roles=(R.DIRECTOR,),
        guards=("termination_proposed", "G9"),
        basis="PML26; NB23, 27",
        payload=C.Terminate,
        effect=F.terminate,
        sealed=("notice.title",),
    ),
    _c(
        "withdraw",
        "撤回",
        "withdraw",
        _BEFORE_EFFECT,
        "withdrawn",
        relations=_PARTIES,
        basis="PML23(2)",
        payload=C.Withdraw,
        effect=F.nothing,
        sealed=("reason",),
    ),
    _c(
        "escalate",
        "提级调解（楼栋→社区）",
        "escalate from building to community level",
        _BEFORE_EFFECT,
        None,
        relations=_MEDIATORS,
        roles=(R.MEDIATOR, R.DIRECTOR),
        guards=("level_L0",),
        basis="NB12",
        payload=C.Escalate,
        effect=F.escalate,
        sealed=("reason",),
    ),
    _c(
        "transfer",
        "移交",
        "transfer",
        _BEFORE_EFFECT,
        "transferred",
        roles=(R.DIRECTOR,),
        basis="PML25, 34",
        payload=C.Transfer,
        effect=F.transfer,
        sealed=("reason",),
    ),
    _c(
        "extend_term",
        "延长调解期限",
        "extend the mediation term",
        _UNTIL_DRAFTED,
        None,
        relations=_MEDIATORS,
        guards=("all_parties_consent",),
        basis="NB27; SZ25",
        payload=C.ExtendTerm,
        effect=F.extend,
        sealed=("reason",),
    ),
    _c(
        "pause",
        "中止计时",
        "pause the clock",
        _UNTIL_DRAFTED,
        None,
        relations=(L.LEAD_MEDIATOR,),
        guards=("not_paused",),
        basis="ODR2021 26",
        payload=C.Pause,
        effect=F.pause,
        sealed=("note",),
    ),
    _c(
        "resume",
        "恢复计时",
        "resume the clock",
        _UNTIL_DRAFTED,
        None,
        relations=(L.LEAD_MEDIATOR,),
        guards=("paused",),
        basis="ODR2021 26",
        payload=C.Resume,
        effect=F.resume,
        sealed=("note",),
    ),
    _c(
        "record_judicial_confirmation",
        "司法确认",
        "judicial confirmation",
        ("agreement_effective", "following_up", "resolved"),
        None,
        relations=(*_PARTIES, *_MEDIATORS),
        roles=(R.DIRECTOR,),
        guards=("G11",),
        basis="PML33",
        payload=C.RecordJudicialConfirmation,
        effect=F.judicial,
        sealed=("document.title",),
        people=(("joint_applicants", PeopleRule.PARTIES),),
    ),
    _c(
        "archive",
        "归档",
        "archive",
        _TERMINAL,
        None,
        roles=(R.DIRECTOR,),
        guards=("not_archived", "G13"),
        basis="PML27",
        payload=C.Archive,
        effect=F.archive,
        sealed=("note",),
    ),
    _c(
        "erase_personal_data",
        "删除个人信息",
        "erase personal data",
        tuple(s.name for s in STATES),
        None,
        roles=(R.DIRECTOR,),
        guards=("erasure_subject",),
        basis="PIPL 47; PML27",
        payload=C.ErasePersonalData,
        effect=F.erase_personal_data,
        sealed=("request.title",),
        erases=True,
    ),
)

DEADLINES = (
    DeadlineSpec(
        "acceptance",
        ("applied",),
        "opened_at",
        3,
        "ODR2021 12 (by analogy)",
        working_days=True,
        policy="acceptance_working_days",
    ),
    DeadlineSpec(
        "labour_term",
        ACTIVE[:5],
        "opened_at",
        15,
        "LDL14",
        extendable=True,
        category="劳动争议",
        policy="labour_term_days",
    ),
    DeadlineSpec(
        "term",
        ACTIVE[:5],
        "registered_at",
        30,
        "R2002 33; NB27; SZ25",
        extendable=True,
        unless_category="劳动争议",
        policy="term_days",
    ),
    DeadlineSpec(
        "l0_escalation", ACTIVE[:5], "opened_at", 7, "NB12; policy", level="L0", policy="l0_days"
    ),
    DeadlineSpec(
        "judicial_window",
        tuple(s.name for s in STATES if s.agreed),
        "effective_at",
        30,
        "PML33; CC203",
        policy="judicial_window_days",
        open_while=("judicial", "none"),
        warns=False,
        rolls_over=True,
    ),
    DeadlineSpec(
        "first_follow_up",
        ("agreement_effective",),
        "effective_at",
        30,
        "PML31; policy",
        policy="follow_up_days",
        due_from="performance_deadline",
    ),
)

#: the Chinese label of every payload member (of the command payloads and the values they nest:
#: a party, a document, a tie, the scope, the agreement's content), what ``--lang zh`` shows for a
#: member's name; ``tests/test_cli_reading.py`` checks that every member of every registered
#: version has one
FIELD_ZH = {
    "address": "地址", "agent": "代理人", "bank_account": "银行账户", "basis": "依据",
    "health": "健康信息", "minor": "未成年人信息", "request": "申请书", "applicants": "申请人", "at": "时间",
    "category": "纠纷类别", "civil": "民事纠纷", "committee": "调委会", "content": "协议内容",
    "court": "法院", "criminal": "刑事案件", "days": "天数", "description": "纠纷简况",
    "document": "文书", "employer": "用人单位", "evidence": "证据", "facts": "事实",
    "grounds": "理由", "handled_elsewhere": "已由其他机关受理", "id": "编号",
    "id_number": "证件号码", "invitee": "受邀人员", "involves_privacy": "涉及隐私",
    "issues": "争议事项", "joint_applicants": "共同申请", "kind": "类型", "lead": "主调解员",
    "level": "层级", "media_type": "文件类型", "mediator": "调解员", "method": "方式",
    "name": "姓名", "new_case": "新案件编号", "note": "备注", "notice": "终止告知书",
    "origin": "原案件编号", "origin_committee": "原调委会",
    "obligations": "义务", "oral": "口头协议", "parties": "当事人",
    "parties_informed": "已告知当事人", "performance_deadline": "履行期限",
    "performance_method": "履行方式", "performance_place": "履行地点", "performed": "履行情况",
    "person": "人员", "phone": "电话", "place": "地点", "power_of_attorney": "授权委托书",
    "profile": "回避规则", "proposal": "调解方案", "public": "公开进行", "public_security": "治安案件",
    "reason": "原因", "reserved_matter": "保留事项", "respondents": "被申请人",
    "responsibilities": "责任", "route": "其他途径", "satisfaction": "满意度",
    "scope": "受理范围", "sha256": "SHA-256", "source": "来源", "source_ref": "来源编号",
    "status": "司法确认状态", "subject": "同意事项", "subtype": "纠纷子类", "summary": "摘要",
    "target": "接收单位", "text": "内容", "ties": "关系", "title": "标题", "to": "移交去向",
    "trade_secrets": "商业秘密", "undertaking": "承诺", "upheld": "成立",
    "window_ends": "申请期限届满",
}  # fmt: skip


#: the Chinese label of every English word a payload member takes from a closed vocabulary (the
#: ``str`` enums of :mod:`mediation._vocab` a payload field is checked against), what ``--lang zh``
#: shows for the word; checked complete by ``tests/test_cli_reading.py`` like :data:`FIELD_ZH`
WORD_ZH = {
    # ConsentSubject
    "invitee": "邀请协助人员", "waive_recusal": "放弃回避", "extend_term": "延长期限",
    "reopen": "重新调解", "non_public": "不公开进行",
    # HandledElsewhere, Route, TransferTarget, InviteeKind (shared words read alike)
    "court": "法院", "arbitration": "仲裁", "police": "公安机关", "administrative": "行政机关",
    "litigation": "诉讼", "other_committee": "其他调委会", "other": "其他",
    "street_committee": "街道调委会", "authority": "有关部门",
    "street_cadre": "街道干部", "legal_adviser": "法律顾问", "property_manager": "物业",
    "zongzhi": "综治中心",
    # JudicialStatus
    "none": "无", "applied": "已申请", "confirmed": "已确认", "rejected": "被驳回",
    # PartyKind
    "person": "自然人", "organisation": "单位",
    # PauseReason
    "appraisal": "鉴定", "risk_report": "风险报告",
    # Performed
    "no": "未履行", "partial": "部分履行", "yes": "已履行",
    # RecusalProfile
    "default": "默认", "sz": "深圳规则",
    # ReportSource
    "grid": "网格员", "early_warning": "预警", "court_referral": "法院委派",
    "police_referral": "公安移交", "hotline": "热线",
    # ReservedMatter
    "marriage_status": "婚姻关系", "adoption_status": "收养关系", "identity": "身份关系",
    # SignMethod
    "signature": "签名", "seal": "盖章", "fingerprint": "按指印",
    # TieKind
    "spouse": "配偶", "parent": "父母", "child": "子女", "sibling": "兄弟姐妹",
    "grandparent": "祖父母、外祖父母", "grandchild": "孙子女、外孙子女", "interest": "利害关系",
    "employee": "雇佣关系",
}  # fmt: skip


#: the first version: every case opened on it is decided and replayed on it for ever
WORKFLOW_V1 = register(
    Workflow(
        version="mediation-workflow/1",
        states=STATES,
        guards=GUARDS,
        commands=COMMANDS,
        deadlines=DEADLINES,
        changes="The first version.",
        personal=PERSONAL,
    )
)


# -- version 2 -------------------------------------------------------------------------------------
#
# What version 2 changes, each with its basis (docs/workflow.md, "Versions").  Version 1 stays
# registered and unchanged: its cases are decided and replayed as before.

_V1 = WORKFLOW_V1


def _v2(name: str, **changes: object) -> CommandSpec:
    """Command ``name`` of version 1 with ``changes``."""
    return attrs.evolve(_V1.command(name), **changes)  # type: ignore[arg-type]


def _guarded(name: str, *guards: str) -> CommandSpec:
    """Command ``name`` of version 1 with ``impartial`` first, then its guards (or ``guards``)."""
    spec = _V1.command(name)
    return attrs.evolve(spec, guards=("impartial", *(guards or spec.guards)))


_ROLE_COMMANDS_V2 = (
    _guarded("apply", "parties_named"),
    _guarded("report"),
    _guarded("register"),
    _guarded("not_accept"),
    _guarded("decide_recusal"),
    _guarded("sign"),
    _guarded("confirm_performed"),
    _guarded("terminate"),
)

V2_GUARDS = (
    _g(
        "G2",
        "属于受理范围（民间纠纷、未由他机关处理、非专属事项（含纠纷所述的婚姻效力、收养、亲子等身份关系）、无刑事治安情形）",
        "within scope: a civil dispute not handled elsewhere, not a status matter (also as the "
        "dispute's description states it), no criminal flag",
        "R2002 22; PML25; CC1051-1054, 1073, 1105",
        impl="G2@2",
    ),
    _g(
        "G4",
        "回避：与当事人无近亲属、利害或其他可能影响公正的关系；当事人的雇员一律回避；协助人员与调解员不得兼任",
        "recusal: no close relative, interest or other tie to a party; never an employee of any "
        "party; an invitee is never also a mediator",
        "R2002 25; SZ23; TY2016 15; ODR2021 13; CC1045; PML20, 29",
        impl="G4@2",
    ),
    _g(
        "impartial",
        "以本调委会职务（主任、调解员等）办理的，不得是本案当事人或代理人",
        "whoever acts under a committee role is not a party or agent of the case",
        "R2002 25; PML19",
    ),
    _g(
        "level_below_L2",
        "案件处于楼栋（L0）或社区（L1）层级",
        "the case is at building (L0) or community (L1) level",
        "NB12",
    ),
    _g(
        "replacement_only",
        "协议制作后仅在主调解员回避后指定替换调解员",
        "after the agreement is drafted, only to replace a removed lead mediator",
        "R2002 25; PML19",
    ),
    _g(
        "transfer_link",
        "移交调委会的，写明接收调委会及新建案件，且当事人个人信息未被删除；移交外部机关的，不链接本系统案件",
        "to a committee: the receiving committee and the case opened there named, the parties' "
        "personal data not erased; to an outside body: no case of this store linked",
        "PML25, 34; PIPL 47",
    ),
    _g(
        "origin_named",
        "写明原案件、原调委会及移交理由",
        "the case, the committee and the reason of the transfer are named",
        "PML25, 34",
    ),
    _g(
        "judicial_settled",
        "司法确认申请已有裁定结果",
        "no application for judicial confirmation is awaiting the court's ruling",
        "PML27, 33",
    ),
)

V2_COMMANDS = (
    *_ROLE_COMMANDS_V2,
    _v2(
        "assign_mediator",
        sources=_REGISTERED_ON,
        guards=("impartial", "replacement_only", "G3", "G4"),
        effect=F.assign_jointly,
    ),
    _v2(
        "escalate",
        zh="提级调解（楼栋→社区→街道）",
        en="escalate one level: building to community to street",
        guards=("impartial", "level_below_L2"),
        effect=F.escalate_level,
    ),
    _v2("transfer", guards=("impartial", "transfer_link"), link=("to", "new_case")),
    _v2(
        "record_judicial_confirmation",
        guards=("impartial", "not_archived", "G11"),
    ),
    _v2("archive", guards=("impartial", "not_archived", "judicial_settled", "G13")),
    attrs.evolve(
        _c(
            "receive_transfer",
            "接收移交",
            "receive a transferred case",
            (NEW,),
            "applied",
            roles=(R.DIRECTOR,),
            guards=("parties_named", "origin_named"),
            basis="PML25, 34",
            payload=C.ReceiveTransfer,
            effect=F.opening_transfer,
            sealed=("description", "evidence.*.title", "reason"),
            persons=("applicants", "respondents"),
        ),
        authority="origin_committee",
        link=("from", "origin"),
    ),
)

#: the current version: new cases are opened on it (``CaseService(workflow=...)`` defaults to it)
WORKFLOW = register(
    WORKFLOW_V1.evolve(
        "mediation-workflow/2",
        changes=(
            "Levels and transfer: `escalate` goes one level up, L0 楼栋 → L1 社区 → L2 街道, and "
            "records each step with its reason (NB12); `transfer` to a committee opens the linked "
            "case there (`receive_transfer`, accepted by that committee's director), each case "
            "naming the other, and a transfer to an outside body links none (PML25, 34). "
            "No dead ends: a replacement mediator can be assigned in every registered active "
            "state; once the agreement is drafted only while the case has no lead (R2002 25; "
            "PML19). Parties choose a mediator jointly: a party's `assign_mediator` takes effect "
            "once every party made the same choice (PML19). `impartial`: nobody acts under a "
            "committee role on a case they are a party or agent of (R2002 25). G4: an employee "
            "of any party never acts on the case (not only of an organisation), a property "
            "manager is invited with their employer named, an invitee is never also a mediator "
            "(PML20, 29). G2 also reads the dispute's description for status matters "
            "(确认婚姻无效, 收养关系, 亲子关系: CC1051-1054, 1073, 1105). Judicial confirmation "
            "is not recorded on an archived case, and a case is not archived while an "
            "application awaits the court's ruling (PML27, 33)."
        ),
        commands=V2_COMMANDS,
        guards=V2_GUARDS,
    )
)
