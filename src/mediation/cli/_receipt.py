"""``mediation receipt check``: a party's receipt (``checkpoint --receipt``) checked under the
signer's public key: the store checkpoint's signature, the inclusion proof up to the signed root,
the case checkpoint it carries; with ``--db`` or ``--export``, also against the case's events."""

from __future__ import annotations

import argparse

from .._checkpoints import load_public_key
from .._checkpoints.receipts import check_receipt, parse_receipt
from .._report import ExitCode
from ._common import AddParser, Context, _Fail, json_out, msg, read_bytes, say
from ._sources import FileSource, Source, StoreSource, binary

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("receipt", "check a case's receipt under the signer's public key")
    sp.add_argument("action", choices=("check",), help="check: verify the receipt")
    sp.add_argument("receipt", metavar="RECEIPT", help="the receipt (JSON; '-' for stdin)")
    sp.add_argument("--key", required=True, metavar="PUBLIC_KEY", help="the signer's public key")
    sp.add_argument("--case", metavar="ID", help="the case the receipt must be for")
    sp.add_argument("--db", metavar="URL", help="also compare the case's events in this store")
    sp.add_argument(
        "--export", metavar="FILE", help="also compare the case's events in this export"
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    if args.db is not None and args.export is not None:
        raise _Fail(
            ExitCode.USAGE,
            msg(lang, "--db 与 --export 只能给一个", "give --db or --export, not both"),
        )
    if args.receipt == "-":
        data = binary(ctx.stdin).read()
    else:
        data = read_bytes(args.receipt, lang, "receipt")
    receipt = parse_receipt(data)
    public = load_public_key(read_bytes(args.key, lang, "key"))
    records = None
    if args.db is not None or args.export is not None:
        src: Source = StoreSource(args.db, lang) if args.db is not None else FileSource(args.export)
        try:
            records, _ = src.case(receipt.case_id)
        finally:
            src.close()
    found = check_receipt(receipt, public, case_id=args.case, records=records)
    code = ExitCode.OK if found.ok else ExitCode.INTEGRITY
    if args.json:
        json_out(out, {**found.to_json(), "exit": int(code)})
        return int(code)
    if found.ok:
        compared = msg(
            lang,
            "，且与本案事件一致" if found.events_checked else "",
            "; the case's events match it" if found.events_checked else "",
        )
        say(
            out,
            msg(
                lang,
                f"收据有效：案件 {found.case_id} 的前 {found.seq} 个事件（链头 {found.head[:16]}…）"
                f"在密钥 {found.key[:16]} 于 {found.issued_at} 签名的存储检查点之下{compared}",
                f"receipt valid: case {found.case_id}, {found.seq} event(s) ending in "
                f"{found.head[:16]}…, under the store checkpoint signed by key {found.key[:16]} "
                f"at {found.issued_at}{compared}",
            ),
        )
    else:
        for problem in found.problems:
            say(out, msg(lang, f"收据无效：{problem}", f"receipt INVALID: {problem}"))
    return int(code)
