"""``mediation report``: a self-contained HTML page of one case (its timeline, the state diagram
and the verdict, with ``--key`` checked against the signed checkpoints).

(Not to be confused with :mod:`mediation._report`, the library module that renders the page.)
"""

from __future__ import annotations

import argparse

from .. import __version__
from .._report import ExitCode, render_html
from ._common import (
    AddParser,
    Context,
    _Fail,
    describe_with_line,
    key_args,
    msg,
    role_arg,
    say,
    source_args,
    verdict_code,
    write_atomic,
)
from ._sources import auditor as checkpoint_auditor
from ._sources import case_view, source

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("report", "a self-contained HTML report of one case")
    sp.add_argument("case", metavar="CASE")
    source_args(sp)
    sp.add_argument("--html", required=True, metavar="OUT", help="where to write the page")
    role_arg(sp)
    key_args(sp)
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    src = source(args, lang, ctx.stdin)
    try:
        auditor = checkpoint_auditor(args, src, lang)
        seen = case_view(src, args.case, args.role, auditor, lang)
        view, verdict, line_of = seen.view, seen.verdict, seen.line_of
        if view is None:
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
        if auditor is not None:
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
        )
        try:
            write_atomic(args.html, page)
        except OSError as exc:
            raise _Fail(ExitCode.IO, f"cannot write {args.html}: {exc.strerror}") from exc
        say(out, msg(lang, f"已生成报告 {args.html}", f"wrote {args.html}"))
        say(out, describe_with_line(verdict, line_of, lang))
        return int(code)
    finally:
        src.close()
