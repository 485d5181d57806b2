"""The ``mediation`` command: the auditor's toolkit.

::

    mediation demo       [--db PATH] [--scenario noise|leak]
    mediation verify     (--db URL | FILE | -) [--case ID] [--key PUBLIC_KEY] [--checkpoints FILE]
                         [--json] [-q] [--strict] [--jobs N] [--directory FILE]
                         [--witness DIR ...] [--store-id ID]
    mediation cases      --db URL [--state S] [--committee C] [--level L] [--category X] [--json]
    mediation stats      --db URL [--committee C ...] [--verified] [--json]
    mediation deadlines  --db URL [--overdue | --within DAYS] [--committee C] [--level L]
                         [--category X] [--mediator M] [--now TIME] [--tick] [--json]
    mediation timeline   CASE (--db URL | FILE) [--as ROLE] [--json]
    mediation report     CASE (--db URL | FILE) --html OUT [--as ROLE] [--key PUBLIC_KEY] [--json]
    mediation export     --db URL [--case ID ...] [-o FILE] [--json]
    mediation import     FILE --db URL [--key PUBLIC_KEY] [--json]
    mediation diagram    [--format mermaid|dot]
    mediation keygen     --out PATH
    mediation checkpoint --db URL --key PRIVATE_KEY [--checkpoints FILE] [--receipt CASE]
                         [--state FILE] [--store-id ID] [--witness DIR ...] [--adopt]
    mediation roster     sync|grant|revoke|show --db URL ...  (the committee's recorded roles)
    mediation receipt    check RECEIPT --key PUBLIC_KEY [--case ID] [--db URL | --export FILE] [--json]

``URL`` is a SQLite path, ``sqlite:///path``, or ``postgresql://...`` (needs
``mediation[postgres]``): what :func:`mediation.stores.open` takes.  ``FILE`` is an export (JSON
Lines; a SQLite file given there is opened as a database).  ``--lang zh|en`` picks the language of
human output (default: ``$MEDIATION_LANG``, else Chinese when ``$LANG`` starts with ``zh``, else
English); ``--tz ZONE`` the time zone times are shown in (default Asia/Shanghai, the committee's).
Both work before or after the sub-command.  Every untrusted string printed (case ids, actors,
texts, messages) is escaped (:func:`mediation._text.printable`).  The exit codes are :class:`mediation._report.ExitCode`, listed in docs/auditing.md.

``verify`` checks the chain, every transition, permission and guard; ``--strict`` also re-validates
every payload against its command class and checks canonical form (``timeline``, ``report``,
``import`` and ``checkpoint`` always do).  ``--jobs N`` verifies a SQLite store in N processes (by
default one per CPU, for stores of 50,000 events or more), with the same output as one process:
:func:`mediation.audit.verify_store` does it.

This package is presentation only: one module per sub-command (its arguments and its output), and
``_common`` (exit codes, messages, arguments) and ``_sources`` (stores, export files, checkpoints)
shared by them; the work is the library's.  :func:`main` takes its arguments and streams as
parameters, so tests run it in-process.  With ``verify --jobs``, workers are started with "spawn",
which re-imports the caller's main module: a program calling :func:`main` needs the usual
``if __name__ == "__main__":`` guard, or ``--jobs 1``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from .. import __version__
from .._errors import MediationError
from .._report import ExitCode
from .._text import printable
from ..stores._open import InvalidStoreURL
from . import (
    _cases,
    _checkpoint,
    _deadlines,
    _demo,
    _diagram,
    _export,
    _import,
    _keygen,
    _privacy,
    _receipt,
    _report,
    _roster,
    _stats,
    _timeline,
    _verify,
)
from ._common import Context, _Fail, code_for, default_lang, err_text, time_zone

__all__ = ["ExitCode", "main"]

#: the sub-commands, in the order ``--help`` lists them
_COMMANDS = (
    _demo,
    _verify,
    _cases,
    _stats,
    _deadlines,
    _timeline,
    _report,
    _export,
    _import,
    _diagram,
    _keygen,
    _checkpoint,
    _roster,
    _privacy,
    _receipt,
)


def _common(default: Any) -> argparse.ArgumentParser:
    """The global options; a sub-command's copy defaults to ``SUPPRESS``, so that a value given
    before the sub-command is kept."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lang", choices=("zh", "en"), default=default, help="language of human output (zh|en)"
    )
    common.add_argument(
        "--tz",
        metavar="ZONE",
        default=default,
        help="show times in this IANA time zone (default Asia/Shanghai; e.g. UTC)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common(None)
    p = argparse.ArgumentParser(
        prog="mediation",
        description="人民调解 audit toolkit: verify, read, export and sign hash-chained case histories.",
        epilog="exit codes: 0 valid; 1 integrity failure; 2 usage; 3 illegal history; 4 I/O error; "
        "5 bad input (see docs/auditing.md)",
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"mediation {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    after = _common(argparse.SUPPRESS)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[after], help=help)

    for command in _COMMANDS:
        command.register(add)
    return p


def main(
    argv: Sequence[str] | None = None,
    stdin: IO[Any] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the command line; returns the exit code (see :class:`ExitCode`).

    ``verify`` may start worker processes ("spawn"): guard the calling program's entry point with
    ``if __name__ == "__main__":``, or pass ``--jobs 1``.
    """
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    parser = _parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    lang: str = args.lang or default_lang()
    fail = functools.partial(_fail, stderr)
    try:
        with contextlib.redirect_stderr(stderr):
            tz = time_zone(args.tz)
            run: Callable[[argparse.Namespace, Context], int] = args.run
            return int(run(args, Context(stdout, stdin, lang, tz)))
    except _Fail as exc:
        fail(exc.message)
        return int(exc.code)
    except InvalidStoreURL as exc:  # a --db value
        fail("--db " + err_text(exc, lang))
        return int(ExitCode.USAGE)
    except MediationError as exc:
        fail(err_text(exc, lang))
        return int(code_for(exc))
    except BrokenPipeError:  # pragma: no cover - e.g. `mediation export | head`
        return int(ExitCode.IO)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return int(ExitCode.IO)
    except RecursionError:  # JSON nested deeper than the parser goes
        fail(
            "输入嵌套过深，不是有效的输入"
            if lang == "zh"
            else "bad input: nested too deeply to be a valid export, checkpoint or directory file"
        )
        return int(ExitCode.INPUT)


def _fail(stderr: IO[str], message: str) -> None:
    """The one line a failed command prints on stderr, its untrusted parts escaped."""
    print(f"mediation: {printable(message)}", file=stderr)
