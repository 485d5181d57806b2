"""What every sub-command shares: the run context, failures and exit codes, messages in two
languages, reading files, and the argument groups several sub-commands take."""

from __future__ import annotations

import argparse
import json
import os
import zoneinfo
from collections.abc import Callable
from typing import IO, Any

import attrs

from .._audit import Verdict
from .._checkpoints import CheckpointError
from .._errors import (
    CaseExists,
    CaseNotFound,
    IntegrityViolation,
    MediationError,
    StoreError,
)
from .._export import ExportError
from .._files import atomic_write_text
from .._report import ExitCode
from .._text import json_printable, printable
from .._timeline import COMMITTEE_TZ, zone_label
from .._workflow import Role
from ..stores import _open
from ..stores._base import MalformedRecord, Store
from ..stores._open import InvalidStoreURL, NotADatabase

__all__ = [
    "DEFAULT_TZ",
    "VIEW_ROLES",
    "AddParser",
    "Context",
    "code_for",
    "default_lang",
    "describe_with_line",
    "err_text",
    "json_out",
    "key_args",
    "msg",
    "open_db",
    "parse_db",
    "positive",
    "read_bytes",
    "role_arg",
    "say",
    "source_args",
    "time_zone",
    "verdict_code",
    "write_atomic",
    "zone_label",
]

#: the roles ``--as`` may view a case as (``mediator``: as the case's lead mediator)
VIEW_ROLES = ("auditor", "supervisor", "director", "mediator")

#: the committee's time zone, the default of ``--tz``
DEFAULT_TZ = COMMITTEE_TZ

#: ``add(name, help)``: a new sub-command's parser (with the common options)
AddParser = Callable[[str, str], argparse.ArgumentParser]


@attrs.frozen
class Context:
    """Where a sub-command writes (``stderr`` is ``sys.stderr``, redirected by :func:`main`),
    what it may read as standard input, and the language of human output."""

    out: IO[str]
    stdin: IO[Any]
    lang: str
    #: the time zone times are shown in (``--tz``; default Asia/Shanghai)
    tz: zoneinfo.ZoneInfo = attrs.field(factory=lambda: zoneinfo.ZoneInfo(DEFAULT_TZ))


class _Fail(Exception):
    """Stop the command with ``code`` after printing ``message`` (already translated)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def say(out: IO[str], text: str) -> None:
    """Print one line of human output, every untrusted character in it escaped
    (:func:`mediation._text.printable`): a case id or a text cannot start a line of its own."""
    print(printable(text), file=out)


def json_out(out: IO[str], document: Any, *, indent: int | None = 2) -> None:
    """Print one JSON document (UTF-8, not ASCII-escaped), with the characters a terminal would
    act on (C1, bidi controls, line separators) written as ``\\uXXXX``."""
    text = json.dumps(document, ensure_ascii=False, indent=indent, default=printable)
    print(json_printable(text), file=out)


def time_zone(name: str | None) -> zoneinfo.ZoneInfo:
    """``--tz NAME`` (an IANA name such as ``Asia/Shanghai`` or ``UTC``); a name the system's
    time zone database does not know is a usage error (exit 2)."""
    name = DEFAULT_TZ if name is None else name
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise _Fail(
            ExitCode.USAGE,
            f"--tz: unknown time zone {printable(name)!s} (an IANA name such as Asia/Shanghai or UTC)",
        ) from None


def default_lang() -> str:
    env = os.environ.get("MEDIATION_LANG", "").strip().lower()
    if env in ("zh", "en"):
        return env
    return "zh" if os.environ.get("LANG", "").lower().startswith("zh") else "en"


def msg(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def err_text(exc: MediationError, lang: str) -> str:
    return exc.message_zh if lang == "zh" else exc.message


def verdict_code(verdict: Verdict) -> ExitCode:
    if verdict.fault is None:
        return ExitCode.OK
    return ExitCode.INTEGRITY if verdict.fault.kind.integrity else ExitCode.ILLEGAL


def code_for(exc: MediationError) -> ExitCode:
    """The exit code of a library error that stopped a command."""
    if isinstance(exc, IntegrityViolation):
        verdict = exc.verdict
        if isinstance(verdict, Verdict):
            return verdict_code(verdict)
        return ExitCode.INTEGRITY
    if isinstance(exc, InvalidStoreURL):
        return ExitCode.USAGE
    if isinstance(exc, (NotADatabase, MalformedRecord)):
        return ExitCode.INPUT
    if isinstance(exc, StoreError):
        return ExitCode.IO
    if isinstance(exc, (ExportError, CheckpointError, CaseNotFound, CaseExists)):
        return ExitCode.INPUT
    return ExitCode.INPUT


# -- stores and files -------------------------------------------------------------------------------


def parse_db(url: str, lang: str) -> _open.StoreURL:
    """The parsed ``--db`` value; a form no store has is a usage error (exit 2)."""
    try:
        return _open.parse_url(url)
    except InvalidStoreURL as exc:
        raise _Fail(ExitCode.USAGE, "--db " + err_text(exc, lang)) from exc


def open_db(url: str, lang: str, *, write: bool = False, create: bool | None = None) -> Store:
    """The store a ``--db`` value names: read-only (a SQLite file opened ``mode=ro``) unless
    ``write``, which creates it if missing (unless ``create`` is False: it must exist)."""
    parse_db(url, lang)
    return _open.open(url, create=write if create is None else create, read_only=not write)


def read_bytes(path: str, lang: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise _Fail(
            ExitCode.IO, msg(lang, f"找不到{what}文件 {path}", f"no such {what} file: {path}")
        ) from None
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot read {path}: {exc.strerror}") from exc


def write_atomic(path: str, text: str) -> None:
    """Write ``path`` whole or not at all, mode 0600 (a report holds personal data): no partial
    copy stays behind (:func:`mediation._files.atomic_write_text`)."""
    with atomic_write_text(path) as f:
        f.write(text)


def describe_with_line(
    verdict: Verdict, line_of: Callable[[int], int | None] | None, lang: str
) -> str:
    """The verdict, and the export file's line of its fault."""
    text = verdict.describe(lang)
    if verdict.fault is not None and line_of is not None:
        line = line_of(verdict.fault.seq)
        if line is not None:
            text += f"（第 {line} 行）" if lang == "zh" else f" [line {line}]"
    return text


# -- arguments --------------------------------------------------------------------------------------


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def source_args(sp: argparse.ArgumentParser, file: bool = True) -> None:
    sp.add_argument("--db", metavar="URL", help="SQLite path, sqlite:///path or postgresql://...")
    if file:
        sp.add_argument(
            "file", nargs="?", metavar="FILE", help="an export (JSON Lines; '-' for stdin)"
        )


def key_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--key",
        metavar="PUBLIC_KEY",
        help="check signed checkpoints under this Ed25519 public key",
    )
    sp.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="checkpoints file (default: <db>.checkpoints.jsonl, or those embedded in an export)",
    )


def role_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--as", dest="role", choices=VIEW_ROLES, default=Role.AUDITOR.value,
        help="view as this role of the case's committee (default auditor)",
    )  # fmt: skip
