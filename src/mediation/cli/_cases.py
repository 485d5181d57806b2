"""``mediation cases``: the cases of a store, from its summary rows, filtered by state,
committee, level or category.

The summary rows are what the store keeps beside the events for listing; they are not evidence
(``mediation verify`` replays the events themselves).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from typing import Any

from .._case import CaseSummary
from .._errors import MediationError
from .._spec import workflow_of
from .._timeline import _pad, _width, local_time, state_spec
from .._workflow import WORKFLOW, StateSpec
from ._common import AddParser, Context, json_out, msg, open_db, say, zone_label

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("cases", "list the cases of a store (filter by state, committee, level, category)")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--state", metavar="S", help="only cases in this state (e.g. negotiating)")
    sp.add_argument("--committee", metavar="C", help="only this committee's cases")
    sp.add_argument("--level", metavar="L", help="only cases at this level (e.g. L1)")
    sp.add_argument("--category", metavar="X", help="only this category (e.g. 邻里)")
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    with contextlib.closing(open_db(args.db, lang)) as store:
        found = store.cases(
            state=args.state, committee=args.committee, level=args.level, category=args.category
        )
    if args.json:
        json_out(
            out, {"tz": ctx.tz.key, "count": len(found), "cases": [_json(s, ctx.tz) for s in found]}
        )
        return 0
    zh = lang == "zh"
    say(out, msg(lang, f"时间：{zone_label(ctx.tz)}", f"times: {zone_label(ctx.tz)}"))
    header = (
        ("案件", "调委会", "状态", "阶段", "层级", "类别", "受理时间", "最近更新")
        if zh
        else ("case", "committee", "state", "stage", "level", "category", "opened", "updated")
    )
    table = [header] + [_row(s, ctx.tz, zh) for s in found]
    widths = [max(_width(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        say(out, "  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    say(out, msg(lang, f"共 {len(found)} 个案件", f"{len(found)} case(s)"))
    return 0


def _row(s: CaseSummary, tz: dt.tzinfo, zh: bool) -> tuple[str, ...]:
    spec = _spec(s)
    state = str(s.state)
    stage = "" if spec is None or spec.stage is None else spec.stage.en
    if zh and spec is not None:
        state = spec.zh.split("（")[0]
        stage = "" if spec.stage is None else spec.stage.zh
    return (
        str(s.case_id),
        str(s.committee),
        state,
        stage,
        str(s.level),
        str(s.category),
        local_time(str(s.opened_at), tz),
        local_time(str(s.updated_at), tz),
    )


def _json(s: CaseSummary, tz: dt.tzinfo) -> dict[str, Any]:
    spec = _spec(s)
    return {
        "case": s.case_id,
        "committee": s.committee,
        "state": s.state,
        "state_zh": None if spec is None else spec.zh,
        "stage": None if spec is None or spec.stage is None else spec.stage.en,
        "level": s.level,
        "category": s.category,
        "seq": s.seq,
        "head": s.head,
        "opened_at": s.opened_at,
        "updated_at": s.updated_at,
        "opened_local": local_time(str(s.opened_at), tz),
        "updated_local": local_time(str(s.updated_at), tz),
        "paused": s.paused,
        "workflow": s.workflow,
    }


def _spec(s: CaseSummary) -> StateSpec | None:
    """The declaration of the row's state, on the row's workflow version (else the current)."""
    try:
        workflow = workflow_of(str(s.workflow))
    except MediationError:
        workflow = WORKFLOW
    return state_spec(str(s.state), workflow)
