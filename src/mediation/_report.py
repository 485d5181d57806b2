"""What the auditor reads: verification results, the timeline by stage, diagrams, an HTML report.

- :func:`audit` verifies cases (chain, every transition, permission and guard; ``strict`` also
  re-validates every payload against its command class and checks canonical form) and, given a
  :class:`~mediation._checkpoints.CheckpointAuditor`, checks them against signed checkpoints;
  :func:`audit_verified` does the same for cases verified elsewhere (``mediation verify --jobs``);
  :class:`AuditResult` carries one verdict per case and the exit code the CLI returns.
- :func:`timeline_lines` renders a :class:`~mediation.CaseView` as text, grouped by the six stages.
- :func:`mermaid` and :func:`dot` render the workflow declaration; :func:`state_svg` lays the
  declaration out as an inline SVG with the path a case took highlighted.
- :func:`render_html` builds the self-contained report page (no scripts, no network, no external
  assets: CSS and SVG are inline).
"""

from __future__ import annotations

import enum
import html
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ._audit import Verdict, verify
from ._authz import Directory
from ._checkpoints import CheckpointAuditor, StoreFault
from ._diagrams import mermaid_lines
from ._events import StoredEvent
from ._views import CaseView, TimelineEntry
from ._workflow import NEW, WORKFLOW, Stage, Workflow

__all__ = [
    "AuditResult",
    "ExitCode",
    "VerifiedCase",
    "audit",
    "audit_case",
    "audit_verified",
    "dot",
    "event_stages",
    "mermaid",
    "render_html",
    "state_svg",
    "timeline_lines",
]


class ExitCode(enum.IntEnum):
    """The exit codes of the ``mediation`` command (docs/auditing.md lists them)."""

    OK = 0  #: every case verified (and every checkpoint, with --key)
    INTEGRITY = (
        1  #: bytes altered, events missing/inserted/reordered, truncated, checkpoint mismatch
    )
    USAGE = 2  #: bad command-line arguments
    ILLEGAL = 3  #: intact bytes, but a transition, permission or event type the workflow refuses
    IO = 4  #: a file or database could not be opened, read or written
    INPUT = 5  #: the input is not a well-formed export, key or checkpoint file; import refused


# -- auditing --------------------------------------------------------------------------------------


