"""Replay and verification: rebuild a case from stored records and say whether its history holds.

For each record, in order: the seq is the next one (no gap, no reorder), the hash recomputed from the
stored bytes matches, the body names this case and seq, ``prev`` links to the previous hash, the
event type is known, the command was legal from the state the case was in, the recorded role or
relation permitted it (relations are re-derived from the log up to that point), every guard of the
declaration held, and the recorded resulting state is the one the declaration gives.  The first
failure stops the replay and is reported with its seq and kind.

The checker reads :data:`~mediation._workflow.WORKFLOW` through its ``(state, command) -> target``
table and the same guard functions as the live path; it does not run the ``transitions`` machine,
which keeps replay fast (see docs/performance.md).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from typing import Any

import attrs

from ._authz import Directory, relations_in
from ._case import Case, apply_event
from ._commands import COMMAND_TYPES, from_payload
from ._errors import IntegrityViolation, MediationError
from ._events import (
    DOMAIN_TAG,
    GENESIS,
    SCHEMA_VERSION,
    StoredEvent,
    canonical_bytes,
    parse_body,
)
from ._guards import GUARDS, NAMES_PEOPLE, Context, check_people
from ._workflow import NEW, WORKFLOW, Role

__all__ = ["Fault", "FaultKind", "Verdict", "replay", "verify"]


class FaultKind(str, enum.Enum):
    """What is wrong with a history, in the order the checks run."""

    GAP = "gap"  # an event is missing, duplicated or out of order
    WRONG_CASE = "wrong_case"  # a record of another case
    ALTERED = "altered"  # the stored bytes do not hash to the stored hash
    MALFORMED = "malformed"  # the bytes hash right but are not a well-formed event
    BROKEN_LINK = "broken_link"  # prev does not match the previous event's hash
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    ILLEGAL_TRANSITION = "illegal_transition"  # not allowed from that state, a guard failed, ...
    UNAUTHORIZED = "unauthorized"  # the recorded role or relation did not permit the command
    EMPTY = "empty"  # no events at all
    TRUNCATED = "truncated"  # fewer events than a signed checkpoint attests
    CHECKPOINT = "checkpoint"  # a checkpoint does not match or its signature is bad

    @property
    def integrity(self) -> bool:
        """True for faults of the bytes (tampering); False for an illegal but intact history."""
        return self not in (
            FaultKind.UNKNOWN_EVENT_TYPE,
            FaultKind.ILLEGAL_TRANSITION,
            FaultKind.UNAUTHORIZED,
        )


_ZH = {
    FaultKind.GAP: "序号缺失、重复或顺序错乱",
    FaultKind.WRONG_CASE: "混入其他案件的事件",
    FaultKind.ALTERED: "内容被篡改（哈希不符）",
    FaultKind.MALFORMED: "事件格式错误",
    FaultKind.BROKEN_LINK: "哈希链断裂",
    FaultKind.UNKNOWN_EVENT_TYPE: "未知事件类型",
    FaultKind.ILLEGAL_TRANSITION: "不合法的状态变更",
    FaultKind.UNAUTHORIZED: "无权限的操作",
    FaultKind.EMPTY: "没有任何事件",
    FaultKind.TRUNCATED: "事件被截断",
    FaultKind.CHECKPOINT: "签名检查点不符",
}


@attrs.frozen
class Fault:
    seq: int
    kind: FaultKind
    message: str

    @property
    def message_zh(self) -> str:
        return f"第 {self.seq} 号事件：{_ZH[self.kind]}（{self.message}）"


@attrs.frozen
class Verdict:
    """The result of verifying one case's history."""

    case_id: str
    events: int  # how many events verified before the fault (all of them when valid)
    head_seq: int
    head_hash: str
    state: str
    fault: Fault | None = None
    case: Case | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.fault is None

    def __bool__(self) -> bool:
        return self.ok

    def describe(self, lang: str = "en") -> str:
        if self.fault is None:
            if lang == "zh":
                return (
                    f"案件 {self.case_id}：验证通过，共 {self.events} 个事件，当前状态 {self.state}"
                )
            return f"case {self.case_id}: valid, {self.events} events, state {self.state}"
        f = self.fault
        if lang == "zh":
            return f"案件 {self.case_id}：验证失败，{f.message_zh}"
        return f"case {self.case_id}: INVALID at seq {f.seq}: {f.kind.value}: {f.message}"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "case": self.case_id,
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "state": self.state,
        }
        if self.fault is not None:
            out["fault"] = {
                "seq": self.fault.seq,
                "kind": self.fault.kind.value,
                "message": self.fault.message,
            }
        return out


_ROLES = frozenset(r.value for r in Role)
_COMMANDS = {c.name: c for c in WORKFLOW.commands}
_TABLE = WORKFLOW.table
_GUARD_FNS = {c.name: tuple((g, GUARDS[g]) for g in c.guards) for c in WORKFLOW.commands}
_COMPLETES = {c.name: GUARDS[c.completes_when].fn for c in WORKFLOW.commands if c.completes_when}


class _Stop(Exception):
    def __init__(self, kind: FaultKind, message: str) -> None:
        self.kind = kind
        self.message = message


