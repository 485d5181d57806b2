"""The HTML report page of one case (``mediation report``), built from templates shipped with the
package: ``templates/report.html`` (the page) and ``templates/report_parts.html`` (its repeated
parts), read with :mod:`importlib.resources` and filled with :class:`string.Template`.

Every value filled in is HTML-escaped, except a :class:`Markup`: a part already filled, or the
diagram of :func:`~mediation._diagrams.state_svg` (which escapes its own text).  The page is
self-contained: no scripts, no network, no external assets; the CSS is in the template and the
SVG inline.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import importlib.resources
import re
import string
import zoneinfo
from collections.abc import Iterable, Mapping

from ._audit import Verdict
from ._diagrams import state_svg
from ._text import printable
from ._timeline import (
    COMMITTEE_TZ,
    ROLE_ZH,
    STANDING_ZH,
    event_stages,
    local_time,
    path_of,
    state_label,
    state_spec,
    summarize,
    workflow_of_view,
    zone_label,
)
from ._views import CaseView
from ._vocab import Stage
from ._workflow import NEW

__all__ = ["Markup", "escape", "fill", "render_html", "template", "template_text"]

#: the resources, in the package's ``templates`` folder
PAGE, PARTS = "report.html", "report_parts.html"


class Markup(str):
    """Text that is HTML already: :func:`fill` inserts it unescaped."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """``value`` as HTML: a :class:`Markup` as it is, anything else escaped (quotes too), its
    control characters, bidi controls and line breaks shown escaped (:func:`printable`)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(printable(str(value)), quote=True))


def _join(items: Iterable[object], sep: str = "\n") -> Markup:
    return Markup(html.escape(sep).join(escape(item) for item in items))


def template_text(name: str) -> str:
    """The text of the template resource ``name`` (``templates/<name>`` in the package)."""
    resource = importlib.resources.files(__package__) / "templates" / name
    return resource.read_text(encoding="utf-8")


@functools.cache
def _parts() -> Mapping[str, string.Template]:
    text = template_text(PARTS)
    pieces = re.split(r"^<!-- part: (\w+) -->\n", text, flags=re.MULTILINE)
    # pieces: [header, name, body, name, body, ...]
    return {
        name: string.Template(body.rstrip("\n"))
        for name, body in zip(pieces[1::2], pieces[2::2], strict=True)
    }


@functools.cache
def _page() -> string.Template:
    return string.Template(template_text(PAGE))


def template(name: str) -> string.Template:
    """A template of the report: ``"page"``, or one of the parts of ``report_parts.html``."""
    return _page() if name == "page" else _parts()[name]


def fill(name: str, /, **values: object) -> Markup:
    """The template ``name`` with every ``$value`` substituted, escaped unless :class:`Markup`;
    a placeholder without a value is an error."""
    return Markup(template(name).substitute({k: escape(v) for k, v in values.items()}))


def _event_columns(zone: str) -> tuple[tuple[str, str], ...]:
    zone = zone.replace(" (", ", ").rstrip(")")  # Asia/Shanghai, UTC+08:00
    return (
        ("#", "#"), (f"时间（{zone}）", f"time ({zone})"), ("操作", "action"), ("操作人", "actor"),
        ("身份", "acting as"), ("结果状态", "resulting state"), ("事件哈希", "event hash"),
    )  # fmt: skip


_PEOPLE_COLUMNS = (
    ("操作人", "actor"),
    ("身份", "acting as"),
    ("事件数", "events"),
    ("事件序号", "seqs"),
)


def _t(lang: str, zh: str, en: str) -> Markup:
    """Primary text in ``lang``, the other language small beside it."""
    first, second = (zh, en) if lang == "zh" else (en, zh)
    return fill("bilingual", first=first, second=second)


def _columns(columns: Iterable[tuple[str, str]], zh: bool) -> Markup:
    return _join(fill("column", text=c[0] if zh else c[1]) for c in columns)


def _stages(view: CaseView, lang: str, tz: dt.tzinfo, zone: str) -> Markup:
    """The events grouped by the six stages, a section for each (an empty one when not reached);
    times in ``tz`` (named ``zone`` in the column's head), the recorded UTC time as a tooltip."""
    zh = lang == "zh"
    workflow = workflow_of_view(view)
    stages = event_stages(view.timeline, workflow)
    sections = []
    state = NEW
    for i, stage in enumerate(Stage, start=1):
        entries = [e for e, s in zip(view.timeline, stages, strict=True) if s is stage]
        head = fill(
            "stage_head",
            number=i,
            name=fill("bilingual", first=stage.zh, second=stage.en.replace("_", " ")),
            count=len(entries),
            unit="个事件" if zh else "event(s)",
        )
        if not entries:
            text = "本案未经过此阶段" if zh else "not reached"
            sections.append(fill("stage_empty", head=head, text=text))
            continue
        rows = []
        for e in entries:
            changed = e.state != state
            state = e.state
            command, command_other = (
                (e.label_zh, e.type) if zh else (e.type.replace("_", " "), e.label_zh)
            )
            detail = summarize(e.payload, 160, tz=tz, lang=lang)
            role = e.acted_as or "?"
            rows.append(
                fill(
                    "event",
                    seq=e.seq,
                    at=local_time(e.at, tz),
                    at_utc=e.at,
                    command=command,
                    command_other=command_other,
                    detail=fill("detail", text=detail) if detail else Markup(),
                    actor=e.actor or ("（已隐去）" if zh else "(hidden)"),
                    role=(
                        f"{ROLE_ZH.get(role, role)} · {role}"
                        if zh
                        else f"{role} · {ROLE_ZH.get(role, role)}"
                    ),
                    state_class="state changed" if changed else "state",
                    state=state_label(e.state, lang, workflow) if changed else "—",
                    hash=e.hash,
                    hash_prefix=e.hash[:12],
                )
            )
        sections.append(
            fill("stage", head=head, columns=_columns(_event_columns(zone), zh), rows=_join(rows))
        )
    return _join(sections)


