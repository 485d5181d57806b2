"""``mediation import``: an export into a store, all cases or none, each verified strictly first
(and with ``--key`` against the file's signed checkpoints)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from typing import Any

from .._audit import Verdict
from .._checkpoints import CheckpointAuditor, CheckpointLog, load_public_key
from .._errors import CaseExists, IntegrityViolation, MediationError
from .._export import ExportCase, ImportResult, import_export
from .._report import ExitCode, audit_case
from ._common import (
    AddParser,
    Context,
    _Fail,
    code_for,
    err_text,
    json_out,
    msg,
    open_db,
    parse_db,
    read_bytes,
    say,
)
from ._sources import FileSource, binary, default_checkpoints

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("import", "import an export; all cases or none, each verified")
    sp.add_argument("file", metavar="FILE", help="the export ('-' for stdin)")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--key", metavar="PUBLIC_KEY", help="also check the file's checkpoints")
    sp.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="where to write the file's checkpoints (must not exist)",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output (one document)")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    out, lang = ctx.out, ctx.lang
    target = parse_db(args.db, lang)
    src = FileSource("stdin", binary(ctx.stdin)) if args.file == "-" else FileSource(args.file)
    # the whole file is read (and its structure checked) before anything else happens
    cases = list(src.export_cases())
    reader = src.reader
    assert reader is not None
    try:
        # checkpoints carried by the file are checked too when a key is given
        if args.key is not None:
            log = CheckpointLog.parse(reader.checkpoints, src.label)
            _check_checkpoints(cases, log, args, lang)
        result = _write(args.db, cases, lang)
    except (IntegrityViolation, _Fail, CaseExists) as exc:
        if args.json:
            json_out(out, _refused_json(exc, cases, lang))
        raise
    copied = ""
    written: str | None = None
    if reader.checkpoints:
        dest = args.checkpoints or default_checkpoints(target)
        if dest is not None and not os.path.exists(dest):
            try:
                with open(dest, "w", encoding="utf-8", newline="\n") as f:
                    for _, obj in reader.checkpoints:
                        f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            except OSError as exc:
                raise _Fail(ExitCode.IO, f"cannot write {dest}: {exc.strerror}") from exc
            copied = msg(lang, f"，检查点已写入 {dest}", f"; checkpoints written to {dest}")
            written = dest
        else:
            copied = msg(
                lang,
                "，文件中的检查点未复制（目标检查点文件已存在或未指定）",
                "; the file's checkpoints were not copied (give --checkpoints FILE, which must not exist)",
            )
    if args.json:
        json_out(
            out,
            {
                "ok": True,
                "exit": 0,
                "imported": {"cases": result.cases, "events": result.events},
                "cases": [v.without_case().to_json() for v in result.verdicts],
                "checkpoints": {"in_file": len(reader.checkpoints), "written_to": written},
            },
        )
        return 0
    say(
        out,
        msg(
            lang,
            f"已导入 {result.cases} 个案件、{result.events} 个事件（均已通过验证）{copied}",
            f"imported {result.cases} case(s), {result.events} event(s), every one verified{copied}",
        ),
    )
    return 0


def _refused_json(exc: Exception, cases: list[ExportCase], lang: str) -> dict[str, Any]:
    """``import --json`` when the import is refused: why, and the verdict of the case refused (with
    its file line), nothing written."""
    verdict = getattr(exc, "verdict", None)
    shown: dict[str, Any] | None = None
    if isinstance(verdict, Verdict):
        shown = verdict.without_case().to_json()
        case = next((c for c in cases if c.case_id == verdict.case_id), None)
        if case is not None and verdict.fault is not None:
            shown["line"] = case.line_of(verdict.fault.seq)
    if isinstance(exc, _Fail):
        code, message = exc.code, exc.message
    else:
        assert isinstance(exc, MediationError)
        code, message = code_for(exc), err_text(exc, lang)
    return {
        "ok": False,
        "exit": int(code),
        "reason": message,
        "verdict": shown,
        "imported": {"cases": 0, "events": 0},
    }


def _check_checkpoints(
    cases: list[ExportCase], log: CheckpointLog, args: argparse.Namespace, lang: str
) -> None:
    """Refuse the file unless every case agrees with its signed checkpoints under ``--key``."""
    public = load_public_key(read_bytes(args.key, lang, "key"))
    auditor = CheckpointAuditor(log, public)
    for case in cases:
        v = audit_case(case.case_id, case.records, auditor)
        if not v.ok:
            assert v.fault is not None
            line = case.line_of(v.fault.seq)
            raise IntegrityViolation(
                f"import refused: line {line}: {v.describe('en')}",
                message_zh=f"拒绝导入：第 {line} 行，{v.describe('zh')}",
                verdict=v,
                case=case.case_id,
                seq=v.fault.seq,
            )
    problems = [f.message_zh if lang == "zh" else f.message for f in auditor.store_faults]
    problems += [f"case {c}: {f.message}" for c, f in auditor.missing()]
    if problems:
        raise _Fail(
            ExitCode.INTEGRITY,
            msg(lang, "拒绝导入：", "import refused: ") + "; ".join(problems),
        )


def _write(url: str, cases: list[ExportCase], lang: str) -> ImportResult:
    """Import into the store: all cases or none (``import_export`` writes in one
    ``store.transaction()``)."""
    with contextlib.closing(open_db(url, lang, write=True)) as store:
        return import_export(cases, store, lang=lang)
