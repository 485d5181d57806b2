"""A case's history as the auditor reads it: events grouped by stage, state changes, and a text
rendering of the timeline (``mediation timeline``).

- :func:`event_stages` places every event in one of the six stages; :func:`path_of` lists the state
  changes of a history (what :func:`~mediation._diagrams.state_svg` highlights).
- :func:`timeline_lines` renders a :class:`~mediation.CaseView` as text, grouped by the stages.
- :func:`summarize` and :func:`state_label` are shared with the HTML page (:mod:`mediation._html`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._audit import Verdict
from ._errors import MediationError
from ._spec import registered, workflow_of
from ._validators import json_schema_of
from ._views import CaseView, TimelineEntry
from ._vocab import Stage
from ._workflow import FIELD_ZH, NEW, WORD_ZH, WORKFLOW, StateSpec, Workflow

__all__ = [
    "COMMITTEE_TZ",
    "ROLE_ZH",
    "STANDING_ZH",
    "event_stages",
    "local_time",
    "path_of",
    "state_label",
    "state_spec",
    "summarize",
    "timeline_lines",
    "zone_label",
]

#: the committee's time zone: times are shown in it unless another is asked for (``--tz``)
COMMITTEE_TZ = "Asia/Shanghai"

#: the viewer's standing in a case (:attr:`CaseView.standing`), in Chinese
STANDING_ZH = {
    "auditor": "审计员",
    "supervisor": "监督（司法所/街道）",
    "director": "调委会主任",
    "committee": "本调委会调解员",
    "mediator": "本案调解员",
    "party": "当事人",
    "invitee": "受邀人员",
}


#: the roles an event is recorded as acting in (:attr:`TimelineEntry.acted_as`), in Chinese
ROLE_ZH = {
    "applicant": "申请人",
    "respondent": "被申请人",
    "agent": "代理人",
    "lead_mediator": "主调解员",
    "co_mediator": "协助调解员",
    "invitee": "受邀人员",
    "mediator": "调解员",
    "director": "调委会主任",
    "grid_worker": "网格员",
    "supervisor": "监督",
    "auditor": "审计",
    "system": "平台（系统）",
}

_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?Z")


def local_time(at: str, tz: dt.tzinfo | None) -> str:
    """A UTC time as recorded (``2026-03-02T09:00:00Z``) shown to the minute in ``tz``
    (``2026-03-02 17:00``); None keeps UTC.  Anything else is returned unchanged."""
    if not _UTC_TIME.fullmatch(at):
        return at
    if tz is None:
        return at[:16].replace("T", " ")
    try:
        when = dt.datetime.fromisoformat(at[:-1] + "+00:00")
    except ValueError:
        return at
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def zone_label(tz: dt.tzinfo, at: dt.datetime | str | None = None) -> str:
    """The zone's name and its offset at ``at`` (a UTC time as recorded, or now), ``Asia/Shanghai
    (UTC+08:00)``."""
    when: dt.datetime | None = None
    if isinstance(at, str) and _UTC_TIME.fullmatch(at):
        try:
            when = dt.datetime.fromisoformat(at[:-1] + "+00:00")
        except ValueError:
            when = None
    elif isinstance(at, dt.datetime):
        when = at
    when = when or dt.datetime.now(dt.timezone.utc)
    offset = when.astimezone(tz).strftime("%z")
    name = getattr(tz, "key", None) or str(tz)
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"


def workflow_of_view(view: CaseView) -> Workflow:
    """The workflow version the viewed case lives on (the current one if this process does not
    know it: the drawing is then only as good as the current declaration)."""
    try:
        return workflow_of(view.workflow) if view.workflow else WORKFLOW
    except MediationError:
        return WORKFLOW


def state_spec(name: str, workflow: Workflow = WORKFLOW) -> StateSpec | None:
    """The declaration of state ``name``; None for a name the workflow does not declare."""
    try:
        return workflow.state(name)
    except KeyError:
        return None


def event_stages(entries: Sequence[TimelineEntry], workflow: Workflow = WORKFLOW) -> list[Stage]:
    """The stage each event belongs to: the stage of the state it led to; an outcome that belongs
    to no stage (failed, withdrawn, transferred) stays in the stage the case had reached."""
    out: list[Stage] = []
    stage = Stage.APPLY
    for e in entries:
        spec = state_spec(e.state, workflow)
        if spec is not None and spec.stage is not None:
            stage = spec.stage
        out.append(stage)
    return out


def path_of(entries: Sequence[TimelineEntry]) -> list[tuple[str, str]]:
    """The state changes of a history, as ``(from, to)`` pairs starting from ``new``."""
    out = []
    state = NEW
    for e in entries:
        if e.state != state:
            out.append((state, e.state))
            state = e.state
    return out


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


def _label(key: str, zh: bool) -> str:
    """A payload member's name: its Chinese label from the declaration (``FIELD_ZH``) in zh."""
    return FIELD_ZH.get(key, key) if zh else key