@attrs.frozen
class AuditResult:
    """The verdicts of a verification run, one per case, and the checkpoint findings."""

    verdicts: tuple[Verdict, ...]
    #: case id -> the file line of its fault (cases read from an export)
    lines: Mapping[str, int] = attrs.field(factory=dict)
    store_faults: tuple[StoreFault, ...] = ()
    key_id: str | None = None
    checkpoints_checked: int = 0
    cases_attested: int = 0

    @property
    def ok(self) -> bool:
        return not self.store_faults and all(v.ok for v in self.verdicts)

    @property
    def exit_code(self) -> ExitCode:
        faults = [v.fault for v in self.verdicts if v.fault is not None]
        if self.store_faults or any(f.kind.integrity for f in faults):
            return ExitCode.INTEGRITY
        if faults:
            return ExitCode.ILLEGAL
        return ExitCode.OK

    def describe(self, verdict: Verdict, lang: str = "en") -> str:
        text = verdict.describe(lang)
        line = self.lines.get(verdict.case_id)
        if verdict.fault is not None and line is not None:
            text += f"（第 {line} 行）" if lang == "zh" else f" [line {line}]"
        return text

    def text_lines(self, lang: str = "en") -> list[str]:
        return [self.describe(v, lang) for v in self.verdicts] + self.summary_lines(lang)

    def summary_lines(self, lang: str = "en") -> list[str]:
        """What :meth:`text_lines` says after the verdicts: the checkpoint findings and the counts."""
        out = []
        for f in self.store_faults:
            out.append(
                f"检查点：验证失败，{f.message_zh}"
                if lang == "zh"
                else f"checkpoints: INVALID: {f.message}"
            )
        if self.key_id is not None:
            if lang == "zh":
                out.append(
                    f"检查点：用密钥 {self.key_id[:16]} 核验了 {self.checkpoints_checked} 个签名检查点，"
                    f"覆盖 {self.cases_attested} 个案件"
                )
            else:
                out.append(
                    f"checkpoints: {self.checkpoints_checked} signed checkpoint(s) checked under key "
                    f"{self.key_id[:16]}, covering {self.cases_attested} case(s)"
                )
        bad = sum(not v.ok for v in self.verdicts)
        n = len(self.verdicts)
        if lang == "zh":
            out.append(
                f"共 {n} 个案件：{n - bad} 个通过，{bad} 个未通过"
                + ("" if not self.store_faults else "；检查点未通过")
                + f"（退出码 {int(self.exit_code)}）"
            )
        else:
            out.append(
                f"{n} case(s): {n - bad} valid, {bad} invalid"
                + ("" if not self.store_faults else "; checkpoints invalid")
                + f" (exit {int(self.exit_code)})"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        cases = []
        for v in self.verdicts:
            item = v.to_json()
            if v.case_id in self.lines and v.fault is not None:
                item["line"] = self.lines[v.case_id]
            cases.append(item)
        out: dict[str, Any] = {
            "ok": self.ok,
            "exit": int(self.exit_code),
            "cases": cases,
            "checkpoints": None,
        }
        if self.key_id is not None:
            out["checkpoints"] = {
                "key": self.key_id,
                "checked": self.checkpoints_checked,
                "cases_attested": self.cases_attested,
                "faults": [{"line": f.line, "message": f.message} for f in self.store_faults],
            }
        return out


#: one case to audit: id, its records as read, and (for a file) seq position -> line number
AuditInput = tuple[str, Sequence[StoredEvent], Callable[[int], int | None] | None]

#: one case already verified: id, its verdict (before any checkpoint check), the stored hash at a
#: seq (what the checkpoints compare; only asked for seqs the verdict accepted), and the seq -> line
#: number map of a file
VerifiedCase = tuple[str, Verdict, Callable[[int], str | None], Callable[[int], int | None] | None]


def _hashes(records: Sequence[StoredEvent]) -> Callable[[int], str | None]:
    return lambda seq: records[seq - 1].hash


def _checked(
    case_id: str,
    verdict: Verdict,
    hashes: Callable[[int], str | None],
    auditor: CheckpointAuditor,
) -> Verdict:
    """``verdict`` with the first checkpoint fault of the case, if that comes first."""
    found = auditor.check_case(case_id, hashes, verdict.events)
    if found is not None and (verdict.fault is None or found.seq < verdict.fault.seq):
        verdict = attrs.evolve(verdict, fault=found)
    return verdict


def audit_case(
    case_id: str,
    records: Sequence[StoredEvent],
    auditor: CheckpointAuditor | None = None,
    *,
    strict: bool = True,
    directory: Directory | None = None,
) -> Verdict:
    """Verify one case (strictly by default) and, with ``auditor``, against its checkpoints."""
    verdict = verify(records, case_id, strict=strict, directory=directory)
    if auditor is None:
        return verdict
    return _checked(case_id, verdict, _hashes(records), auditor)


def audit(
    cases: Iterable[AuditInput],
    *,
    auditor: CheckpointAuditor | None = None,
    only: str | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
    strict: bool = True,
    directory: Directory | None = None,
) -> AuditResult:
    """Verify every case of ``cases`` (streamed; nothing but the verdicts is kept).

    ``strict`` (the default) is :func:`~mediation.verify`'s: it adds payload re-validation and the
    canonical-form check to the chain, transition, permission and guard checks.  With the host's
    ``directory``, every recorded role claim (and G3) is checked against it too.
    """
    verified = (
        (
            case_id,
            verify(records, case_id, strict=strict, directory=directory),
            _hashes(records),
            line_of,
        )
        for case_id, records, line_of in cases
    )
    return audit_verified(verified, auditor=auditor, only=only, on_verdict=on_verdict)


def audit_verified(
    cases: Iterable[VerifiedCase],
    *,
    auditor: CheckpointAuditor | None = None,
    only: str | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> AuditResult:
    """:func:`audit` for cases verified elsewhere (worker processes), in the order given: the
    checkpoint checks, the attested cases never seen, and the result are the same as
    :func:`audit`'s for the same verdicts."""
    verdicts: list[Verdict] = []
    lines: dict[str, int] = {}
    for case_id, verdict, hashes, line_of in cases:
        if auditor is not None:
            verdict = _checked(case_id, verdict, hashes, auditor)
        if verdict.case is not None:
            verdict = verdict.without_case()
        if verdict.fault is not None and line_of is not None:
            line = line_of(verdict.fault.seq)
            if line is not None:
                lines[case_id] = line
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)
    if auditor is not None:
        for case_id, fault in auditor.missing(only):
            verdict = Verdict(case_id, 0, 0, "", "?", fault)
            verdicts.append(verdict)
            if on_verdict is not None:
                on_verdict(verdict)
    return AuditResult(
        tuple(verdicts),
        lines,
        tuple(auditor.store_faults) if auditor else (),
        auditor.key_id if auditor else None,
        auditor.checked if auditor else 0,
        auditor.attested_cases if auditor else 0,
    )


# -- the timeline ----------------------------------------------------------------------------------


def event_stages(entries: Sequence[TimelineEntry]) -> list[Stage]:
    """The stage each event belongs to: the stage of the state it led to; an outcome that belongs
    to no stage (failed, withdrawn, transferred) stays in the stage the case had reached."""
    out: list[Stage] = []
    stage = Stage.APPLY
    for e in entries:
        spec = _state_spec(e.state)
        if spec is not None and spec.stage is not None:
            stage = spec.stage
        out.append(stage)
    return out


def _state_spec(name: str) -> Any:
    try:
        return WORKFLOW.state(name)
    except KeyError:
        return None


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, Mapping):
        if "name" in value:
            return str(value["name"])
        if "title" in value and "sha256" in value:
            return f"«{value['title'] or value['sha256'][:12]}»"
        inner = "; ".join(f"{k}={_short(v)}" for k, v in value.items() if _meaningful(v))
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value)
    if value is True:
        return "yes"
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _meaningful(value: Any) -> bool:
    return value not in ("", None, False, (), [], {}) and value != "default"


