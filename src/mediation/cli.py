"""The ``mediation`` command: the auditor's toolkit.

::

    mediation demo       [--db PATH] [--scenario noise|leak]
    mediation verify     (--db URL | FILE) [--case ID] [--key PUBLIC_KEY] [--checkpoints FILE] [--json]
                         [-q] [--strict] [--jobs N]
    mediation timeline   CASE (--db URL | FILE) [--as ROLE]
    mediation report     CASE (--db URL | FILE) --html OUT [--as ROLE] [--key PUBLIC_KEY]
    mediation export     --db URL [--case ID ...] [-o FILE]
    mediation import     FILE --db URL [--key PUBLIC_KEY]
    mediation diagram    [--format mermaid|dot]
    mediation keygen     --out PATH
    mediation checkpoint --db URL --key PRIVATE_KEY [--checkpoints FILE] [--receipt CASE]

``URL`` is a SQLite path, ``sqlite:///path``, or ``postgresql://...`` (needs
``mediation[postgres]``).  ``FILE`` is an export (JSON Lines; a SQLite file given there is opened as
a database).  ``--lang zh|en`` picks the language of human output (default: ``$MEDIATION_LANG``, else
Chinese when ``$LANG`` starts with ``zh``, else English).  The exit codes are
:class:`mediation._report.ExitCode`, listed in docs/auditing.md.

``verify`` checks the chain, every transition, permission and guard; ``--strict`` also re-validates
every payload against its command class and checks canonical form (``timeline``, ``report``,
``import`` and ``checkpoint`` always do).  ``--jobs N`` verifies a SQLite store in N processes (by
default one per CPU, for stores of 50,000 events or more), with the same output as one process.

:func:`main` takes its arguments and streams as parameters, so tests run it in-process.  With
``verify --jobs``, workers are started with "spawn", which re-imports the caller's main module: a
program calling :func:`main` needs the usual ``if __name__ == "__main__":`` guard, or ``--jobs 1``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import itertools
import json
import multiprocessing
import os
import re
import signal
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

import attrs

from . import __version__
from ._audit import Verdict, verify
from ._authz import Actor, StaticDirectory
from ._checkpoints import (
    CaseCheckpoint,
    CheckpointAuditor,
    CheckpointError,
    CheckpointLog,
    _json_lines,
    generate_key,
    issue_checkpoint,
    key_id,
    load_private_key,
    load_public_key,
)
from ._errors import (
    CaseExists,
    CaseNotFound,
    IntegrityViolation,
    InvalidCommand,
    MediationError,
    StoreError,
)
from ._events import StoredEvent, decode_event
from ._export import ExportCase, ExportError, ExportReader, export_store, import_export
from ._report import (
    AuditInput,
    AuditResult,
    ExitCode,
    VerifiedCase,
    audit,
    audit_case,
    audit_verified,
    dot,
    mermaid,
    render_html,
    timeline_lines,
)
from ._views import CaseView, view_case
from ._workflow import Role
from .stores._base import Store
from .stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["ExitCode", "main"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_VIEW_ROLES = ("auditor", "supervisor", "director", "mediator")


class _Fail(Exception):
    """Stop the command with ``code`` after printing ``message`` (already translated)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _default_lang() -> str:
    env = os.environ.get("MEDIATION_LANG", "").strip().lower()
    if env in ("zh", "en"):
        return env
    return "zh" if os.environ.get("LANG", "").lower().startswith("zh") else "en"


