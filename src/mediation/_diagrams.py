"""Diagrams of a workflow, drawn from its declaration."""

from __future__ import annotations

from ._spec import Workflow
from ._vocab import NEW
from ._workflow import WORKFLOW

__all__ = ["mermaid_lines"]


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
