"""Every drawing of the workflow declaration, all derived from :data:`~mediation._workflow.WORKFLOW`.

- :func:`mermaid_lines` / :func:`mermaid`: the state diagram as mermaid ``stateDiagram-v2``
  (``docs/workflow.md`` and ``mediation diagram``).
- :func:`dot`: the state diagram in Graphviz DOT, one cluster per stage.
- :func:`layout` places the states on a grid from the declaration (columns in stage order, branches
  below their stage, the outcomes in a band of their own); :func:`state_svg` draws that grid as an
  inline SVG with the path a case took highlighted (the HTML report's diagram).

No state or command is named here: the names are read from the workflow given.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import attrs

from ._vocab import Stage
from ._workflow import NEW, WORKFLOW, StateSpec, Workflow

__all__ = ["Layout", "dot", "edges", "layout", "mermaid", "mermaid_lines", "state_svg"]

#: the start and the end of a diagram (mermaid and DOT)
_ENDPOINT = "[*]"


def edges(workflow: Workflow = WORKFLOW) -> dict[tuple[str, str], list[str]]:
    """Every declared state change, ``(source, target)`` -> the commands that make it, in
    declaration order; ``new`` is the source of the opening commands."""
    out: dict[tuple[str, str], list[str]] = {}
    for c in workflow.commands:
        if c.target is None:
            continue
        for src in c.sources:
            out.setdefault((src, c.target), []).append(c.name)
    return out


# -- mermaid and DOT -------------------------------------------------------------------------------


def mermaid_lines(workflow: Workflow = WORKFLOW) -> list[str]:
    """The body of the mermaid state diagram: the states, every state change labelled with its
    commands (the opening ones from ``[*]``), and the terminal states into ``[*]``."""
    lines: list[str] = []
    for s in workflow.states:
        lines.append(f"{s.name}: {s.name} {s.zh}")
    for (src, dst), names in edges(workflow).items():
        lines.append(f"{_ENDPOINT if src == NEW else src} --> {dst}: {' / '.join(names)}")
    for s in workflow.states:
        if s.terminal:
            lines.append(f"{s.name} --> {_ENDPOINT}")
    return lines


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
        f"  {_dot_id(_ENDPOINT)} [shape=point, width=0.15];",
    ]

    def node(s: StateSpec) -> str:
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
    for (src, dst), names in edges(workflow).items():
        start = _ENDPOINT if src == NEW else src
        out.append(f"  {_dot_id(start)} -> {_dot_id(dst)} [label={_dot_id(' / '.join(names))}];")
    out.append("}")
    return "\n".join(out) + "\n"


# -- the grid --------------------------------------------------------------------------------------

# vertical offsets (from the top of the main row) of the rows below it
_BRANCH_TOP, _BRANCH_STEP, _OUTCOME_GAP = 80, 58, 98
# the widest gap between two outcomes, in columns
_OUTCOME_STEP = 1.5


@attrs.frozen
class Layout:
    """Where :func:`state_svg` draws each state.

    Row 0 is the main row; rows 1.. hold the branches of a stage (terminal states reached only from
    an earlier stage), stacked under the stage's first column; the last row holds the outcomes that
    belong to no stage.
    """

    #: state -> (column, row); an outcome's column may fall between two columns
    cells: Mapping[str, tuple[float, int]]
    #: stage -> (first column, last column)
    stage_columns: Mapping[Stage, tuple[int, int]]
    columns: int
    #: the vertical offset of each row from the main row; the last is the outcome row
    row_y: tuple[int, ...]


def layout(workflow: Workflow = WORKFLOW) -> Layout:
    """The grid of the declaration.

    The stages take columns left to right in stage order.  Within a stage, states take the main row
    in declaration order, one column each, except a terminal state that no state of its own stage
    leads to: that is a branch off the way forward (a case not accepted, or refused, before it was
    registered) and goes below, under the stage's first column.  A terminal state reached from
    within its stage ends it on the main row (performed and closed, after the follow-up).  The
    outcomes that belong to no stage are spread evenly in a band below, centred, ordered by the mean
    column of the states they are reached from (ties in declaration order), so that an outcome
    reached from earlier states sits further left.
    """
    sources: dict[str, set[str]] = {}
    for src, dst in edges(workflow):
        sources.setdefault(dst, set()).add(src)
    stage_of = {s.name: s.stage for s in workflow.states}
    cells: dict[str, tuple[float, int]] = {}
    stage_columns: dict[Stage, tuple[int, int]] = {}
    column = deepest = 0
    for stage in Stage:
        first, branches = column, 0
        for s in workflow.states:
            if s.stage is not stage:
                continue
            within = any(stage_of.get(src) is stage for src in sources.get(s.name, ()))
            if s.terminal and not within:
                branches += 1
                cells[s.name] = (first, branches)
            else:
                cells[s.name] = (column, 0)
                column += 1
        column = max(column, first + 1)
        stage_columns[stage] = (first, column - 1)
        deepest = max(deepest, branches)

    def reached_from(s: StateSpec) -> float:
        cols = [cells[src][0] for src in sources.get(s.name, ()) if src in cells]
        return sum(cols) / len(cols) if cols else (column - 1) / 2

    outcomes = sorted((s for s in workflow.states if s.stage is None), key=reached_from)
    n = len(outcomes)
    step = min(_OUTCOME_STEP, (column - 1) / (n - 1)) if n > 1 else 0.0
    for i, s in enumerate(outcomes):
        cells[s.name] = ((column - 1) / 2 + (i - (n - 1) / 2) * step, deepest + 1)
    row_y = [0, *(_BRANCH_TOP + _BRANCH_STEP * k for k in range(deepest))]
    row_y.append(row_y[-1] + _OUTCOME_GAP)
    return Layout(cells, stage_columns, column, tuple(row_y))


# -- the SVG ---------------------------------------------------------------------------------------

_COL_W, _NODE_W, _NODE_H = 142, 120, 46
_LEFT, _TOP = 46, 92


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def state_svg(
    path: Sequence[tuple[str, str]],
    current: str | None,
    counts: Mapping[str, int] | None = None,
    lang: str = "zh",
    workflow: Workflow = WORKFLOW,
) -> str:
    """The workflow as an inline SVG: states in stage columns (:func:`layout`), every declared
    transition as a faint arrow, the transitions in ``path`` (``(from, to)`` pairs, ``new`` for
    the start) drawn bold and numbered, visited states filled, ``current`` outlined.  ``counts``:
    events per state.
    """
    counts = counts or {}
    grid = layout(workflow)
    cells, row_y, columns = grid.cells, grid.row_y, grid.columns
    taken: dict[tuple[str, str], list[int]] = {}
    for i, step in enumerate(path, start=1):
        taken.setdefault(step, []).append(i)
    visited = {dst for _, dst in path}

    def xy(state: str) -> tuple[float, float]:
        col, row = cells[state]
        return _LEFT + col * _COL_W + (_COL_W - _NODE_W) / 2, _TOP + row_y[row]

    width = _LEFT + columns * _COL_W + 16
    height = _TOP + row_y[-1] + _NODE_H + 56
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
    # stage bands, alternately shaded, down to the deepest branch
    for i, (stage, (first, last)) in enumerate(grid.stage_columns.items()):
        bx = _LEFT + first * _COL_W + 3
        bw = (last - first + 1) * _COL_W - 6
        shade = "#f3f6fa" if i % 2 == 0 else "#eaf0f6"
        p.append(
            f'<rect x="{bx}" y="6" width="{bw}" height="{_TOP + row_y[-2] + _NODE_H - 6 + 10}" '
            f'rx="8" fill="{shade}"/>'
        )
        p.append(
            f'<text x="{bx + bw / 2}" y="28" text-anchor="middle" class="band">{_esc(stage.zh)}</text>'
            f'<text x="{bx + bw / 2}" y="44" text-anchor="middle" class="band-en">'
            f"{_esc(stage.en.replace('_', ' '))}</text>"
        )
    oy = _TOP + row_y[-1] - 18
    p.append(
        f'<rect x="{_LEFT + 3}" y="{oy - 16}" width="{columns * _COL_W - 6}" height="{_NODE_H + 44}" '
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
        x, y = xy(state)
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
        x, y = xy(state)
        return x + _NODE_W / 2, y + _NODE_H / 2

    ordered = sorted(edges(workflow).items(), key=lambda kv: kv[0] in taken)  # taken ones last
    labels: list[str] = []
    for (src, dst), names in ordered:
        on = (src, dst) in taken
        c0, r0 = cells.get(src, (-1.0, 0))
        c1, r1 = cells[dst]
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
            text = " / ".join(workflow.command(c).zh if lang == "zh" else c for c in names)
            labels.append(
                f'<g class="step"><circle cx="{mid[0]:.1f}" cy="{mid[1]:.1f}" r="9"/>'
                f'<text x="{mid[0]:.1f}" y="{mid[1] + 4:.1f}" text-anchor="middle">{steps}</text>'
                f"<title>{_esc(text)}</title></g>"
            )
    p += labels
    # nodes
    for s in workflow.states:
        x, y = xy(s.name)
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
