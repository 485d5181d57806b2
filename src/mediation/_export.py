"""Portable exports: JSON Lines that carry every stored byte and hash unchanged.

An export verifies on another machine with nothing but the file (and, for its checkpoints, the
public key).  The format (docs/auditing.md, "Export format") is one JSON object per line, UTF-8,
``\\n`` line ends:

1. a header: ``{"format": "mediation-export", "version": 1, "workflow": ..., "hash": ...}``;
2. the events, grouped by case (cases in id order when exported, each contiguous), in seq order:
   ``{"case": ID, "seq": N, "hash": HEX, "body": TEXT}``, where ``TEXT`` is the stored body bytes
   decoded as UTF-8 (a JSON string round-trips them exactly); bytes that are not UTF-8 (only a
   damaged store has them) go as ``"body_b64"`` instead;
3. optionally the store's signed checkpoints: ``{"checkpoint": {...}}`` (see :mod:`._checkpoints`);
4. an end line with the counts: ``{"end": {"cases": C, "events": E, "checkpoints": K}}``, so a file
   cut at a line boundary is recognised as truncated.

:class:`ExportReader` streams a file case by case and raises :class:`ExportError` naming the line
for anything that is not this format; :func:`import_export` verifies every case (strictly) before
writing any, and writes all of them in one :meth:`~mediation.stores.Store.transaction`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

import attrs

from ._audit import Verdict, verify
from ._errors import CaseExists, IntegrityViolation, MediationError
from ._events import StoredEvent, loads_unique, parse_body
from ._files import atomic_write_text
from ._privacy import Vault, open_value, sealed_places
from ._roster import committee_of, roster_id, roster_summary, rosters_of
from ._spec import known
from ._workflow import WORKFLOW
from .stores._base import Store

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportCase",
    "ExportError",
    "ExportReader",
    "ImportResult",
    "export_store",
    "import_export",
    "write_export",
]

FORMAT = "mediation-export"
VERSION = 1
_EVENT_KEYS = frozenset(("case", "seq", "hash", "body"))
_EVENT_KEYS_B64 = frozenset(("case", "seq", "hash", "body_b64"))
#: the member a decrypted export adds to an event line: JSON pointer -> the opened value
OPENED = "opened"


class ExportError(MediationError):
    """The input is not a well-formed export (or cannot be written); ``line`` names the line."""

    def __init__(self, message: str, *, line: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.line = line


# -- writing ---------------------------------------------------------------------------------------


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def header(*, decrypted: bool = False) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "workflow": WORKFLOW.version,
        "hash": 'hex SHA-256 of b"mediation.event.v1\\x00" + body',
        # encrypted: the bodies as stored, personal data sealed (for an outside auditor);
        # decrypted: each event line also carries its sealed values opened (the committee's archive)
        "personal_data": "decrypted" if decrypted else "encrypted",
    }


def event_line(rec: StoredEvent, opened: dict[str, str] | None = None) -> str:
    """One event as its export line (without the newline); ``opened``: its sealed values opened,
    by JSON pointer (a decrypted export)."""
    try:
        body: dict[str, Any] = {"body": rec.body.decode("utf-8")}
    except UnicodeDecodeError:
        body = {"body_b64": base64.b64encode(rec.body).decode("ascii")}
    if opened:
        body[OPENED] = opened
    return _dump({"case": rec.case_id, "seq": rec.seq, "hash": rec.hash, **body})


def opener(vault: Vault) -> Callable[[StoredEvent], dict[str, str]]:
    """What a decrypted export adds to each event: its sealed values opened with ``vault`` (or
    ``[erased]``/``[tampered]``), by JSON pointer.  A body that does not parse adds nothing (the
    export copies; verifying it finds the fault)."""

    def opened(rec: StoredEvent) -> dict[str, str]:
        try:
            body = parse_body(rec.body)
            workflow = known(body.get("workflow"))
            spec = workflow.find(str(body.get("type"))) if workflow is not None else None
            payload = body.get("payload")
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
            return {}
        if workflow is None or spec is None or not isinstance(payload, dict):
            return {}
        return {
            place.pointer: open_value(vault, rec.case_id, rec.seq, place, value)
            for place, value in sealed_places(workflow, spec, payload)
            if isinstance(value, dict)
        }

    return opened


@attrs.frozen
class ExportCounts:
    cases: int
    events: int
    checkpoints: int


def write_export(
    records: Iterable[StoredEvent],
    out: IO[str],
    *,
    checkpoints: Iterable[dict[str, Any]] = (),
    opened: Callable[[StoredEvent], dict[str, str]] | None = None,
) -> ExportCounts:
    """Write an export of ``records`` (grouped by case, in order) and checkpoint records; with
    ``opened`` (:func:`opener`), a decrypted one."""
    out.write(_dump(header(decrypted=opened is not None)) + "\n")
    cases = events = 0
    current: str | None = None
    for rec in records:
        if rec.case_id != current:
            current = rec.case_id
            cases += 1
        out.write(event_line(rec, opened(rec) if opened is not None else None) + "\n")
        events += 1
    n_cp = 0
    for cp in checkpoints:
        out.write(_dump({"checkpoint": cp}) + "\n")
        n_cp += 1
    out.write(_dump({"end": {"cases": cases, "events": events, "checkpoints": n_cp}}) + "\n")
    return ExportCounts(cases, events, n_cp)


def export_store(
    store: Store,
    path: str | os.PathLike[str] | None = None,
    *,
    out: IO[str] | None = None,
    case_ids: Sequence[str] | None = None,
    checkpoints: Iterable[dict[str, Any]] = (),
    vault: Vault | None = None,
) -> ExportCounts:
    """Export ``store`` (every case, or ``case_ids``) to ``path`` or the text stream ``out``.

    Each case exported brings its committee's roster (before the cases); ``case_ids`` may also name
    a roster on its own (``@roster:<committee>``).

    The bodies are copied as stored, with personal data sealed: an **encrypted** export, for an
    outside auditor.  With ``vault`` (the store's key store), a **decrypted** one: each event line
    also carries its sealed values opened (``opened``: JSON pointer -> plaintext, or ``[erased]``),
    for the committee's own archive; the header's ``personal_data`` says which.

    The export copies; it does not judge (verify the file afterwards).  Written to ``path``, the file
    appears complete or not at all, with mode 0600 (it holds personal data), and no partial copy of
    it stays behind on an error, a signal or (on Linux, where it never has a name until complete) a
    ``kill -9``; on failure a file already at ``path`` is untouched
    (:func:`mediation._files.atomic_write`).
    """

    opened = opener(vault) if vault is not None else None

    def records() -> Iterator[StoredEvent]:
        # the rosters come first, so that a reader has them before the cases whose role claims
        # they back: every one for the whole store, the cases' committees' for some cases
        if case_ids is None:
            yield from store.scan("@", "A")  # the roster streams (no case id starts with @)
            yield from store.scan(None, "@")
            yield from store.scan("A", None)
            return
        chosen = []
        committees = set()
        rosters: dict[str, list[StoredEvent]] = {}  # the rosters named, as read
        for case_id in sorted(set(case_ids)):
            recs = store.read(case_id)
            named = committee_of(case_id)  # a committee's roster, named on its own
            if named is not None:
                if not recs:
                    raise ExportError(
                        f"no roster {case_id} in the store",
                        message_zh=f"存储中没有人员名录 {case_id}",
                        case=case_id,
                    )
                committees.add(named)
                rosters[named] = recs
                continue
            if not recs:
                raise ExportError(
                    f"no case {case_id} in the store",
                    message_zh=f"案件 {case_id} 不存在",
                    case=case_id,
                )
            with contextlib.suppress(ValueError, UnicodeDecodeError, KeyError, AttributeError):
                committees.add(parse_body(recs[0].body)["payload"]["committee"])
            chosen.append(recs)
        for committee in sorted(c for c in committees if isinstance(c, str)):
            yield from rosters.get(committee) or store.read(roster_id(committee))
        for recs in chosen:
            yield from recs

    if path is None:
        if out is None:
            raise ExportError("give a path or an output stream")
        return write_export(records(), out, checkpoints=checkpoints, opened=opened)
    target = os.fspath(path)
    try:
        with atomic_write_text(target) as f:
            counts = write_export(records(), f, checkpoints=checkpoints, opened=opened)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror}") from exc
    return counts


# -- reading ---------------------------------------------------------------------------------------


@attrs.frozen
class ExportCase:
    """The events of one case as read from an export, with the line each came from."""

    case_id: str
    records: tuple[StoredEvent, ...]
    lines: tuple[int, ...]

    def line_of(self, seq: int) -> int | None:
        """The line of the ``seq``-th record read for this case (positions, not recorded seqs)."""
        if 1 <= seq <= len(self.lines):
            return self.lines[seq - 1]
        return self.lines[-1] + 1 if self.lines else None


class ExportReader:
    """Streams an export: iterate for :class:`ExportCase` objects, one per case, in file order.

    Structural problems raise :class:`ExportError` with the line: not JSON, no header, an unknown
    version, a line that is neither an event nor a checkpoint, a case that resumes after another
    (interleaved), lines after the end line, a missing end line (truncated), wrong counts.
    Checkpoint records are collected in :attr:`checkpoints` as ``(line, object)`` pairs, available
    once iteration has finished.
    """

    def __init__(self, stream: IO[bytes], source: str = "export") -> None:
        self.stream = stream
        self.source = source
        self.header: dict[str, Any] = {}
        self.checkpoints: list[tuple[int, Any]] = []
        self.cases = 0
        self.events = 0
        self.finished = False
        self._consumed = False

    def _error(self, line: int | None, en: str, zh: str, **kw: Any) -> ExportError:
        where = f"{self.source}, line {line}: " if line else f"{self.source}: "
        where_zh = f"{self.source} 第 {line} 行：" if line else f"{self.source}："
        return ExportError(where + en, message_zh=where_zh + zh, line=line, **kw)

    def _lines(self) -> Iterator[tuple[int, Any]]:
        n = 0
        for n, raw in enumerate(self.stream, start=1):
            if not raw.endswith(b"\n"):
                raise self._error(
                    n,
                    "the line is incomplete: the file is truncated",
                    "该行不完整：文件被截断",
                )
            try:
                obj = loads_unique(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._error(
                    n,
                    f"not JSON ({exc}): the file is damaged",
                    "不是 JSON（或同一成员名出现两次）：文件已损坏",
                ) from exc
            if not isinstance(obj, dict):
                raise self._error(n, "not a JSON object", "不是 JSON 对象")
            yield n, obj
        if n == 0:
            raise self._error(None, "the file is empty", "文件为空")

    def __iter__(self) -> Iterator[ExportCase]:
        if self._consumed:
            raise ExportError("an ExportReader can be iterated once")
        self._consumed = True
        lines = self._lines()
        try:
            first = next(lines)
        except StopIteration:  # pragma: no cover - _lines raises on an empty file
            return
        self._check_header(*first)
        seen: set[str] = set()
        current: str | None = None
        recs: list[StoredEvent] = []
        nums: list[int] = []
        end: tuple[int, Any] | None = None
        for n, obj in lines:
            if end is not None:
                raise self._error(n, "a line after the end line", "结束行之后仍有内容")
            if "end" in obj and len(obj) == 1:
                end = (n, obj["end"])
                continue
            if "checkpoint" in obj and len(obj) == 1:
                self.checkpoints.append((n, obj["checkpoint"]))
                continue
            if self.checkpoints:
                raise self._error(
                    n, "an event after the checkpoints", "检查点之后出现事件（顺序错乱）"
                )
            rec = self._event(n, obj)
            if rec.case_id != current:
                if rec.case_id in seen:
                    raise self._error(
                        n,
                        f"case {rec.case_id} resumes after case {current}: the events of a case "
                        "must be contiguous (two cases interleaved)",
                        f"案件 {rec.case_id} 的事件在案件 {current} 之后再次出现：同一案件的事件必须连续"
                        "（两个案件交错）",
                        case=rec.case_id,
                        seq=rec.seq,
                    )
                if current is not None:
                    yield self._case(current, recs, nums)
                current = rec.case_id
                seen.add(current)
                recs, nums = [], []
            recs.append(rec)
            nums.append(n)
            self.events += 1
        if current is not None:
            yield self._case(current, recs, nums)
        self._check_end(end)
        self.finished = True

    def _case(self, case_id: str, recs: list[StoredEvent], nums: list[int]) -> ExportCase:
        self.cases += 1
        return ExportCase(case_id, tuple(recs), tuple(nums))

    def _check_header(self, n: int, obj: dict[str, Any]) -> None:
        if obj.get("format") != FORMAT:
            raise self._error(
                n,
                "not a mediation export (no header line)",
                "不是 mediation 导出文件（缺少文件头）",
            )
        if obj.get("version") != VERSION:
            raise self._error(
                n,
                f"export format version {obj.get('version')!r}; this library reads {VERSION}",
                f"导出格式版本为 {obj.get('version')!r}，本库只能读取 {VERSION}",
            )
        self.header = obj

    def _event(self, n: int, obj: dict[str, Any]) -> StoredEvent:
        keys = obj.keys() - {OPENED}  # a decrypted export's opened values: not part of the record
        if keys != _EVENT_KEYS and keys != _EVENT_KEYS_B64:
            raise self._error(
                n,
                f"neither an event, a checkpoint nor the end line (members: {', '.join(sorted(keys))})",
                "既不是事件、检查点，也不是结束行",
            )
        case_id, seq, hash_ = obj["case"], obj["seq"], obj["hash"]
        if not isinstance(case_id, str) or not case_id:
            raise self._error(n, "the case id must be non-empty text", "案件编号必须是非空文本")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise self._error(n, f"seq must be a positive integer, got {seq!r}", "序号必须是正整数")
        if not isinstance(hash_, str):
            raise self._error(n, "hash must be text", "哈希必须是文本")
        if "body" in obj:
            body = obj["body"]
            if not isinstance(body, str):
                raise self._error(n, "body must be text", "body 必须是文本")
            try:
                raw = body.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise self._error(
                    n, "body is not valid Unicode", "body 不是有效的 Unicode"
                ) from exc
        else:
            try:
                raw = base64.b64decode(obj["body_b64"], validate=True)
            except (binascii.Error, ValueError, TypeError) as exc:
                raise self._error(n, "body_b64 is not base64", "body_b64 不是 base64") from exc
        return StoredEvent(case_id, seq, hash_, raw)

    def _check_end(self, end: tuple[int, Any] | None) -> None:
        if end is None:
            raise self._error(
                None,
                f"the file ends after {self.events} event(s) without its end line: it is truncated",
                f"文件在 {self.events} 个事件后结束且没有结束行：文件被截断",
            )
        n, counts = end
        expected = {
            "cases": self.cases,
            "events": self.events,
            "checkpoints": len(self.checkpoints),
        }
        if counts != expected:
            raise self._error(
                n,
                f"the end line counts {counts}, the file holds {expected}: lines were removed or added",
                f"结束行记录 {counts}，文件实际为 {expected}：有行被删除或添加",
            )


def read_all(stream: IO[bytes], source: str = "export") -> tuple[list[ExportCase], ExportReader]:
    """Read a whole export (structure only; nothing is verified yet)."""
    reader = ExportReader(stream, source)
    return list(reader), reader


# -- importing -------------------------------------------------------------------------------------


@attrs.frozen
class ImportResult:
    cases: int
    events: int
    verdicts: tuple[Verdict, ...] = attrs.field(repr=False, eq=False)


def describe_fault(case: ExportCase, verdict: Verdict, lang: str = "en") -> str:
    """The verdict of a case read from a file, naming the line of the faulty event."""
    assert verdict.fault is not None
    line = case.line_of(verdict.fault.seq)
    if lang == "zh":
        return f"第 {line} 行，{verdict.describe('zh')}"
    return f"line {line}: {verdict.describe('en')}"


def import_export(cases: Sequence[ExportCase], store: Store, *, lang: str = "en") -> ImportResult:
    """Verify every case strictly, then write them all; on any failure nothing is written.

    Raises :class:`~mediation.IntegrityViolation` (the message names the line and the seq) when a
    case does not verify, :class:`~mediation.CaseExists` when the store already holds one of them.
    """
    verdicts = []
    rosters = rosters_of({c.case_id: c.records for c in cases if committee_of(c.case_id)})
    for case in cases:
        verdict = verify(case.records, case.case_id, strict=True, rosters=rosters)
        if not verdict.ok:
            assert verdict.fault is not None
            raise IntegrityViolation(
                f"import refused: {describe_fault(case, verdict, 'en')}",
                message_zh=f"拒绝导入：{describe_fault(case, verdict, 'zh')}",
                verdict=verdict,
                case=case.case_id,
                seq=verdict.fault.seq,
            )
        verdicts.append(verdict)
    held: dict[str, int] = {}  # roster stream -> how many of its records the target holds
    for case in cases:
        if committee_of(case.case_id) is not None:
            held[case.case_id] = _roster_held(store, case)
            continue
        if store.summary(case.case_id) is not None or store.read(case.case_id):
            raise CaseExists(
                f"import refused: case {case.case_id} already exists in the target store",
                message_zh=f"拒绝导入：目标存储中已有案件 {case.case_id}",
                case=case.case_id,
            )
    events = 0
    with store.transaction():
        for case, verdict in zip(cases, verdicts, strict=True):
            committee = committee_of(case.case_id)
            if committee is not None:  # a roster: what the target lacks of it
                start = held[case.case_id]
                if start < len(case.records):
                    summary = roster_summary(rosters[committee])
                    store.append(summary, list(case.records[start:]), start)
                    events += len(case.records) - start
                continue
            assert verdict.case is not None
            # the request ids travel inside the bodies; the store indexes them again
            records = [
                attrs.evolve(r, request_id=parse_body(r.body).get("request")) for r in case.records
            ]
            store.append(verdict.case.summary(), records, 0)
            events += len(case.records)
    return ImportResult(len(cases), events, tuple(verdicts))


def _roster_held(store: Store, case: ExportCase) -> int:
    """How many records of the roster ``case`` the target ``store`` already holds: they must be
    the same records (an archive gathers exports of one committee, whose roster only grows);
    :class:`~mediation.CaseExists` when the two rosters differ."""
    there = store.read(case.case_id)
    common = min(len(there), len(case.records))
    if [r.hash for r in there[:common]] != [r.hash for r in case.records[:common]]:
        raise CaseExists(
            f"import refused: the target store holds another roster {case.case_id}",
            message_zh=f"拒绝导入：目标存储中的人员名录 {case.case_id} 与导出文件不同",
            case=case.case_id,
        )
    return len(there)
