"""``mediation roster``: keep a committee's roster (人员名录) in the store, and read it.

::

    mediation roster sync   --db URL --actor ID --basis TEXT [--committee C] FILE|-
    mediation roster grant  --db URL --actor ID --committee C --person P --role R --basis TEXT
    mediation roster revoke --db URL --actor ID --committee C --person P --role R --basis TEXT
    mediation roster show   --db URL --committee C [--seq N] [--json]

``sync`` brings each committee named in FILE (the host's directory, the same JSON as ``verify
--directory``: ``{"person": {"committee": ["role", ...]}}``; or only ``--committee``) in step with
it, in one batch per committee, opening the roster with ``--actor`` as its registrar if there is
none.  Every change names who made it (``--actor``), when, and on what basis (``--basis``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Any

from .._authz import Actor
from .._errors import CaseNotFound, InvalidCommand
from .._report import ExitCode
from .._roster import REGISTRAR, Roster, RosterEntry, roster_payload, verify_roster
from .._service import CaseService
from .._timeline import local_time
from ._common import (
    AddParser,
    Context,
    _Fail,
    describe_with_line,
    json_out,
    msg,
    open_db,
    say,
    verdict_code,
    zone_label,
)
from ._sources import Source

__all__ = ["register", "run", "timeline"]


def register(add: AddParser) -> None:
    sp = add("roster", "keep and read a committee's roster (who held which role, since when)")
    sub = sp.add_subparsers(dest="roster_command", required=True, metavar="ACTION")

    def writer(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--db", required=True, metavar="URL")
        p.add_argument("--actor", required=True, metavar="ID", help="the registrar recording it")
        p.add_argument(
            "--basis", required=True, metavar="TEXT", help="on what basis (election, appointment)"
        )
        return p

    sync = writer("sync", "record the host's directory: grant what is missing, revoke the rest")
    sync.add_argument("file", metavar="FILE", help='{"person": {"committee": ["role", ...]}} or -')
    sync.add_argument("--committee", metavar="C", help="only this committee of the file")
    for name, help in (("grant", "record a grant"), ("revoke", "record a revocation")):
        p = writer(name, help)
        p.add_argument("--committee", required=True, metavar="C")
        p.add_argument("--person", required=True, metavar="P")
        p.add_argument(
            "--role", required=True, metavar="R", help=f"a committee role or {REGISTRAR}"
        )
    show = sub.add_parser("show", help="who holds which role (now, or after entry --seq)")
    show.add_argument("--db", required=True, metavar="URL")
    show.add_argument("--committee", required=True, metavar="C")
    show.add_argument("--seq", type=int, metavar="N", help="as it stood after entry N")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    lang = ctx.lang
    with contextlib.closing(open_db(args.db, lang, write=args.roster_command != "show")) as store:
        service = CaseService(store)
        if args.roster_command == "show":
            return _show(service, args, ctx)
        actor = Actor(args.actor)
        if args.roster_command == "sync":
            written: list[RosterEntry] = []
            for committee, holders in _directory(args, ctx).items():
                written += service.sync_roster(actor, committee, holders, basis=args.basis)
        elif args.roster_command == "grant":
            written = [
                service.grant_role(actor, args.committee, args.person, args.role, basis=args.basis)
            ]
        else:
            written = [
                service.revoke_role(actor, args.committee, args.person, args.role, basis=args.basis)
            ]
    for entry in written:
        say(ctx.out, _line(entry, ctx))
    say(ctx.out, msg(lang, f"已记录 {len(written)} 条", f"{len(written)} entr(ies) recorded"))
    return int(ExitCode.OK)


def _directory(args: argparse.Namespace, ctx: Context) -> dict[str, dict[str, list[str]]]:
    """The file's holders by committee: committee -> person -> roles."""
    lang = ctx.lang
    try:
        if args.file == "-":
            data = json.loads(ctx.stdin.read())
        else:
            with open(args.file, encoding="utf-8") as f:
                data = json.load(f)
    except FileNotFoundError:
        raise _Fail(
            ExitCode.IO, msg(lang, f"找不到文件 {args.file}", f"no such file: {args.file}")
        ) from None
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot read {args.file}: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:
        raise _Fail(ExitCode.INPUT, f"{args.file} is not JSON: {exc}") from exc
    out: dict[str, dict[str, list[str]]] = {}
    if not isinstance(data, dict):
        raise InvalidCommand("the directory must be an object of person ids")
    for person, roles in data.items():
        if not isinstance(roles, dict) or not all(
            isinstance(r, list) and all(isinstance(x, str) for x in r) for r in roles.values()
        ):
            raise InvalidCommand(f"{person!r:.80}: expected {{committee: [role, ...]}}")
        for committee, held in roles.items():
            out.setdefault(committee, {})[person] = held
    if args.committee is not None:
        return {args.committee: out.get(args.committee, {})}
    if not out:
        raise InvalidCommand("the directory names no committee (give --committee to empty one)")
    return out


