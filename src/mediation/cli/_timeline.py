"""``mediation timeline``: the readable history of one case, as a role of its committee sees it;
of a committee's roster (``@roster:C``), its entries."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from .._report import timeline_lines
from .._roster import committee_of
from .._views import CaseView
from ._common import (
    AddParser,
    Context,
    describe_with_line,
    json_out,
    role_arg,
    say,
    source_args,
    verdict_code,
    zone_label,
)
from ._roster import timeline as roster_timeline
from ._sources import Viewed, case_view, source

__all__ = ["register", "run", "timeline_json"]


def register(add: AddParser) -> None:
    sp = add("timeline", "the readable history of one case, or a committee's roster (@roster:C)")
    sp.add_argument("case", metavar="CASE")
    source_args(sp)
    role_arg(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    src = source(args, lang, ctx.stdin)
    try:
        if committee_of(args.case) is not None:  # a committee's roster: its entries
            return roster_timeline(src, args.case, args.json, ctx)
        seen = case_view(src, args.case, args.role, None, lang)
        code = int(verdict_code(seen.verdict))
        if args.json:
            json_out(out, timeline_json(seen, ctx.tz, code))
            return code
        if seen.view is not None:
            zone = zone_label(ctx.tz)
            lines = timeline_lines(seen.view, lang=lang, subtype=seen.subtype, tz=ctx.tz, zone=zone)
            for line in lines:
                say(out, line)
            say(out, "")
        say(out, describe_with_line(seen.verdict, seen.line_of, lang))
        return code
    finally:
        src.close()


def _local(at: str, tz: dt.tzinfo) -> str:
    try:
        return dt.datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(tz).isoformat()
    except ValueError:
        return at


def timeline_json(seen: Viewed, tz: Any, code: int) -> dict[str, Any]:
    """``timeline --json``: the case as the role sees it, its events, and the verdict."""
    verdict = seen.verdict.to_json()
    if seen.verdict.fault is not None and seen.line_of is not None:
        line = seen.line_of(seen.verdict.fault.seq)
        if line is not None:
            verdict["line"] = line
    view: CaseView | None = seen.view
    return {
        "case": seen.verdict.case_id,
        "tz": tz.key,
        "view": None
        if view is None
        else {
            "category": view.category,
            "subtype": seen.subtype,
            "level": view.level,
            "state": view.state,
            "state_zh": view.state_zh,
            "stage": view.stage,
            "stage_zh": view.stage_zh,
            "standing": view.standing,
            "events": [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "local": _local(e.at, tz),
                    "type": e.type,
                    "label_zh": e.label_zh,
                    "label_en": e.label_en,
                    "actor": e.actor,
                    "acted_as": e.acted_as,
                    "state": e.state,
                    "payload": e.payload,
                    "hash": e.hash,
                }
                for e in view.timeline
            ],
        },
        "verdict": verdict,
        "exit": code,
    }
