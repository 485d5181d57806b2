"""The workflow, declared once, as data.

Everything that knows which command may move a case from where to where, who may issue it, which
guards apply and on what legal basis, reads :data:`WORKFLOW`: the ``transitions`` machine used at run
time (:func:`build_machine`), the replay checker (:mod:`mediation._audit`), the "what may I do now"
query, ``docs/workflow.md`` (:func:`render_markdown`) and the hypothesis strategies of
:mod:`mediation.testing`.

Sources of law are abbreviated as in DOMAIN.md: PML 人民调解法, R2002 《人民调解工作若干规定》,
NB 宁波市人民调解条例, SZ 深圳经济特区矛盾纠纷多元化解条例, TY2016 《特邀调解的规定》,
ODR2021 《人民法院在线调解规则》, PIPL 个人信息保护法, CC 民法典, LDL 劳动争议调解仲裁法.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ._vocab import Relation, Role, Stage

__all__ = [
    "ACTIVE",
    "NEW",
    "WORKFLOW",
    "CommandSpec",
    "GuardSpec",
    "Relation",
    "Role",
    "Stage",
    "StateSpec",
    "Workflow",
    "build_machine",
    "render_markdown",
]


#: The state of a case before its first event (the "—" of DOMAIN.md); not a domain state.
NEW = "new"


@attrs.frozen
class StateSpec:
    name: str
    stage: Stage | None  # None: an outcome reachable from several stages (failed, withdrawn, ...)
    zh: str
    en: str
    terminal: bool = False


@attrs.frozen
class GuardSpec:
    name: str
    zh: str
    en: str
    basis: str


@attrs.frozen
class CommandSpec:
    """One command: where it may be issued, where it leads, who may issue it, what must hold."""

    name: str
    zh: str
    en: str
    sources: tuple[str, ...]
    target: str | None  # None: no state change (an internal transition)
    roles: tuple[Role, ...]
    relations: tuple[Relation, ...]
    guards: tuple[str, ...]
    basis: str
    #: when set, ``target`` is reached only once this guard-like predicate holds; until then the
    #: command is recorded without a state change (``sign`` until every signature is in).
    completes_when: str | None = None
    #: relations first (they are case-specific), then roles, in declaration order
    grants: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        grants = tuple(r.value for r in self.relations) + tuple(r.value for r in self.roles)
        object.__setattr__(self, "grants", grants)


@attrs.frozen
class Workflow:
    version: str
    states: tuple[StateSpec, ...]
    guards: tuple[GuardSpec, ...]
    commands: tuple[CommandSpec, ...]
    _state_index: Mapping[str, StateSpec] = attrs.field(init=False, repr=False, eq=False)
    _command_index: Mapping[str, CommandSpec] = attrs.field(init=False, repr=False, eq=False)
    _guard_index: Mapping[str, GuardSpec] = attrs.field(init=False, repr=False, eq=False)
    #: (state, command) -> target state (the same state for internal transitions)
    table: Mapping[tuple[str, str], str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        states = {s.name: s for s in self.states}
        commands = {c.name: c for c in self.commands}
        guards = {g.name: g for g in self.guards}
        table: dict[tuple[str, str], str] = {}
        for c in self.commands:
            for src in c.sources:
                if src != NEW and src not in states:
                    raise ValueError(f"command {c.name}: unknown source state {src}")
                table[(src, c.name)] = c.target or src
            if c.target is not None and c.target not in states:
                raise ValueError(f"command {c.name}: unknown target state {c.target}")
            for g in (*c.guards, *((c.completes_when,) if c.completes_when else ())):
                if g not in guards:
                    raise ValueError(f"command {c.name}: undeclared guard {g}")
        object.__setattr__(self, "_state_index", states)
        object.__setattr__(self, "_command_index", commands)
        object.__setattr__(self, "_guard_index", guards)
        object.__setattr__(self, "table", table)

    def state(self, name: str) -> StateSpec:
        return self._state_index[name]

    def command(self, name: str) -> CommandSpec:
        return self._command_index[name]

    def guard(self, name: str) -> GuardSpec:
        return self._guard_index[name]

    def has_command(self, name: str) -> bool:
        return name in self._command_index

    def is_terminal(self, state: str) -> bool:
        spec = self._state_index.get(state)
        return spec is not None and spec.terminal

    def commands_from(self, state: str) -> tuple[CommandSpec, ...]:
        return tuple(c for c in self.commands if state in c.sources)


def _s(name: str, stage: Stage | None, zh: str, en: str, terminal: bool = False) -> StateSpec:
    return StateSpec(name, stage, zh, en, terminal)


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
    _s("agreement_effective", Stage.AGREE, "协议生效", "agreement in effect"),
    _s("following_up", Stage.FOLLOW_UP, "回访中（履行监督）", "following up on performance"),
    _s("resolved", Stage.FOLLOW_UP, "已履行结案", "performed and closed", True),
    _s(
        "failed",
        None,
        "调解终止（已告知其他途径）",
        "mediation ended, other routes explained",
        True,
    ),
    _s("withdrawn", None, "当事人撤回", "withdrawn by a party", True),
    _s("transferred", None, "移交（上级调委会/公安/主管部门）", "transferred", True),
)

_g = GuardSpec
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
    completes_when: str | None = None,
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
        completes_when,
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
    ),
    _c(
        "appoint_agent",
        "委托代理人",
        "appoint an agent",
        ACTIVE,
        None,
        relations=(L.APPLICANT, L.RESPONDENT),
        basis="R2002 26",
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
    ),
    _c(
        "request_recusal",
        "申请回避",
        "request recusal",
        _REGISTERED_ON,
        None,
        relations=_PARTIES,
        basis="R2002 25; SZ23",
    ),
    _c(
        "declare_conflict",
        "主动申明回避",
        "declare a conflict of interest",
        _REGISTERED_ON,
        None,
        relations=(*_MEDIATORS, L.INVITEE),
        basis="R2002 25; SZ23",
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
    ),
    _c(
        "consent",
        "当事人同意事项",
        "a party consents",
        _REGISTERED_ON,
        None,
        relations=_PARTIES,
        basis="PML20; NB27; PML33",
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
    ),
    _c(
        "notify_rights",
        "告知权利义务",
        "notify parties of their rights and duties",
        ("registered", "meeting_scheduled"),
        None,
        relations=_MEDIATORS,
        basis="R2002 30",
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
    ),
    _c(
        "record_minutes",
        "记录调解笔录",
        "record minutes",
        ("negotiating",),
        None,
        relations=_MEDIATORS,
        basis="PML27",
    ),
    _c(
        "share_proposal",
        "提出调解方案",
        "share a proposal",
        ("negotiating",),
        None,
        relations=_MEDIATORS,
        basis="PML22",
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
    ),
    _c(
        "record_oral_agreement",
        "记录口头协议",
        "record an oral agreement",
        ("negotiating",),
        "agreement_effective",
        relations=_MEDIATORS,
        basis="PML28, 30; R2002 34",
    ),
    _c(
        "record_follow_up",
        "回访记录",
        "record a follow-up visit",
        ("agreement_effective", "following_up"),
        "following_up",
        relations=_MEDIATORS,
        basis="PML31",
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
    ),
    _c(
        "propose_termination",
        "提出终止调解",
        "propose termination",
        _UNTIL_DRAFTED,
        None,
        relations=(L.LEAD_MEDIATOR,),
        basis="PML26",
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
    ),
    _c(
        "withdraw",
        "撤回",
        "withdraw",
        _BEFORE_EFFECT,
        "withdrawn",
        relations=_PARTIES,
        basis="PML23(2)",
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
    ),
    _c(
        "transfer",
        "移交",
        "transfer",
        _BEFORE_EFFECT,
        "transferred",
        roles=(R.DIRECTOR,),
        basis="PML25, 34",
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
    ),
)

WORKFLOW = Workflow(version="mediation-workflow/1", states=STATES, guards=GUARDS, commands=COMMANDS)


def build_machine(workflow: Workflow, guard: Callable[[str], Callable[[Any], bool]]) -> Any:
    """Derive the shared ``transitions`` machine from the declaration.

    ``guard(name)`` returns the condition callable for a guard name.  The machine has no model:
    callers trigger ``machine.events[name].trigger(probe, ...)`` on a short-lived probe object, so
    no case is ever registered with it and its size does not grow with the number of cases.
    """
    from transitions import Machine

    rows: list[dict[str, Any]] = []
    for c in workflow.commands:
        conditions = [guard(g) for g in c.guards]
        for src in c.sources:
            if c.completes_when is not None:
                rows.append(
                    dict(
                        trigger=c.name,
                        source=src,
                        dest=c.target,
                        conditions=[*conditions, guard(c.completes_when)],
                    )
                )
                rows.append(dict(trigger=c.name, source=src, dest=None, conditions=conditions))
            else:
                rows.append(
                    dict(
                        trigger=c.name,
                        source=src,
                        dest=None if c.target is None else c.target,
                        conditions=conditions,
                    )
                )
    return Machine(
        model=None,
        states=[NEW, *(s.name for s in workflow.states)],
        initial=NEW,
        transitions=rows,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )


def render_markdown(workflow: Workflow = WORKFLOW) -> str:
    """``docs/workflow.md``: the state table, the command table and a mermaid diagram."""
    out = [
        "# The workflow",
        "",
        "<!-- Generated from mediation._workflow.WORKFLOW by `python -m mediation.docs`; "
        "a test keeps it in sync. Do not edit by hand. -->",
        "",
        f"Workflow version: `{workflow.version}`.",
        "",
        "## States",
        "",
        "| stage | state | 中文 | English | terminal |",
        "|---|---|---|---|---|",
    ]
    for s in workflow.states:
        stage = f"{s.stage.zh} {s.stage.en}" if s.stage else "any 任一"
        out.append(f"| {stage} | `{s.name}` | {s.zh} | {s.en} | {'yes' if s.terminal else ''} |")
    out += [
        "",
        "## Commands",
        "",
        "`—` is a case that does not exist yet. A target of *(same)* records the command without "
        "changing state.",
        "",
        "| command | 中文 | from | to | who (relations; roles) | guards | basis |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in workflow.commands:
        src = ", ".join("—" if s == NEW else f"`{s}`" for s in c.sources)
        tgt = f"`{c.target}`" if c.target else "*(same)*"
        if c.completes_when:
            tgt += f" once {c.completes_when} holds"
        who = ", ".join(r.value for r in c.relations)
        if c.roles:
            who += ("; " if who else "") + ", ".join(r.value for r in c.roles)
        guards = ", ".join(c.guards) or ""
        out.append(f"| `{c.name}` | {c.zh} | {src} | {tgt} | {who} | {guards} | {c.basis} |")
    out += ["", "## Guards", "", "| guard | 中文 | English | basis |", "|---|---|---|---|"]
    for g in workflow.guards:
        out.append(f"| `{g.name}` | {g.zh} | {g.en} | {g.basis} |")
    out += [
        "",
        "## From each state",
        "",
        "The commands the declaration allows from each state (who may issue them, and whether "
        "their guards hold, is decided per command).",
        "",
        "| state | commands |",
        "|---|---|",
    ]
    for name in (NEW, *(s.name for s in workflow.states)):
        allowed = ", ".join(f"`{c.name}`" for c in workflow.commands_from(name)) or "none"
        out.append(f"| {'—' if name == NEW else f'`{name}`'} | {allowed} |")
    out += [
        "",
        "## Diagram",
        "",
        "Commands that keep the state (*(same)* above) are not drawn; `sign` reaches its target "
        "only once its completion guard holds.",
        "",
        "```mermaid",
        "stateDiagram-v2",
    ]
    out += ["    " + line for line in mermaid_lines(workflow)]
    out += ["```", ""]
    return "\n".join(out)


def mermaid_lines(workflow: Workflow = WORKFLOW) -> list[str]:
    lines: list[str] = []
    for s in workflow.states:
        lines.append(f"{s.name}: {s.name} {s.zh}")
    edges: dict[tuple[str, str], list[str]] = {}
    for c in workflow.commands:
        if c.target is None:
            continue
        for src in c.sources:
            edges.setdefault(("[*]" if src == NEW else src, c.target), []).append(c.name)
    for (src, dst), names in edges.items():
        lines.append(f"{src} --> {dst}: {' / '.join(names)}")
    for s in workflow.states:
        if s.terminal:
            lines.append(f"{s.name} --> [*]")
    return lines
