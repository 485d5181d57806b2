"""What the auditor reads: verification results, and (re-exported) the timeline, the diagrams and
the HTML report that ``mediation timeline``, ``diagram`` and ``report`` print.

- :func:`audit` verifies cases (chain, every transition, permission and guard; ``strict`` also
  re-validates every payload against its command class and checks canonical form) and, given a
  :class:`~mediation._checkpoints.CheckpointAuditor`, checks them against signed checkpoints;
  :func:`audit_verified` does the same for cases verified elsewhere (``mediation verify --jobs``);
  :class:`AuditResult` carries one verdict per case and the exit code the CLI returns.
- :mod:`mediation._timeline`: :func:`timeline_lines` renders a :class:`~mediation.CaseView` as text,
  grouped by the six stages (:func:`event_stages`); :func:`path_of` lists its state changes.
- :mod:`mediation._diagrams`: :func:`mermaid` and :func:`dot` render the workflow declaration;
  :func:`state_svg` lays it out as an inline SVG with the path a case took highlighted.
- :mod:`mediation._html`: :func:`render_html` builds the self-contained report page from the
  templates shipped in the package (no scripts, no network, no external assets: CSS and SVG are
  inline).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ._audit import Verdict, verify
from ._authz import Directory
from ._checkpoints import CheckpointAuditor, StoreFault
from ._diagrams import dot, mermaid, state_svg
from ._events import StoredEvent
from ._html import render_html
from ._privacy import Vault
from ._roster import Roster, committee_of, verify_roster
from ._timeline import event_stages, path_of, summarize, timeline_lines

__all__ = [
    "AuditInput",
    "AuditResult",
    "ExitCode",
    "VerifiedCase",
    "audit",
    "audit_case",
    "audit_verified",
    "dot",
    "event_stages",
    "mermaid",
    "path_of",
    "render_html",
    "state_svg",
    "summarize",
    "timeline_lines",
]


class ExitCode(enum.IntEnum):
    """The exit codes of the ``mediation`` command (docs/auditing.md lists them)."""

    OK = 0  #: every case verified (and every checkpoint, with --key)
    INTEGRITY = (
        1  #: bytes altered, events missing/inserted/reordered, truncated, checkpoint mismatch
    )
    USAGE = 2  #: bad command-line arguments
    ILLEGAL = 3  #: intact bytes, but a transition, permission or event type the workflow refuses
    IO = 4  #: a file or database could not be opened, read or written
    INPUT = 5  #: the input is not a well-formed export, key or checkpoint file; import refused


# -- auditing --------------------------------------------------------------------------------------


@attrs.frozen
class AuditResult:
    """The verdicts of a verification run, one per case, and the checkpoint findings."""

    verdicts: tuple[Verdict, ...]
    #: case id -> the file line of its fault (cases read from an export)
    lines: Mapping[str, int] = attrs.field(factory=dict)
    store_faults: tuple[StoreFault, ...] = ()
    key_id: str | None = None
    checkpoints_checked: int = 0
    cases_attested: int = 0
    #: summary rows that name no case (``StoreVerification.bad_rows``): the summary table was
    #: written past the library, an integrity fault of the store like a row without events
    bad_rows: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.store_faults and not self.bad_rows and all(v.ok for v in self.verdicts)

    @property
    def exit_code(self) -> ExitCode:
        faults = [v.fault for v in self.verdicts if v.fault is not None]
        if self.store_faults or self.bad_rows or any(f.kind.integrity for f in faults):
            return ExitCode.INTEGRITY
        if faults:
            return ExitCode.ILLEGAL
        return ExitCode.OK

    def describe(self, verdict: Verdict, lang: str = "en") -> str:
        text = verdict.describe(lang)
        line = self.lines.get(verdict.case_id)
        if verdict.fault is not None and line is not None:
            text += f"（第 {line} 行）" if lang == "zh" else f" [line {line}]"
        return text

    def text_lines(self, lang: str = "en") -> list[str]:
        return [self.describe(v, lang) for v in self.verdicts] + self.summary_lines(lang)

    def summary_lines(self, lang: str = "en") -> list[str]:
        """What :meth:`text_lines` says after the verdicts: the checkpoint findings and the counts."""
        out = []
        for row in self.bad_rows:
            out.append(
                f"摘要表：数据不合格，{row}" if lang == "zh" else f"summary table: bad data: {row}"
            )
        for f in self.store_faults:
            out.append(
                f"检查点：验证失败，{f.message_zh}"
                if lang == "zh"
                else f"checkpoints: INVALID: {f.message}"
            )
        if self.key_id is not None:
            if lang == "zh":
                out.append(
                    f"检查点：用密钥 {self.key_id[:16]} 核验了 {self.checkpoints_checked} 个签名检查点，"
                    f"覆盖 {self.cases_attested} 个案件"
                )
            else:
                out.append(
                    f"checkpoints: {self.checkpoints_checked} signed checkpoint(s) checked under key "
                    f"{self.key_id[:16]}, covering {self.cases_attested} case(s)"
                )
        cases = [v for v in self.verdicts if committee_of(v.case_id) is None]
        bad = sum(not v.ok for v in cases)
        n = len(cases)
        rosters = len(self.verdicts) - n
        bad_rosters = sum(not v.ok for v in self.verdicts) - bad
        if lang == "zh":
            kept = f"；人员名录 {rosters} 份，{bad_rosters} 份未通过" if rosters else ""
            out.append(
                f"共 {n} 个案件：{n - bad} 个通过，{bad} 个未通过{kept}"
                + ("" if not self.store_faults else "；检查点未通过")
                + ("" if not self.bad_rows else f"；{len(self.bad_rows)} 个摘要行不合格")
                + f"（退出码 {int(self.exit_code)}）"
            )
        else:
            kept = f"; {rosters} roster(s), {bad_rosters} invalid" if rosters else ""
            out.append(
                f"{n} case(s): {n - bad} valid, {bad} invalid{kept}"
                + ("" if not self.store_faults else "; checkpoints invalid")
                + ("" if not self.bad_rows else f"; {len(self.bad_rows)} malformed summary row(s)")
                + f" (exit {int(self.exit_code)})"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        cases = []
        for v in self.verdicts:
            item = v.to_json()
            if v.case_id in self.lines and v.fault is not None:
                item["line"] = self.lines[v.case_id]
            cases.append(item)
        out: dict[str, Any] = {
            "ok": self.ok,
            "exit": int(self.exit_code),
            "cases": cases,
            "checkpoints": None,
            "bad_rows": list(self.bad_rows),
        }
        if self.key_id is not None:
            out["checkpoints"] = {
                "key": self.key_id,
                "checked": self.checkpoints_checked,
                "cases_attested": self.cases_attested,
                "faults": [{"line": f.line, "message": f.message} for f in self.store_faults],
            }
        return out


#: one case to audit: id, its records as read, and (for a file) seq position -> line number
AuditInput = tuple[str, Sequence[StoredEvent], Callable[[int], int | None] | None]

#: one case already verified: id, its verdict (before any checkpoint check), the stored hash at a
#: seq (what the checkpoints compare; only asked for seqs the verdict accepted), and the seq -> line
#: number map of a file
VerifiedCase = tuple[str, Verdict, Callable[[int], str | None], Callable[[int], int | None] | None]


def _hashes(records: Sequence[StoredEvent]) -> Callable[[int], str | None]:
    return lambda seq: records[seq - 1].hash


def _checked(
    case_id: str,
    verdict: Verdict,
    hashes: Callable[[int], str | None],
    auditor: CheckpointAuditor,
) -> Verdict:
    """``verdict`` with the checkpoint faults of the case added: checked against the events whose
    bytes verified (:attr:`Verdict.intact`, beyond a legality fault), they are integrity evidence
    and outrank a legality fault at any seq."""
    return verdict.with_faults(*auditor.case_faults(case_id, hashes, verdict.intact))


def audit_case(
    case_id: str,
    records: Sequence[StoredEvent],
    auditor: CheckpointAuditor | None = None,
    *,
    strict: bool = True,
    directory: Directory | None = None,
    rosters: Mapping[str, Roster] | None = None,
    vault: Vault | None = None,
) -> Verdict:
    """Verify one case (strictly by default; its role claims against ``rosters``; its sealed
    values with ``vault``) and, with ``auditor``, against its checkpoints."""
    verdict = verify(
        records, case_id, strict=strict, directory=directory, rosters=rosters, vault=vault
    )
    if auditor is None:
        return verdict
    return _checked(case_id, verdict, _hashes(records), auditor)


def audit(
    cases: Iterable[AuditInput],
    *,
    auditor: CheckpointAuditor | None = None,
    only: str | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
    strict: bool = True,
    directory: Directory | None = None,
    rosters: Mapping[str, Roster] | None = None,
    vault: Vault | None = None,
) -> AuditResult:
    """Verify every case of ``cases`` (streamed; nothing but the verdicts is kept).

    ``strict`` (the default) is :func:`~mediation.verify`'s: it adds payload re-validation and the
    canonical-form check to the chain, transition, permission and guard checks.  Role claims are
    checked against the committees' rosters: ``rosters`` (:func:`mediation.rosters_of` of a store)
    and the roster streams among ``cases`` (an export carries them first); where a committee kept
    none, the host's ``directory`` of the day, if given, answers.  With ``vault``, every sealed
    value is opened too (a tampered ciphertext, nonce or associated data is a fault).
    """
    known: dict[str, Roster] = dict(rosters or {})

    def verified() -> Iterator[VerifiedCase]:
        for case_id, records, line_of in cases:
            committee = committee_of(case_id)
            if committee is not None:  # a roster (an export carries them before the cases)
                verdict, known[committee] = verify_roster(records, case_id)
                if only is not None and case_id != only:
                    continue  # read for the case asked for, not reported
            else:
                verdict = verify(
                    records,
                    case_id,
                    strict=strict,
                    directory=directory,
                    rosters=known,
                    vault=vault,
                )
            yield case_id, verdict, _hashes(records), line_of

    return audit_verified(verified(), auditor=auditor, only=only, on_verdict=on_verdict)


def audit_verified(
    cases: Iterable[VerifiedCase],
    *,
    auditor: CheckpointAuditor | None = None,
    only: str | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> AuditResult:
    """:func:`audit` for cases verified elsewhere (worker processes), in the order given: the
    checkpoint checks, the attested cases never seen, and the result are the same as
    :func:`audit`'s for the same verdicts."""
    verdicts: list[Verdict] = []
    lines: dict[str, int] = {}
    for case_id, verdict, hashes, line_of in cases:
        if auditor is not None:
            verdict = _checked(case_id, verdict, hashes, auditor)
        if verdict.case is not None:
            verdict = verdict.without_case()
        if verdict.fault is not None and line_of is not None:
            line = line_of(verdict.fault.seq)
            if line is not None:
                lines[case_id] = line
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)
    if auditor is not None:
        for case_id, fault in auditor.missing(only):
            verdict = Verdict(case_id, 0, 0, "", "?", fault)
            verdicts.append(verdict)
            if on_verdict is not None:
                on_verdict(verdict)
    return AuditResult(
        tuple(verdicts),
        lines,
        tuple(auditor.store_faults) if auditor else (),
        auditor.key_id if auditor else None,
        auditor.checked if auditor else 0,
        auditor.attested_cases if auditor else 0,
    )