def _line(entry: RosterEntry, ctx: Context) -> str:
    p = roster_payload(entry.command)
    what = (
        f"{entry.command.name} {p.get('person', '')} {p.get('role', '')}".rstrip()
        if "person" in p
        else f"{entry.command.name} {', '.join(p['registrars'])}"
    )
    when = local_time(entry.at, ctx.tz)
    return f"#{entry.seq} {when} {entry.actor}: {what} ({p['basis']})"


def _show(service: CaseService, args: argparse.Namespace, ctx: Context) -> int:
    lang = ctx.lang
    roster = service.roster(args.committee)
    if roster is None:
        raise _Fail(
            ExitCode.INPUT,
            msg(
                lang,
                f"调委会 {args.committee} 没有人员名录",
                f"committee {args.committee} keeps no roster",
            ),
        )
    seq = roster.seq if args.seq is None else args.seq
    if not 1 <= seq <= roster.seq:
        raise _Fail(ExitCode.INPUT, f"--seq {seq}: the roster has entries 1 to {roster.seq}")
    holders = roster.holders(seq)
    if args.json:
        json_out(ctx.out, _json(roster, seq, holders, ctx))
        return int(ExitCode.OK)
    say(ctx.out, msg(lang, f"时间：{zone_label(ctx.tz)}", f"times: {zone_label(ctx.tz)}"))
    for entry in roster.entries[:seq]:
        say(ctx.out, _line(entry, ctx))
    say(ctx.out, msg(lang, f"第 {seq} 条之后：", f"after entry {seq}:"))
    for person, roles in holders.items():
        say(ctx.out, f"  {person}: {', '.join(sorted(roles))}")
    return int(ExitCode.OK)


def _json(roster: Roster, seq: int, holders: dict[str, frozenset[str]], ctx: Context) -> Any:
    return {
        "committee": roster.committee,
        "seq": seq,
        "head": roster.head,
        "tz": ctx.tz.key,
        "holders": {p: sorted(r) for p, r in holders.items()},
        "entries": [
            {
                "seq": e.seq,
                "at": e.at,
                "at_local": local_time(e.at, ctx.tz),
                "actor": e.actor,
                "type": e.command.name,
                "payload": roster_payload(e.command),
            }
            for e in roster.entries[:seq]
        ],
    }


def timeline(src: Source, stream_id: str, as_json: bool, ctx: Context) -> int:
    """``mediation timeline @roster:C``: a committee's roster, entry by entry as far as it
    verifies, then its verdict (the exit code follows the verdict, as for a case)."""
    try:
        records, line_of = src.case(stream_id)
    except CaseNotFound as exc:
        raise CaseNotFound(
            f"no roster {stream_id} in {src.label}",
            message_zh=f"{src.label} 中没有人员名录 {stream_id}",
            case=stream_id,
        ) from exc
    verdict, roster = verify_roster(records, stream_id)
    code = int(verdict_code(verdict))
    if as_json:
        found = verdict.to_json()
        if verdict.fault is not None and line_of is not None:
            line = line_of(verdict.fault.seq)
            if line is not None:
                found["line"] = line
        document = _json(roster, roster.seq, roster.holders(), ctx)
        json_out(ctx.out, {"roster": roster.committee, **document, "verdict": found, "exit": code})
        return code
    lang = ctx.lang
    say(ctx.out, msg(lang, f"时间：{zone_label(ctx.tz)}", f"times: {zone_label(ctx.tz)}"))
    for entry in roster.entries:
        say(ctx.out, _line(entry, ctx))
    say(ctx.out, "")
    say(ctx.out, describe_with_line(verdict, line_of, lang))
    return code
