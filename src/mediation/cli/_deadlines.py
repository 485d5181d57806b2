"""``mediation deadlines``: the open cases' deadlines, upcoming or overdue (预警), filtered by
committee, level, category or mediator; ``--tick`` records the early warnings due now, once each.

Deadlines are computed with the default ``Policy`` (the declared days, China's working calendar,
Asia/Shanghai dates): a host with its own policy calls ``CaseService.overdue``, ``upcoming`` and
``tick`` itself (docs/deadlines.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from typing import Any

from .._calendar import CalendarNotCovered
from .._case import CaseSummary
from .._deadlines import Deadline
from .._events import format_time, parse_time
from .._report import ExitCode
from .._service import CaseService
from .._timeline import _pad, _width
from ._common import AddParser, Context, _Fail, err_text, json_out, msg, open_db, say

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add(
        "deadlines", "open cases' deadlines: upcoming or overdue (预警); --tick records warnings"
    )
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--overdue", action="store_true", help="only deadlines already passed")
    sp.add_argument(
        "--within",
        type=int,
        metavar="DAYS",
        help="not yet passed, last day at most DAYS days away (default: 3, the policy's warning)",
    )
    sp.add_argument("--committee", metavar="C", help="only this committee's cases")
    sp.add_argument("--level", metavar="L", help="only cases at this level (e.g. L0)")
    sp.add_argument("--category", metavar="X", help="only this category (e.g. 劳动争议)")
    sp.add_argument("--mediator", metavar="M", help="only cases this person mediates")
    sp.add_argument("--now", metavar="TIME", help="the time to judge at (ISO 8601; default now)")
    sp.add_argument(
        "--tick", action="store_true", help="record the warnings due now (once each) and list them"
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def _now(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.timezone.utc)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Fail(ExitCode.USAGE, f"--now: not an ISO 8601 time: {value!r:.60}") from None
    if when.tzinfo is None:
        raise _Fail(ExitCode.USAGE, "--now: give a time zone (e.g. 2026-01-05T08:00:00+08:00)")
    return parse_time(format_time(when))


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    now = _now(args.now)
    with contextlib.closing(open_db(args.db, lang, write=args.tick)) as store:
        service = CaseService(store, clock=lambda: now)
        if args.tick:
            recorded = service.tick(now)
            if args.json:
                json_out(out, {"recorded": [_warning(w) for w in recorded]})
            else:
                for w in recorded:
                    say(out, f"{w.case_id}  {w.kind}  {w.due}  {w.level}")
                say(out, msg(lang, f"记录预警 {len(recorded)} 条", f"{len(recorded)} warning(s)"))
            return 0
        filters: dict[str, Any] = dict(
            committee=args.committee,
            level=args.level,
            category=args.category,
            mediator=args.mediator,
        )
        # a case whose deadlines reach a year without holiday data is named, the rest listed
        uncovered: list[CalendarNotCovered] = []
        if args.overdue:
            rows = service.overdue(now, uncovered=uncovered, **filters)
        else:
            rows = service.upcoming(now, within_days=args.within, uncovered=uncovered, **filters)
    code = int(ExitCode.INPUT if uncovered else ExitCode.OK)
    for exc in uncovered:
        say(sys.stderr, msg(lang, f"案件 {exc.case}：", f"case {exc.case}: ") + err_text(exc, lang))
    if args.json:
        json_out(
            out,
            {
                "now": format_time(now),
                "count": len(rows),
                "deadlines": [_json(s, d) for s, d in rows],
                "uncovered": [
                    {"case": exc.case, "day": exc.day, "year": exc.year, "message": exc.message}
                    for exc in uncovered
                ],
                "exit": code,
            },
        )
        return code
    zh = lang == "zh"
    header = (
        ("案件", "调委会", "层级", "类别", "时限", "最后一日", "状态", "依据")
        if zh
        else ("case", "committee", "level", "category", "deadline", "last day", "status", "basis")
    )
    table = [header] + [_row(s, d, zh) for s, d in rows]
    widths = [max(_width(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        say(out, "  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    say(out, msg(lang, f"共 {len(rows)} 项", f"{len(rows)} deadline(s)"))
    if uncovered:
        say(
            out,
            msg(
                lang,
                f"另有 {len(uncovered)} 个案件的时限无法计算（缺少节假日数据，见标准错误输出）",
                f"{len(uncovered)} case(s) not listed: their deadlines reach a year without "
                "holiday data (named on standard error)",
            ),
        )
    return code


def _status(d: Deadline, zh: bool) -> str:
    if d.overdue:
        return "已超期" if zh else "overdue"
    if d.nearly_due:
        return "临期" if zh else "nearly due"
    return "未到期" if zh else "open"


def _row(s: CaseSummary, d: Deadline, zh: bool) -> tuple[str, ...]:
    last = d.due_date.isoformat() if d.due_date is not None else ""
    return (s.case_id, s.committee, s.level, s.category, d.kind, last, _status(d, zh), d.basis)


def _json(s: CaseSummary, d: Deadline) -> dict[str, Any]:
    return {
        "case": s.case_id,
        "committee": s.committee,
        "level": s.level,
        "category": s.category,
        "state": s.state,
        "kind": d.kind,
        "due_date": d.due_date.isoformat() if d.due_date is not None else None,
        "due": format_time(d.due),
        "overdue": d.overdue,
        "nearly_due": d.nearly_due,
        "basis": d.basis,
    }


def _warning(w: Any) -> dict[str, Any]:
    return {
        "case": w.case_id,
        "kind": w.kind,
        "due_date": w.due,
        "level": w.level,
        "at": w.at,
        "committee": w.committee,
    }
