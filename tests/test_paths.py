"""The paths of :mod:`mediation.testing`: one to every state of the workflow, as data.

Driving each path through a live service reaches its state and leaves a history that verifies
strictly; the states are the declaration's (no state or command is named in ``mediation.testing``,
which a scan of its source checks); the paths need no hypothesis; and the guided walks built on
them take a new case through every stage of the happy path to its archive.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mediation.testing
from mediation import WORKFLOW, CaseService, verify
from mediation import commands as cmd
from mediation._vocab import NEW, Relation
from mediation.testing import (
    BRANCHES,
    HAPPY_PATH,
    FromCase,
    PathOptions,
    Step,
    World,
    drive,
    follow,
    path_to,
    paths,
    routes,
)
from mediation.testing._strategies import progress_steps

STATES = [s.name for s in WORKFLOW.states]
FULL_CAST = PathOptions(agent="agent1", co_mediator="med2", invitee="inv1", late=True)
OPTIONS = {
    "default": PathOptions(),
    "full cast, late branches": FULL_CAST,
    "no minutes, another lead": PathOptions(minutes=False, lead="med3"),
}


def test_every_state_of_the_workflow_has_a_path() -> None:
    for options in OPTIONS.values():
        assert list(paths(options)) == STATES
    for state in STATES:
        assert path_to(state) == paths()[state]
    with pytest.raises(KeyError):
        path_to("nowhere")


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("state", STATES)
def test_driving_a_path_reaches_its_state_and_verifies_strictly(
    state: str, options: PathOptions
) -> None:
    world = World()
    service = world.service()
    case = drive(service, world, "k", state, options)
    assert case.state == state
    records = service.store.read("k")
    verdict = verify(records, "k", strict=True)
    assert verdict.ok, verdict.describe()
    assert verdict.state == state and verdict.head_seq == len(records)
    # a fresh service, from the store, sees the same case
    assert CaseService(service.store).case("k").state == state


def test_the_full_cast_is_there_wherever_the_flow_allows_it() -> None:
    world = World()
    service = world.service()
    cast = {"p1": "applicant", "p2": "respondent", "agent1": "agent"}
    team = {"med1": "lead_mediator", "med2": "co_mediator", "inv1": "invitee"}
    for state in STATES:
        case = drive(service, world, f"k-{state}", state, FULL_CAST)
        expected = cast if state in ("applied", "not_accepted", "refused") else cast | team
        assert {who: case.relations_of(who) for who in expected} == {
            who: {rel} for who, rel in expected.items()
        }, state


def test_the_states_are_the_declarations() -> None:
    table = routes()
    assert [leg.command for leg in table.happy] == list(HAPPY_PATH)
    assert [leg.command for leg in table.branches] == list(BRANCHES)
    # each happy leg goes from the state before it, as declared, to its command's target
    assert table.states[0] == NEW
    for leg, before, after in zip(table.happy, table.states, table.states[1:], strict=False):
        spec = WORKFLOW.command(leg.command.name)
        assert before in spec.sources and after == spec.target
    # a branch leaves the happy path at the first state (or the last, late) it may be issued from
    for leg in table.branches:
        sources = [s for s in table.states if s in leg.spec.sources]
        assert table.states[table.branch_point(leg)] == sources[0]
        assert table.states[table.branch_point(leg, late=True)] == sources[-1]
    # the last step of every path that moves the case leads to its state (what follows settles in)
    for state, steps in paths(FULL_CAST).items():
        moves = [step for step in steps if step.spec.target is not None]
        assert moves[-1].spec.target == state, state


def test_a_path_may_open_with_a_report() -> None:
    world = World()
    report = cmd.Report(
        committee=world.committee,
        category="邻里",
        description="网格员发现楼道堆物纠纷",
        applicants=(cmd.Party("p1", "陈女士"),),
        respondents=(cmd.Party("p2", "刘先生"),),
        source="grid",
    )
    options = PathOptions(opening=report, opened_by="grid")
    assert routes(options).happy[0].command is cmd.Report
    service = world.service()
    case = drive(service, world, "k", "resolved", options)
    assert case.opened_by == "grid"
    assert verify(service.store.read("k"), "k", strict=True).ok


def test_a_path_goes_on_from_an_open_case_and_steps_resolve_on_the_case() -> None:
    world = World()
    service = world.service()
    drive(service, world, "k", "applied")
    case = follow(service, world, "k", path_to("negotiating"))  # the opening is not repeated
    assert case.state == "negotiating" and case.seq == len(path_to("negotiating"))
    every = Step(Relation.RESPONDENT, cmd.RecordConsent(), every=True)
    assert [a.id for a, _ in every.resolve(world, case)] == ["p2"]
    nobody = Step(Relation.INVITEE, cmd.RecordMinutes("x"))
    assert nobody.resolve(world, case) == []
    wrong = Step("med1", FromCase(cmd.RecordMinutes, lambda c, w: cmd.ShareProposal("x")))
    with pytest.raises(TypeError):
        wrong.resolve(world, case)


def test_a_path_that_cannot_reach_its_state_says_so() -> None:
    world = World()
    with pytest.raises(AssertionError, match="ended in"):
        drive(world.service(), world, "k", "meeting_scheduled", PathOptions(lead=None))


def test_guided_steps_take_a_new_case_through_every_stage_to_its_archive() -> None:
    world = World()
    service = world.service()
    case = drive(service, world, "k", "applied")
    seen = [case.state]
    while not case.archived:
        actor, command = progress_steps(world, case)[0]
        service.execute(actor, "k", command)
        case = service.case("k")
        if case.state != seen[-1]:
            seen.append(case.state)
        assert len(service.store.read("k")) < 60
    assert seen == list(routes().states[1:])
    assert verify(service.store.read("k"), "k", strict=True).ok


# -- no state or command name in mediation.testing --------------------------------------------------

TESTING = Path(mediation.testing.__file__).parent


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def names_in(path: Path) -> list[tuple[int, str]]:
    """The string constants of ``path`` (docstrings aside) that are a state or command name."""
    words = {s.name for s in WORKFLOW.states} | {c.name for c in WORKFLOW.commands}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and node.value in words
    ]


def test_mediation_testing_names_no_state_and_no_command() -> None:
    files = sorted(TESTING.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "_paths.py", "_strategies.py"}
    found = {f.name: names_in(f) for f in files}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_the_scan_finds_a_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""negotiating: a docstring may name states."""\n'
        'X = "negotiating"\n'
        'def f():\n    """sign"""\n    return {"k": "sign", "other": "x"}\n',
        encoding="utf-8",
    )
    assert names_in(sample) == [(2, "negotiating"), (5, "sign")]


# -- no hypothesis needed --------------------------------------------------------------------------

_WITHOUT_HYPOTHESIS = """
import sys
sys.modules["hypothesis"] = None
from mediation import MemoryStore, verify
from mediation.testing import StoreConformance, World, drive, paths

class Check(StoreConformance):
    def make_store(self):
        return MemoryStore()

suite = Check()
for name in dir(suite):
    if name.startswith("test_"):
        getattr(suite, name)()
world = World()
service = world.service()
for state in paths():
    assert drive(service, world, "k-" + state, state).state == state
    assert verify(service.store.read("k-" + state), "k-" + state, strict=True).ok
print("no-hypothesis-ok")
"""


def test_the_paths_and_the_conformance_suite_need_no_hypothesis() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_HYPOTHESIS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no-hypothesis-ok"
