"""``mediation timeline``: the readable history of one case, as a role of its committee sees it."""

from __future__ import annotations

import argparse

from .._report import timeline_lines
from ._common import AddParser, Context, describe_with_line, role_arg, source_args, verdict_code
from ._sources import case_view, source

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("timeline", "the readable history of one case")
    sp.add_argument("case", metavar="CASE")
    source_args(sp)
    role_arg(sp)
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    src = source(args, lang)
    try:
        seen = case_view(src, args.case, args.role, None)
        if seen.view is not None:
            for line in timeline_lines(seen.view, lang=lang, subtype=seen.subtype):
                print(line, file=out)
            print("", file=out)
        print(describe_with_line(seen.verdict, seen.line_of, lang), file=out)
        return int(verdict_code(seen.verdict))
    finally:
        src.close()