def summarize(payload: Mapping[str, Any] | None, limit: int = 110) -> str:
    """A one-line summary of a (redacted) payload: its meaningful fields, shortened."""
    if payload is None:
        return ""
    if set(payload) == {"redacted"}:
        return f"[{payload['redacted']}]"
    text = "; ".join(f"{k}={_short(v)}" for k, v in payload.items() if _meaningful(v))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state_label(name: str, lang: str) -> str:
    spec = _state_spec(name)
    if spec is None:
        return name
    return (
        f"{spec.zh.split('（')[0]} {name}" if lang == "zh" else f"{name} ({spec.zh.split('（')[0]})"
    )


_STANDING_ZH = {
    "auditor": "审计员",
    "supervisor": "监督（司法所/街道）",
    "director": "调委会主任",
    "committee": "本调委会调解员",
    "mediator": "本案调解员",
    "party": "当事人",
    "invitee": "受邀人员",
}


def timeline_lines(
    view: CaseView, verdict: Verdict | None = None, lang: str = "en", *, subtype: str = ""
) -> list[str]:
    """The case's history as text lines, grouped by the six stages, as ``view`` may see it."""
    zh = lang == "zh"
    st = _state_spec(view.state)
    out = []
    category = view.category + (f"/{subtype}" if subtype else "")
    if zh:
        out.append(f"案件 {view.case_id}（{category}），层级 {view.level}")
        out.append(
            f"当前状态：{st.zh if st else view.state}（{view.state}），阶段：{view.stage_zh}"
        )
        out.append(
            f"查看身份：{_STANDING_ZH.get(view.standing, view.standing)}（{view.standing}），"
            "内容按该身份的权限脱敏"
        )
    else:
        out.append(f"case {view.case_id} ({category}), level {view.level}")
        out.append(f"state: {view.state} ({st.en if st else ''}), stage: {view.stage}")
        out.append(f"viewed as: {view.standing} (redacted to that standing's rights)")
    stages = event_stages(view.timeline)
    current: Stage | None = None
    state = NEW
    for entry, stage in zip(view.timeline, stages, strict=True):
        if stage is not current:
            current = stage
            out.append("")
            out.append(f"【{stage.zh}】 {stage.en}" if zh else f"[{stage.en}] {stage.zh}")
        label = entry.label_zh if zh else entry.type
        who = entry.actor or ("（已隐去）" if zh else "(hidden)")
        moved = f"→ {entry.state}" if entry.state != state else ""
        state = entry.state
        out.append(
            f"  {entry.seq:>3}  {entry.at[:16].replace('T', ' ')}  {_pad(label, 20)} "
            f"{_pad(who, 10)} {_pad('(' + (entry.acted_as or '?') + ')', 15)} "
            f"{entry.hash[:12]}  {moved}".rstrip()
        )
        detail = summarize(entry.payload)
        if detail:
            out.append(f"{'':8}{detail}")
    if verdict is not None:
        out.append("")
        out.append(verdict.describe(lang))
    return out


# -- diagrams --------------------------------------------------------------------------------------


def _edges(workflow: Workflow) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for c in workflow.commands:
        if c.target is None:
            continue
        for src in c.sources:
            edges.setdefault((src, c.target), []).append(c.name)
    return edges


