"""``mediation stats``: the evaluation of a period (docs/evaluation.md): outcomes, the success
rate under a named definition (``--definition``), groupings (``--by``), days per stage and to the
outcome, follow-up satisfaction and overdue cases, as of a date (``--as-of``), from the events
(read in the database, nothing replayed; with ``--verified`` every case is replayed and checked).
The counts the summary rows give (as :meth:`CaseService.statistics` reads them) come first; with
``--verified``, where the summary rows disagree with the replayed events."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from .._deadlines import Policy
from .._report import ExitCode
from .._stats import (
    AGREED,
    DEFAULT_DEFINITION,
    DEFINITIONS,
    GROUPINGS,
    OUTCOMES,
    STAGES,
    Durations,
    Evaluation,
    Outcomes,
    Statistics,
    VerifiedStatistics,
    compute_statistics,
    evaluation,
    outcome_text,
    statistics_json,
    verified_evaluation,
)
from .._stats import verified_statistics as replay_statistics
from .._timeline import state_spec
from .._vocab import Stage
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
    sp.add_argument(
        "--from", dest="start", type=_date, metavar="YYYY-MM-DD", help="first day of the period"
    )
    sp.add_argument(
        "--to", dest="end", type=_date, metavar="YYYY-MM-DD", help="last day of the period"
    )
    sp.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="count only the events up to the end of this day (default: the end of the period, "
        "else now)",
    )
    sp.add_argument(
        "--by",
        action="append",
        choices=GROUPINGS,
        help="break the outcomes down by this (repeatable; default: category and level)",
    )
    sp.add_argument(
        "--definition",
        choices=tuple(DEFINITIONS),
        default=DEFAULT_DEFINITION,
        help=f"the success-rate definition (docs/evaluation.md; default: {DEFAULT_DEFINITION})",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


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
        options: dict[str, Any] = {
            "start": args.start,
            "end": args.end,
            "as_of": args.as_of,
            "definition": args.definition,
            "committees": args.committee,
            "policy": policy,
            "zone": ctx.tz,
            "now": now,
        }
        if args.verified:
            evaluated = _computed(lambda: verified_evaluation(store, **options)[0], lang)
        else:
            evaluated = _computed(lambda: evaluation(store, **options), lang)
    code = ExitCode.OK if found is None else _exit_code(found)
    shown = tuple(args.by or ("category", "level"))
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
        figures = evaluated.to_json()
        if args.by:
            figures["groups"] = {g: figures["groups"][g] for g in shown}
        doc["evaluation"] = figures
        doc["ok"] = code == ExitCode.OK
        doc["exit"] = int(code)
        json_out(out, doc)
        return int(code)
    zh = lang == "zh"
    if found is not None:  # the snapshot counts, from the verified events and the summary rows
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
        _differences(out, found, lang)
        say(out, "")
    for line in evaluation_lines(evaluated, zh, shown, verified=found is not None):
        say(out, line)
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


# -- the evaluation table ---------------------------------------------------------------------------

#: the deadline kinds in Chinese (the kinds a workflow declares; another shows as it is)
_KIND_ZH = {
    "acceptance": "受理期限",
    "term": "调解期限",
    "labour_term": "劳动争议调解期限",
    "l0_escalation": "楼栋提级",
    "judicial_window": "司法确认期限",
}
_GROUP_WORDS = {
    "category": ("类别", "category"),
    "subtype": ("子类", "subtype"),
    "level": ("层级", "level"),
    "mediator": ("调解员", "mediator"),
    "escalated": ("是否提级", "escalated"),
}


def _w(words: tuple[str, str], zh: bool) -> str:
    return words[0] if zh else words[1]


def _pct(o: Outcomes) -> str:
    rate = o.rate
    return "—" if rate is None else f"{rate:.2%}"


def _days(d: Durations, zh: bool) -> str:
    if not d.n:
        return "—"
    if zh:
        return f"中位数 {d.median} 天，P90 {d.p90} 天（{d.n} 件）"
    return f"median {d.median} d, p90 {d.p90} d (n={d.n})"


def _table(rows: list[list[str]]) -> list[str]:
    from .._timeline import _pad, _width

    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        ("  " + "  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]


def evaluation_lines(
    e: Evaluation, zh: bool, groupings: tuple[str, ...], *, verified: bool = False
) -> list[str]:
    """The evaluation as a readable table, in Chinese or English."""
    moment = e.as_of.astimezone(_zone(e.zone))
    if moment.time() == dt.time():  # the end of the day before
        day = (moment.date() - dt.timedelta(days=1)).isoformat()
        local = f"{day} 日终" if zh else f"the end of {day}"
    else:
        local = moment.strftime("%Y-%m-%d %H:%M")
    start = "…" if e.start is None else e.start.isoformat()
    end = "…" if e.end is None else e.end.isoformat()
    o = e.outcomes
    lines: list[str] = []
    if zh:
        source = "重放并核验的事件" if verified else "事件（在数据库中读取，未重放核验）"
        lines += [
            f"统计口径：{e.definition.name} — {e.definition.zh}",
            f"统计期间：{start} 至 {end}（{e.zone}），截至 {local}；来源：{source}",
            f"截至当时的案件数：{e.cases}；按状态：{_counts(e.by_state, zh, states=True)}",
            f"本期办结：{o.ended}",
        ]
    else:
        source = (
            "the replayed, verified events"
            if verified
            else "the events (read in the database, not replayed)"
        )
        lines += [
            f"definition: {e.definition.name} — {e.definition.en}",
            f"period: {start} to {end} ({e.zone}), as of {local}; source: {source}",
            f"cases by then: {e.cases}; by state: {_counts(e.by_state, zh, states=True)}",
            f"ended in the period: {o.ended}",
        ]
    for name in OUTCOMES:
        extra = ""
        if name == AGREED:
            extra = (
                f"（书面 {o.written}，口头 {o.oral}）"
                if zh
                else f" (written {o.written}, oral {o.oral})"
            )
        colon = "：" if zh else ": "
        lines.append(f"  {_w(outcome_text(name), zh)}{colon}{o.counts.get(name, 0)}{extra}")
    if zh:
        lines += [
            f"调解成功率：{_pct(o)}（{o.base} 件中成功 {o.success} 件）",
            f"另列：未受理 {o.not_registered} 件，移交 {o.transferred} 件",
        ]
    else:
        lines += [
            f"success rate: {_pct(o)} ({o.success} of {o.base})",
            f"reported apart: not registered {o.not_registered}, transferred {o.transferred}",
        ]
    for g in groupings:
        values = e.groups.get(g, {})
        head = _w(_GROUP_WORDS[g], zh)
        lines.append(f"按{head}：" if zh else f"by {head}:")
        if not values:
            lines.append("  —")
            continue
        header = (
            [head, "办结", "成功", "分母", "成功率"]
            if zh
            else [head, "ended", "success", "denominator", "rate"]
        )
        rows = [header] + [
            [k, str(v.ended), str(v.success), str(v.base), _pct(v)] for k, v in values.items()
        ]
        lines += _table(rows)
    lines.append(
        ("从立案到结果的天数：" if zh else "days from opening to the outcome: ")
        + _days(e.days_to_outcome["all"], zh)
    )
    lines.append("各阶段天数：" if zh else "days per stage:")
    by_en = {s.en: s for s in Stage}
    for stage in STAGES:
        label = by_en[stage].zh if zh else stage
        lines.append(f"  {label}{'：' if zh else ': '}{_days(e.stage_days[stage], zh)}")
    marks = ("、" if zh else ", ").join(
        f"{('未询问' if zh else 'not asked') if k == 0 else k}{'：' if zh else ': '}{v}"
        for k, v in e.satisfaction.items()
    )
    lines.append(("回访满意度（次）：" if zh else "follow-up satisfaction (visits): ") + marks)
    kinds = ("、" if zh else ", ").join(
        f"{_KIND_ZH.get(k, k) if zh else k} {v}" for k, v in e.overdue_by_kind.items()
    )
    lines.append(
        (f"逾期案件：{e.overdue}" if zh else f"overdue cases: {e.overdue}")
        + (f"（{kinds}）" if zh and kinds else f" ({kinds})" if kinds else "")
    )
    return lines


def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc
