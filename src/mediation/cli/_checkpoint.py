"""``mediation checkpoint``: verify the store and sign a checkpoint of every valid case (appended to
the checkpoints file), with the receipt of one case on request.  The cases left out (they do not
verify, or no longer extend the checkpoints already issued) are listed on standard error, and set
the exit code: 1 for integrity, 3 for an illegal history, 0 when every case was signed.

The signer keeps its own state file (``--state``, by default ``<key>.state.json`` beside the
private key) and refuses, signing nothing (exit 1, one line), a store whose checkpoint file does
not hold the last checkpoint it issued (deleted, rolled back, replaced) or that a witness
(``--witness DIR``) has seen a larger or different tree of; each new tree head is then published to
every witness (a witness that refuses it is listed, exit 1)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._audit import Verdict
from .._checkpoints import (
    CheckpointError,
    CheckpointLog,
    CheckpointRefused,
    DirectoryWitness,
    Signer,
    WitnessRefused,
    default_store_id,
    load_private_key,
)
from .._report import ExitCode
from ._common import (
    AddParser,
    Context,
    _Fail,
    err_text,
    json_out,
    msg,
    read_bytes,
    say,
    verdict_code,
)
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
        "--receipt",
        metavar="CASE",
        help="print the receipt to hand the parties of CASE (standard output holds the receipt "
        "alone; the report goes to standard error)",
    )
    sp.add_argument(
        "--state",
        metavar="FILE",
        help="the signer's own state file, kept off the database server "
        "(default PRIVATE_KEY.state.json)",
    )
    sp.add_argument(
        "--store-id",
        metavar="ID",
        help="the store's name in the state file and the signed checkpoints (default: the "
        "database file's absolute path, or postgresql://HOST:PORT/DBNAME)",
    )
    sp.add_argument(
        "--witness",
        action="append",
        metavar="DIR",
        help="publish the signed tree head to this witness directory (repeatable)",
    )
    sp.add_argument(
        "--adopt",
        action="store_true",
        help="sign a store whose checkpoints this key signed but the state file does not know "
        "(a new state file, or a renamed store)",
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
        signer = Signer(
            private,
            args.state or args.key + ".state.json",
            witnesses=[DirectoryWitness(d) for d in args.witness or ()],
            adopt=args.adopt,
        )
        store_id = args.store_id or default_store_id(src.url)
        try:
            signed = signer.sign(src.store, path, store_id=store_id, log=log)
        except CheckpointRefused as exc:
            raise _Fail(ExitCode.INTEGRITY, err_text(exc, lang)) from exc
        except CheckpointError as exc:  # a state file or witness unreadable (I/O) or malformed
            code = ExitCode.IO if isinstance(exc.__cause__, OSError) else ExitCode.INPUT
            raise _Fail(code, err_text(exc, lang)) from exc
        checkpoint = signed.checkpoint
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
        for refusal in signed.refused:
            say(
                sys.stderr,
                msg(
                    lang,
                    f"未发布：{err_text(refusal, lang)}",
                    f"not published: {err_text(refusal, lang)}",
                ),
            )
        # with --receipt, standard output is the receipt alone (a file to hand over): the
        # report goes to standard error
        say(
            sys.stderr if args.receipt else out,
            msg(
                lang,
                f"已签发检查点：{len(checkpoint.signed)} 个案件，树有 {s.size} 个叶子，Merkle 根 {s.root[:16]}…，"
                f"新增 {len(checkpoint.cases)} 个案件检查点，"
                f"追加到 {path}"
                + (
                    f"；{len(checkpoint.invalid)} 个案件未通过验证，未签名"
                    if checkpoint.invalid
                    else ""
                ),
                f"checkpoint issued: {len(checkpoint.signed)} case(s), tree of {s.size} leaves, "
                f"Merkle root {s.root[:16]}…, "
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
        code = _exit_code(checkpoint.invalid)
        if code is ExitCode.OK and signed.refused:  # a refusal is integrity; a failure, I/O
            refusals = any(isinstance(r, WitnessRefused) for r in signed.refused)
            code = ExitCode.INTEGRITY if refusals else ExitCode.IO
        return int(code)
    finally:
        src.close()
