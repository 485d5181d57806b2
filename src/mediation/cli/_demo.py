"""``mediation demo``: the worked example (a noise or a leak dispute) written to a SQLite store,
shown as a timeline, and verified."""

from __future__ import annotations

import argparse
import contextlib

from .._audit import verify
from .._report import timeline_lines
from .._roster import rosters_of
from .._views import view_case
from ._common import (
    AddParser,
    Context,
    msg,
    open_db,
    parse_db,
    role_arg,
    say,
    verdict_code,
    zone_label,
)
from ._sources import viewer

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("demo", "run the worked example on SQLite and show it")
    sp.add_argument(
        "--db",
        default="mediation-demo.db",
        metavar="PATH",
        help="SQLite file (default mediation-demo.db)",
    )
    sp.add_argument(
        "--scenario",
        choices=("noise", "leak"),
        default="noise",
        help="noise: resolved; leak: failed",
    )
    role_arg(sp)
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..demo import SCENARIOS, new_service, record_roster

    out, lang = ctx.out, ctx.lang
    where = parse_db(args.db, lang).display
    with contextlib.closing(open_db(args.db, lang, write=True)) as store:
        service = new_service(store)
        record_roster(service)  # the roles of the day, as evidence in the same store
        case_id = SCENARIOS[args.scenario](service)
        case = service.case(case_id)
        actor = viewer(case, args.role, lang)
        view = view_case(case, service.history(case_id), actor, False)
        verdict = verify(store.read(case_id), case_id, strict=True, rosters=rosters_of(store))
    say(out, msg(lang, f"演示案件已写入 {where}", f"demo case written to {where}"))
    zone = zone_label(ctx.tz)
    for line in timeline_lines(view, lang=lang, subtype=case.subtype, tz=ctx.tz, zone=zone):
        say(out, line)
    say(out, "")
    say(out, verdict.describe(lang))
    return int(verdict_code(verdict))
