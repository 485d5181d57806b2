"""The public API: an explicit list (so a change is a decision), importable, typed, and a core that
needs no optional driver."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mediation

EXPECTED_ALL = [
    "WORKFLOW",
    "AESGCMVault",
    "Actor",
    "Calendar",
    "CalendarNotCovered",
    "Case",
    "CaseExists",
    "CaseNotFound",
    "CaseService",
    "CaseSummary",
    "CaseView",
    "ClockSkew",
    "CommandSpec",
    "ConcurrencyConflict",
    "Confidentiality",
    "Deadline",
    "DeadlineSpec",
    "DeadlineWarning",
    "Directory",
    "Event",
    "Fault",
    "FaultKind",
    "FieldKind",
    "Grant",
    "GuardFailed",
    "GuardSpec",
    "IllegalTransition",
    "IntegrityViolation",
    "InvalidCommand",
    "KeyDestroyed",
    "KeyStore",
    "MediationError",
    "MemoryKeyStore",
    "MemoryStore",
    "NotPermitted",
    "OutcomeUnknown",
    "PeopleRule",
    "Permission",
    "PersonalField",
    "Policy",
    "Relation",
    "RequestConflict",
    "Role",
    "Roster",
    "RosterEntry",
    "SQLiteKeyStore",
    "SQLiteStore",
    "SealBroken",
    "Stage",
    "StateSpec",
    "StaticDirectory",
    "Statistics",
    "Store",
    "StoreError",
    "StoredEvent",
    "Text",
    "TimelineEntry",
    "Vault",
    "Verdict",
    "Workflow",
    "__version__",
    "canonical_bytes",
    "commands",
    "event_hash",
    "register_workflow",
    "replay",
    "rosters_of",
    "verify",
    "workflow_of",
]

EXPECTED_TESTING = [
    "BRANCHES",
    "HAPPY_PATH",
    "Driven",
    "FromCase",
    "Leg",
    "PathOptions",
    "Routes",
    "Step",
    "KeyStoreConformance",
    "StoreConformance",
    "TickClock",
    "World",
    "actor_for",
    "command_for",
    "commands_from",
    "drive",
    "driven_cases",
    "follow",
    "guided_step",
    "generate_dataset",
    "histories",
    "host_openings",
    "opening_step",
    "path_to",
    "paths",
    "progress_steps",
    "raises",
    "routes",
    "step",
    "synthetic_records",
    "synthetic_summary",
    "Dataset",
]


def test_all_is_the_agreed_list() -> None:
    assert mediation.__all__ == EXPECTED_ALL, (
        "mediation.__all__ changed: update EXPECTED_ALL (and the CHANGELOG) if it was meant to"
    )
    assert len(set(mediation.__all__)) == len(mediation.__all__)


def test_testing_all_is_the_agreed_list() -> None:
    import mediation.testing

    assert sorted(mediation.testing.__all__) == sorted(EXPECTED_TESTING)


@pytest.mark.parametrize("module", ["mediation", "mediation.commands", "mediation.testing"])
def test_every_exported_name_is_importable(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names, module
    for name in names:
        assert getattr(mod, name) is not None, f"{module}.{name}"
    # and through ``from module import *`` too
    namespace: dict[str, object] = {}
    exec(f"from {module} import *", namespace)
    assert set(names) <= set(namespace)


def test_every_command_class_is_exported() -> None:
    from mediation import commands

    for name, cls in commands.COMMAND_TYPES.items():
        assert cls.__name__ in commands.__all__, name
        assert getattr(commands, cls.__name__) is cls
    assert set(commands.COMMAND_TYPES) == {c.name for c in mediation.WORKFLOW.commands}


PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_the_version_is_the_packages() -> None:
    assert mediation.__version__ == importlib.metadata.version("mediation")
    assert f'version = "{mediation.__version__}"' in PYPROJECT.read_text("utf-8")


_BLOCKED = """
import importlib.abc, sys

BLOCKED = ("psycopg", "psycopg_pool", "psycopg_binary", "cryptography")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, Block())
for name in BLOCKED:
    sys.modules[name] = None

import mediation
from mediation import commands as cmd
from mediation.testing import StoreConformance
import mediation.stores, mediation.stores.sqlite, mediation.stores.memory

# sealing, on by default, needs cryptography (a base dependency): without it, a clear error
try:
    mediation.CaseService(mediation.MemoryStore())
except mediation.MediationError as exc:
    assert "cryptography" in str(exc), exc
else:
    raise AssertionError("sealing without cryptography")

# a whole short case on the bundled stores, with the core only (sealing off)
for store in (mediation.MemoryStore(), mediation.SQLiteStore(":memory:")):
    directory = mediation.StaticDirectory()
    director = directory.add(mediation.Actor.with_roles("d", {"c1": ["director"]}))
    service = mediation.CaseService(store, directory=directory, sealing=False)
    case = service.open(
        mediation.Actor("p1"),
        cmd.Apply(
            committee="c1", category="邻里", description="噪声",
            applicants=(cmd.Party("p1", "陈"),), respondents=(cmd.Party("p2", "刘"),),
        ),
    )
    service.execute(mediation.Actor("p2"), case.id, cmd.RecordConsent())
    service.execute(director, case.id, cmd.Register())
    assert mediation.verify(store.read(case.id)).ok

loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
assert not loaded, loaded
print("core-ok")
"""


def test_the_core_imports_without_psycopg_or_cryptography() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "core-ok"


def test_the_blocking_really_blocks() -> None:
    """The check above would be worthless if the finder let the modules through."""
    probe = _BLOCKED.split("import mediation\n")[0] + "import psycopg\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0 and "psycopg" in result.stderr, result.stderr


def test_py_typed_is_shipped() -> None:
    marker = importlib.resources.files("mediation") / "py.typed"
    assert marker.is_file()
    # and the build ships it (setuptools package-data)
    text = PYPROJECT.read_text("utf-8")
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^mediation\s*=\s*\[[^\]]*"py\.typed"', section, re.MULTILINE), section


def test_private_modules_stay_private() -> None:
    for name in mediation.__all__:
        assert not name.startswith("_") or name == "__version__"
    assert "Context" not in mediation.__all__ and "GUARDS" not in mediation.__all__


def test_postgres_store_is_imported_lazily() -> None:
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "sys.modules['psycopg_pool'] = None\n"
        "import mediation, mediation.stores\n"
        "s = mediation.SQLiteStore(':memory:')\n"
        "try:\n"
        "    mediation.stores.PostgresStore\n"
        "except ImportError:\n"
        "    print('lazy')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "lazy", out.stderr