def mermaid(workflow: Workflow = WORKFLOW) -> str:
    """The state diagram in mermaid (``stateDiagram-v2``)."""
    return (
        "\n".join(["stateDiagram-v2", *("    " + line for line in mermaid_lines(workflow))]) + "\n"
    )


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(workflow: Workflow = WORKFLOW) -> str:
    """The state diagram in Graphviz DOT: one cluster per stage, terminal states double-bordered."""
    out = [
        "digraph mediation {",
        f"  label={_dot_id(workflow.version)}; labelloc=t; rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Noto Sans CJK SC"];',
        '  edge [fontname="Noto Sans CJK SC", fontsize=10];',
        '  "[*]" [shape=point, width=0.15];',
    ]

    def node(s: Any) -> str:
        extra = ", peripheries=2" if s.terminal else ""
        label = _dot_id(s.name)[:-1] + "\\n" + _dot_id(s.zh)[1:]  # a DOT line break: \n
        return f"{_dot_id(s.name)} [label={label}{extra}];"

    for stage in Stage:
        members = [s for s in workflow.states if s.stage is stage]
        out.append(f"  subgraph cluster_{stage.en} {{")
        out.append(f"    label={_dot_id(stage.zh + ' ' + stage.en)}; style=dashed;")
        out += ["    " + node(s) for s in members]
        out.append("  }")
    for s in workflow.states:
        if s.stage is None:
            out.append("  " + node(s))
    for (src, dst), names in _edges(workflow).items():
        start = "[*]" if src == NEW else src
        out.append(f"  {_dot_id(start)} -> {_dot_id(dst)} [label={_dot_id(' / '.join(names))}];")
    out.append("}")
    return "\n".join(out) + "\n"


# the layout of the SVG: (column, row) of each state; columns are grouped into the six stages
_GRID: dict[str, tuple[float, int]] = {
    "applied": (0, 0),
    "registered": (1, 0),
    "not_accepted": (1, 1),
    "refused": (1, 2),
    "meeting_scheduled": (2, 0),
    "negotiating": (3, 0),
    "agreement_drafted": (4, 0),
    "agreement_effective": (5, 0),
    "following_up": (6, 0),
    "resolved": (7, 0),
    "withdrawn": (2, 3),
    "transferred": (3.5, 3),
    "failed": (5, 3),
}
_STAGE_COLUMNS = {
    Stage.APPLY: (0, 0),
    Stage.REGISTER: (1, 1),
    Stage.MEETING: (2, 2),
    Stage.NEGOTIATE: (3, 3),
    Stage.AGREE: (4, 5),
    Stage.FOLLOW_UP: (6, 7),
}
_COL_W, _NODE_W, _NODE_H = 142, 120, 46
_LEFT, _TOP = 46, 92
_ROW_Y = (0, 80, 138, 236)


