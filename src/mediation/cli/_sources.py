"""Where histories come from (a store given by ``--db``, or an export file), the checkpoint auditor
``--key`` asks for, and one case as a role may see it (``timeline``, ``report``)."""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

import attrs

from .._audit import Verdict, verify
from .._authz import Actor
from .._case import Case
from .._checkpoints import (
    CheckpointAuditor,
    CheckpointError,
    CheckpointLog,
    DirectoryWitness,
    Witness,
    _json_lines,
    key_id,
    load_public_key,
)
from .._errors import CaseNotFound, MediationError
from .._events import decode_event
from .._export import ExportCase, ExportReader
from .._keys import key_file
from .._privacy import AESGCMVault, Vault
from .._report import AuditInput, ExitCode, audit_case
from .._roster import Roster, committee_of, rosters_of
from .._views import CaseView, view_case
from ..stores import _open
from ._common import _Fail, msg, open_db, parse_db, read_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "FileSource",
    "LazyAuditor",
    "Source",
    "StoreSource",
    "Viewed",
    "auditor",
    "binary",
    "case_view",
    "lazy_auditor",
    "source",
]


class Source:
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

    def vault(self) -> Vault | None:
        """What opens the source's sealed values: the store's own key store where it has one;
        None for an export file (an outside auditor holds no keys)."""
        return None

    def rosters(self) -> dict[str, Roster]:
        """The rosters the source holds, verified, by committee (for one case's role claims)."""
        return rosters_of(
            {cid: records for cid, records, _ in self.cases(None) if committee_of(cid)}
        )

    def close(self) -> None:
        pass


def _no_pg_checkpoints(lang: str) -> _Fail:
    return _Fail(
        ExitCode.USAGE,
        msg(
            lang,
            "PostgreSQL 存储请用 --checkpoints 指定检查点文件",
            "with a PostgreSQL store, give --checkpoints FILE",
        ),
    )


class StoreSource(Source):
    def __init__(self, url: str, lang: str, *, write: bool = False) -> None:
        self.url = url
        self.parsed = parse_db(url, lang)
        self.store = open_db(url, lang, write=write)
        self.label = self.parsed.display  # a PostgreSQL URL without its password
        self._vault: Vault | None = None

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
        """``<db>.checkpoints.jsonl`` beside a SQLite file; None for PostgreSQL."""
        return default_checkpoints(self.parsed)

    def checkpoints_path(self, explicit: str | None, lang: str) -> str:
        """``explicit``, or the default (a usage error for PostgreSQL, which has none)."""
        path = explicit or self.default_checkpoints()
        if path is None:
            raise _no_pg_checkpoints(lang)
        return path

    def checkpoints(self, explicit: str | None, lang: str) -> CheckpointLog:
        path = self.checkpoints_path(explicit, lang)
        if explicit is None and not os.path.exists(path):
            return CheckpointLog((), path)
        return read_checkpoints(path, lang)

    def rosters(self) -> dict[str, Roster]:
        return rosters_of(self.store)

    def vault(self) -> Vault | None:
        """The store's key store, where there is one: reading never creates it (a SQLite store's
        ``<db>.keys`` beside it; PostgreSQL's schema, which the store creates if missing)."""
        path = self.parsed.sqlite_path
        if path is not None and not os.path.exists(key_file(path)):
            return None
        if self._vault is None:
            try:
                self._vault = AESGCMVault(self.store.key_store())
            except MediationError:  # no key store this reader may open: values stay sealed
                return None
        return self._vault

    def close(self) -> None:
        self.store.close()


def default_checkpoints(parsed: _open.StoreURL) -> str | None:
    """Where a store's checkpoints live by default: beside a SQLite file; PostgreSQL has none."""
    path = parsed.sqlite_path
    return None if path is None else path + ".checkpoints.jsonl"


def read_checkpoints(path: str, lang: str) -> CheckpointLog:
    return CheckpointLog.parse(_json_lines(read_bytes(path, lang, "checkpoints"), path), path)


class FileSource(Source):
    def __init__(self, path: str, stream: IO[bytes] | None = None) -> None:
        self.path = path
        self.label = path
        self._stream = stream
        self.reader: ExportReader | None = None

    def _open(self) -> IO[bytes]:
        if self._stream is not None:
            if self._stream.seekable():  # stdin, read whole: every pass starts at the top
                self._stream.seek(0)
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
            # the rosters always: the role claims of the case asked for are checked against them
            if only is None or case.case_id == only or committee_of(case.case_id) is not None:
                yield case.case_id, case.records, case.line_of

    def checkpoints(self, explicit: str | None, lang: str) -> CheckpointLog:
        if explicit is not None:
            return read_checkpoints(explicit, lang)
        # the checkpoints embedded in the export come after its events: one pass to collect them
        for _ in self.cases(None):
            pass
        assert self.reader is not None
        return CheckpointLog.parse(self.reader.checkpoints, self.path)


