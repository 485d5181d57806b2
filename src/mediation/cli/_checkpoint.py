"""``mediation checkpoint``: verify the store and sign a checkpoint of it (appended to the
checkpoints file), with the receipt of one case on request."""

from __future__ import annotations

import argparse
import os

from .._checkpoints import CheckpointLog, issue_checkpoint, load_private_key
from ._common import AddParser, Context, json_out, msg, read_bytes, say
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
        say(
            out,
            msg(
                lang,
                f"已签发检查点：{s.size} 个案件，Merkle 根 {s.root[:16]}…，新增 {len(checkpoint.cases)} 个案件检查点，"
                f"追加到 {path}",
                f"checkpoint issued: {s.size} case(s), Merkle root {s.root[:16]}…, "
                f"{len(checkpoint.cases)} new case checkpoint(s), appended to {path}",
            ),
        )
        if args.receipt:
            json_out(out, checkpoint.receipt(args.receipt))
        return 0
    finally:
        src.close()