def _msg(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def _err_text(exc: MediationError, lang: str) -> str:
    return exc.message_zh if lang == "zh" else exc.message


# -- opening sources -------------------------------------------------------------------------------


def _is_pg(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _sqlite_path(url: str) -> str:
    if url.startswith("sqlite:"):
        parsed = urllib.parse.urlsplit(url)
        if not url.startswith("sqlite:///") or not parsed.path:
            raise _Fail(
                ExitCode.USAGE,
                f"a SQLite URL is sqlite:///relative/path or sqlite:////abs/path, not {url!r}",
            )
        return urllib.parse.unquote(parsed.path[1:])
    return url


def _read_magic(path: str, lang: str, what_zh: str, what_en: str) -> bytes:
    """The first 16 bytes of ``path`` (I/O errors become exit code 4)."""
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except FileNotFoundError:
        raise _Fail(
            ExitCode.IO, _msg(lang, f"找不到{what_zh} {path}", f"no such {what_en}: {path}")
        ) from None
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot read {path}: {exc.strerror}") from exc


def _check_sqlite_file(path: str, lang: str) -> None:
    magic = _read_magic(path, lang, "数据库文件", "database file")
    if magic and magic != _SQLITE_MAGIC:
        raise _Fail(
            ExitCode.INPUT,
            _msg(lang, f"{path} 不是 SQLite 数据库", f"{path} is not a SQLite database"),
        )


def _postgres() -> Any:
    """The ``stores.postgres`` module, or a clear exit when the extra is not installed."""
    try:
        from .stores import postgres
    except ImportError as exc:
        raise _Fail(
            ExitCode.IO,
            f"PostgreSQL needs the 'postgres' extra: pip install 'mediation[postgres]' ({exc})",
        ) from exc
    return postgres


def _pg_store(url: str, *, create: bool) -> Store:
    store: Store = _postgres().PostgresStore(url, create=create)
    return store


def open_store(url: str, *, lang: str = "en", write: bool = False) -> Store:
    """The store a ``--db`` value names; read-only for SQLite unless ``write``."""
    _check_url(url, lang)
    if _is_pg(url):
        return _pg_store(url, create=write)
    return _open_sqlite(_sqlite_path(url), lang, write)


def _check_url(url: str, lang: str) -> None:
    if _is_pg(url):
        return
    if ("://" in url and not url.startswith("sqlite:")) or re.fullmatch(r"(\s*\w+=\S*)+\s*", url):
        raise _Fail(
            ExitCode.USAGE,
            _msg(
                lang,
                f"无法识别的 --db：{url!r}（应为 SQLite 路径、sqlite:///路径 或 postgresql://...）",
                f"--db {url!r} is neither a SQLite path, sqlite:///path nor postgresql://...",
            ),
        )


def _open_sqlite(path: str, lang: str, write: bool) -> Store:
    if write:
        if os.path.exists(path):
            _check_sqlite_file(path, lang)
        return SQLiteStore(path)
    _check_sqlite_file(path, lang)
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
    try:
        return _OwnedSQLite(conn, path)
    except BaseException:
        conn.close()
        raise


class _OwnedSQLite(SQLiteStore):
    """A read-only SQLite store on a connection it closes."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        super().__init__(connection=conn, create=False)
        self.path = path

    def close(self) -> None:
        self.connection.close()


def _read_bytes(path: str, lang: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise _Fail(
            ExitCode.IO, _msg(lang, f"找不到{what}文件 {path}", f"no such {what} file: {path}")
        ) from None
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot read {path}: {exc.strerror}") from exc


class _Source:
    """Where histories come from: a store (``--db``) or an export file."""

    label: str

    def cases(self, only: str | None) -> Iterator[AuditInput]:
        raise NotImplementedError

    def case(self, case_id: str) -> tuple[list[Any], Callable[[int], int | None] | None]:
        for cid, records, line_of in self.cases(case_id):
            if cid == case_id:
                return list(records), line_of
        raise CaseNotFound(
            f"no case {case_id} in {self.label}",
            message_zh=f"{self.label} 中没有案件 {case_id}",
            case=case_id,
        )

    def checkpoints(self, explicit: str | None, lang: str) -> CheckpointLog:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _StoreSource(_Source):
    def __init__(self, url: str, lang: str) -> None:
        self.url = url
        self.store = open_store(url, lang=lang)
        self.label = url if _is_pg(url) else _sqlite_path(url)

    def cases(self, only: str | None) -> Iterator[AuditInput]:
        if only is not None:
            records = self.store.read(only)
            if records:
                yield only, records, None
            return
        current: str | None = None
        batch: list[Any] = []
        for rec in self.store.scan():
            if rec.case_id != current:
                if batch:
                    yield current or "", batch, None
                current, batch = rec.case_id, []
            batch.append(rec)
        if batch:
            yield current or "", batch, None

    def default_checkpoints(self) -> str | None:
        return None if _is_pg(self.url) else _sqlite_path(self.url) + ".checkpoints.jsonl"

    def checkpoints(self, explicit: str | None, lang: str) -> CheckpointLog:
        path = explicit or self.default_checkpoints()
        if path is None:
            raise _Fail(
                ExitCode.USAGE,
                _msg(
                    lang,
                    "PostgreSQL 存储请用 --checkpoints 指定检查点文件",
                    "with a PostgreSQL store, give --checkpoints FILE",
                ),
            )
        if explicit is None and not os.path.exists(path):
            return CheckpointLog((), path)
        return CheckpointLog.parse(_json_lines(_read_bytes(path, lang, "checkpoints"), path), path)

    def close(self) -> None:
        self.store.close()


class _FileSource(_Source):
    def __init__(self, path: str, stream: IO[bytes] | None = None) -> None:
        self.path = path
        self.label = path
        self._stream = stream
        self.reader: ExportReader | None = None

    def _open(self) -> IO[bytes]:
        if self._stream is not None:
            return self._stream
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise _Fail(ExitCode.IO, f"no such file: {self.path}") from None
        except OSError as exc:
            raise _Fail(ExitCode.IO, f"cannot read {self.path}: {exc.strerror}") from exc

    def export_cases(self) -> Iterator[ExportCase]:
        """The file's cases, streamed; :attr:`reader` holds its checkpoints once exhausted."""
        stream = self._open()
        try:
            self.reader = ExportReader(stream, self.path)
            yield from self.reader
        finally:
            if stream is not self._stream:
                stream.close()

    def cases(self, only: str | None) -> Iterator[AuditInput]:
        for case in self.export_cases():
            if only is None or case.case_id == only:
                yield case.case_id, case.records, case.line_of

    def checkpoints(self, explicit: str | None, lang: str) -> CheckpointLog:
        if explicit is not None:
            data = _read_bytes(explicit, lang, "checkpoints")
            return CheckpointLog.parse(_json_lines(data, explicit), explicit)
        # the checkpoints embedded in the export come after its events: one pass to collect them
        for _ in self.cases(None):
            pass
        assert self.reader is not None
        return CheckpointLog.parse(self.reader.checkpoints, self.path)


def _source(args: argparse.Namespace, lang: str) -> _Source:
    db: str | None = args.db
    file: str | None = getattr(args, "file", None)
    if (db is None) == (file is None):
        raise _Fail(
            ExitCode.USAGE,
            _msg(
                lang,
                "请给出 --db URL 或一个导出文件（二选一）",
                "give either --db URL or an export FILE",
            ),
        )
    if db is not None:
        return _StoreSource(db, lang)
    assert file is not None
    if _read_magic(file, lang, "文件", "file") == _SQLITE_MAGIC:
        return _StoreSource(file, lang)
    return _FileSource(file)


def _auditor(args: argparse.Namespace, source: _Source, lang: str) -> CheckpointAuditor | None:
    return _lazy_auditor(args, source, lang)()


def _lazy_auditor(args: argparse.Namespace, source: _Source, lang: str) -> _LazyAuditor:
    """The checkpoint auditor ``--key`` asks for, built on first call (checking every signature
    takes a while: ``verify --jobs`` does it while the workers run); the key and the checkpoints
    are read, and refused if they are not usable, now."""
    if args.key is None:
        if getattr(args, "checkpoints", None):
            raise _Fail(
                ExitCode.USAGE,
                _msg(lang, "--checkpoints 需要配合 --key 使用", "--checkpoints needs --key"),
            )
        return _LazyAuditor(None, None)
    public = load_public_key(_read_bytes(args.key, lang, "key"))
    return _LazyAuditor(source.checkpoints(args.checkpoints, lang), public)


class _LazyAuditor:
    """Calling it gives the :class:`CheckpointAuditor` (None without ``--key``), built once."""

    def __init__(self, log: CheckpointLog | None, public_key: Ed25519PublicKey | None) -> None:
        self.log = log
        self._public_key = public_key
        self._auditor: CheckpointAuditor | None = None

    def __call__(self) -> CheckpointAuditor | None:
        if self._auditor is None and self.log is not None and self._public_key is not None:
            self._auditor = CheckpointAuditor(self.log, self._public_key)
        return self._auditor


# -- commands --------------------------------------------------------------------------------------


def _verdict_code(verdict: Verdict) -> ExitCode:
    if verdict.fault is None:
        return ExitCode.OK
    return ExitCode.INTEGRITY if verdict.fault.kind.integrity else ExitCode.ILLEGAL


def _load_directory(path: str | None, lang: str) -> StaticDirectory | None:
    """``--directory FILE``: the host's grants, ``{"actor": {"committee": ["role", ...]}}``."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise _Fail(
            ExitCode.IO, _msg(lang, f"找不到文件 {path}", f"no such file: {path}")
        ) from None
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
            _msg(lang, f"{path} 不是有效的人员名录：{exc}", f"{path} is not a directory: {exc}"),
        ) from exc
    return directory


def cmd_verify(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    source = _source(args, lang)
    directory = _load_directory(args.directory, lang)
    try:
        auditor = _lazy_auditor(args, source, lang)
        result: AuditResult | None = None
        if args.case is None and isinstance(source, _StoreSource):
            result = _verify_parallel(source, args.jobs, auditor, args.strict, directory, lang)
        if result is None:
            result = audit(
                source.cases(args.case),
                auditor=auditor(),
                only=args.case,
                strict=args.strict,
                directory=directory,
            )
        if args.case is not None and not result.verdicts:
            raise CaseNotFound(
                f"no case {args.case} in {source.label}",
                message_zh=f"{source.label} 中没有案件 {args.case}",
                case=args.case,
            )
        if args.json:
            print(json.dumps(result.to_json(), ensure_ascii=False, indent=2), file=out)
        else:
            for v in result.verdicts:
                if not (args.quiet and v.ok):
                    print(result.describe(v, lang), file=out)
            for line in result.summary_lines(lang):
                print(line, file=out)
        return int(result.exit_code)
    finally:
        source.close()


# -- verify --jobs: cases verified in several processes ---------------------------------------------
#
# The store is cut into half-open ranges of case ids that together cover every possible id, in
# order.  The command itself and ``--jobs - 1`` worker processes (started with "spawn") verify them
# range by range: workers take ranges from the front, the command from the back, each reading its
# range from its own connection to the same database, in the order of ``store.scan()``, and
# verifying each case exactly as :func:`audit` does.  The verdicts (without the rebuilt cases) are
# put back in range order, and the checkpoint checks, the attested cases never seen and the result
# are computed by :func:`audit_verified` in the command: the output is the one-process output.

#: with the default --jobs, a store of fewer events than this (by its summary rows) is verified in
#: one process: starting workers would cost more than they save
_PARALLEL_MIN_EVENTS = 50_000
#: ranges per process at least, so that one that finishes early takes another
_CHUNKS_PER_JOB = 4
#: events per range at most (about): small ranges keep the processes finishing together
_CHUNK_EVENTS = 10_000


def _cpus() -> int:
    """The CPUs this process may run on (the default of ``--jobs``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


_Bounds = tuple[str | None, str | None]


def _chunk_bounds(store: SQLiteStore, jobs: int, explicit: bool) -> list[_Bounds]:
    """Half-open ranges ``[lo, hi)`` of case ids (None: unbounded) that cover every possible id, in
    order: at least ``jobs * _CHUNKS_PER_JOB`` of them (fewer for fewer cases), of about as many
    events each, at most about ``_CHUNK_EVENTS``.  A single range means "verify in one process".

    The cuts are taken from the summary rows, which only balance the load: whatever they say (an
    attacker may have edited them), the ranges cover every id, so every event is read.
    """
    try:
        rows = store.connection.execute(
            "SELECT case_id, seq FROM mediation_cases ORDER BY case_id"
        ).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"listing cases failed: {exc}") from exc
    weights = [seq if type(seq) is int and seq > 0 else 1 for _, seq in rows]
    total = sum(weights)
    if not explicit and total < _PARALLEL_MIN_EVENTS:
        return [(None, None)]
    parts = min(max(jobs * _CHUNKS_PER_JOB, -(-total // _CHUNK_EVENTS)), len(rows))
    cuts: list[str] = []
    done = 0
    for (case_id, _), weight in zip(rows, weights, strict=True):
        if done > 0 and done >= total * (len(cuts) + 1) / parts:
            cuts.append(case_id)
        done += weight
    return list(itertools.pairwise([None, *cuts, None]))


@attrs.frozen
class _Setup:
    """What verifying ranges needs (sent once to each worker)."""

    url: str
    lang: str
    strict: bool
    directory: StaticDirectory | None
    #: case id -> the seqs the checkpoints name (with --key): the stored hashes there are returned
    attested: dict[str, tuple[int, ...]] | None
    ranges: tuple[_Bounds, ...] = ()


#: the verdicts of one range: per case, its id, its verdict (without the case) and the stored
#: hashes at the seqs the checkpoints name; or, when the store could not be read, (exit code,
#: message)
_Chunk = list[tuple[str, Verdict, dict[int, str] | None]] | tuple[int, str]


class _Claims(Protocol):
    """``[next range from the front, end of the ranges left]``, shared by every process."""

    def __getitem__(self, i: int) -> int: ...
    def __setitem__(self, i: int, value: int) -> None: ...
    def get_lock(self) -> contextlib.AbstractContextManager[Any]: ...


def _claim(claims: _Claims, front: bool) -> int | None:
    """The index of a range no process has taken yet, from the front or the back; None when none
    is left."""
    with claims.get_lock():
        lo, hi = claims[0], claims[1]
        if lo >= hi:
            return None
        if front:
            claims[0] = lo + 1
            return lo
        claims[1] = hi - 1
        return hi - 1


_worker: tuple[_Setup, _Claims] | None = None  # in a worker process


def _init_worker(setup: _Setup, claims: _Claims) -> None:
    global _worker
    _worker = setup, claims
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle


def _verify_next() -> tuple[int, _Chunk] | None:
    """In a worker: verify the next range from the front, if one is left."""
    assert _worker is not None
    setup, claims = _worker
    i = _claim(claims, front=True)
    if i is None:
        return None
    try:
        store = open_store(setup.url, lang=setup.lang)
    except _Fail as exc:
        return i, (int(exc.code), exc.message)
    except MediationError as exc:
        return i, (int(_code_for(exc)), _err_text(exc, setup.lang))
    try:
        return i, _verify_chunk(store, setup.ranges[i], setup)
    finally:
        store.close()


def _verify_chunk(store: Store, bounds: _Bounds, setup: _Setup) -> _Chunk:
    """Verify every case whose id is in ``bounds``: the records of that slice of ``store.scan()``,
    grouped into cases exactly as :meth:`_StoreSource.cases` groups them."""
    assert isinstance(store, SQLiteStore)
    out: list[tuple[str, Verdict, dict[int, str] | None]] = []
    strict, attested, directory = setup.strict, setup.attested, setup.directory

    def one(case_id: str, batch: list[StoredEvent]) -> None:
        verdict = verify(batch, case_id, strict=strict, directory=directory).without_case()
        hashes: dict[int, str] | None = None
        if attested is not None:
            hashes = {}
            for seq in attested.get(case_id, ()):
                with contextlib.suppress(IndexError):
                    hashes[seq] = batch[seq - 1].hash  # as audit() looks them up
        out.append((case_id, verdict, hashes))

    current: str | None = None
    batch: list[StoredEvent] = []
    try:
        for record in store.scan(*bounds):
            if record.case_id != current:
                if batch:
                    one(current or "", batch)
                current, batch = record.case_id, []
            batch.append(record)
    except StoreError as exc:
        return int(ExitCode.IO), _err_text(exc, setup.lang)
    if batch:
        one(current or "", batch)
    return out


def _attested_seqs(log: CheckpointLog) -> dict[str, tuple[int, ...]]:
    """Every (case, seq) a checkpoint of ``log`` names: a superset of those the auditor trusts."""
    seqs: dict[str, set[int]] = {}
    for _, rec in log.records:
        if isinstance(rec, CaseCheckpoint):
            seqs.setdefault(rec.case_id, set()).add(rec.seq)
        else:
            for leaf in rec.leaves:
                seqs.setdefault(leaf.case_id, set()).add(leaf.seq)
    return {case_id: tuple(sorted(s)) for case_id, s in seqs.items()}


def _hash_at(hashes: dict[int, str] | None, seq: int) -> str | None:
    """The stored hash at ``seq`` a worker sent, looked up as :func:`audit` looks it up."""
    if hashes is None or seq not in hashes:
        raise IndexError("list index out of range")  # what records[seq - 1] would raise
    return hashes[seq]


def _can_spawn() -> bool:
    """Can a spawned worker start?  It re-imports the main module, which must exist as a module or
    a file (not, say, a script read from stdin)."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) is not None:
        return True
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)


def _verify_parallel(
    source: _StoreSource,
    jobs: int | None,
    auditor: _LazyAuditor,
    strict: bool,
    directory: StaticDirectory | None,
    lang: str,
) -> AuditResult | None:
    """``verify --jobs``: the result of :func:`audit` over the whole store, computed by ``jobs``
    processes; None when one process should do it (one job, a small store with the default
    ``--jobs``, a store that is not SQLite, or workers that cannot start)."""
    n = jobs if jobs is not None else _cpus()
    if n <= 1 or not isinstance(source.store, SQLiteStore):
        return None
    if multiprocessing.current_process().daemon or not _can_spawn():
        return None
    ranges = _chunk_bounds(source.store, n, explicit=jobs is not None)
    if len(ranges) < 2:
        return None
    log = auditor.log
    attested = None if log is None else _attested_seqs(log)
    setup = _Setup(source.url, lang, strict, directory, attested, tuple(ranges))
    # the signatures of the checkpoints are checked here while the workers start verifying
    chunks = _run_chunks(source.store, setup, min(n, len(ranges)) - 1, auditor)
    if chunks is None:
        return None
    for chunk in chunks:
        if isinstance(chunk, tuple):
            raise _Fail(ExitCode(chunk[0]), chunk[1])
    verified: Iterator[VerifiedCase] = (
        (case_id, verdict, functools.partial(_hash_at, hashes), None)
        for chunk in chunks
        if isinstance(chunk, list)
        for case_id, verdict, hashes in chunk
    )
    return audit_verified(verified, auditor=auditor())


def _run_chunks(
    store: Store, setup: _Setup, workers: int, meanwhile: Callable[[], object]
) -> list[_Chunk] | None:
    """Verify ``setup.ranges`` in ``workers`` processes and this one; the results in range order,
    or None when the workers failed (the caller then verifies in one process).

    The workers take ranges from the front, each when it is ready for one; this process first calls
    ``meanwhile``, then takes ranges from the back, until none is left.
    """
    context = multiprocessing.get_context("spawn")
    claims: _Claims = context.Array("q", [0, len(setup.ranges)])
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(setup, claims)
    )
    results: dict[int, _Chunk] = {}
    try:
        try:
            futures = [pool.submit(_verify_next) for _ in setup.ranges]
        except OSError as exc:  # no worker could be started
            _note(setup.lang, exc)
            return None
        meanwhile()
        while (i := _claim(claims, front=False)) is not None:
            results[i] = _verify_chunk(store, setup.ranges[i], setup)
        for f in futures:
            done = f.result()
            if done is not None:
                results[done[0]] = done[1]
    except BrokenProcessPool as exc:  # a worker was killed (out of memory, say): start again
        _note(setup.lang, exc)
        return None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in range(len(setup.ranges))]


def _note(lang: str, exc: BaseException) -> None:
    print(
        _msg(
            lang,
            f"mediation：工作进程失败（{exc}），改为单进程核验",
            f"mediation: worker processes failed ({exc}); verifying in one process",
        ),
        file=sys.stderr,
    )


@attrs.frozen
class _Viewed:
    view: CaseView | None  # None when not even the first event verifies
    verdict: Verdict
    line_of: Callable[[int], int | None] | None
    subtype: str = ""


def _case_view(
    source: _Source, case_id: str, role: str, auditor: CheckpointAuditor | None
) -> _Viewed:
    """The case as ``role`` of its committee may see it: its verified prefix, and the verdict."""
    records, line_of = source.case(case_id)
    verdict = verify(records, case_id, strict=True)
    case = verdict.case
    checked = audit_case(case_id, records, auditor) if auditor else verdict
    if case is None:
        return _Viewed(None, checked, line_of)
    history = [decode_event(r) for r in records[: verdict.events]]
    actor = Actor.with_roles(f"cli-{role}", {case.committee: [role]})
    return _Viewed(view_case(case, history, actor, False), checked, line_of, case.subtype)


def _describe_with_line(
    verdict: Verdict, line_of: Callable[[int], int | None] | None, lang: str
) -> str:
    text = verdict.describe(lang)
    if verdict.fault is not None and line_of is not None:
        line = line_of(verdict.fault.seq)
        if line is not None:
            text += f"（第 {line} 行）" if lang == "zh" else f" [line {line}]"
    return text


def cmd_timeline(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    source = _source(args, lang)
    try:
        seen = _case_view(source, args.case, args.role, None)
        if seen.view is not None:
            for line in timeline_lines(seen.view, lang=lang, subtype=seen.subtype):
                print(line, file=out)
            print("", file=out)
        print(_describe_with_line(seen.verdict, seen.line_of, lang), file=out)
        return int(_verdict_code(seen.verdict))
    finally:
        source.close()


def _write_atomic(path: str, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, renamed into place."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cmd_report(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    source = _source(args, lang)
    try:
        auditor = _auditor(args, source, lang)
        seen = _case_view(source, args.case, args.role, auditor)
        view, verdict, line_of = seen.view, seen.verdict, seen.line_of
        if view is None:
            print(_describe_with_line(verdict, line_of, lang), file=out)
            raise _Fail(
                _verdict_code(verdict),
                _msg(
                    lang,
                    "第一个事件即未通过验证，无法生成报告",
                    "the first event does not verify: no report",
                ),
            )
        note = None
        if auditor is not None:
            faults = [f.message_zh if lang == "zh" else f.message for f in auditor.store_faults]
            if faults:
                verdict_code = ExitCode.INTEGRITY
                note = "; ".join(faults)
            else:
                verdict_code = _verdict_code(verdict)
                note = _msg(
                    lang,
                    f"已用密钥 {auditor.key_id[:16]} 核验 {auditor.checked} 个签名检查点",
                    f"checked against {auditor.checked} signed checkpoint(s), key {auditor.key_id[:16]}",
                )
        else:
            verdict_code = _verdict_code(verdict)
        page = render_html(
            view,
            verdict,
            lang=lang,
            source=source.label,
            checkpoint_note=note,
            generated_by=f"mediation {__version__}",
            subtype=seen.subtype,
        )
        try:
            _write_atomic(args.html, page)
        except OSError as exc:
            raise _Fail(ExitCode.IO, f"cannot write {args.html}: {exc.strerror}") from exc
        print(_msg(lang, f"已生成报告 {args.html}", f"wrote {args.html}"), file=out)
        print(_describe_with_line(verdict, line_of, lang), file=out)
        return int(verdict_code)
    finally:
        source.close()


def cmd_export(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    source = _StoreSource(args.db, lang)
    try:
        cps: list[dict[str, Any]] = []
        cp_path = args.checkpoints or source.default_checkpoints()
        if cp_path is not None and (args.checkpoints or os.path.exists(cp_path)):
            log = CheckpointLog.parse(
                _json_lines(_read_bytes(cp_path, lang, "checkpoints"), cp_path), cp_path
            )
            wanted = set(args.case) if args.case else None
            for _, rec in log.records:
                item = rec.to_json()
                if wanted is None or (item["kind"] == "case" and item["case"] in wanted):
                    cps.append(item)
        if args.output in (None, "-"):
            counts = export_store(source.store, out=out, case_ids=args.case, checkpoints=cps)
            target = "stdout"
        else:
            counts = export_store(source.store, args.output, case_ids=args.case, checkpoints=cps)
            target = args.output
        msg = _msg(
            lang,
            f"已导出 {counts.cases} 个案件、{counts.events} 个事件、{counts.checkpoints} 个检查点到 {target}",
            f"exported {counts.cases} case(s), {counts.events} event(s), {counts.checkpoints} checkpoint(s) to {target}",
        )
        print(msg, file=sys.stderr if target == "stdout" else out)
        return 0
    finally:
        source.close()


def _binary(stream: IO[Any]) -> IO[bytes]:
    """A binary view of ``stream`` (stdin): its buffer, itself if binary, or its text re-encoded."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cast("IO[bytes]", buffer)
    if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
        return cast("IO[bytes]", stream)
    return io.BytesIO(stream.read().encode("utf-8"))


def cmd_import(args: argparse.Namespace, out: IO[str], lang: str, stdin: IO[Any]) -> int:
    _check_url(args.db, lang)
    source = _FileSource("stdin", _binary(stdin)) if args.file == "-" else _FileSource(args.file)
    # the whole file is read (and its structure checked) before anything else happens
    cases = list(source.export_cases())
    reader = source.reader
    assert reader is not None
    # checkpoints carried by the file are checked too when a key is given
    if args.key is not None:
        public = load_public_key(_read_bytes(args.key, lang, "key"))
        auditor = CheckpointAuditor(CheckpointLog.parse(reader.checkpoints, source.label), public)
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
                _msg(lang, "拒绝导入：", "import refused: ") + "; ".join(problems),
            )
    if _is_pg(args.db):
        result = _import_pg(args.db, cases, lang)
    else:
        with contextlib.closing(open_store(args.db, lang=lang, write=True)) as store:
            result = import_export(cases, store, lang=lang)
    copied = ""
    if reader.checkpoints:
        dest = args.checkpoints or (
            None if _is_pg(args.db) else _sqlite_path(args.db) + ".checkpoints.jsonl"
        )
        if dest is not None and not os.path.exists(dest):
            try:
                with open(dest, "w", encoding="utf-8", newline="\n") as f:
                    for _, obj in reader.checkpoints:
                        f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            except OSError as exc:
                raise _Fail(ExitCode.IO, f"cannot write {dest}: {exc.strerror}") from exc
            copied = _msg(lang, f"，检查点已写入 {dest}", f"; checkpoints written to {dest}")
        else:
            copied = _msg(
                lang,
                "，文件中的检查点未复制（目标检查点文件已存在或未指定）",
                "; the file's checkpoints were not copied (give --checkpoints FILE, which must not exist)",
            )
    print(
        _msg(
            lang,
            f"已导入 {result.cases} 个案件、{result.events} 个事件（均已通过验证）{copied}",
            f"imported {result.cases} case(s), {result.events} event(s), every one verified{copied}",
        ),
        file=out,
    )
    return 0


def _import_pg(url: str, cases: Sequence[ExportCase], lang: str) -> Any:
    """Import into PostgreSQL in one transaction on one connection (all cases or none)."""
    postgres = _postgres()
    psycopg, PostgresStore = postgres.psycopg, postgres.PostgresStore
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    with conn:
        try:
            with conn.transaction():
                store = PostgresStore(connection=conn, create=True)
                return import_export(cases, store, lang=lang)
        except psycopg.Error as exc:
            raise StoreError(f"the import did not commit: {exc}") from exc


def cmd_diagram(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    out.write(dot() if args.format == "dot" else mermaid())
    return 0


def cmd_keygen(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    private_path, public_path = args.out, args.out + ".pub"
    for p in (private_path, public_path):
        if os.path.exists(p) and not args.force:
            raise _Fail(
                ExitCode.IO,
                _msg(
                    lang, f"{p} 已存在（用 --force 覆盖）", f"{p} exists (use --force to overwrite)"
                ),
            )
    private, public = generate_key()
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private)
        with open(public_path, "wb") as f:
            f.write(public)
    except OSError as exc:
        raise _Fail(ExitCode.IO, f"cannot write the key: {exc.strerror}") from exc
    kid = key_id(load_public_key(public))
    print(
        _msg(
            lang,
            f"私钥：{private_path}（请离线保管）\n公钥：{public_path}（交给审计方）\n密钥指纹：{kid}",
            f"private key: {private_path} (keep it off the server)\npublic key: {public_path} "
            f"(hand it to auditors)\nkey id: {kid}",
        ),
        file=out,
    )
    return 0


def cmd_checkpoint(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    private = load_private_key(_read_bytes(args.key, lang, "key"))
    source = _StoreSource(args.db, lang)
    try:
        path = args.checkpoints or source.default_checkpoints()
        if path is None:
            raise _Fail(
                ExitCode.USAGE,
                _msg(
                    lang,
                    "PostgreSQL 存储请用 --checkpoints 指定检查点文件",
                    "with a PostgreSQL store, give --checkpoints FILE",
                ),
            )
        log = (
            CheckpointLog.parse(_json_lines(_read_bytes(path, lang, "checkpoints"), path), path)
            if os.path.exists(path)
            else CheckpointLog((), path)
        )
        checkpoint = issue_checkpoint(source.store, private, log=log)
        log.append_to(path, checkpoint)
        s = checkpoint.store
        print(
            _msg(
                lang,
                f"已签发检查点：{s.size} 个案件，Merkle 根 {s.root[:16]}…，新增 {len(checkpoint.cases)} 个案件检查点，"
                f"追加到 {path}",
                f"checkpoint issued: {s.size} case(s), Merkle root {s.root[:16]}…, "
                f"{len(checkpoint.cases)} new case checkpoint(s), appended to {path}",
            ),
            file=out,
        )
        if args.receipt:
            print(
                json.dumps(checkpoint.receipt(args.receipt), ensure_ascii=False, indent=2), file=out
            )
        return 0
    finally:
        source.close()


def cmd_demo(args: argparse.Namespace, out: IO[str], lang: str) -> int:
    from .demo import SCENARIOS, new_service

    path = _sqlite_path(args.db)
    with contextlib.closing(SQLiteStore(path)) as store:
        service = new_service(store)
        case_id = SCENARIOS[args.scenario](service)
        case = service.case(case_id)
        actor = Actor.with_roles(f"cli-{args.role}", {case.committee: [args.role]})
        view = view_case(case, service.history(case_id), actor, False)
        verdict = verify(store.read(case_id), case_id, strict=True)
    print(
        _msg(lang, f"演示案件已写入 {path}", f"demo case written to {path}"),
        file=out,
    )
    for line in timeline_lines(view, lang=lang, subtype=case.subtype):
        print(line, file=out)
    print("", file=out)
    print(verdict.describe(lang), file=out)
    return int(_verdict_code(verdict))


# -- the parser ------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lang", choices=("zh", "en"), default=None, help="language of human output (zh|en)"
    )
    p = argparse.ArgumentParser(
        prog="mediation",
        description="人民调解 audit toolkit: verify, read, export and sign hash-chained case histories.",
        epilog="exit codes: 0 valid; 1 integrity failure; 2 usage; 3 illegal history; 4 I/O error; "
        "5 bad input (see docs/auditing.md)",
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"mediation {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def source_args(sp: argparse.ArgumentParser, file: bool = True) -> None:
        sp.add_argument(
            "--db", metavar="URL", help="SQLite path, sqlite:///path or postgresql://..."
        )
        if file:
            sp.add_argument("file", nargs="?", metavar="FILE", help="an export (JSON Lines)")

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
            "--as", dest="role", choices=_VIEW_ROLES, default=Role.AUDITOR.value,
            help="view as this role of the case's committee (default auditor)",
        )  # fmt: skip

    sp = sub.add_parser(
        "demo", parents=[common], help="run the worked example on SQLite and show it"
    )
    sp.add_argument(
        "--db",
        default="mediation-demo.db",
        metavar="PATH",
        help="SQLite file (default mediation-demo.db)",
    )
    sp.add_argument(
        "--scenario",
        choices=("noise", "leak"),
        default="noise",
        help="noise: resolved; leak: failed",
    )
    role_arg(sp)
    sp.set_defaults(run=cmd_demo)

    sp = sub.add_parser(
        "verify",
        parents=[common],
        help="verify every case (chain, transitions, permissions, checkpoints)",
    )
    source_args(sp)
    sp.add_argument("--case", metavar="ID", help="only this case")
    key_args(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument(
        "-q", "--quiet", action="store_true", help="print only invalid cases and the summary"
    )
    sp.add_argument(
        "--strict",
        action="store_true",
        help="also re-validate every payload against its command class and check canonical form",
    )
    sp.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="verify a SQLite store in N processes (default: one per CPU, from 50,000 events)",
    )
    sp.add_argument(
        "--directory",
        metavar="FILE",
        help='the host\'s grants as JSON, {"actor": {"committee": ["role", ...]}}: every role '
        "claim in the log (and G3) is checked against it; without it role claims are trusted",
    )
    sp.set_defaults(run=cmd_verify)

    sp = sub.add_parser("timeline", parents=[common], help="the readable history of one case")
    sp.add_argument("case", metavar="CASE")
    source_args(sp)
    role_arg(sp)
    sp.set_defaults(run=cmd_timeline)

    sp = sub.add_parser("report", parents=[common], help="a self-contained HTML report of one case")
    sp.add_argument("case", metavar="CASE")
    source_args(sp)
    sp.add_argument("--html", required=True, metavar="OUT", help="where to write the page")
    role_arg(sp)
    key_args(sp)
    sp.set_defaults(run=cmd_report)

    sp = sub.add_parser("export", parents=[common], help="write a portable export (JSON Lines)")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--case", action="append", metavar="ID", help="only this case (repeatable)")
    sp.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    sp.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="checkpoints to embed (default: <db>.checkpoints.jsonl if present)",
    )
    sp.set_defaults(run=cmd_export)

    sp = sub.add_parser(
        "import", parents=[common], help="import an export; all cases or none, each verified"
    )
    sp.add_argument("file", metavar="FILE", help="the export ('-' for stdin)")
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--key", metavar="PUBLIC_KEY", help="also check the file's checkpoints")
    sp.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="where to write the file's checkpoints (must not exist)",
    )
    sp.set_defaults(run=cmd_import)

    sp = sub.add_parser("diagram", parents=[common], help="the workflow's state diagram")
    sp.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    sp.set_defaults(run=cmd_diagram)

    sp = sub.add_parser(
        "keygen", parents=[common], help="create an Ed25519 key pair for checkpoints"
    )
    sp.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="private key path; the public key goes to PATH.pub",
    )
    sp.add_argument("--force", action="store_true", help="overwrite existing files")
    sp.set_defaults(run=cmd_keygen)

    sp = sub.add_parser(
        "checkpoint", parents=[common], help="verify the store and sign a checkpoint of it"
    )
    sp.add_argument("--db", required=True, metavar="URL")
    sp.add_argument("--key", required=True, metavar="PRIVATE_KEY")
    sp.add_argument(
        "--checkpoints", metavar="FILE", help="append to this file (default <db>.checkpoints.jsonl)"
    )
    sp.add_argument(
        "--receipt", metavar="CASE", help="also print the receipt to hand the parties of CASE"
    )
    sp.set_defaults(run=cmd_checkpoint)
    return p


# -- main ------------------------------------------------------------------------------------------


def _code_for(exc: MediationError) -> ExitCode:
    if isinstance(exc, IntegrityViolation):
        verdict = exc.verdict
        if isinstance(verdict, Verdict):
            return _verdict_code(verdict)
        return ExitCode.INTEGRITY
    if isinstance(exc, StoreError):
        return ExitCode.IO
    if isinstance(exc, (ExportError, CheckpointError, CaseNotFound, CaseExists)):
        return ExitCode.INPUT
    return ExitCode.INPUT


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
    lang: str = args.lang or _default_lang()
    try:
        with contextlib.redirect_stderr(stderr):
            if args.command == "import":
                return int(cmd_import(args, stdout, lang, stdin))
            run: Callable[[argparse.Namespace, IO[str], str], int] = args.run
            return int(run(args, stdout, lang))
    except _Fail as exc:
        _fail(stderr, exc.message)
        return int(exc.code)
    except MediationError as exc:
        _fail(stderr, _err_text(exc, lang))
        return int(_code_for(exc))
    except BrokenPipeError:  # pragma: no cover - e.g. `mediation export | head`
        return int(ExitCode.IO)
    except OSError as exc:
        _fail(stderr, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return int(ExitCode.IO)


def _fail(stderr: IO[str], message: str) -> None:
    print(f"mediation: {message}", file=stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
