"""``mediation erase`` and ``mediation keys``: erase personal data, rotate the sealing keys.

::

    mediation erase --db URL --actor ID --basis TEXT CASE [--person P]
    mediation keys status --db URL
    mediation keys rotate --db URL

``erase`` records an ``erase_personal_data`` event on the case (``--actor`` acting as the
committee's director; where the committee keeps a roster, it must record them as one), then
destroys the keys the person's (or, without ``--person``, the whole case's) personal data was
sealed under (PIPL 47).  ``keys rotate`` starts a new key epoch: values sealed from then on use new
keys, old ones keep theirs.  Both work on the store's own key store (``<db>.keys`` beside a SQLite
file, the schema ``mediation_keys`` of a PostgreSQL database); docs/privacy.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os

from .._authz import Actor
from .._keys import key_file
from .._report import ExitCode
from .._service import CaseService
from .._timeline import local_time
from ._common import AddParser, Context, json_out, msg, open_db, parse_db, say

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("erase", "erase a person's (or a case's) personal data: record it, destroy the keys")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--actor", required=True, metavar="ID", help="the committee's director")
    sp.add_argument(
        "--basis", required=True, metavar="TEXT", help='the legal basis, e.g. "PIPL 47(1)3"'
    )
    sp.add_argument("--person", default="", metavar="P", help="a party or agent (default: all)")
    sp.add_argument("case", metavar="CASE")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(run=run)
    keys = add("keys", "the sealing keys of the store: their epoch, and rotating it")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    for name, help in (
        ("status", "the current key epoch"),
        ("rotate", "start a new key epoch for values sealed from now on"),
    ):
        p = sub.add_parser(name, help=help)
        p.add_argument("--db", required=True, metavar="URL")
        p.add_argument("--json", action="store_true", help="machine-readable output")
    keys.set_defaults(run=run_keys)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with contextlib.closing(open_db(args.db, ctx.lang, write=True, create=False)) as store:
        service = CaseService(store)
        case = service.case(args.case)
        actor = Actor.with_roles(args.actor, {case.committee: ["director"]})
        event = service.erase(actor, args.case, basis=args.basis, person=args.person)
    who = args.person or msg(ctx.lang, "整个案件", "the whole case")
    if args.json:
        json_out(
            ctx.out,
            {"case": args.case, "person": args.person, "seq": event.seq, "hash": event.hash},
        )
        return int(ExitCode.OK)
    when = local_time(event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), ctx.tz)
    say(
        ctx.out,
        msg(
            ctx.lang,
            f"已删除 {who} 的个人信息：第 {event.seq} 号事件（{when}），密钥已销毁",
            f"personal data of {who} erased: event {event.seq} ({when}), keys destroyed",
        ),
    )
    return int(ExitCode.OK)


def run_keys(args: argparse.Namespace, ctx: Context) -> int:
    status = args.keys_command == "status"
    with contextlib.closing(open_db(args.db, ctx.lang, write=not status, create=False)) as s:
        path = parse_db(args.db, ctx.lang).sqlite_path
        if status and path is not None and not os.path.exists(key_file(path)):
            epoch = 1  # no key store yet (nothing sealed): reading does not create one
        else:
            keys = s.key_store()
            epoch = keys.epoch() if status else keys.rotate()
    if args.json:
        json_out(ctx.out, {"epoch": epoch})
    elif args.keys_command == "rotate":
        say(ctx.out, msg(ctx.lang, f"新的密钥周期：{epoch}", f"new key epoch: {epoch}"))
    else:
        say(ctx.out, msg(ctx.lang, f"当前密钥周期：{epoch}", f"current key epoch: {epoch}"))
    return int(ExitCode.OK)
