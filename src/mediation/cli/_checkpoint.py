"""``mediation checkpoint``: verify the store and sign a checkpoint of every valid case (appended to
the checkpoints file), with the receipt of one case on request.  The cases left out (they do not
verify, or no longer extend the checkpoints already issued) are listed on standard error, and set
the exit code: 1 for integrity, 3 for an illegal history, 0 when every case was signed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._audit import Verdict
from .._checkpoints import CheckpointLog, issue_checkpoint, load_private_key
from .._report import ExitCode
from ._common import AddParser, Context, json_out, msg, read_bytes, say, verdict_code
from ._sources import StoreSource, read_checkpoints

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("checkpoint", "verify the store and sign a checkpoint of it")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--key", required=True, metavar="PRIVATE_KEY")
    sp.add_argument(
        "--checkpoints", metavar="FILE", help="append to this file (default <db>.checkpoints.jsonl)"
    )
    sp.add_argument(
        "--receipt", metavar="CASE", help="also print the receipt to hand the parties of CASE"
    )
    sp.set_defaults(run=run)


def _exit_code(invalid: Sequence[Verdict]) -> ExitCode:
    """The most severe of the cases left out: integrity (1) before legality (3); 0 for none."""
    codes = {verdict_code(v) for v in invalid}
    for code in (ExitCode.INTEGRITY, ExitCode.ILLEGAL):
        if code in codes:
            return code
    return ExitCode.OK


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    private = load_private_key(read_bytes(args.key, lang, "key"))
    src = StoreSource(args.db, lang)
    try:
        path = src.checkpoints_path(args.checkpoints, lang)
        log = read_checkpoints(path, lang) if os.path.exists(path) else CheckpointLog((), path)
        checkpoint = issue_checkpoint(src.store, private, log=log)
        log.append_to(path, checkpoint)
        s = checkpoint.store
        for verdict in checkpoint.invalid:  # left out; every other case is signed
            say(
                sys.stderr,
                msg(
                    lang,
                    f"未签名：{verdict.describe(lang)}",
                    f"not signed: {verdict.describe(lang)}",
                ),
            )
        say(
            out,
            msg(
                lang,
                f"已签发检查点：{s.size} 个案件，Merkle 根 {s.root[:16]}…，新增 {len(checkpoint.cases)} 个案件检查点，"
                f"追加到 {path}"
                + (
                    f"；{len(checkpoint.invalid)} 个案件未通过验证，未签名"
                    if checkpoint.invalid
                    else ""
                ),
                f"checkpoint issued: {s.size} case(s), Merkle root {s.root[:16]}…, "
                f"{len(checkpoint.cases)} new case checkpoint(s), appended to {path}"
                + (
                    f"; {len(checkpoint.invalid)} invalid case(s) not signed"
                    if checkpoint.invalid
                    else ""
                ),
            ),
        )
        if args.receipt:
            json_out(out, checkpoint.receipt(args.receipt))
        return int(_exit_code(checkpoint.invalid))
    finally:
        src.close()
