"""Write or check the documentation that is derived from the code.

    python -m mediation.docs            # (re)write the generated documentation
    python -m mediation.docs --check    # exit 1, naming the files that are out of date

Run it from the repository root (or pass ``--root``).  What it owns:

- ``docs/workflow.md``, entirely: :func:`mediation._workflow.render_markdown`.
- In ``docs/roles.md``, the parts between ``<!-- BEGIN GENERATED roles-matrix ... -->`` and
  ``<!-- END GENERATED roles-matrix -->`` (and ``roles-by-grant``): who may issue which command,
  from the declaration's roles and relations.
- In ``docs/log-format.md``, the ``worked-example`` part: two real events made by
  :class:`mediation.CaseService`, shown as their exact body bytes and hashes.

Everything else in those files is written by hand.  ``tests/test_docs.py`` fails when a generated
part differs from what this module would write.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._authz import Actor
from ._errors import MediationError
from ._events import DOMAIN_TAG, GENESIS, StoredEvent, event_hash
from ._workflow import WORKFLOW, Relation, Role, Workflow, render_markdown

__all__ = [
    "EXAMPLE_CASE",
    "example_records",
    "expected",
    "main",
    "render_example",
    "render_roles_by_grant",
    "render_roles_matrix",
    "stale",
    "write",
]

COMMAND = "python -m mediation.docs"
_BEGIN = "<!-- BEGIN GENERATED {name}: `" + COMMAND + "` writes this part; do not edit by hand -->"
_END = "<!-- END GENERATED {name} -->"

# -- roles ------------------------------------------------------------------------------------------

_GRANTS: tuple[Relation | Role, ...] = (*Relation, *Role)


def render_roles_matrix(workflow: Workflow = WORKFLOW) -> str:
    """Command × (relation, role): ✓ where the declaration lets that grant issue the command."""
    head = " | ".join(f"`{g.value}`" for g in _GRANTS)
    out = [
        "Relations to the case (left six columns) are derived from the case's log; roles (right "
        "six) count only in the case's own committee.",
        "",
        f"| command | 中文 | {head} |",
        "|---|---|" + "---|" * len(_GRANTS),
    ]
    for c in workflow.commands:
        cells = " | ".join("✓" if g.value in c.grants else "" for g in _GRANTS)
        out.append(f"| `{c.name}` | {c.zh} | {cells} |")
    return "\n".join(out)


def render_roles_by_grant(workflow: Workflow = WORKFLOW) -> str:
    """For each relation and role: the commands it may issue."""
    out = ["| relation or role | kind | may issue |", "|---|---|---|"]
    for g in _GRANTS:
        kind = "relation" if isinstance(g, Relation) else "role"
        names = [f"`{c.name}`" for c in workflow.commands if g.value in c.grants]
        out.append(f"| `{g.value}` | {kind} | {', '.join(names) or '— (read-only)'} |")
    return "\n".join(out)


# -- the worked example of the log format -----------------------------------------------------------

EXAMPLE_CASE = "case-2026-0001"
_EXAMPLE_START = _dt.datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=_dt.timezone.utc)


def example_records() -> list[StoredEvent]:
    """The first two events of a case, made by the real command path on a fixed clock."""
    from . import commands as cmd
    from ._service import CaseService
    from .stores.memory import MemoryStore

    times = iter((_EXAMPLE_START, _EXAMPLE_START + _dt.timedelta(hours=1, minutes=30)))
    service = CaseService(MemoryStore(), clock=lambda: next(times))
    platform = Actor.with_roles("platform", {"rongyue": ["system"]})
    service.open(
        platform,
        cmd.Report(
            committee="rongyue",
            category="邻里",
            subtype="噪声",
            description="15 楼住户投诉 14 楼夜间噪声",
            applicants=(cmd.Party("res-1502", "陈女士"),),
            respondents=(cmd.Party("res-1402", "刘先生"),),
            source="early_warning",
            source_ref="alert-0417",
        ),
        case_id=EXAMPLE_CASE,
    )
    service.execute(Actor("res-1402"), EXAMPLE_CASE, cmd.RecordConsent())
    return service.store.read(EXAMPLE_CASE)


def render_example(records: Sequence[StoredEvent] | None = None) -> str:
    """Each record as its exact body bytes, its hash and a readable (non-normative) rendering."""
    records = list(example_records() if records is None else records)
    out: list[str] = []
    for rec in records:
        text = rec.body.decode("utf-8")
        body = json.loads(text)
        prev = "the genesis value (64 zeros)" if body["prev"] == GENESIS else "the hash of event 1"
        out += [
            f"### Event {rec.seq}: `{body['type']}`",
            "",
            f"Body bytes: {len(rec.body)} bytes of UTF-8, exactly the line below (no trailing "
            f"newline); `prev` is {prev}.",
            "",
            f"<!-- example:{rec.seq}:body -->",
            "```json",
            text,
            "```",
            "",
            f"SHA-256 of `{DOMAIN_TAG.hex()}` (the {len(DOMAIN_TAG)} bytes "
            "`mediation.event.v1` and a NUL) followed by those body bytes:",
            "",
            f"<!-- example:{rec.seq}:hash -->",
            "```text",
            event_hash(rec.body),
            "```",
            "",
            "The same object indented, for reading only (these are not the hashed bytes):",
            "",
            "```json",
            json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True),
            "```",
            "",
        ]
    return "\n".join(out).rstrip("\n")


# -- files ------------------------------------------------------------------------------------------

#: generated parts of hand-written files: file -> (part name, renderer)
PARTS: dict[str, tuple[tuple[str, Callable[[], str]], ...]] = {
    "docs/roles.md": (
        ("roles-matrix", render_roles_matrix),
        ("roles-by-grant", render_roles_by_grant),
    ),
    "docs/log-format.md": (("worked-example", render_example),),
}
#: files that are generated entirely
WHOLE: dict[str, Callable[[], str]] = {"docs/workflow.md": render_markdown}


class DocsError(MediationError):
    """A hand-written file lacks the markers of a generated part."""


def _splice(text: str, name: str, content: str, where: str) -> str:
    begin, end = _BEGIN.format(name=name), _END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise DocsError(f"{where}: needs exactly one pair of lines\n  {begin}\n  {end}")
    return pattern.sub(lambda _: f"{begin}\n{content}\n{end}", text)


def expected(root: Path) -> dict[Path, str]:
    """What every generated file should contain, given the hand-written parts under ``root``."""
    out = {root / rel: render() for rel, render in WHOLE.items()}
    for rel, parts in PARTS.items():
        path = root / rel
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for name, render in parts:
            text = _splice(text, name, render(), rel)
        out[path] = text
    return out


def stale(root: Path) -> list[Path]:
    """The generated files under ``root`` that are missing or differ from :func:`expected`."""
    return [
        path
        for path, text in expected(root).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def write(root: Path) -> list[Path]:
    """Rewrite the stale files; return them."""
    changed = stale(root)
    wanted = expected(root)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8", newline="\n")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write (or check) the documentation generated from the code."
    )
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    args = parser.parse_args(argv)
    root: Path = args.root
    if not (root / "pyproject.toml").is_file():
        print(
            f"{root} is not the repository root (no pyproject.toml); pass --root", file=sys.stderr
        )
        return 2
    try:
        if args.check:
            out_of_date = stale(root)
            for path in out_of_date:
                print(f"{path.relative_to(root)} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1 if out_of_date else 0
        for path in write(root):
            print(f"wrote {path.relative_to(root)}")
    except DocsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