def _check_event(
    case: Case, body: dict[str, Any], directory: Directory | None, strict: bool
) -> None:
    type_ = body["type"]
    spec = _COMMANDS.get(type_)
    if spec is None:
        raise _Stop(FaultKind.UNKNOWN_EVENT_TYPE, f"unknown event type {type_!r}")
    payload = body["payload"]
    if not isinstance(payload, dict):
        raise _Stop(FaultKind.MALFORMED, "payload is not an object")
    if strict:
        try:
            from_payload(COMMAND_TYPES[spec.name], payload)
        except MediationError as exc:
            raise _Stop(FaultKind.MALFORMED, f"payload of {spec.name}: {exc}") from exc
    state = case.state
    target = _TABLE.get((state, spec.name))
    if target is None:
        where = "a new case" if state == NEW else f"state {state}"
        raise _Stop(FaultKind.ILLEGAL_TRANSITION, f"{spec.name} is not allowed from {where}")
    actor, acted_as = body["actor"], body["as"]
    if acted_as not in spec.grants:
        raise _Stop(FaultKind.UNAUTHORIZED, f"{spec.name} may not be issued as {acted_as!r}")
    if acted_as not in _ROLES and acted_as not in relations_in(case, actor, payload):
        raise _Stop(
            FaultKind.UNAUTHORIZED,
            f"{actor} acted as {acted_as} but held no such relation to the case at that point",
        )
    if spec.name in NAMES_PEOPLE:  # after authorization, like the service (a guard-like check)
        try:
            check_people(case, spec.name, payload)
        except MediationError as exc:
            raise _Stop(FaultKind.ILLEGAL_TRANSITION, f"{spec.name}: {exc}") from exc
    ctx = Context(
        case,
        spec.name,
        payload,
        actor,
        acted_as,
        body["at"],
        directory,
    )
    for name, g in _GUARD_FNS[spec.name]:
        if g.needs_directory and directory is None:
            continue
        reason = g.fn(ctx)
        if reason is not None:
            raise _Stop(
                FaultKind.ILLEGAL_TRANSITION, f"{spec.name}: guard {name} failed: {reason[0]}"
            )
    completes = _COMPLETES.get(spec.name)
    if completes is not None and completes(ctx) is not None:
        target = state
    if body["state"] != target:
        raise _Stop(
            FaultKind.ILLEGAL_TRANSITION,
            f"{spec.name} from {state} leads to {target}, but the event records {body['state']}",
        )


def verify(
    records: Iterable[StoredEvent],
    case_id: str | None = None,
    *,
    directory: Directory | None = None,
    strict: bool = False,
) -> Verdict:
    """Verify one case's stored records, in order, and rebuild it.

    ``case_id`` defaults to the first record's.  ``strict`` also re-validates every payload against
    its command class (slower; the CLI and imports use it).  ``directory`` enables the guard that
    needs one (G3); without it G3 is not re-checked.
    """
    case = Case(case_id or "")
    head = GENESIS
    seq = 0
    sha256 = hashlib.sha256
    tag = DOMAIN_TAG
    fault: Fault | None = None
    for rec in records:
        expected = seq + 1
        if not case.id:
            case.id = rec.case_id
        fault = _check_record(
            case, rec, expected, head, sha256(tag + rec.body).hexdigest(), directory, strict
        )
        if fault is not None:
            break
        head = rec.hash
        seq = expected
    if seq == 0 and fault is None:
        fault = Fault(1, FaultKind.EMPTY, "no events")
    return Verdict(case.id or "?", seq, seq, head, case.state, fault, case if seq else None)


def _check_record(
    case: Case,
    rec: StoredEvent,
    expected: int,
    head: str,
    digest: str,
    directory: Directory | None,
    strict: bool,
) -> Fault | None:
    """Check one record against the case so far and fold it in; return the fault, if any."""
    if rec.case_id != case.id:
        return Fault(expected, FaultKind.WRONG_CASE, f"record belongs to case {rec.case_id!r}")
    if rec.seq != expected:
        what = "missing" if rec.seq > expected else "duplicated or out of order"
        return Fault(
            expected, FaultKind.GAP, f"expected seq {expected}, found {rec.seq}: event {what}"
        )
    if digest != rec.hash:
        return Fault(expected, FaultKind.ALTERED, "stored bytes do not hash to the stored hash")
    try:
        body = parse_body(rec.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return Fault(expected, FaultKind.MALFORMED, str(exc))
    if body["case"] != case.id or body["seq"] != expected:
        return Fault(
            expected, FaultKind.MALFORMED, "body names another case or seq than its record"
        )
    if body["prev"] != head:
        return Fault(
            expected, FaultKind.BROKEN_LINK, "prev does not match the previous event's hash"
        )
    if body["schema"] != SCHEMA_VERSION or body["workflow"] != WORKFLOW.version:
        return Fault(
            expected,
            FaultKind.MALFORMED,
            f"event schema {body['schema']!r} under workflow {body['workflow']!r}; this library "
            f"reads schema {SCHEMA_VERSION} under {WORKFLOW.version!r}",
        )
    if strict and canonical_bytes(body, checked=False) != rec.body:
        return Fault(expected, FaultKind.MALFORMED, "the body is not in canonical form")
    try:
        _check_event(case, body, directory, strict)
        apply_event(
            case,
            expected,
            rec.hash,
            body["type"],
            body["payload"],
            body["actor"],
            body["as"],
            body["at"],
            body["state"],
        )
    except _Stop as s:
        return Fault(expected, s.kind, s.message)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Fault(expected, FaultKind.MALFORMED, f"payload does not match its command: {exc!r}")
    return None


def replay(records: Iterable[StoredEvent], case_id: str | None = None) -> Case:
    """Rebuild a case from its records; raise :class:`IntegrityViolation` if they do not verify."""
    verdict = verify(records, case_id)
    if not verdict.ok or verdict.case is None:
        assert verdict.fault is not None
        raise IntegrityViolation(
            verdict.describe(),
            message_zh=verdict.describe("zh"),
            verdict=verdict,
            case=verdict.case_id,
            seq=verdict.fault.seq,
        )
    return verdict.case
