"""``mediation export``: a store's cases (all, or those named) as a portable export, JSON Lines
carrying the stored bytes and hashes unchanged, with the checkpoints that concern them.  ``--json``
summarizes what was written as one JSON document: on stdout with ``-o FILE``, on stderr (one line)
when the export itself goes to stdout, so that the export stays byte for byte an export."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._export import export_store
from .._report import ExitCode
from ._common import AddParser, Context, _Fail, json_out, msg, say
from ._sources import StoreSource, read_checkpoints

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("export", "write a portable export (JSON Lines)")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument(
        "--case",
        action="append",
        metavar="ID",
        help="only this case, with its committee's roster; @roster:C, that roster (repeatable)",
    )
    sp.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    sp.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="checkpoints to embed (default: <db>.checkpoints.jsonl if present)",
    )
    sp.add_argument(
        "--decrypted",
        action="store_true",
        help="add each event's personal data opened with the store's keys (the committee's own "
        "archive); by default the export is encrypted: sealed as stored, for an outside auditor",
    )
    sp.add_argument(
        "--json",
        action="store_true",
        help="a JSON summary of what was written (on stderr when the export goes to stdout)",
    )
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    src = StoreSource(args.db, lang)
    try:
        cps: list[dict[str, Any]] = []
        cp_path = args.checkpoints or src.default_checkpoints()
        if cp_path is not None and (args.checkpoints or os.path.exists(cp_path)):
            log = read_checkpoints(cp_path, lang)
            wanted = set(args.case) if args.case else None
            for _, rec in log.records:
                item = rec.to_json()
                if wanted is None or (item["kind"] == "case" and item["case"] in wanted):
                    cps.append(item)
        vault = None
        if args.decrypted:
            vault = src.vault()
            if vault is None:
                raise _Fail(
                    ExitCode.INPUT,
                    msg(
                        lang,
                        f"{src.label} 没有密钥库，无法导出解密的个人信息",
                        f"{src.label} has no key store: there is nothing to decrypt with",
                    ),
                )
        if args.output in (None, "-"):
            counts = export_store(
                src.store, out=out, case_ids=args.case, checkpoints=cps, vault=vault
            )
            target = "stdout"
        else:
            counts = export_store(
                src.store, args.output, case_ids=args.case, checkpoints=cps, vault=vault
            )
            target = args.output
        kind = "decrypted" if args.decrypted else "encrypted"
        if args.json:
            doc = {
                "output": target,
                "cases": counts.cases,
                "events": counts.events,
                "checkpoints": counts.checkpoints,
                "personal_data": kind,
                "ok": True,
                "exit": 0,
            }
            # the export itself is on stdout: the summary goes to stderr, on one line
            json_out(sys.stderr if target == "stdout" else out, doc, indent=None)
            return 0
        text = msg(
            lang,
            f"已导出 {counts.cases} 个案件、{counts.events} 个事件、{counts.checkpoints} 个检查点到 {target}",
            f"exported {counts.cases} case(s), {counts.events} event(s), {counts.checkpoints} checkpoint(s) to {target}",
        )
        say(sys.stderr if target == "stdout" else out, text)
        say(
            sys.stderr if target == "stdout" else out,
            msg(
                lang,
                "个人信息已解密（本调委会存档用，请妥善保管）"
                if args.decrypted
                else "个人信息保持加密（可交外部审计）",
                "personal data DECRYPTED (the committee's own archive: keep it safe)"
                if args.decrypted
                else "personal data encrypted, as stored (for an outside auditor)",
            ),
        )
        return 0
    finally:
        src.close()
