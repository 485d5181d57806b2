"""Every fact about a state or a command lives on the declaration.

Outside the declaration (the data in ``_workflow.py``, the payload classes of ``_commands.py``, and
the vocabulary enums of ``_vocab.py``, some of whose words are also command names), no module of
``src/`` names a state or a command as a string literal: statistics, deadlines, views, privacy,
diagrams and test strategies read the declaration's flags and facts instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mediation import WORKFLOW
from mediation._spec import CommandSpec, Confidentiality, StateSpec
from mediation._vocab import NEW

SRC = Path(__file__).resolve().parents[1] / "src" / "mediation"
DECLARATION = {"_workflow.py", "_commands.py", "_vocab.py"}
#: literals that are the same word in another vocabulary, with the reason
ALLOWED = {
    ("cli/__init__.py", "report"): "the CLI's own sub-command",
    ("cli/_report.py", "report"): "the CLI's own sub-command",
}
NAMES = {s.name for s in WORKFLOW.states} | {c.name for c in WORKFLOW.commands} | {NEW}


def _literals(tree: ast.AST) -> set[str]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # docstrings
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip.update(id(n) for n in ast.walk(node.value))  # exported identifiers
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
    }


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name not in DECLARATION or p.parent != SRC)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_state_or_command_is_named_outside_the_declaration(path: Path) -> None:
    rel = str(path.relative_to(SRC))
    found = _literals(ast.parse(path.read_text(encoding="utf-8"))) & NAMES
    found = {name for name in found if (rel, name) not in ALLOWED}
    assert not found, f"{rel} names {sorted(found)}: read them from the declaration"


def test_every_command_carries_its_facts() -> None:
    for spec in WORKFLOW.commands:
        assert isinstance(spec, CommandSpec)
        assert spec.payload.name == spec.name  # type: ignore[attr-defined]
        assert callable(spec.effect)
        assert isinstance(spec.confidentiality, Confidentiality)
        fields = {f.name for f in spec.payload.__attrs_attrs__}  # type: ignore[attr-defined]
        assert set(spec.persons) <= fields, spec.name
        assert {field for field, _ in spec.people} <= fields, spec.name
    assert {c.name for c in WORKFLOW.opening} == {c.name for c in WORKFLOW.commands if c.opens}


def test_every_state_carries_its_flags() -> None:
    for spec in WORKFLOW.states:
        assert isinstance(spec, StateSpec)
        assert not (spec.agreed and spec.failed), spec.name
        if spec.failed:
            assert spec.terminal, spec.name
    assert WORKFLOW.states_where("agreed") and WORKFLOW.states_where("failed")
    assert WORKFLOW.states_where("terminal") >= WORKFLOW.states_where("failed")
