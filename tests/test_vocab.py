"""The closed vocabularies as enums, the validators as a leaf module, and the table that draws
commands for the property tests."""

from __future__ import annotations

import ast
import enum
import importlib
from pathlib import Path

import attrs
import pytest

from mediation import WORKFLOW, InvalidCommand, Policy, _vocab
from mediation import commands as cmd
from mediation._commands import to_payload
from mediation._validators import json_schema_of
from mediation._workflow import NEW
from mediation.web import command_schemas

SRC = Path(__file__).parents[1] / "src" / "mediation"

_STR_ENUMS = [
    v for v in vars(_vocab).values() if isinstance(v, type) and issubclass(v, str) and v is not str
]


def _library_imports(path: Path) -> set[str]:
    """The modules of the library that ``path`` imports (relative imports, by name)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            out.add(node.module or "")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if module and module.split(".")[0] == "mediation":
                out.add(module)
    return out


def test_validators_and_vocab_are_leaf_modules() -> None:
    assert _library_imports(SRC / "_validators.py") <= {"_errors", "_vocab"}
    assert _library_imports(SRC / "_vocab.py") == set()


@pytest.mark.parametrize("vocab", _STR_ENUMS, ids=lambda e: e.__name__)
def test_every_vocabulary_is_a_str_enum_of_distinct_words(vocab: type[enum.Enum]) -> None:
    values = [m.value for m in vocab]
    assert all(type(v) is str and v for v in values)
    assert len(set(values)) == len(values)


def _enums_in(schema: object) -> list[list[str]]:
    if isinstance(schema, dict):
        found = [schema["enum"]] if "enum" in schema else []
        return found + [e for v in schema.values() for e in _enums_in(v)]
    if isinstance(schema, list):
        return [e for v in schema for e in _enums_in(v)]
    return []


def test_every_word_list_of_the_schemas_is_an_enum() -> None:
    """Each ``enum`` of a command's JSON Schema lists the values of one ``str`` enum, in its order
    (a field may also take ``""``, or only some of the members)."""
    vocabularies = [[m.value for m in e] for e in _STR_ENUMS]
    lists = [e for schema in command_schemas().values() for e in _enums_in(schema)]
    assert lists
    for words in lists:
        words = [w for w in words if w != ""]
        assert any(words == [v for v in values if v in words] for values in vocabularies), words


def test_a_member_or_its_value_builds_the_same_command() -> None:
    by_member = cmd.Sign(cmd.SignMethod.SEAL)
    by_value = cmd.Sign("seal")
    assert by_member == by_value and hash(by_member) == hash(by_value)
    assert type(by_member.method) is str and repr(by_member) == repr(by_value)
    assert to_payload(by_member) == {"method": "seal"}
    follow_up = cmd.RecordFollowUp("已回访", cmd.Performed.PARTIAL)
    assert type(follow_up.performed) is str and to_payload(follow_up)["performed"] == "partial"
    tie = cmd.Tie("p1", cmd.TieKind.SPOUSE)
    assert type(tie.kind) is str and tie.kind in _vocab.CLOSE_RELATIVES
    consent = cmd.Consent(cmd.ConsentSubject.WAIVE_RECUSAL, "med1")
    assert consent.subject == "waive_recusal" and type(consent.subject) is str
    with pytest.raises(InvalidCommand):
        cmd.Consent(cmd.ConsentSubject.NON_PUBLIC, "med1")


def test_defaults_are_plain_words() -> None:
    assert type(cmd.Sign().method) is str and cmd.Sign().method == "signature"
    assert type(cmd.Party("p1", "陈").kind) is str
    assert cmd.Report.__attrs_attrs__.source.default == "grid"  # type: ignore[attr-defined]


def test_words_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(InvalidCommand) as exc:
        cmd.Sign("stamp")
    assert exc.value.field == "method"
    with pytest.raises(InvalidCommand):
        cmd.RecordJudicialConfirmation(cmd.JudicialStatus.NONE)
    for status in ("applied", "confirmed", "rejected"):
        assert cmd.RecordJudicialConfirmation(status).status == status


def test_the_policy_profile_is_a_recusal_profile() -> None:
    assert Policy().recusal == cmd.RecusalProfile.DEFAULT and type(Policy().recusal) is str
    assert Policy(recusal=cmd.RecusalProfile.SZ).recusal == "sz"
    assert json_schema_of(attrs.fields(Policy).recusal.validator)["enum"] == [
        p.value for p in cmd.RecusalProfile
    ]
    with pytest.raises(InvalidCommand):
        Policy(recusal="")


def test_the_vocabulary_tuples_are_the_enum_values() -> None:
    assert tuple(c.value for c in cmd.Category) == cmd.CATEGORIES
    assert tuple(r.value for r in cmd.Route) == cmd.ROUTES
    assert tuple(k.value for k in cmd.TieKind) == cmd.TIE_KINDS
    assert tuple(c.value for c in cmd.ConsentSubject) == cmd.CONSENT_SUBJECTS
    assert tuple(k.value for k in cmd.InviteeKind) == cmd.INVITEE_KINDS
    assert all(type(v) is str for v in cmd.CATEGORIES + cmd.ROUTES + cmd.TIE_KINDS)


def test_command_for_draws_every_command_class() -> None:
    from mediation.testing import _strategies

    assert set(_strategies._DRAWS) == set(cmd.COMMAND_TYPES.values())


_NAMES = {NEW, *(s.name for s in WORKFLOW.states), *(c.name for c in WORKFLOW.commands)}


@pytest.mark.parametrize(
    "module",
    [
        "mediation._validators",
        "mediation._checkpoints",
        "mediation._checkpoints.auditor",
        "mediation._checkpoints.issue",
        "mediation._checkpoints.keys",
        "mediation._checkpoints.merkle",
        "mediation._checkpoints.records",
    ],
)
def test_no_state_or_command_name_is_spelled_out(module: str) -> None:
    path = Path(str(importlib.import_module(module).__file__))
    tree = ast.parse(path.read_text("utf-8"))
    literals = {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    assert not literals & _NAMES
