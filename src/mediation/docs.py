"""Write or check the documentation that is derived from the code.

    python -m mediation.docs            # (re)write the generated documentation
    python -m mediation.docs --check    # exit 1, naming the files that are out of date

Run it from the repository root (or pass ``--root``).  What it owns:

- ``docs/workflow.md``, entirely: :func:`render_markdown`.
- ``docs/commands.md``, entirely: :func:`render_commands` (the HTTP mapping of
  :mod:`mediation.web`, and every command's body schema, authority, guards, basis and example).
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
import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import _validators
from ._authz import Actor, StaticDirectory
from ._diagrams import mermaid_lines
from ._errors import MediationError
from ._events import DOMAIN_TAG, GENESIS, StoredEvent, event_hash
from ._privacy import AESGCMVault
from ._workflow import NEW, WORKFLOW, CommandSpec, Relation, Role, Workflow, registered

__all__ = [
    "EXAMPLE_CASE",
    "example_problem",
    "example_records",
    "expected",
    "main",
    "render_commands",
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


#: what version 2 decided, and why (issue 10, items 4 and 6), written once here
_VERSION_NOTES = (
    "### Version 2 in detail",
    "",
    "A version that changes what a guard checks keeps the guard's name and names a new "
    "implementation (`GuardSpec.impl`: G2 and G4 of version 2 are `G2@2` and `G4@2`), so the "
    "cases of version 1 are decided and replayed with the functions they always were.",
    "",
    "**Levels (NB12).** `escalate` moves a case one level up, L0 楼栋 → L1 社区 → L2 街道; each "
    "step is kept on the case with its reason (`Case.escalations`: from, to, reason). The street "
    "level takes part in the same case; moving the case to another committee is a transfer.",
    "",
    "**Transfer and links (PML25, 34).** A `transfer` with `to: street_committee` names the "
    "receiving committee by its id (`target`) and the case it opens there (`new_case`; when it "
    "is empty the service derives one from the transfer's place, `CaseService.transfer_case_id`, "
    "the same on every service and retry). The "
    "service writes the transfer and the receiving case's opening event, `receive_transfer` (by "
    "the transferring director, authorized in the origin committee: `CommandSpec.authority`), in "
    "one `store.transaction()`: both or neither. The new case carries the origin's parties, "
    "category and description, opens at L2 in `applied`, and is accepted (`register`, after the "
    "respondents' consent) or declined there by that committee's director. A host cannot issue "
    "`receive_transfer` itself. A transfer to the police, an authority or a court links no case "
    "of the store (`new_case` must be empty). A single-case `verify` checks its own side only "
    "(the transfer names a case; the opening names an origin); `verify_store` checks that each "
    "link's other end exists and names this case back, else a `case_link` fault (integrity) on "
    "the case whose link is not answered. Version 1's transfers link nothing and are not "
    "link-checked.",
    "",
    "**No dead ends (R2002 25; PML19, 31).** A recusal is accepted in every registered active "
    "state, so a replacement can now be assigned in each of them: after the agreement is drafted "
    "only while the case has no lead mediator (`replacement_only`). The replacement, not the "
    "director, carries the case on: follow-up visits (PML31), a mediator's signature (PML29) and "
    "reopening are a mediator's acts, and the committee's power to designate its mediators "
    "(PML19) is what a recusal leaves it to use. `tests/test_levels.py` checks over the "
    "declaration that from every such state a terminal state is reachable once the only mediator "
    "is removed, and drives every (state, recusal) pair through the service to the archive.",
    "",
    "**The smaller rule gaps.**",
    "",
    "| gap found in version 1 | version 2 | basis |",
    "|---|---|---|",
    "| the property-company rule fired only for a party recorded as an organisation | an "
    "employee of any party (by `employer`, a party's id or name, or an `employee` tie) never acts "
    "on the case, never waivable; a `property_manager` invitee names their employer | R2002 25; "
    "TY2016 15 |",
    "| an invitee employed by a party who is a person was accepted | refused (the same rule) | "
    "R2002 25 |",
    "| a party holding the committee's mediator role could escalate its own case under it | "
    "`impartial`: nobody acts under a committee role on a case they are a party or agent of | "
    "R2002 25 |",
    "| one person could be invitee and co-mediator, the signature counting as the mediator's | "
    "G4: an invitee is never assigned as mediator, a mediator never invited | PML20, 29 |",
    "| one party alone could replace the lead mediator | a party's `assign_mediator` is that "
    "party's choice; the mediator is assigned once every party made the same one "
    "(`Case.mediator_choices`); the director's assignment takes effect at once | PML19 |",
    "| a director who is a party could register and seal their own case | `impartial` on every "
    "command issued under a role; another director of the committee acts, or the case is "
    "withdrawn and taken elsewhere | R2002 25 |",
    "| `record_judicial_confirmation` was accepted after the archive | refused (`not_archived`); "
    "a case is not archived while an application awaits the court (`judicial_settled`) | PML27, "
    "33 |",
    "| G2 let a 确认婚姻无效 case register | G2 also refuses a dispute whose description names a "
    "status matter (婚姻无效, 撤销婚姻, 收养关系, 亲子关系, 身份关系 …), whatever the director's "
    "scope says | CC1051-1054, 1073, 1105 |",
    "| a criminal flag forced no referral | left as it was, documented: G2 refuses to register a "
    "criminal or public-security matter and names the referral, which is the director's "
    "`transfer` to the police (linking no case); a refused command records nothing, so the "
    "library cannot hold the flag to force the next step. The acceptance deadline's early "
    "warning is what keeps such a case from being forgotten | R2002 22; PML25 |",
    "",
)


def render_markdown(workflow: Workflow = WORKFLOW) -> str:
    """``docs/workflow.md``: the state table, the command table and a mermaid diagram."""
    out = [
        "# The workflow",
        "",
        "<!-- Generated from mediation._workflow.WORKFLOW by `python -m mediation.docs`; "
        "a test keeps it in sync. Do not edit by hand. -->",
        "",
        f"Workflow version: `{workflow.version}`.",
        "",
        "## Versions",
        "",
        "A case is decided and replayed for ever on the version it was opened on (its first "
        "event names it); new cases take the current one.",
        "",
        "| version | what changed |",
        "|---|---|",
        *(
            f"| `{w.version}` | {w.changes} |"
            for w in registered()
            if w.version.startswith("mediation-workflow/")
        ),
        "",
        *_VERSION_NOTES,
        "## States",
        "",
        "| stage | state | 中文 | English | terminal |",
        "|---|---|---|---|---|",
    ]
    for s in workflow.states:
        stage = f"{s.stage.zh} {s.stage.en}" if s.stage else "any 任一"
        out.append(f"| {stage} | `{s.name}` | {s.zh} | {s.en} | {'yes' if s.terminal else ''} |")
    out += [
        "",
        "## Commands",
        "",
        "`—` is a case that does not exist yet. A target of *(same)* records the command without "
        "changing state.",
        "",
        "| command | 中文 | from | to | who (relations; roles) | guards | basis |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in workflow.commands:
        src = ", ".join("—" if s == NEW else f"`{s}`" for s in c.sources)
        tgt = f"`{c.target}`" if c.target else "*(same)*"
        if c.completes_when:
            tgt += f" once {c.completes_when} holds"
        who = ", ".join(r.value for r in c.relations)
        if c.roles:
            who += ("; " if who else "") + ", ".join(r.value for r in c.roles)
        guards = ", ".join(c.guards) or ""
        out.append(f"| `{c.name}` | {c.zh} | {src} | {tgt} | {who} | {guards} | {c.basis} |")
    out += ["", "## Guards", "", "| guard | 中文 | English | basis |", "|---|---|---|---|"]
    for g in workflow.guards:
        out.append(f"| `{g.name}` | {g.zh} | {g.en} | {g.basis} |")
    out += [
        "",
        "## From each state",
        "",
        "The commands the declaration allows from each state (who may issue them, and whether "
        "their guards hold, is decided per command).",
        "",
        "| state | commands |",
        "|---|---|",
    ]
    for name in (NEW, *(s.name for s in workflow.states)):
        allowed = ", ".join(f"`{c.name}`" for c in workflow.commands_from(name)) or "none"
        out.append(f"| {'—' if name == NEW else f'`{name}`'} | {allowed} |")
    out += [
        "",
        "## Diagram",
        "",
        "Commands that keep the state (*(same)* above) are not drawn; `sign` reaches its target "
        "only once its completion guard holds.",
        "",
        "```mermaid",
        "stateDiagram-v2",
    ]
    out += ["    " + line for line in mermaid_lines(workflow)]
    out += ["```", ""]
    return "\n".join(out)


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


class _ExampleVault:
    """A vault with a fixed key and nonces derived from each value's place, so that the example is
    the same every time it is generated.  Never seal real data so: :class:`~mediation.AESGCMVault`
    draws a random key per case, person and epoch, and a random nonce per value."""

    _KEY = hashlib.sha256(b"mediation docs example key (public: never use)").digest()

    def seal(self, case_id: str, subject: str, plaintext: str, context: bytes) -> tuple[int, bytes]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = hashlib.sha256(context).digest()[:12]
        aad = AESGCMVault._aad(context, 1)  # bound as the library's vault binds it
        return 1, nonce + AESGCM(self._KEY).encrypt(nonce, plaintext.encode(), aad)

    def open(
        self, case_id: str, subject: str, epoch: int, blob: bytes, context: bytes
    ) -> str | None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aad = AESGCMVault._aad(context, epoch)
        return AESGCM(self._KEY).decrypt(blob[:12], blob[12:], aad).decode()

    def erase(self, case_id: str, subject: str | None = None) -> int:
        return 0


def example_records() -> list[StoredEvent]:
    """The first two events of a case, made by the real command path on a fixed clock (and, so
    that the document does not change each time, a vault with a fixed key and nonces)."""
    from . import commands as cmd
    from ._service import CaseService
    from .stores.memory import MemoryStore

    times = iter((_EXAMPLE_START, _EXAMPLE_START + _dt.timedelta(hours=1, minutes=30)))
    service = CaseService(MemoryStore(), clock=lambda: next(times), vault=_ExampleVault())
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


# -- docs/commands.md ---------------------------------------------------------------------------------

_PATTERN_WORDS = {
    _validators.ID_PATTERN: "an id: 1–64 of `A-Z a-z 0-9 _ . : @ -`, first a letter or digit",
    _validators.OPT_ID_PATTERN: '`""` or an id (1–64 of `A-Z a-z 0-9 _ . : @ -`)',
    _validators.SHA256_PATTERN: "64 lowercase hex digits",
    _validators.MEDIA_TYPE_PATTERN: "a lowercase media type, `type/subtype`",
    _validators.TEXT_PATTERN: "no control characters but tab and newline",
    _validators.REQUIRED_TEXT_PATTERN: "not blank; no control characters but tab and newline",
    _validators.DATE_PATTERN: "`YYYY-MM-DD`",
    _validators.DATETIME_PATTERN: "RFC 3339 with `Z` or an offset, e.g. `2026-03-05T19:00:00+08:00`",
}


def _code(value: object) -> str:
    text = (
        json.dumps(value, ensure_ascii=False) if not isinstance(value, str) or not value else value
    )
    return f"`{text}`"


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_type_of(schema['items'])}"
    if "format" in schema:
        return f"string ({schema['format']})"
    return kind


def _constraints(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return "; ".join(c for c in (_constraints(s) for s in schema["anyOf"]) if c)
    parts: list[str] = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(_code(v) for v in schema["enum"]))
    if "minimum" in schema or "maximum" in schema:
        parts.append(f"{schema['minimum']}–{schema['maximum']}")
    if "maxLength" in schema and schema.get("pattern") not in (
        _validators.ID_PATTERN,
        _validators.OPT_ID_PATTERN,
    ):
        parts.append(f"at most {schema['maxLength']} characters")
    if "pattern" in schema:
        pattern = schema["pattern"]
        parts.append(_PATTERN_WORDS.get(pattern, f"matches `{pattern}`"))
    if schema.get("type") == "array":
        parts.append(f"{schema.get('minItems', 0)}–{schema['maxItems']} items")
        inner = _constraints(schema["items"])
        if inner:
            parts.append(f"each {inner}")
    return "; ".join(parts)


def _field_table(schema: dict[str, Any]) -> list[str]:
    properties: dict[str, Any] = schema["properties"]
    if not properties:
        return ["No fields: the body is the empty object `{}`."]
    required = set(schema.get("required", ()))
    out = ["| field | type | required / default | constraints |", "|---|---|---|---|"]
    for name, prop in properties.items():
        need = "required" if name in required else f"default {_code(prop['default'])}"
        out.append(f"| `{name}` | {_type_of(prop)} | {need} | {_constraints(prop)} |")
    if "$comment" in schema:
        out += ["", f"Also checked: {schema['$comment']}."]
    return out


def _who(spec: CommandSpec) -> str:
    parts = []
    if spec.relations:
        parts.append("relations " + ", ".join(f"`{r.value}`" for r in spec.relations))
    if spec.roles:
        parts.append("roles " + ", ".join(f"`{r.value}`" for r in spec.roles))
    return "; ".join(parts)


def _guard_line(name: str, workflow: Workflow) -> str:
    g = workflow.guard(name)
    return f"`{g.name}` {g.zh} — {g.en} ({g.basis})"


#: the case and clock of the example problem body
_PROBLEM_CASE = "case-2026-0002"


def example_problem() -> dict[str, Any]:
    """A real problem body: scheduling the meeting before the parties were told their rights."""
    from . import commands as cmd
    from ._service import CaseService
    from ._web import problem
    from .stores.memory import MemoryStore

    directory = StaticDirectory()
    director = directory.add(Actor.with_roles("dir-li", {"rongyue": ["director"]}))
    mediator = directory.add(Actor.with_roles("med-wang", {"rongyue": ["mediator"]}))
    service = CaseService(MemoryStore(), clock=lambda: _EXAMPLE_START, directory=directory)
    service.open(
        Actor("res-1502"),
        cmd.Apply(
            committee="rongyue",
            category="邻里",
            subtype="噪声",
            description="楼上夜间噪声",
            applicants=(cmd.Party("res-1502", "陈女士"),),
            respondents=(cmd.Party("res-1402", "刘先生"),),
        ),
        case_id=_PROBLEM_CASE,
    )
    service.execute(Actor("res-1402"), _PROBLEM_CASE, cmd.RecordConsent())
    service.execute(director, _PROBLEM_CASE, cmd.Register())
    service.execute(director, _PROBLEM_CASE, cmd.AssignMediator("med-wang", lead=True))
    meeting = cmd.ScheduleMeeting(_EXAMPLE_START + _dt.timedelta(days=3), "荣悦调解室")
    try:
        service.execute(mediator, _PROBLEM_CASE, meeting)
    except MediationError as exc:
        return problem(exc, instance=f"/cases/{_PROBLEM_CASE}/commands/schedule_meeting").body
    raise AssertionError("the example command was expected to fail G6")


def render_commands(workflow: Workflow = WORKFLOW) -> str:
    """``docs/commands.md``: the HTTP mapping, then every command's body, authority and basis."""
    from . import web
    from ._commands import COMMAND_TYPES

    out = [
        "# Commands",
        "",
        "<!-- Generated from mediation._workflow.WORKFLOW and the classes of mediation.commands "
        f"by `{COMMAND}`; a test keeps it in sync. Do not edit by hand. -->",
        "",
        "Every command a host can issue: the JSON body it takes, who may issue it, from which "
        "states, what must hold and on what legal basis. The field tables are rendered from the "
        "JSON Schema that `mediation.web.command_schema(name)` returns, which is derived from the "
        "validators of the command classes, the same validation that the service and replay run; "
        "every example body below is checked by `tests/test_docs.py` against "
        "`mediation.web.command_from_json` and the schema. Abbreviations of legal sources are "
        "those of [workflow.md](workflow.md).",
        "",
        "## Over HTTP",
        "",
        "`mediation.web` converts and decides nothing; the host's framework routes and "
        "authenticates. A command arrives as a JSON object whose members are its fields (for "
        "instance `POST /cases/{case}/commands/{name}`): `command_from_json(name, body)` builds it, "
        "`CaseService.execute` runs it, `event_json` renders the event. Members with a default may "
        "be left out; unknown members are refused. Dates are `YYYY-MM-DD`; date-times are RFC 3339 "
        "with `Z` or an offset (a naive one is refused; digits beyond microseconds are cut); "
        "integers are written without a fraction; text is valid Unicode without control "
        "characters other than tab and newline.",
        "",
        "Any exception becomes `problem(exc)`: an HTTP status and an RFC 9457 body "
        f"(`{web.PROBLEM_CONTENT_TYPE}`) whose `type` is `{web.PROBLEM_BASE}<slug>` (the `.invalid` "
        "domain never resolves: the URI names the kind of problem and this table documents it). "
        "`detail` is English and `detail_zh` Chinese; the error's structured fields are members "
        "(`case`, `state`, `command`, `actor`, `seq`, `guard`, `basis`, `field`, `expected_seq`, "
        "`request_id`, `clock`, `last`, `tolerance`), and a refusal naming a command carries that "
        "command's legal `basis`. An error takes the row of its nearest class:",
        "",
        "| error | status | type slug | title | 标题 |",
        "|---|---|---|---|---|",
    ]
    for error, kind in web.PROBLEM_TYPES.items():
        out.append(
            f"| `{error.__name__}` | {kind.status} | `{kind.slug}` | {kind.title} | {kind.title_zh} |"
        )
    out += [
        "| any other exception | 500 | `internal-error` | Internal server error (the body says "
        "nothing about the exception) | 服务器内部错误 |",
        "",
        "A 503 `outcome-unknown` means the store lost contact after the write was sent: the "
        "event may or may not be stored. Send the same command again with the same request id; if "
        "the first attempt was committed, the service returns its event instead of writing "
        "another. A 409 `concurrency-conflict` means another writer appended to the case first: "
        "read the case again and decide whether the command still makes sense.",
        "",
        "For example, a mediator schedules the meeting before the parties were told their rights "
        "and duties (G6):",
        "",
        "```json",
        json.dumps(example_problem(), ensure_ascii=False, indent=2),
        "```",
        "",
        "## The commands",
        "",
        "| command | 中文 | class | from | to |",
        "|---|---|---|---|---|",
    ]
    for spec in workflow.commands:
        cls = COMMAND_TYPES[spec.name]
        src = ", ".join("—" if s == NEW else f"`{s}`" for s in spec.sources)
        tgt = f"`{spec.target}`" if spec.target else "*(same)*"
        out.append(
            f"| [`{spec.name}`](#{spec.name}) | {spec.zh} | `{cls.__name__}` | {src} | {tgt} |"
        )
    value_objects: dict[str, Any] = {}
    for spec in workflow.commands:
        cls = COMMAND_TYPES[spec.name]
        schema = web.command_schema(spec.name)
        value_objects.update(schema.get("$defs", {}))
        src = ", ".join("— (no case yet)" if s == NEW else f"`{s}`" for s in spec.sources)
        if spec.target is None:
            tgt = "*(same state)*"
        elif spec.completes_when:
            tgt = (
                f"`{spec.target}` once {_guard_line(spec.completes_when, workflow)}; "
                "until then the state stays"
            )
        else:
            tgt = f"`{spec.target}`"
        guards = "<br>".join(_guard_line(g, workflow) for g in spec.guards) or "—"
        out += [
            "",
            f"### {spec.name}",
            "",
            f"**{spec.zh}** — {spec.en}. Class `commands.{cls.__name__}`.",
            "",
            schema["description"],
            "",
            "| | |",
            "|---|---|",
            f"| from | {src} |",
            f"| to | {tgt} |",
            f"| who | {_who(spec)} |",
            f"| guards | {guards} |",
            f"| legal basis | {spec.basis} |",
            "",
            *_field_table(schema),
            "",
            f"<!-- example:{spec.name} -->",
            "```json",
            json.dumps(schema["examples"][0], ensure_ascii=False, indent=2),
            "```",
        ]
    out += [
        "",
        "## Value objects",
        "",
        "Objects nested in command bodies (`$defs` of the schemas).",
    ]
    for name, schema in sorted(value_objects.items()):
        out += ["", f"### {name}", "", schema["description"], "", *_field_table(schema)]
    out.append("")
    return "\n".join(out)


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
WHOLE: dict[str, Callable[[], str]] = {
    "docs/workflow.md": render_markdown,
    "docs/commands.md": render_commands,
}


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
