"""The documentation agrees with the code.

- The generated documents (docs/workflow.md, docs/commands.md, the matrix of docs/roles.md, the
  worked example of docs/log-format.md) are what ``python -m mediation.docs`` would write now.
- The worked example of docs/log-format.md hashes as documented and verifies.
- Every example body of docs/commands.md builds its command and validates against its schema.
- Every public name is documented in docs/api.md.
- Every ```python block of README.md and docs/*.md runs (unless it says ``# not run``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import rfc8785

import mediation
import mediation.audit
import mediation.commands
import mediation.stats
import mediation.stores
import mediation.testing
import mediation.web
from mediation import StoredEvent, verify
from mediation import docs as gen

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TAG = b"mediation.event.v1\x00"


def test_generated_documents_are_up_to_date() -> None:
    stale = [str(p.relative_to(ROOT)) for p in gen.stale(ROOT)]
    assert not stale, (
        f"out of date with the code: {', '.join(stale)}; "
        "run `python -m mediation.docs` from the repository root and commit the result"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "docs").mkdir()
    for rel in gen.PARTS:
        (tmp_path / rel).write_text((ROOT / rel).read_text(encoding="utf-8"), encoding="utf-8")
    assert gen.main(["--check", "--root", str(tmp_path)]) == 1  # workflow.md is missing
    assert gen.main(["--root", str(tmp_path)]) == 0
    assert gen.main(["--check", "--root", str(tmp_path)]) == 0
    roles = tmp_path / "docs" / "roles.md"
    roles.write_text(roles.read_text(encoding="utf-8").replace("| ✓ |", "|  |", 1))
    assert gen.stale(tmp_path) == [roles]


def test_roles_matrix_matches_the_declaration() -> None:
    matrix = gen.render_roles_matrix()
    header = next(line for line in matrix.splitlines() if line.startswith("| command"))
    columns = [c.strip().strip("`") for c in header.strip("|").split("|")][2:]
    for spec in mediation.WORKFLOW.commands:
        row = next(line for line in matrix.splitlines() if line.startswith(f"| `{spec.name}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")][2:]
        ticked = {col for col, cell in zip(columns, cells, strict=True) if cell == "✓"}
        assert ticked == set(spec.grants), spec.name


# -- the worked example of docs/log-format.md -----------------------------------------------------


def _example() -> list[tuple[int, bytes, str]]:
    text = (DOCS / "log-format.md").read_text(encoding="utf-8")
    bodies = dict(re.findall(r"<!-- example:(\d+):body -->\n```json\n(.*?)\n```", text))
    hashes = dict(re.findall(r"<!-- example:(\d+):hash -->\n```text\n([0-9a-f]{64})\n```", text))
    assert bodies and bodies.keys() == hashes.keys(), "worked example not found in log-format.md"
    return [(int(s), bodies[s].encode("utf-8"), hashes[s]) for s in sorted(bodies, key=int)]


def test_worked_example_hashes_as_documented() -> None:
    example = _example()
    prev = "0" * 64
    for seq, body, digest in example:
        assert hashlib.sha256(TAG + body).hexdigest() == digest, f"event {seq}"
        event = json.loads(body)
        assert (event["seq"], event["prev"]) == (seq, prev)
        # the body is canonical by RFC 8785 itself, not only by our encoder
        assert rfc8785.dumps(event) == body, f"event {seq} is not canonical"
        prev = digest
    assert example[0][0] == 1 and json.loads(example[0][1])["type"] == "report"


def test_worked_example_verifies() -> None:
    example = _example()
    case_id = json.loads(example[0][1])["case"]
    records = [StoredEvent(case_id, seq, digest, body) for seq, body, digest in example]
    first = verify(records[:1], case_id)
    assert first.ok and first.head_seq == 1, first.describe()
    assert first.head_hash == records[0].hash and first.state == "applied"
    whole = verify(records, case_id)
    assert whole.ok and whole.head_seq == len(records), whole.describe()
    altered = StoredEvent(case_id, 1, records[0].hash, records[0].body.replace(b"2026", b"2025"))
    bad = verify([altered], case_id)
    assert bad.fault is not None and bad.fault.kind.value == "altered"


def test_log_format_keeps_the_checkpoints_heading() -> None:
    text = (DOCS / "log-format.md").read_text(encoding="utf-8")
    assert "\n## Checkpoints\n" in text


# -- docs/commands.md -------------------------------------------------------------------------------


def test_every_command_example_in_commands_md_is_accepted_and_valid() -> None:
    import jsonschema

    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    examples = dict(re.findall(r"<!-- example:(\w+) -->\n```json\n(.*?)\n```", text, re.DOTALL))
    names = [spec.name for spec in mediation.WORKFLOW.commands]
    assert sorted(examples) == sorted(names)
    for name in names:
        assert f"\n### {name}\n" in text, name
        body = json.loads(examples[name])
        jsonschema.Draft202012Validator(
            mediation.web.command_schema(name),
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        ).validate(body)
        command = mediation.web.command_from_json(name, body)
        assert command.name == name


def test_commands_md_states_the_http_mapping() -> None:
    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    for cls, kind in mediation.web.PROBLEM_TYPES.items():
        assert f"| `{cls.__name__}` | {kind.status} | `{kind.slug}` |" in text, cls.__name__
    problem = json.loads(re.findall(r"```json\n(\{\n  \"type\".*?)\n```", text, re.DOTALL)[0])
    assert problem == gen.example_problem()
    assert problem["status"] == 409 and problem["guard"] == "G6" and problem["basis"]


# -- docs/api.md lists the public API --------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        mediation,
        mediation.audit,
        mediation.commands,
        mediation.stats,
        mediation.stores,
        mediation.testing,
        mediation.web,
    ],
    ids=lambda m: m.__name__,
)
def test_every_public_name_is_documented(module: object) -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [n for n in module.__all__ if f"`{n}" not in text]  # type: ignore[attr-defined]
    assert not missing, f"docs/api.md does not mention: {', '.join(missing)}"


# -- every python block runs ------------------------------------------------------------------------


def _python_blocks() -> list[pytest.ParameterSet]:
    out = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
            if "# not run" not in m.group(1):
                line = text.count("\n", 0, m.start()) + 1
                out.append(pytest.param(where, line, m.group(1), id=f"{where}:{line}"))
    return out


@pytest.mark.parametrize(("where", "line", "code"), _python_blocks())
def test_python_block_runs(
    where: str, line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    compiled = compile("\n" * line + code, where, "exec")  # tracebacks show the file's lines
    try:
        exec(compiled, {"__name__": "__doc_example__"})
    except Exception as exc:
        raise AssertionError(
            f"the ```python block at {where}:{line} fails ({type(exc).__name__}: {exc}); "
            "fix it, or put a `# not run` comment in it if it is not meant to run"
        ) from exc


def test_the_readme_counts_match_the_declaration() -> None:
    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    w = mediation.WORKFLOW
    for count in (
        f"{len(w.states)} states",
        f"{len(w.commands)} commands",
        f"{len(w.guards)} guards",
    ):
        assert count in text, f"README.md should say {count}"
