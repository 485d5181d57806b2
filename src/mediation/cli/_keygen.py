"""``mediation keygen``: an Ed25519 key pair for signing checkpoints."""

from __future__ import annotations

import argparse
import os

from .._checkpoints import generate_key, key_id, load_public_key
from .._files import atomic_write
from .._report import ExitCode
from ._common import AddParser, Context, _Fail, msg, say

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("keygen", "create an Ed25519 key pair for checkpoints")
    sp.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="private key path; the public key goes to PATH.pub",
    )
    sp.add_argument("--force", action="store_true", help="overwrite existing files")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    private_path, public_path = args.out, args.out + ".pub"
    for p in (private_path, public_path):
        if os.path.exists(p) and not args.force:
            raise _Fail(
                ExitCode.IO,
                msg(
                    lang, f"{p} 已存在（用 --force 覆盖）", f"{p} exists (use --force to overwrite)"
                ),
            )
    private, public = generate_key()
    try:
        # complete or not at all, 0600 even over an existing file (--force)
        with atomic_write(private_path) as f:
            f.write(private)
        with atomic_write(public_path, mode=0o644) as f:
            f.write(public)
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot write the key: {exc.strerror}") from exc
    kid = key_id(load_public_key(public))
    text = msg(
        lang,
        f"私钥：{private_path}（请离线保管）\n公钥：{public_path}（交给审计方）\n密钥指纹：{kid}",
        f"private key: {private_path} (keep it off the server)\npublic key: {public_path} "
        f"(hand it to auditors)\nkey id: {kid}",
    )
    for line in text.split("\n"):
        say(out, line)
    return 0