def _people(view: CaseView) -> Markup:
    """Who acted under which role: one row per (actor, role), with their events."""
    people: dict[tuple[str, str], list[int]] = {}
    for e in view.timeline:
        people.setdefault((e.actor or "—", e.acted_as or "?"), []).append(e.seq)
    return _join(
        fill(
            "person",
            actor=actor,
            role_zh=ROLE_ZH.get(role, role),
            role=role,
            count=len(seqs),
            seqs=", ".join(map(str, seqs)),
        )
        for (actor, role), seqs in people.items()
    )


def render_html(
    view: CaseView,
    verdict: Verdict,
    *,
    lang: str = "zh",
    source: str = "",
    checkpoint_note: str | None = None,
    generated_by: str = "mediation",
    subtype: str = "",
    tz: dt.tzinfo | None = None,
) -> str:
    """The self-contained HTML report of one case: its facts, the verdict, the state diagram with
    the path taken, the events grouped by stage and who acted under which role.

    Times are shown in ``tz`` (by default the committee's, Asia/Shanghai), the zone named in the
    page's facts and in the events' column head; each event's recorded UTC time is its tooltip."""
    zh = lang == "zh"
    tz = tz if tz is not None else zoneinfo.ZoneInfo(COMMITTEE_TZ)
    zone = zone_label(tz, view.timeline[0].at if view.timeline else None)
    counts: dict[str, int] = {}
    for e in view.timeline:
        counts[e.state] = counts.get(e.state, 0) + 1
    workflow = workflow_of_view(view)
    st = state_spec(view.state, workflow)
    meta: list[object] = [
        fill("labelled_code", label="案件编号" if zh else "Case", code=view.case_id),
        view.workflow or workflow.version,
    ]
    if source:
        meta.append(fill("labelled_code", label="来源" if zh else "source", code=source))
    meta.append(("时间：" if zh else "times: ") + zone)
    notes = [
        fill(
            "meta",
            text=fill(
                "chain_head",
                label="链头" if zh else "head",
                seq=verdict.head_seq,
                hash=verdict.head_hash,
            ),
        )
    ]
    if checkpoint_note:
        notes.append(fill("meta", text=checkpoint_note))
    badge_zh, badge_en = ("验证通过", "VALID") if verdict.ok else ("验证失败", "INVALID")
    legend = (
        "橙色：本案经过的状态与转移（编号为先后顺序）；粗框：当前状态；双框：终局状态；"
        "角标：该状态下记录的事件数；灰色：流程声明中的其他转移。"
        if zh
        else "Orange: the states and transitions this case went through (numbered in order); "
        "thick border: the current state; double border: terminal states; badge: events "
        "recorded in that state; grey: the other transitions the workflow declares."
    )
    footer = (
        f"由 {generated_by} 生成；本页面自包含（无脚本、无外部资源）。个人信息已按查看身份的权限脱敏。"
        "核验：mediation verify。"
        if zh
        else f"Generated by {generated_by}; this page is self-contained (no scripts, no external "
        "resources). Personal data is redacted to the viewer's rights. Verify: mediation verify."
    )
    page = fill(
        "page",
        lang="zh-CN" if zh else "en",
        title=("调解案件审计报告 " if zh else "Mediation case report ") + view.case_id,
        heading=_t(lang, "人民调解案件审计报告", "Mediation case audit report"),
        meta=_join(meta, " · "),
        category=view.category + (f" / {subtype}" if subtype else ""),
        state_name=st.zh if st else view.state,
        state=view.state,
        stage_zh=view.stage_zh,
        stage=view.stage.replace("_", " "),
        level=view.level,
        standing_name=STANDING_ZH.get(view.standing, view.standing),
        standing=view.standing,
        masks_heading=_t(lang, "个人信息的遮盖与删除", "Personal data masked and erased"),
        # each mask the view applied, with its rule; then whose personal data was erased
        masks=_join(
            [
                *(f"{member}: {rule}" for member, rule in view.masks.items()),
                *(
                    f"已删除 erased: {'整个案件 the whole case' if who == '*' else who}"
                    for who in view.erased
                ),
            ]
            or ["—"],
            "; ",
        ),
        verdict_class="ok" if verdict.ok else "bad",
        badge=badge_zh if zh else badge_en,
        verdict=verdict.describe(lang),
        verdict_other=verdict.describe("en" if zh else "zh"),
        verdict_notes=_join(notes),
        diagram_heading=_t(lang, "状态图与本案路径", "State diagram and the path this case took"),
        # the SVG renderer escapes every text it draws
        diagram=Markup(state_svg(path_of(view.timeline), view.state, counts, lang, workflow)),
        legend=legend,
        stages_heading=_t(lang, "六个阶段的办理记录", "The history, stage by stage"),
        stages=_stages(view, lang, tz, zone),
        people_heading=_t(lang, "参与人员及其身份", "Who acted, under which role"),
        people_columns=_columns(_PEOPLE_COLUMNS, zh),
        people=_people(view),
        footer=footer,
    )
    return str(page)
