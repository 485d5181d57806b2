"""``mediation report``: a self-contained HTML page of one case (its timeline, the state diagram
and the verdict, with ``--key`` checked against the signed checkpoints).

(Not to be confused with :mod:`mediation._report`, the library module that renders the page.)
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import __version__
from .._report import ExitCode, render_html
from .._roster import committee_of
from ._common import (
    AddParser,
    Context,
    _Fail,
    describe_with_line,
    json_out,
    key_args,
    msg,
    role_arg,
    say,
    source_args,
    verdict_code,
    write_atomic,
)
from ._sources import Viewed, case_view, source
from ._sources import auditor as checkpoint_auditor

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("report", "a self-contained HTML report of one case")
    sp.add_argument("case", metavar="CASE")
    source_args(sp)
    sp.add_argument("--html", required=True, metavar="OUT", help="where to write the page")
    role_arg(sp)
    key_args(sp)
    sp.add_argument(
        "--json", action="store_true", help="machine-readable output (one document) on stdout"
    )
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    src = source(args, lang, ctx.stdin)
    committee = committee_of(args.case)
    if committee is not None:  # a committee's roster: no report; say where to read it
        src.close()
        where = "FILE" if args.db is None else "--db URL"
        show = (
            f" or mediation roster show {where} --committee {committee}"
            if args.db is not None and committee
            else ""
        )
        raise _Fail(
            ExitCode.INPUT,
            msg(
                lang,
                f"{args.case} 是调委会的人员名录，不是案件，没有报告；请用 "
                f"mediation timeline {args.case} {where}{show} 查看",
                f"{args.case} is a committee's roster, not a case: there is no report of it; "
                f"read it with mediation timeline {args.case} {where}{show}",
            ),
        )
    try:
        auditor = checkpoint_auditor(args, src, lang)
        seen = case_view(src, args.case, args.role, auditor, lang)
        view, verdict, line_of = seen.view, seen.verdict, seen.line_of
        if view is None:
            if args.json:
                json_out(out, _json(args, seen, None, int(verdict_code(verdict)), None))
            else:
                say(out, describe_with_line(verdict, line_of, lang))
            raise _Fail(
                verdict_code(verdict),
                msg(
                    lang,
                    "第一个事件即未通过验证，无法生成报告",
                    "the first event does not verify: no report",
                ),
            )
        note = None
        checkpoints: dict[str, Any] | None = None
        if auditor is not None:
            checkpoints = {
                "key": auditor.key_id,
                "checked": auditor.checked,
                "faults": [{"line": f.line, "message": f.message} for f in auditor.store_faults],
            }
            faults = [f.message_zh if lang == "zh" else f.message for f in auditor.store_faults]
            if faults:
                code = ExitCode.INTEGRITY
                note = "; ".join(faults)
            else:
                code = verdict_code(verdict)
                note = msg(
                    lang,
                    f"已用密钥 {auditor.key_id[:16]} 核验 {auditor.checked} 个签名检查点",
                    f"checked against {auditor.checked} signed checkpoint(s), key {auditor.key_id[:16]}",
                )
        else:
            code = verdict_code(verdict)
        page = render_html(
            view,
            verdict,
            lang=lang,
            source=src.label,
            checkpoint_note=note,
            generated_by=f"mediation {__version__}",
            subtype=seen.subtype,
            tz=ctx.tz,
        )
        try:
            write_atomic(args.html, page)
        except OSError as exc:
            raise _Fail(ExitCode.IO, f"cannot write {args.html}: {exc.strerror}") from exc
        if args.json:
            json_out(out, _json(args, seen, args.html, int(code), checkpoints, ctx.tz.key))
            return int(code)
        say(out, msg(lang, f"已生成报告 {args.html}", f"wrote {args.html}"))
        say(out, describe_with_line(verdict, line_of, lang))
        return int(code)
    finally:
        src.close()


def _json(
    args: argparse.Namespace,
    seen: Viewed,
    html: str | None,
    code: int,
    checkpoints: dict[str, Any] | None,
    tz: str | None = None,
) -> dict[str, Any]:
    """``report --json``: the page written (``html`` null when none was), the case's verdict as in
    ``verify --json`` (with ``line`` for an export), the checkpoint findings with ``--key``."""
    verdict = seen.verdict.to_json()
    if seen.verdict.fault is not None and seen.line_of is not None:
        line = seen.line_of(seen.verdict.fault.seq)
        if line is not None:
            verdict["line"] = line
    return {
        "case": seen.verdict.case_id,
        "html": html,
        "standing": args.role,
        "tz": tz,
        "verdict": verdict,
        "checkpoints": checkpoints,
        "ok": code == 0,
        "exit": code,
    }
