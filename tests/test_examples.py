"""Every script in examples/ runs as a subprocess, in an empty working directory, exits 0 and
prints the verdict line of the case it built."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))
VERDICT = re.compile(r"\bcase \S+: valid, \d+ events, state [a-z_]+\b")


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.py", "failed_case.py"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert VERDICT.search(done.stdout), done.stdout


def test_quickstart_ends_resolved_and_failed_case_ends_failed(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "examples"
    for name, state in (("quickstart.py", "resolved"), ("failed_case.py", "failed")):
        db = tmp_path / f"{name}.db"
        done = subprocess.run(
            [sys.executable, str(root / name), str(db)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(rf"^case \S+: valid, \d+ events, state {state}$", done.stdout, re.M)
        assert db.exists()
    assert "route: litigation" in done.stdout