def _xy(state: str) -> tuple[float, float]:
    col, row = _GRID[state]
    return _LEFT + col * _COL_W + (_COL_W - _NODE_W) / 2, _TOP + _ROW_Y[row]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def state_svg(
    path: Sequence[tuple[str, str]],
    current: str | None,
    counts: Mapping[str, int] | None = None,
    lang: str = "zh",
    workflow: Workflow = WORKFLOW,
) -> str:
    """The workflow as an inline SVG: states in stage columns, every declared transition as a
    faint arrow, the transitions in ``path`` (``(from, to)`` pairs, ``new`` for the start) drawn
    bold and numbered, visited states filled, ``current`` outlined.  ``counts``: events per state.
    """
    counts = counts or {}
    taken: dict[tuple[str, str], list[int]] = {}
    for i, step in enumerate(path, start=1):
        taken.setdefault(step, []).append(i)
    visited = {dst for _, dst in path}
    width = _LEFT + 8 * _COL_W + 16
    height = _TOP + _ROW_Y[3] + _NODE_H + 56
    p: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="state diagram" class="diagram">',
        "<defs>",
        '<marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9aa4b2"/></marker>',
        '<marker id="arr-on" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#c2410c"/></marker>',
        "</defs>",
    ]
    # stage bands
    for stage, (first, last) in _STAGE_COLUMNS.items():
        bx = _LEFT + first * _COL_W + 3
        bw = (last - first + 1) * _COL_W - 6
        shade = "#f3f6fa" if stage.value[0] in ("apply", "meeting", "agree") else "#eaf0f6"
        p.append(
            f'<rect x="{bx}" y="6" width="{bw}" height="{_TOP + _ROW_Y[2] + _NODE_H - 6 + 10}" '
            f'rx="8" fill="{shade}"/>'
        )
        p.append(
            f'<text x="{bx + bw / 2}" y="28" text-anchor="middle" class="band">{_esc(stage.zh)}</text>'
            f'<text x="{bx + bw / 2}" y="44" text-anchor="middle" class="band-en">'
            f"{_esc(stage.en.replace('_', ' '))}</text>"
        )
    oy = _TOP + _ROW_Y[3] - 18
    p.append(
        f'<rect x="{_LEFT + 3}" y="{oy - 16}" width="{8 * _COL_W - 6}" height="{_NODE_H + 44}" '
        'rx="8" fill="#fbf3f0"/>'
        f'<text x="{_LEFT + 14}" y="{oy}" class="band-en">'
        f"{_esc('结局（任一阶段） outcomes, from any stage')}</text>"
    )
    # start dot
    sx, sy = _LEFT - 26, _TOP + _NODE_H / 2
    p.append(f'<circle cx="{sx}" cy="{sy}" r="7" fill="#334155"/>')

    def anchor(state: str, toward: tuple[float, float]) -> tuple[float, float]:
        if state == NEW:
            return sx + 7, sy
        x, y = _xy(state)
        cx, cy = x + _NODE_W / 2, y + _NODE_H / 2
        dx, dy = toward[0] - cx, toward[1] - cy
        if dx == 0 and dy == 0:
            return cx, cy
        # clip the line from the centre toward the other point at the box border
        sx_ = (_NODE_W / 2) / abs(dx) if dx else float("inf")
        sy_ = (_NODE_H / 2) / abs(dy) if dy else float("inf")
        s = min(sx_, sy_)
        return cx + dx * s, cy + dy * s

    def centre(state: str) -> tuple[float, float]:
        if state == NEW:
            return sx, sy
        x, y = _xy(state)
        return x + _NODE_W / 2, y + _NODE_H / 2

    edges = _edges(workflow)
    ordered = sorted(edges.items(), key=lambda kv: kv[0] in taken)  # taken edges drawn last
    labels: list[str] = []
    for (src, dst), names in ordered:
        on = (src, dst) in taken
        c0, r0 = _GRID.get(src, (-1.0, 0))
        c1, r1 = _GRID[dst]
        a, b = anchor(src, centre(dst)), anchor(dst, centre(src))
        backward = r0 == 0 and r1 == 0 and c1 < c0
        skip = r0 == 0 and r1 == 0 and c1 - c0 > 1
        if backward or skip:
            # arcs over the main row: backward above, skipping forward ones a little lower
            x0, y0 = centre(src)[0], _TOP
            x1, y1 = centre(dst)[0], _TOP
            lift = 30.0 + 9 * abs(c0 - c1) if backward else 22.0
            d = f"M{x0},{y0} C{x0},{y0 - lift} {x1},{y1 - lift} {x1},{y1}"
            mid = ((x0 + x1) / 2, y0 - lift * 0.75)
        else:
            d = f"M{a[0]:.1f},{a[1]:.1f} L{b[0]:.1f},{b[1]:.1f}"
            mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        cls = "edge on" if on else ("edge main" if r0 == 0 and r1 == 0 else "edge")
        marker = "arr-on" if on else "arr"
        p.append(
            f'<path d="{d}" class="{cls}" marker-end="url(#{marker})"><title>'
            f"{_esc(' / '.join(names))}</title></path>"
        )
        if on:
            steps = ",".join(str(i) for i in taken[(src, dst)])
            text = " / ".join(WORKFLOW.command(c).zh if lang == "zh" else c for c in names)
            labels.append(
                f'<g class="step"><circle cx="{mid[0]:.1f}" cy="{mid[1]:.1f}" r="9"/>'
                f'<text x="{mid[0]:.1f}" y="{mid[1] + 4:.1f}" text-anchor="middle">{steps}</text>'
                f"<title>{_esc(text)}</title></g>"
            )
    p += labels
    # nodes
    for s in workflow.states:
        x, y = _xy(s.name)
        classes = ["node"]
        if s.name in visited:
            classes.append("visited")
        if s.name == current:
            classes.append("current")
        if s.terminal:
            classes.append("terminal")
        p.append(
            f'<g class="{" ".join(classes)}"><title>{_esc(s.name)}: {_esc(s.zh)} / {_esc(s.en)}</title>'
        )
        p.append(f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="9"/>')
        if s.terminal:
            p.append(
                f'<rect x="{x + 3}" y="{y + 3}" width="{_NODE_W - 6}" height="{_NODE_H - 6}" '
                'rx="7" class="inner"/>'
            )
        main, sub = (s.zh.split("（")[0], s.name) if lang == "zh" else (s.name, s.zh.split("（")[0])
        p.append(
            f'<text x="{x + _NODE_W / 2}" y="{y + 20}" text-anchor="middle" class="label">'
            f"{_esc(main.replace('_', ' '))}</text>"
            f'<text x="{x + _NODE_W / 2}" y="{y + 36}" text-anchor="middle" class="sub">'
            f"{_esc(sub.replace('_', ' '))}</text>"
        )
        n = counts.get(s.name, 0)
        if n:
            p.append(
                f'<g class="count"><circle cx="{x + _NODE_W - 2}" cy="{y + 2}" r="10"/>'
                f'<text x="{x + _NODE_W - 2}" y="{y + 6}" text-anchor="middle">{n}</text></g>'
            )
        p.append("</g>")
    p.append("</svg>")
    return "\n".join(p)


def path_of(entries: Sequence[TimelineEntry]) -> list[tuple[str, str]]:
    """The state changes of a history, as ``(from, to)`` pairs starting from ``new``."""
    out = []
    state = NEW
    for e in entries:
        if e.state != state:
            out.append((state, e.state))
            state = e.state
    return out


# -- the HTML report -------------------------------------------------------------------------------

_CSS = """
:root { --ink:#1e293b; --muted:#64748b; --line:#e2e8f0; --ok:#15803d; --bad:#b91c1c;
        --accent:#c2410c; --visited:#fff1e6; }
* { box-sizing: border-box; }
body { margin: 0; background: #f8fafc; color: var(--ink);
       font: 14px/1.55 "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC",
             "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h1 small, h2 small, h3 small { color: var(--muted); font-weight: normal; font-size: 0.7em;
                               margin-left: 8px; }
h2 { font-size: 18px; margin: 32px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
.meta { color: var(--muted); margin: 0; }
.meta code, td code { font-family: "DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace;
                      font-size: 12px; }
.facts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin: 18px 0 0; }
.fact { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px; }
.fact b { display: block; font-size: 12px; color: var(--muted); font-weight: normal; }
.verdict { display: flex; gap: 18px; align-items: center; border-radius: 12px; padding: 16px 20px;
           margin-top: 18px; border: 2px solid; background: #fff; }
.verdict.ok { border-color: var(--ok); } .verdict.bad { border-color: var(--bad); }
.verdict .badge { font-size: 20px; font-weight: bold; padding: 8px 16px; border-radius: 8px;
                  color: #fff; white-space: nowrap; }
.verdict.ok .badge { background: var(--ok); } .verdict.bad .badge { background: var(--bad); }
.verdict p { margin: 2px 0; }
.diagram-box { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 12px;
               overflow-x: auto; }
svg.diagram { display: block; margin: 0 auto; width: 100%; height: auto; font-family: inherit; }
svg .band { font-size: 15px; font-weight: bold; fill: #334155; }
svg .band-en { font-size: 11px; fill: #94a3b8; }
svg .edge { fill: none; stroke: #cbd5e1; stroke-width: 1.2; }
svg .edge.main { stroke: #9aa4b2; stroke-width: 1.5; }
svg .edge.on { stroke: var(--accent); stroke-width: 3; }
svg .node rect { fill: #fff; stroke: #94a3b8; stroke-width: 1.3; }
svg .node rect.inner { fill: none; stroke: #cbd5e1; }
svg .node .label { font-size: 14px; fill: #334155; }
svg .node .sub { font-size: 10.5px; fill: #94a3b8; }
svg .node.visited rect { fill: var(--visited); stroke: var(--accent); stroke-width: 2; }
svg .node.visited rect.inner { fill: none; stroke: #f5b48a; stroke-width: 1; }
svg .node.current rect { stroke-width: 3.5; }
svg .node.visited .label { font-weight: bold; fill: #7c2d12; }
svg .step circle { fill: var(--accent); } svg .step text { fill: #fff; font-size: 10px; font-weight: bold; }
svg .count circle { fill: #334155; } svg .count text { fill: #fff; font-size: 10.5px; }
.legend { color: var(--muted); font-size: 12px; margin: 8px 4px 0; }
.stages { display: grid; gap: 14px; }
.stage { background: #fff; border: 1px solid var(--line); border-radius: 12px; overflow: hidden; }
.stage > h3 { margin: 0; padding: 9px 16px; font-size: 16px; background: #f1f5f9;
              border-bottom: 1px solid var(--line); display: flex; align-items: baseline; }
.stage > h3 .n { margin-left: auto; font-size: 12px; color: var(--muted); font-weight: normal; }
.stage .num { display: inline-block; width: 24px; height: 24px; line-height: 24px; border-radius: 50%;
              background: var(--accent); color: #fff; text-align: center; font-size: 13px;
              margin-right: 10px; }
.stage.empty .num { background: #cbd5e1; }
.stage.empty > p { margin: 0; padding: 10px 16px; color: var(--muted); }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
table.events th:nth-child(1) { width: 48px; } table.events th:nth-child(2) { width: 138px; }
table.events th:nth-child(4) { width: 96px; } table.events th:nth-child(5) { width: 214px; }
table.events th:nth-child(6) { width: 196px; } table.events th:nth-child(7) { width: 116px; }
td { overflow-wrap: break-word; }
th, td { text-align: left; padding: 7px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: normal; background: #fafbfc; }
tr:last-child td { border-bottom: 0; }
td.seq { width: 44px; color: var(--muted); text-align: right; }
td.at { width: 136px; white-space: nowrap; }
td .cmd { font-weight: bold; } td .en { color: var(--muted); font-size: 12px; margin-left: 6px; }
td .detail { color: var(--muted); font-size: 12px; margin-top: 2px; }
td .role { display: inline-block; padding: 0 8px; border-radius: 10px; background: #eef2ff;
           color: #3730a3; font-size: 12px; }
td .state { font-size: 12px; } td .state.changed { color: var(--accent); font-weight: bold; }
td.hash code { color: var(--muted); }
.people td, .people th { padding: 6px 12px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } main { padding: 0; } .stage { break-inside: avoid; } }
"""

_ROLE_ZH = {
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


def _t(lang: str, zh: str, en: str) -> str:
    """Primary text in ``lang``, the other language small beside it."""
    first, second = (zh, en) if lang == "zh" else (en, zh)
    return f"{_esc(first)}<small>{_esc(second)}</small>"


def render_html(
    view: CaseView,
    verdict: Verdict,
    *,
    lang: str = "zh",
    source: str = "",
    checkpoint_note: str | None = None,
    generated_by: str = "mediation",
    subtype: str = "",
) -> str:
    """The self-contained HTML report of one case (see the module docstring)."""
    zh = lang == "zh"
    stages = event_stages(view.timeline)
    path = path_of(view.timeline)
    counts: dict[str, int] = {}
    for e in view.timeline:
        counts[e.state] = counts.get(e.state, 0) + 1
    st = _state_spec(view.state)
    ok = verdict.ok
    out: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(('调解案件审计报告 ' if zh else 'Mediation case report ') + view.case_id)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_t(lang, '人民调解案件审计报告', 'Mediation case audit report')}</h1>",
        f'<p class="meta">{_esc("案件编号" if zh else "Case")} <code>{_esc(view.case_id)}</code>'
        f" · {_esc(WORKFLOW.version)}"
        + (f" · {_esc('来源' if zh else 'source')} <code>{_esc(source)}</code>" if source else "")
        + "</p>",
        '<div class="facts">',
        f'<div class="fact"><b>{_esc("纠纷类别 category")}</b>{_esc(view.category)}'
        + (f" / {_esc(subtype)}" if subtype else "")
        + "</div>",
        f'<div class="fact"><b>{_esc("当前状态 state")}</b>{_esc(st.zh if st else view.state)}'
        f" <code>{_esc(view.state)}</code></div>",
        f'<div class="fact"><b>{_esc("阶段 stage · 层级 level")}</b>{_esc(view.stage_zh)} '
        f"{_esc(view.stage.replace('_', ' '))} · {_esc(view.level)}</div>",
        f'<div class="fact"><b>{_esc("查看身份 viewed as")}</b>'
        f"{_esc(_STANDING_ZH.get(view.standing, view.standing))} <code>{_esc(view.standing)}</code>"
        "</div>",
        "</div>",
    ]
    # the verdict
    badge = ("验证通过" if zh else "VALID") if ok else ("验证失败" if zh else "INVALID")
    out.append(
        f'<section class="verdict {"ok" if ok else "bad"}"><div class="badge">{badge}</div><div>'
    )
    out.append(f"<p><b>{_esc(verdict.describe(lang))}</b></p>")
    other = "en" if zh else "zh"
    out.append(f'<p class="meta">{_esc(verdict.describe(other))}</p>')
    out.append(
        f'<p class="meta">{_esc("链头" if zh else "head")} seq {verdict.head_seq} · '
        f"<code>{_esc(verdict.head_hash)}</code></p>"
    )
    if checkpoint_note:
        out.append(f'<p class="meta">{_esc(checkpoint_note)}</p>')
    out.append("</div></section>")
    # the diagram
    out.append(
        f"<h2>{_t(lang, '状态图与本案路径', 'State diagram and the path this case took')}</h2>"
    )
    out.append('<div class="diagram-box">')
    out.append(state_svg(path, view.state, counts, lang))
    out.append(
        '<p class="legend">'
        + _esc(
            "橙色：本案经过的状态与转移（编号为先后顺序）；粗框：当前状态；双框：终局状态；"
            "角标：该状态下记录的事件数；灰色：流程声明中的其他转移。"
            if zh
            else "Orange: the states and transitions this case went through (numbered in order); "
            "thick border: the current state; double border: terminal states; badge: events "
            "recorded in that state; grey: the other transitions the workflow declares."
        )
        + "</p></div>"
    )
    # the timeline by stage
    out.append(f"<h2>{_t(lang, '六个阶段的办理记录', 'The history, stage by stage')}</h2>")
    out.append('<div class="stages">')
    state = NEW
    for i, stage in enumerate(Stage, start=1):
        entries = [e for e, s in zip(view.timeline, stages, strict=True) if s is stage]
        head = (
            f'<h3><span class="num">{i}</span>{_esc(stage.zh)}<small>{_esc(stage.en.replace("_", " "))}</small>'
            f'<span class="n">{len(entries)} {_esc("个事件" if zh else "event(s)")}</span></h3>'
        )
        if not entries:
            out.append(
                f'<section class="stage empty">{head}<p>{_esc("本案未经过此阶段" if zh else "not reached")}</p></section>'
            )
            continue
        out.append(f'<section class="stage">{head}<table class="events"><thead><tr>')
        for col in (
            ("#", "#"), ("时间 (UTC)", "time (UTC)"), ("操作", "action"), ("操作人", "actor"),
            ("身份", "acting as"), ("结果状态", "resulting state"), ("事件哈希", "event hash"),
        ):  # fmt: skip
            out.append(f"<th>{_esc(col[0] if zh else col[1])}</th>")
        out.append("</tr></thead><tbody>")
        for e in entries:
            changed = e.state != state
            state = e.state
            cmd_main, cmd_sub = (
                (e.label_zh, e.type) if zh else (e.type.replace("_", " "), e.label_zh)
            )
            detail = summarize(e.payload, 160)
            role = e.acted_as or "?"
            role_text = (
                f"{_ROLE_ZH.get(role, role)} · {role}"
                if zh
                else f"{role} · {_ROLE_ZH.get(role, role)}"
            )
            out.append(
                f'<tr><td class="seq">{e.seq}</td><td class="at">{_esc(e.at[:16].replace("T", " "))}</td>'
                f'<td><span class="cmd">{_esc(cmd_main)}</span><span class="en">{_esc(cmd_sub)}</span>'
                + (f'<div class="detail">{_esc(detail)}</div>' if detail else "")
                + f"</td><td>{_esc(e.actor or ('（已隐去）' if zh else '(hidden)'))}</td>"
                f'<td><span class="role">{_esc(role_text)}</span></td>'
                f'<td><span class="state{" changed" if changed else ""}">'
                f"{_esc(_state_label(e.state, lang) if changed else '—')}</span></td>"
                f'<td class="hash"><code title="{_esc(e.hash)}">{_esc(e.hash[:12])}</code></td></tr>'
            )
        out.append("</tbody></table></section>")
    out.append("</div>")
    # who acted under which role
    people: dict[tuple[str, str], list[int]] = {}
    for e in view.timeline:
        people.setdefault((e.actor or "—", e.acted_as or "?"), []).append(e.seq)
    out.append(f"<h2>{_t(lang, '参与人员及其身份', 'Who acted, under which role')}</h2>")
    out.append('<div class="stage"><table class="people"><thead><tr>')
    for col in (
        ("操作人", "actor"),
        ("身份", "acting as"),
        ("事件数", "events"),
        ("事件序号", "seqs"),
    ):
        out.append(f"<th>{_esc(col[0] if zh else col[1])}</th>")
    out.append("</tr></thead><tbody>")
    for (actor, role), seqs in people.items():
        out.append(
            f'<tr><td>{_esc(actor)}</td><td><span class="role">{_esc(_ROLE_ZH.get(role, role))} · '
            f"{_esc(role)}</span></td><td>{len(seqs)}</td><td>{_esc(', '.join(map(str, seqs)))}</td></tr>"
        )
    out.append("</tbody></table></div>")
    out.append(
        "<footer>"
        + _esc(
            f"由 {generated_by} 生成；本页面自包含（无脚本、无外部资源）。个人信息已按查看身份的权限脱敏。"
            "核验：mediation verify。"
            if zh
            else f"Generated by {generated_by}; this page is self-contained (no scripts, no external "
            "resources). Personal data is redacted to the viewer's rights. Verify: mediation verify."
        )
        + "</footer></main></body></html>"
    )
    return "\n".join(out) + "\n"
