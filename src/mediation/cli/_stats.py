"""``mediation stats``: counts, success rate, durations and overdue cases of a store's committees;
from the summary rows (as :meth:`CaseService.statistics` reads them), or with ``--verified`` from
the replayed events, saying where the summary rows disagree."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from .._deadlines import Policy
from .._report import ExitCode
from .._stats import Statistics, VerifiedStatistics, compute_statistics, statistics_json
from .._stats import verified_statistics as replay_statistics
from .._timeline import state_spec
from ._common import AddParser, Context, _Fail, json_out, msg, open_db, say, verdict_code

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("stats", "statistics of a store's committees (--verified: from the replayed events)")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument(
        "--committee", action="append", metavar="C", help="only this committee (repeatable)"
    )
    sp.add_argument(
        "--verified",
        action="store_true",
        help="replay every case's events, count the cases that verify, and report the summary "
        "rows that disagree (exit 1 when any does)",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    now = dt.datetime.now(dt.timezone.utc)
    policy = Policy()
    with contextlib.closing(open_db(args.db, lang)) as store:
        if args.verified:
            found = _computed(lambda: replay_statistics(store, now, policy, args.committee), lang)
            stats = found.verified
        else:
            rows = [
                r for r in store.cases() if args.committee is None or r.committee in args.committee
            ]
            names = args.committee or {r.committee for r in rows}
            stats = _computed(lambda: compute_statistics(rows, names, now, policy), lang)
            found = None
    code = ExitCode.OK if found is None else _exit_code(found)
    if args.json:
        doc: dict[str, Any] = {
            "source": "summary" if found is None else "verified",
            "statistics": statistics_json(stats),
        }
        if found is not None:
            doc["summary_statistics"] = statistics_json(found.summary)
            doc["disagreements"] = [
                {"case": d.case_id, "message": d.message} for d in found.disagreements
            ]
            doc["unverified"] = [v.to_json() for v in found.unverified]
        doc["ok"] = code == ExitCode.OK
        doc["exit"] = int(code)
        json_out(out, doc)
        return int(code)
    zh = lang == "zh"
    if found is None:
        say(
            out,
            msg(
                lang,
                "来源：摘要表（不是证据；--verified 从事件重放）",
                "source: the summary rows (not evidence; --verified replays the events)",
            ),
        )
    else:
        say(
            out,
            msg(
                lang,
                f"来源：重放并核验通过的事件（{stats.cases} 个案件）",
                f"source: the replayed events of the {stats.cases} case(s) that verify",
            ),
        )
    for line in _lines(stats, zh):
        say(out, line)
    if found is not None:
        _differences(out, found, lang)
    return int(code)


_T = TypeVar("_T")


def _computed(compute: Callable[[], _T], lang: str) -> _T:
    """``compute()``; a summary row whose values have the wrong types (a BLOB committee, a text
    seq: written past the library) is bad input, exit 5, not a traceback."""
    try:
        return compute()
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise _Fail(
            ExitCode.INPUT,
            msg(
                lang,
                f"摘要表中有类型不对的行（绕过本库写入）：{exc}",
                f"bad input: a summary row holds values of the wrong types (written past the "
                f"library): {exc}",
            ),
        ) from None


def _exit_code(found: VerifiedStatistics) -> ExitCode:
    codes = {verdict_code(v) for v in found.unverified}
    if found.disagreements or ExitCode.INTEGRITY in codes:
        return ExitCode.INTEGRITY
    return ExitCode.ILLEGAL if ExitCode.ILLEGAL in codes else ExitCode.OK


def _state(name: str, zh: bool) -> str:
    spec = state_spec(name)
    return spec.zh.split("（")[0] if zh and spec is not None else name


def _counts(counts: Any, zh: bool, states: bool = False) -> str:
    items = [f"{_state(k, zh) if states else k} {v}" for k, v in counts.items()]
    return ("、" if zh else ", ").join(items) or "—"


def _rate(stats: Statistics, zh: bool) -> str:
    rate = stats.success_rate
    shown = "—" if rate is None else f"{rate:.2%}"
    if zh:
        return (
            f"调解成功率：{shown}（{stats.decided} 个已有结果的案件中 {stats.agreed} 个达成协议）"
        )
    return f"success rate: {shown} ({stats.agreed} agreed of {stats.decided} decided)"


def _lines(stats: Statistics, zh: bool) -> list[str]:
    median = "—" if stats.median_days_to_close is None else f"{stats.median_days_to_close}"
    committees = ", ".join(stats.committees) or "—"
    if zh:
        return [
            f"调委会：{committees}",
            f"案件数：{stats.cases}",
            f"按状态：{_counts(stats.by_state, zh, states=True)}",
            f"按类别：{_counts(stats.by_category, zh)}",
            f"按层级：{_counts(stats.by_level, zh)}",
            _rate(stats, zh),
            f"逾期案件：{stats.overdue}",
            f"结案天数中位数：{median}",
        ]
    return [
        f"committees: {committees}",
        f"cases: {stats.cases}",
        f"by state: {_counts(stats.by_state, zh, states=True)}",
        f"by category: {_counts(stats.by_category, zh)}",
        f"by level: {_counts(stats.by_level, zh)}",
        _rate(stats, zh),
        f"overdue: {stats.overdue}",
        f"median days to close: {median}",
    ]


def _differences(out: Any, found: VerifiedStatistics, lang: str) -> None:
    zh = lang == "zh"
    for v in found.unverified:
        say(out, msg(lang, f"未计入：{v.describe(lang)}", f"left out: {v.describe(lang)}"))
    if not found.disagreements:
        say(
            out,
            msg(lang, "摘要表与重放结果一致", "the summary rows agree with the replayed events"),
        )
        return
    say(
        out,
        msg(
            lang,
            f"摘要表与重放结果不符：{len(found.disagreements)} 行",
            f"the summary rows DISAGREE with the replayed events: {len(found.disagreements)} row(s)",
        ),
    )
    for d in found.disagreements:
        if d.case_id:
            say(out, f"  {'案件' if zh else 'case'} {d.case_id}: {d.message}")
        else:  # a row that names no case
            say(out, f"  {'摘要行' if zh else 'summary row'}: {d.message}")
    say(
        out,
        msg(lang, "摘要表给出的数字（不可信）：", "what the summary rows say (not to be trusted):"),
    )
    verified = _lines(found.verified, zh)
    for line, theirs in zip(verified, _lines(found.summary, zh), strict=True):
        if line != theirs:
            say(out, f"  {theirs}")