def _enum_words(schema: Any) -> list[str]:
    """The words a field's JSON Schema allows (``enum``, also inside ``items`` or ``anyOf``)."""
    if not isinstance(schema, Mapping):
        return []
    words = [w for w in schema.get("enum", ()) if isinstance(w, str)]
    for key in ("items", "anyOf", "oneOf"):
        inner = schema.get(key)
        for part in inner if isinstance(inner, list) else [inner]:
            words += _enum_words(part)
    return words


@functools.cache
def vocabulary_fields() -> Mapping[str, frozenset[str]]:
    """Payload member name -> the words it takes from a closed vocabulary, over every payload
    class (and the values they nest) of every registered version, read from the validators'
    schemas: the members whose value ``--lang zh`` shows by its label (``WORD_ZH``)."""
    out: dict[str, set[str]] = {}
    seen: set[type] = set()

    def walk(cls: type) -> None:
        if cls in seen or not attrs.has(cls):
            return
        seen.add(cls)
        for field in attrs.fields(cls):
            try:
                words = _enum_words(json_schema_of(field.validator))
            except LookupError:
                words = []
            if words:
                out.setdefault(field.name, set()).update(words)
            for kind in typing.get_args(field.type) or (field.type,):
                if isinstance(kind, type):
                    walk(kind)

    for workflow in registered():
        for spec in workflow.commands:
            walk(spec.payload)
    from ._commands import AgreementContent, DocRef, Party, Scope, Tie

    for cls in (AgreementContent, DocRef, Party, Scope, Tie):
        walk(cls)
    return {name: frozenset(words) for name, words in out.items()}


def _word(key: str, value: str, zh: bool) -> str:
    """A vocabulary word of member ``key`` by its Chinese label in zh; anything else as it is."""
    if zh and value in WORD_ZH and value in vocabulary_fields().get(key, ()):
        return WORD_ZH[value]
    return value


def _short(
    value: Any, limit: int = 40, tz: dt.tzinfo | None = None, zh: bool = False, key: str = ""
) -> str:
    if isinstance(value, Mapping):
        if "name" in value:
            return str(value["name"])
        if "title" in value and "sha256" in value:
            return f"«{value['title'] or str(value['sha256'])[:12]}»"
        inner = "; ".join(
            f"{_label(k, zh)}={_short(v, tz=tz, zh=zh, key=k)}"
            for k, v in value.items()
            if _meaningful(v)
        )
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return ("、" if zh else ", ").join(_short(v, tz=tz, zh=zh, key=key) for v in value)
    if value is True:
        return "是" if zh else "yes"
    if tz is not None and isinstance(value, str) and _UTC_TIME.fullmatch(value):
        return local_time(value, tz)
    text = _word(key, value, zh) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _meaningful(value: Any) -> bool:
    return value not in ("", None, False, (), [], {}) and value != "default"


