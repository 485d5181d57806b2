"""``mediation verify``: every case (or one), its chain, transitions, permissions and guards, and
with ``--key`` the signed checkpoints; a whole store through :func:`mediation.audit.verify_store`
(in ``--jobs`` processes)."""

from __future__ import annotations

import argparse
import functools
import json
import sys

import attrs

from .. import _verify_store
from .._authz import Actor, StaticDirectory
from .._errors import CaseNotFound, InvalidCommand
from .._report import AuditResult, ExitCode, VerifiedCase, audit, audit_verified
from .._roster import rosters_of
from ._common import AddParser, Context, _Fail, json_out, key_args, msg, positive, say, source_args
from ._sources import LazyAuditor, StoreSource, lazy_auditor, source

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("verify", "verify every case (chain, transitions, permissions, checkpoints)")
    source_args(sp)
    sp.add_argument("--case", metavar="ID", help="only this case")
    key_args(sp)
    sp.add_argument(
        "--witness",
        action="append",
        metavar="DIR",
        help="also check the checkpoints and the store against this witness's copy of the signed "
        "tree heads (repeatable; needs --key): a store and checkpoint file rolled back together "
        "fail",
    )
    sp.add_argument(
        "--store-id",
        metavar="ID",
        help="the store's id at the witness (default: the one the checkpoints name)",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument(
        "-q", "--quiet", action="store_true", help="print only invalid cases and the summary"
    )
    sp.add_argument(
        "--no-seals",
        action="store_true",
        help="do not open the sealed personal data with the store's key store (<db>.keys): "
        "faster; the chain still covers every sealed value",
    )
    sp.add_argument(
        "--strict",
        action="store_true",
        help="also re-validate every payload against its command class and check canonical form",
    )
    sp.add_argument(
        "--jobs",
        type=positive,
        metavar="N",
        help="verify a SQLite store in N processes (default: one per CPU, from 50,000 events)",
    )
    sp.add_argument(
        "--directory",
        metavar="FILE",
        help='the host\'s grants as JSON, {"actor": {"committee": ["role", ...]}}, for the '
        "committees that keep no roster: their role claims (and G3) are checked against it; "
        "without it such claims are reported as not checked",
    )
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    src = source(args, lang, ctx.stdin)
    directory = load_directory(args.directory, lang)
    try:
        auditor = lazy_auditor(args, src, lang)
        if args.case is None and isinstance(src, StoreSource):
            result = _whole_store(src, args, auditor, directory, lang)
        else:
            result = audit(
                src.cases(args.case),
                auditor=auditor(),
                only=args.case,
                strict=args.strict,
                directory=directory,
                rosters=rosters_of(src.store) if isinstance(src, StoreSource) else None,
                vault=None if args.no_seals else src.vault(),
            )
        if args.case is not None and not result.verdicts:
            raise CaseNotFound(
                f"no case {args.case} in {src.label}",
                message_zh=f"{src.label} 中没有案件 {args.case}",
                case=args.case,
            )
        if args.json:
            json_out(out, result.to_json())
        else:
            for v in result.verdicts:
                if not (args.quiet and v.ok):
                    say(out, result.describe(v, lang))
            for line in result.summary_lines(lang):
                say(out, line)
        return int(result.exit_code)
    finally:
        src.close()


def _whole_store(
    src: StoreSource,
    args: argparse.Namespace,
    auditor: LazyAuditor,
    directory: StaticDirectory | None,
    lang: str,
) -> AuditResult:
    """Every case of the store, verified by :func:`~mediation.audit.verify_store` (in
    ``--jobs`` processes), then checked against the checkpoints here: the checkpoints' signatures
    are checked while the workers verify."""
    verification = _verify_store.run(
        src.store,
        jobs=args.jobs,
        strict=args.strict,
        directory=directory,
        url=src.url,
        hashes_at=auditor.checkpointed_seqs(),
        on_fallback=functools.partial(_note, lang),
        meanwhile=auditor,
        seals=not args.no_seals and src.vault() is not None,
    )
    verified: list[VerifiedCase] = [
        (v.case_id, v, verification.hashes.get(v.case_id, {}).get, None) for v in verification
    ]
    result = audit_verified(verified, auditor=auditor())
    return attrs.evolve(result, bad_rows=verification.bad_rows)


def _note(lang: str, exc: BaseException) -> None:
    say(
        sys.stderr,
        msg(
            lang,
            f"mediation：工作进程失败（{exc}），改为单进程核验",
            f"mediation: worker processes failed ({exc}); verifying in one process",
        ),
    )


def load_directory(path: str | None, lang: str) -> StaticDirectory | None:
    """``--directory FILE``: the host's grants, ``{"actor": {"committee": ["role", ...]}}``."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise _Fail(ExitCode.IO, msg(lang, f"找不到文件 {path}", f"no such file: {path}")) from None
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise _Fail(ExitCode.INPUT, f"{path} is not JSON: {exc}") from exc
    directory = StaticDirectory()
    try:
        if not isinstance(data, dict):
            raise InvalidCommand("expected an object of actor ids")
        for actor_id, roles in data.items():
            if not isinstance(roles, dict) or not all(isinstance(r, list) for r in roles.values()):
                raise InvalidCommand(f"{actor_id}: expected {{committee: [role, ...]}}")
            directory.add(Actor.with_roles(actor_id, roles))
    except InvalidCommand as exc:
        raise _Fail(
            ExitCode.INPUT,
            msg(lang, f"{path} 不是有效的人员名录：{exc}", f"{path} is not a directory: {exc}"),
        ) from exc
    return directory
