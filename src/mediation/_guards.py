"""The guards of DOMAIN.md, G1 to G13 and the smaller ones, as functions of one context.

A guard returns ``None`` when it holds and a :class:`~mediation._text.Text` reason when it does not; the
callers turn a reason into :class:`GuardFailed` naming the guard, its basis, the case and the state.
The same functions serve the live command path (as ``transitions`` conditions), replay, and the
"what may this actor do now" query.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._authz import Directory, Grant, _Trusted
from ._case import Case, signature_slot
from ._errors import GuardFailed, InvalidCommand
from ._events import parse_time
from ._spec import CommandSpec, PeopleRule
from ._text import Text
from ._validators import _ID_RE
from ._vocab import CLOSE_RELATIVES, NEW, JudicialStatus, Level, Relation, Role

__all__ = [
    "GUARDS",
    "Context",
    "Reason",
    "check",
    "check_people",
    "failure",
]

#: why a guard does not hold
Reason = Text


#: the relations that speak for a party
_PARTY_SIDE = frozenset((Relation.APPLICANT, Relation.RESPONDENT, Relation.AGENT))


@attrs.define(slots=True)
class Context:
    """What a guard may look at: the case before the command, the payload, who, when, as what."""

    case: Case
    command: str
    payload: Mapping[str, Any]
    actor: str
    acted_as: str
    #: the time of the command, in the log's format (parsed only by the guards that need it)
    at: str
    directory: Directory | None = None
    #: set by the decision: the command's declaration, the role or relation claimed (None: any),
    #: the actor's grants of the day (or TRUSTED), whether the payload is unknown (the "allowed"
    #: query: guards that need it are noted as pending, not judged) and those pending guards
    spec: CommandSpec | None = None
    claim: str | None = None
    grants: frozenset[Grant] | _Trusted = frozenset()
    partial: bool = False
    pending: list[str] = attrs.field(factory=list)

    @property
    def now(self) -> _dt.datetime:
        return parse_time(self.at)


@attrs.frozen
class _Guard:
    fn: Callable[[Context], Reason | None]
    #: False when the guard can be judged without the command's payload (the "allowed" query)
    needs_payload: bool
    needs_directory: bool = False


GUARDS: dict[str, _Guard] = {}


def _guard(
    name: str, *, payload: bool = False, directory: bool = False
) -> Callable[[Callable[[Context], Reason | None]], Callable[[Context], Reason | None]]:
    def register(fn: Callable[[Context], Reason | None]) -> Callable[[Context], Reason | None]:
        GUARDS[name] = _Guard(fn, payload, directory)
        return fn

    return register


def failure(name: str, reason: Reason, ctx: Context) -> GuardFailed:
    spec = ctx.case.workflow.guard(name)
    return GuardFailed(
        f"{name} ({spec.en}) failed: {reason.en}",
        message_zh=f"{name}（{spec.zh}）未满足：{reason.zh}",
        guard=name,
        basis=spec.basis,
        case=ctx.case.id,
        state=ctx.case.state,
        command=ctx.command,
        actor=ctx.actor,
    )


def check(name: str, ctx: Context) -> None:
    """Raise :class:`GuardFailed` unless guard ``name`` (of the case's workflow) holds."""
    g = GUARDS[ctx.case.workflow.guard(name).function]
    if g.needs_directory and ctx.directory is None:
        return
    reason = g.fn(ctx)
    if reason is not None:
        raise failure(name, reason, ctx)


def check_people(case: Case, spec: CommandSpec, payload: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidCommand` when a payload names someone who is not where it says, by the
    rules its declaration gives its fields (:class:`~mediation._spec.PeopleRule`): party ids must be
    parties of the case, ties must point at its parties or agents, a recusal request must name one
    of its mediators or invitees, and a new agent must be new to the case."""
    known = case.parties.keys() | case.agents.keys()

    def bad(message: str, field: str) -> InvalidCommand:
        return InvalidCommand(
            message, case=case.id, command=spec.name, field=field, state=case.state
        )

    for field, rule in spec.people:
        value: Any = payload.get(field) if rule is PeopleRule.TIES else payload[field]
        if rule is PeopleRule.PARTIES:
            for pid in value:
                if pid not in case.parties:
                    raise bad(f"{pid} is not a party of case {case.id}", field)
        elif rule is PeopleRule.NEW_PERSON:
            pid = value["id"]
            if pid in known:
                raise bad(f"{pid} is already a party or agent", field)
            if pid in case.mediators or pid in case.invitees:
                raise bad(f"{pid} is a mediator or invitee of this case", field)
        elif rule is PeopleRule.MEDIATOR_OR_INVITEE:
            if value not in case.mediators and value not in case.invitees:
                raise bad(f"{value} is not a mediator or invitee of case {case.id}", field)
        else:  # PeopleRule.TIES
            for tie in value or ():
                if tie["person"] not in known:
                    raise bad(f"{tie['person']} is not a party or agent of case {case.id}", field)


# -- opening ---------------------------------------------------------------------------------------


@_guard("parties_named", payload=True)
def _parties_named(ctx: Context) -> Reason | None:
    p = ctx.payload
    if not p.get("applicants") or not p.get("respondents"):
        return Text(
            en="at least one applicant and one respondent must be named",
            zh="须列明申请人和被申请人",
        )
    if not str(p.get("description", "")).strip():
        return Text(en="the dispute must be described", zh="须描述纠纷事实")
    return None


@_guard("source_recorded", payload=True)
def _source_recorded(ctx: Context) -> Reason | None:
    p = ctx.payload
    if p.get("source") in ("court_referral", "police_referral") and not p.get("source_ref"):
        return Text(
            en="a referral must record the referring file number", zh="移送案件须记录来源文号"
        )
    if not p.get("source"):
        return Text(en="the source of the report must be recorded", zh="须记录线索来源")
    return None


@_guard("reason_and_route", payload=True)
def _reason_and_route(ctx: Context) -> Reason | None:
    p = ctx.payload
    if not str(p.get("reason", "")).strip() or not p.get("route"):
        return Text(
            en="record the reason and the route the applicant should take",
            zh="须记录理由及救济途径",
        )
    return None


@_guard("respondent_side")
def _respondent_side(ctx: Context) -> Reason | None:
    if ctx.case.party_of(ctx.actor) not in ctx.case.respondents:
        return Text(
            en="only a respondent (or a respondent's agent) consents to or refuses mediation",
            zh="只有被申请人（或其代理人）可以同意或拒绝调解",
        )
    return None


# -- registration ----------------------------------------------------------------------------------


@_guard("G1")
def _g1(ctx: Context) -> Reason | None:
    c = ctx.case
    missing = [r for r in c.respondents if r not in c.consents.get("mediation", frozenset())]
    if missing:
        return Text(
            en=f"respondent(s) {', '.join(missing)} have not consented to mediation",
            zh=f"被申请人 {'、'.join(missing)} 尚未同意调解",
        )
    return None


@_guard("G2", payload=True)
def _g2(ctx: Context) -> Reason | None:
    s = ctx.payload.get("scope") or {}
    if s.get("criminal") or s.get("public_security"):
        return Text(
            en="a criminal or public-security matter must be reported to the police (transfer it)",
            zh="涉及刑事或治安案件，应移交公安机关",
        )
    if not s.get("civil", False):
        return Text(en="not a civil dispute", zh="不属于民间纠纷")
    if s.get("handled_elsewhere"):
        where = s["handled_elsewhere"]
        return Text(en=f"already accepted or decided by {where}", zh=f"已由{where}受理或处理")
    if s.get("reserved_matter"):
        return Text(
            en=f"{s['reserved_matter']} is reserved to another authority",
            zh="属于其他机关专属管辖的事项（如婚姻、收养关系的确认）",
        )
    return None


# -- people ----------------------------------------------------------------------------------------


@_guard("G3", payload=True, directory=True)
def _g3(ctx: Context) -> Reason | None:
    assert ctx.directory is not None
    who = ctx.payload["mediator"]
    committee = ctx.case.committee
    if not any(
        g.role is Role.MEDIATOR and g.committee == committee for g in ctx.directory.grants_of(who)
    ):
        return Text(
            en=f"{who} holds no mediator role in committee {committee}",
            zh=f"{who} 不是本调委会（{committee}）的人民调解员",
        )
    return None


_DISQUALIFYING = frozenset((*CLOSE_RELATIVES, "interest", "employee", "other"))


def _is_waived(c: Case, person: str) -> bool:
    return c.profile == "court" and c.all_consented("waive_recusal:" + person)


@_guard("G4", payload=True)
def _g4(ctx: Context) -> Reason | None:
    c, p = ctx.case, ctx.payload
    person: str = p.get("mediator") or p.get("invitee") or ""
    if person in c.parties or person in c.agents:
        return Text(
            en=f"{person} is a party or agent of this case", zh=f"{person} 是本案当事人或代理人"
        )
    if person in c.recused:
        return Text(en=f"{person} was recused from this case", zh=f"{person} 已被决定回避")
    # the property-company rule: an employee of an organisation that is a party never acts on
    # the case, whatever the invitation calls them, and no waiver lifts it
    employer = p.get("employer", "")
    organisations = {pid for pid, party in c.parties.items() if party.get("kind") == "organisation"}
    names = {c.parties[o].get("name") for o in organisations}
    recorded = (*c.ties.get(person, ()), *p.get("ties", ()))
    if (employer and (employer in organisations or employer in names)) or any(
        t["kind"] == "employee" and t["person"] in organisations for t in recorded
    ):
        return Text(
            en=f"{person} is employed by an organisation that is a party to this dispute",
            zh=f"{person} 受雇于本案当事人单位，不得参与本案调解",
        )
    related = set(c.parties) | set(c.agents)
    ties = [t for t in recorded if t["kind"] in _DISQUALIFYING and t["person"] in related]
    if ties and not _is_waived(c, person):
        t = ties[0]
        return Text(
            en=f"{person} has a {t['kind']} tie to {t['person']}"
            + (
                " (the court profile allows every party to waive this)"
                if c.profile == "court"
                else ""
            ),
            zh=f"{person} 与 {t['person']} 存在{_TIE_ZH.get(t['kind'], t['kind'])}关系，应当回避",
        )
    return None


_TIE_ZH = {
    "spouse": "配偶", "parent": "父母子女", "child": "父母子女", "sibling": "兄弟姐妹",
    "grandparent": "祖孙", "grandchild": "祖孙", "interest": "利害", "employee": "雇佣",
    "other": "可能影响公正的其他",
}  # fmt: skip


@_guard("G5", payload=True)
def _g5(ctx: Context) -> Reason | None:
    c, who = ctx.case, ctx.payload["invitee"]
    if not c.all_consented("invitee:" + who):
        missing = sorted(set(c.party_ids) - c.consents.get("invitee:" + who, frozenset()))
        return Text(
            en=f"party(ies) {', '.join(missing)} have not consented to inviting {who}",
            zh=f"当事人 {'、'.join(missing)} 尚未同意邀请 {who}",
        )
    if not ctx.payload.get("undertaking"):
        return Text(en="the invitee's confidentiality undertaking is missing", zh="缺少保密承诺书")
    return None


# -- meeting ---------------------------------------------------------------------------------------


@_guard("G6")
def _g6(ctx: Context) -> Reason | None:
    c = ctx.case
    missing = [p for p in c.party_ids if p not in c.rights_notified]
    if missing:
        return Text(
            en=f"party(ies) {', '.join(missing)} were not told their rights and duties",
            zh=f"尚未告知当事人 {'、'.join(missing)} 权利义务",
        )
    return None


@_guard("G7", payload=True)
def _g7(ctx: Context) -> Reason | None:
    c = ctx.case
    if not ctx.payload.get("public"):
        return None
    if c.involves_privacy or c.trade_secrets:
        return Text(
            en="privacy or trade secrets are involved: the meeting must not be public",
            zh="涉及个人隐私或商业秘密，应不公开进行",
        )
    if c.consents.get("non_public"):
        return Text(en="a party objected to a public meeting", zh="有当事人反对公开调解")
    return None


# -- negotiation and agreement ---------------------------------------------------------------------


@_guard("proposal_exists", payload=True)
def _proposal_exists(ctx: Context) -> Reason | None:
    n = ctx.payload.get("proposal", 0)
    if not isinstance(n, int) or not 1 <= n <= ctx.case.proposals:
        return Text(en=f"there is no proposal {n}", zh=f"不存在第 {n} 号方案")
    return None


_G8A_FIELDS = (
    "facts",
    "issues",
    "responsibilities",
    "obligations",
    "performance_method",
    "performance_place",
    "performance_deadline",
)


@_guard("G8a", payload=True)
def _g8a(ctx: Context) -> Reason | None:
    content = ctx.payload.get("content") or {}
    missing = [f for f in _G8A_FIELDS if not str(content.get(f, "")).strip()]
    unnamed = [p for p, d in ctx.case.parties.items() if not d.get("name")]
    if missing or unnamed:
        return Text(
            en=f"the agreement lacks: {', '.join(missing + ['basic information of ' + p for p in unnamed])}",
            zh=f"协议缺少：{'、'.join(missing)}",
        )
    return None


@_guard("not_signed_yet")
def _not_signed_yet(ctx: Context) -> Reason | None:
    slot = signature_slot(ctx.case, ctx.actor, ctx.acted_as)
    if slot in ctx.case.signatures:
        what = "the committee seal is" if slot == "seal" else f"the signature of {slot} is"
        return Text(en=f"{what} already on the agreement", zh="已签署（盖章）")
    return None


@_guard("G8b")
def _g8b(ctx: Context) -> Reason | None:
    c = ctx.case
    signed = c.signatures | {signature_slot(c, ctx.actor, ctx.acted_as)}
    missing = [p for p in c.party_ids if p not in signed]
    if missing:
        return Text(en=f"party(ies) {', '.join(missing)} have not signed", zh="尚有当事人未签名")
    if not any(m in signed for m in c.mediators):
        return Text(en="no mediator has signed", zh="调解员尚未签名")
    if "seal" not in signed:
        return Text(en="the committee seal is missing", zh="尚未加盖调委会印章")
    return None


@_guard("G12")
def _g12(ctx: Context) -> Reason | None:
    if not ctx.case.performed:
        return Text(en="no follow-up record shows performance", zh="回访记录未显示已履行")
    return None


@_guard("all_parties_consent")
def _all_parties_consent(ctx: Context) -> Reason | None:
    subject = ctx.command  # "reopen" or "extend_term": the consent subject is the command
    if not ctx.case.all_consented(subject):
        missing = sorted(set(ctx.case.party_ids) - ctx.case.consents.get(subject, frozenset()))
        return Text(
            en=f"party(ies) {', '.join(missing)} have not consented to {subject}",
            zh=f"当事人 {'、'.join(missing)} 尚未同意",
        )
    return None


# -- ending ----------------------------------------------------------------------------------------


@_guard("termination_proposed")
def _termination_proposed(ctx: Context) -> Reason | None:
    if ctx.case.termination is None:
        return Text(
            en="the lead mediator has not proposed termination", zh="调解员尚未提出终止调解"
        )
    return None


@_guard("G9", payload=True)
def _g9(ctx: Context) -> Reason | None:
    t = ctx.case.termination or {}
    if not t.get("reason") or not t.get("route"):
        return Text(
            en="the reason and referral route are not recorded", zh="未记录终止理由和其他救济途径"
        )
    if not ctx.payload.get("parties_informed"):
        return Text(
            en="the parties have not been informed of other routes",
            zh="尚未告知当事人可依法通过仲裁、行政、司法等途径维护权利",
        )
    return None


_G11_WINDOW = _dt.timedelta(days=30)


@_guard("G11", payload=True)
def _g11(ctx: Context) -> Reason | None:
    c, p = ctx.case, ctx.payload
    status = p.get("status")
    if status == JudicialStatus.APPLIED:
        if ctx.acted_as not in _PARTY_SIDE:
            return Text(
                en="only the parties apply for judicial confirmation", zh="司法确认须由当事人申请"
            )
        if c.judicial not in ("none", "rejected"):
            return Text(en=f"judicial confirmation is already {c.judicial}", zh="已申请司法确认")
        missing = sorted(set(c.party_ids) - set(p.get("joint_applicants", ())))
        if missing:
            return Text(
                en=f"the application must be joint; missing {', '.join(missing)}",
                zh="须由双方当事人共同申请",
            )
        if c.category == "婚姻家庭" and c.subtype != "赡养/抚养":
            return Text(
                en="not available for identity, marriage or adoption matters",
                zh="不涉及身份、婚姻、收养关系的协议方可申请",
            )
        ends = p.get("window_ends")
        if ends:  # recorded by the service from its policy: decided alike live and on replay
            try:
                closes = parse_time(ends)
            except (TypeError, ValueError):
                return Text(en=f"not a time: {ends!r:.40}", zh="司法确认申请期限格式错误")
            if c.effective_at is None or ctx.now >= closes:
                return Text(
                    en=f"the window for judicial confirmation closed at {ends}",
                    zh=f"司法确认申请期限已于 {ends} 届满",
                )
        elif c.effective_at is None or ctx.now - parse_time(c.effective_at) > _G11_WINDOW:
            return Text(
                en="more than 30 days since the agreement took effect",
                zh="已超过协议生效之日起三十日",
            )
        return None
    if ctx.acted_as in _PARTY_SIDE:
        return Text(
            en="the court's ruling is recorded by a mediator or the director",
            zh="法院裁定由调解员或主任登记",
        )
    if c.judicial != JudicialStatus.APPLIED:
        return Text(en="no judicial confirmation has been applied for", zh="尚未申请司法确认")
    return None


def required_documents(c: Case) -> list[str]:
    """What G13 still misses in the case file, by the kind of ending."""
    missing: list[str] = []
    spec = c.workflow.state(c.state)
    performed = spec.terminal and spec.agreed
    if performed or spec.failed:
        if c.registered_at is None:
            missing.append("registration")
        if c.meeting is not None and set(c.party_ids) - c.rights_notified:
            missing.append("rights notice")
    if performed:
        if c.minutes == 0:
            missing.append("minutes")
        if c.agreement is None:
            missing.append("agreement")
        if c.follow_ups == 0:
            missing.append("follow-up record")
    if spec.failed and not (c.termination and c.terminated_informed):
        missing.append("termination notice")
    return missing


@_guard("G13")
def _g13(ctx: Context) -> Reason | None:
    missing = required_documents(ctx.case)
    if missing:
        return Text(
            en=f"the case file lacks: {', '.join(missing)}", zh=f"卷宗缺少：{'、'.join(missing)}"
        )
    return None


# -- small state guards ----------------------------------------------------------------------------


@_guard("not_paused")
def _not_paused(ctx: Context) -> Reason | None:
    return Text(en="the case is already paused", zh="案件已中止计时") if ctx.case.paused else None


@_guard("paused")
def _paused(ctx: Context) -> Reason | None:
    return None if ctx.case.paused else Text(en="the case is not paused", zh="案件未中止计时")


@_guard("level_L0")
def _level_l0(ctx: Context) -> Reason | None:
    if ctx.case.level != Level.L0:
        return Text(
            en=f"the case is already at level {ctx.case.level}",
            zh=f"案件已在 {ctx.case.level} 层级",
        )
    return None


@_guard("recusal_pending", payload=True)
def _recusal_pending(ctx: Context) -> Reason | None:
    if ctx.payload.get("person") not in ctx.case.recusal_requests:
        return Text(en="no recusal request is pending for this person", zh="该人员无待决的回避申请")
    if ctx.payload.get("person") == ctx.actor:
        return Text(
            en="nobody decides on a request for their own recusal", zh="不得自行决定本人的回避申请"
        )
    return None


@_guard("not_archived")
def _not_archived(ctx: Context) -> Reason | None:
    return Text(en="the case is already archived", zh="案件已归档") if ctx.case.archived else None


# -- version 2 -------------------------------------------------------------------------------------
#
# Guards that version 2 (``mediation-workflow/2``) adds, and the new implementations of guards it
# keeps the names of (``GuardSpec.impl``): version 1 goes on deciding with the functions above.

_ROLE_NAMES = frozenset(r.value for r in Role)

#: words that make a dispute a matter of status (婚姻效力、收养、亲子、身份关系): reserved to the
#: court or the registry, whatever the director's scope says (CC1051-1054, 1073, 1105, 1113)
_STATUS_WORDS = (
    "婚姻无效", "确认婚姻", "撤销婚姻", "婚姻效力", "收养关系", "解除收养", "收养无效",
    "亲子关系", "身份关系",
)  # fmt: skip


@_guard("erasure_subject", payload=True)
def _erasure_subject(ctx: Context) -> Reason | None:
    c, p = ctx.case, ctx.payload
    person = p.get("person") or ""
    if not str(p.get("basis") or "").strip():
        return Text(en="the basis of the erasure is stated", zh="须写明删除依据")
    if person and person not in c.parties and person not in c.agents:
        return Text(
            en=f"{person} is neither a party nor an agent of this case",
            zh=f"{person} 不是本案当事人或代理人",
        )
    if "*" in c.erased or (person or "*") in c.erased:
        who = f"of {person}" if person else "of the case"
        return Text(en=f"the personal data {who} was already erased", zh="个人信息已删除")
    if (person in c.plain) if person else c.plain:
        who = person or "the case"
        return Text(
            en=f"personal data of {who} was recorded in plain text while sealing was off: "
            "destroying keys cannot erase it (docs/privacy.md)",
            zh=f"{'当事人 ' + person if person else '本案'}的个人信息曾在未加密封存时以明文记录，"
            "无法通过销毁密钥删除",
        )
    return None


@_guard("G2@2", payload=True)
def _g2_v2(ctx: Context) -> Reason | None:
    """G2, version 2: the scope the director records, and the dispute's own description: a
    marriage, adoption, parentage or identity status matter is out of scope even when the scope
    leaves ``reserved_matter`` empty."""
    reason = _g2(ctx)
    if reason is not None:
        return reason
    # a sealed description (an object, the default) is never read by a decision: the director's
    # recorded scope decides alone then (docs/privacy.md)
    description = ctx.case.description if isinstance(ctx.case.description, str) else ""
    found = next((w for w in _STATUS_WORDS if w in description), None)
    if found is not None:
        return Text(
            en=f"the dispute ({found}) is a status matter reserved to the court or the registry",
            zh=f"纠纷涉及「{found}」，属于法院或登记机关专属的身份关系事项，不属于人民调解范围",
        )
    return None


def _employed_by_party(c: Case, person: str, p: Mapping[str, Any]) -> bool:
    """Is ``person`` employed by a party of the case, whatever kind of party it was recorded as:
    by the ``employer`` of the payload (a party's id or name) or by an ``employee`` tie to a party
    recorded at any point."""
    parties = set(c.parties)
    names = {str(d.get("name")) for d in c.parties.values() if d.get("name")}
    employer = str(p.get("employer") or "")
    recorded = (*c.ties.get(person, ()), *(p.get("ties") or ()))
    return bool(employer and (employer in parties or employer in names)) or any(
        t["kind"] == "employee" and t["person"] in parties for t in recorded
    )


@_guard("G4@2", payload=True)
def _g4_v2(ctx: Context) -> Reason | None:
    """G4, version 2: the rules of version 1, and

    - the employer rule holds for every party, not only one recorded as an organisation (a
      property company recorded with the default kind, a party who employs the invitee): an
      employee of a party never acts on the case, and no waiver lifts it (R2002 25; TY2016 15);
    - a property manager is invited only with their employer named, so that the rule can be judged;
    - an invitee is never also a mediator of the case, nor a mediator an invitee (PML20, 29: an
      invitee attends and advises, and never signs as mediator).
    """
    c, p = ctx.case, ctx.payload
    person: str = p.get("mediator") or p.get("invitee") or ""
    if person in c.parties or person in c.agents or person in c.recused:
        return _g4(ctx)
    if _employed_by_party(c, person, p):
        return Text(
            en=f"{person} is employed by a party to this dispute",
            zh=f"{person} 受雇于本案当事人，不得参与本案调解",
        )
    if "invitee" in p:
        if p.get("kind") == "property_manager" and not str(p.get("employer") or "").strip():
            return Text(
                en="a property manager is invited with their employer named",
                zh="邀请物业人员须写明其用人单位",
            )
        if person in c.mediators:
            return Text(
                en=f"{person} is a mediator of this case, not an invitee",
                zh=f"{person} 是本案调解员，不能再作为协助人员",
            )
    elif person in c.invitees:
        return Text(
            en=f"{person} is an invitee of this case: an invitee never acts as mediator",
            zh=f"{person} 是本案受邀协助人员，不能担任调解员",
        )
    return _g4(ctx)


@_guard("impartial")
def _impartial(ctx: Context) -> Reason | None:
    """Nobody acts under a committee role (director, mediator, ...) on a case they are a party to
    or an agent in (R2002 25; PML19: 回避): another holder of the role acts."""
    if ctx.acted_as not in _ROLE_NAMES:
        return None
    c = ctx.case
    own = ctx.actor in c.parties or ctx.actor in c.agents
    if not own and c.state == NEW:  # an opening: the parties its payload names
        named = (*(ctx.payload.get("applicants") or ()), *(ctx.payload.get("respondents") or ()))
        own = any(isinstance(x, Mapping) and x.get("id") == ctx.actor for x in named)
    if own:
        return Text(
            en=f"{ctx.actor} is a party or agent of this case and may not act on it as "
            f"{ctx.acted_as}",
            zh=f"{ctx.actor} 是本案当事人或代理人，应当回避，不得以本调委会职务处理本案",
        )
    return None


@_guard("level_below_L2")
def _level_below_l2(ctx: Context) -> Reason | None:
    if ctx.case.level not in (Level.L0, Level.L1):
        return Text(
            en=f"the case is already at level {ctx.case.level}, the street's",
            zh=f"案件已在 {ctx.case.level}（街道）层级",
        )
    return None


@_guard("replacement_only")
def _replacement_only(ctx: Context) -> Reason | None:
    """Once the agreement is drafted, a mediator is assigned only to replace one removed from the
    case: the case has no lead mediator (R2002 25; PML19)."""
    c = ctx.case
    if c.agreement is None or c.lead is None:  # before an agreement is drafted or recorded
        return None
    return Text(
        en="after the agreement is drafted a mediator is assigned only to replace a removed lead",
        zh="协议制作后仅在主调解员回避后可指定替换调解员",
    )


_COMMITTEE_TARGETS = frozenset(("street_committee",))


@_guard("transfer_link", payload=True)
def _transfer_link(ctx: Context) -> Reason | None:
    """A transfer to a committee names the receiving committee by its id and the case it opens
    there (the service fills it in); a transfer to an outside body (police, an authority, a court)
    links no case of this store (PML25, 34)."""
    p, c = ctx.payload, ctx.case
    new_case, target = str(p.get("new_case") or ""), str(p.get("target") or "")
    if p.get("to") in _COMMITTEE_TARGETS:
        if not _ID_RE.match(target) or target == c.committee:
            return Text(
                en=f"a transfer to a committee names another committee by its id, not {target!r:.40}",
                zh="移交其他调委会须写明接收调委会的编号（不能是本调委会）",
            )
        if not new_case or new_case == c.id:
            return Text(
                en="a transfer to a committee names the case it opens there",
                zh="移交其他调委会须写明在接收方新建的案件编号",
            )
        erased = sorted(x for x in c.erased if x == "*" or x in c.parties)
        if erased:  # the case it opens carries the parties and the description (PIPL 47)
            who = "the case" if "*" in erased else ", ".join(erased)
            return Text(
                en=f"the personal data of {who} was erased: the case it opens cannot carry it",
                zh="当事人个人信息已删除，无法随移交带到接收方",
            )
        return None
    if new_case:
        return Text(
            en=f"a transfer to {p.get('to')} opens no case in this store: it links none",
            zh="移交公安、有关部门或法院不在本系统新建案件，不能链接案件编号",
        )
    return None


@_guard("origin_named", payload=True)
def _origin_named(ctx: Context) -> Reason | None:
    p = ctx.payload
    origin, committee = str(p.get("origin") or ""), str(p.get("origin_committee") or "")
    if not origin or origin == ctx.case.id or not committee or committee == p.get("committee"):
        return Text(
            en="a transferred case names the case and the other committee it came from",
            zh="移交案件须写明原案件编号及移交的调委会",
        )
    if not str(p.get("reason") or "").strip():
        return Text(en="the reason for the transfer is recorded", zh="须记录移交理由")
    return None


@_guard("judicial_settled")
def _judicial_settled(ctx: Context) -> Reason | None:
    """A case whose judicial confirmation is applied for is archived once the court's ruling is
    recorded: the ruling belongs in the file (PML27, 33)."""
    if ctx.case.judicial == JudicialStatus.APPLIED:
        return Text(
            en="the court has not ruled on the application for judicial confirmation yet",
            zh="司法确认申请尚未有法院裁定，暂不能归档",
        )
    return None