def summarize(
    payload: Mapping[str, Any] | None,
    limit: int = 110,
    tz: dt.tzinfo | None = None,
    lang: str = "en",
) -> str:
    """A one-line summary of a (redacted) payload: its meaningful fields, shortened; with ``tz``,
    the UTC times among them shown in that zone; with ``lang="zh"``, the members named by their
    Chinese labels (:data:`~mediation._workflow.FIELD_ZH`) and a redaction said in Chinese."""
    if payload is None:
        return ""
    zh = lang == "zh"
    if set(payload) == {"redacted"}:
        said = str(payload["redacted"])
        if zh and " / " in said:  # "confidential to the case's mediators / 仅限本案调解员"
            said = said.rsplit(" / ", 1)[1]
        return f"[{said}]"
    text = "; ".join(
        f"{_label(k, zh)}={_short(v, tz=tz, zh=zh, key=k)}"
        for k, v in payload.items()
        if _meaningful(v)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_label(name: str, lang: str, workflow: Workflow = WORKFLOW) -> str:
    """A state's name with its short Chinese name, in the order ``lang`` reads first."""
    spec = state_spec(name, workflow)
    if spec is None:
        return name
    zh = spec.zh.split("（")[0]
    return f"{zh} {name}" if lang == "zh" else f"{name} ({zh})"


def _erased(subjects: Sequence[str], zh: bool) -> list[str]:
    """Whose personal data a view says was erased (``*``: the whole case's)."""
    case = "整个案件" if zh else "the whole case"
    return [case if s == "*" else s for s in subjects]


def timeline_lines(
    view: CaseView,
    verdict: Verdict | None = None,
    lang: str = "en",
    *,
    subtype: str = "",
    tz: dt.tzinfo | None = None,
    zone: str | None = None,
) -> list[str]:
    """The case's history as text lines, grouped by the six stages, as ``view`` may see it.

    Times are UTC as recorded, or shown in ``tz`` (then named ``zone``, e.g. ``Asia/Shanghai
    (UTC+08:00)``, in a header line).  With ``lang="zh"`` the states, stages, commands and roles
    are the declaration's Chinese labels.  The lines are not escaped: print them through
    :func:`mediation._text.printable`."""
    zh = lang == "zh"
    workflow = workflow_of_view(view)
    st = state_spec(view.state, workflow)
    out = []
    category = view.category + (f"/{subtype}" if subtype else "")
    if zh:
        out.append(f"案件 {view.case_id}（{category}），层级 {view.level}")
        out.append(
            f"当前状态：{st.zh if st else view.state}（{view.state}），阶段：{view.stage_zh}"
        )
        out.append(
            f"查看身份：{STANDING_ZH.get(view.standing, view.standing)}（{view.standing}），"
            "内容按该身份的权限脱敏"
        )
        for member, rule in view.masks.items():
            out.append(f"遮盖规则 {_label(member, True)}：{rule.split(' / ', 1)[-1]}")
        if view.erased:
            out.append(f"已删除个人信息：{'、'.join(_erased(view.erased, True))}")
        if tz is not None:
            out.append(f"时间：{zone or tz}")
    else:
        out.append(f"case {view.case_id} ({category}), level {view.level}")
        out.append(f"state: {view.state} ({st.en if st else ''}), stage: {view.stage}")
        out.append(f"viewed as: {view.standing} (redacted to that standing's rights)")
        for member, rule in view.masks.items():
            out.append(f"mask {member}: {rule.split(' / ', 1)[0]}")
        if view.erased:
            out.append(f"personal data erased: {', '.join(_erased(view.erased, False))}")
        if tz is not None:
            out.append(f"times: {zone or tz}")
    stages = event_stages(view.timeline, workflow)
    current: Stage | None = None
    state = NEW
    for entry, stage in zip(view.timeline, stages, strict=True):
        if stage is not current:
            current = stage
            out.append("")
            out.append(f"【{stage.zh}】 {stage.en}" if zh else f"[{stage.en}] {stage.zh}")
        label = entry.label_zh if zh else entry.type
        who = entry.actor or ("（已隐去）" if zh else "(hidden)")
        role = entry.acted_as or "?"
        if zh:
            role = ROLE_ZH.get(role, role)
        moved = ""
        if entry.state != state:
            spec = state_spec(entry.state, workflow)
            shown = f"（{spec.zh.split('（')[0]}）" if zh and spec is not None else ""
            moved = f"→ {entry.state}{shown}"
        state = entry.state
        out.append(
            f"  {entry.seq:>3}  {local_time(entry.at, tz)}  {_pad(label, 20)} "
            f"{_pad(who, 10)} {_pad('(' + role + ')', 15)} "
            f"{entry.hash[:12]}  {moved}".rstrip()
        )
        detail = summarize(entry.payload, tz=tz, lang=lang)
        if detail:
            out.append(f"{'':8}{detail}")
    if verdict is not None:
        out.append("")
        out.append(verdict.describe(lang))
    return out