def binary(stream: IO[Any]) -> IO[bytes]:
    """A binary view of ``stream`` (stdin): its buffer, itself if binary, or its text re-encoded."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cast("IO[bytes]", buffer)
    if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
        return cast("IO[bytes]", stream)
    return io.BytesIO(stream.read().encode("utf-8"))


def source(args: argparse.Namespace, lang: str, stdin: IO[Any] | None = None) -> Source:
    """``--db URL`` or ``FILE`` (an export; a SQLite file given there is opened as a store; ``-``
    is the export on ``stdin``, where the command reads it)."""
    db: str | None = args.db
    file: str | None = getattr(args, "file", None)
    if (db is None) == (file is None):
        raise _Fail(
            ExitCode.USAGE,
            msg(
                lang,
                "请给出 --db URL 或一个导出文件（二选一）",
                "give either --db URL or an export FILE",
            ),
        )
    if db is not None:
        return StoreSource(db, lang)
    assert file is not None
    if file == "-" and stdin is not None:
        return FileSource("stdin", io.BytesIO(binary(stdin).read()))
    if _open.read_magic(file) == _open.SQLITE_MAGIC:
        return StoreSource(file, lang)
    return FileSource(file)


# -- the checkpoint auditor -------------------------------------------------------------------------


def auditor(args: argparse.Namespace, src: Source, lang: str) -> CheckpointAuditor | None:
    return lazy_auditor(args, src, lang)()


def lazy_auditor(args: argparse.Namespace, src: Source, lang: str) -> LazyAuditor:
    """The checkpoint auditor ``--key`` asks for, built on first call (checking every signature
    takes a while: ``verify --jobs`` does it while the workers run); the key and the checkpoints
    are read, and refused if they are not usable, now."""
    if args.key is None:
        if getattr(args, "witness", None):
            raise _Fail(
                ExitCode.USAGE, msg(lang, "--witness 需要配合 --key 使用", "--witness needs --key")
            )
        if getattr(args, "checkpoints", None):
            raise _Fail(
                ExitCode.USAGE,
                msg(lang, "--checkpoints 需要配合 --key 使用", "--checkpoints needs --key"),
            )
        return LazyAuditor(None, None)
    public = load_public_key(read_bytes(args.key, lang, "key"))
    witnesses = [DirectoryWitness(d) for d in getattr(args, "witness", None) or ()]
    for w in witnesses:
        if not os.path.isdir(w.path):
            raise _Fail(
                ExitCode.IO,
                msg(lang, f"见证目录不存在：{w.path}", f"no such witness directory: {w.path}"),
            )
    return LazyAuditor(
        src.checkpoints(args.checkpoints, lang),
        public,
        witnesses=witnesses,
        store_id=getattr(args, "store_id", None),
    )


class LazyAuditor:
    """Calling it gives the :class:`CheckpointAuditor` (None without ``--key``), built once;
    ``witnesses`` (``verify --witness``) are checked with it."""

    def __init__(
        self,
        log: CheckpointLog | None,
        public_key: Ed25519PublicKey | None,
        *,
        witnesses: Sequence[Witness] = (),
        store_id: str | None = None,
    ) -> None:
        self.log = log
        self._public_key = public_key
        self.witnesses = tuple(witnesses)
        self.store_id = store_id
        self._auditor: CheckpointAuditor | None = None

    def __call__(self) -> CheckpointAuditor | None:
        if self._auditor is None and self.log is not None and self._public_key is not None:
            self._auditor = CheckpointAuditor(
                self.log, self._public_key, witnesses=self.witnesses, store_id=self.store_id
            )
        return self._auditor

    def checkpointed_seqs(self) -> dict[str, tuple[int, ...]] | None:
        """Every (case, seq) the log or a witness attests (what ``verify --jobs`` keeps the hashes
        of); None without ``--key``."""
        if self.log is None:
            return None
        from .._verify_store import checkpointed_seqs

        seqs = {k: set(v) for k, v in checkpointed_seqs(self.log).items()}
        if self.witnesses and self._public_key is not None:
            kid = key_id(self._public_key)
            for witness in self.witnesses:
                try:
                    heads = witness.heads(kid)
                except CheckpointError:
                    continue  # the auditor reports it
                for head in heads:
                    for leaf in head.leaves:
                        seqs.setdefault(leaf.case_id, set()).add(leaf.seq)
        return {k: tuple(sorted(v)) for k, v in seqs.items()}


# -- one case as a role sees it ---------------------------------------------------------------------


@attrs.frozen
class Viewed:
    view: CaseView | None  # None when not even the first event verifies
    verdict: Verdict
    line_of: Callable[[int], int | None] | None
    subtype: str = ""


def case_view(
    src: Source, case_id: str, role: str, checker: CheckpointAuditor | None, lang: str = "en"
) -> Viewed:
    """The case as ``role`` of its committee may see it: its verified prefix, and the verdict.
    ``mediator`` is the case's lead mediator (an error before one is assigned)."""
    records, line_of = src.case(case_id)
    rosters = src.rosters()
    vault = src.vault()
    verdict = verify(records, case_id, strict=True, rosters=rosters, vault=vault)
    case = verdict.case
    checked = (
        audit_case(case_id, records, checker, rosters=rosters, vault=vault) if checker else verdict
    )
    if case is None:
        return Viewed(None, checked, line_of)
    history = [decode_event(r) for r in records[: verdict.events]]
    actor = viewer(case, role, lang)
    return Viewed(view_case(case, history, actor, False, vault), checked, line_of, case.subtype)


def viewer(case: Case, role: str, lang: str) -> Actor:
    """Who ``--as role`` views ``case`` as: a holder of ``role`` in the case's committee; for
    ``mediator``, the case's lead mediator (a committee's mediator sees a case only once assigned
    to it), which a case not yet assigned has none of (exit 5, saying so)."""
    if role != "mediator":
        return Actor.with_roles(f"cli-{role}", {case.committee: [role]})
    mediators = case.mediators
    if not mediators:
        raise _Fail(
            ExitCode.INPUT,
            msg(
                lang,
                f"案件 {case.id} 尚未指派调解员，无法以调解员身份查看；请用 --as auditor、supervisor 或 director",
                f"case {case.id} has no mediator assigned yet, so it cannot be viewed --as mediator; "
                "use --as auditor, supervisor or director",
            ),
        )
    return Actor.with_roles(mediators[0], {case.committee: [role]})
