"""Replay and verification: rebuild a case from stored records and say whether its history holds.

For each record, in order: the seq is the next one (no gap, no reorder), the hash recomputed from the
stored bytes matches, the body names this case and seq, ``prev`` links to the previous hash, the
event type is known, the command was legal from the state the case was in, the recorded role or
relation permitted it (relations are re-derived from the log up to that point), every guard of the
declaration held, and the recorded resulting state is the one the declaration gives.  The first
failure stops the replay and is reported with its seq and kind.  Integrity evidence outranks
legality: when the first failure is a legality fault (an intact but refused event), the records
after it are still checked for integrity (seq, hash, case, ``prev`` link), and an integrity fault
found there becomes the verdict's :attr:`Verdict.fault`; :attr:`Verdict.faults` lists both.

Each event is decided by :func:`mediation._decide.decide`, the function the live path calls, on
the workflow version the case was opened on (its first event names it), with the role or relation
the event records and, when a directory is given, the grants of the day: a refusal is reported
with the error the live path would have raised (:attr:`Fault.error`).
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from ._authz import TRUSTED, Directory, Grant, _Trusted
from ._case import Case, apply_event
from ._commands import from_payload, to_payload
from ._decide import decide
from ._errors import (
    GuardFailed,
    IllegalTransition,
    IntegrityViolation,
    InvalidCommand,
    MediationError,
    NotPermitted,
)
from ._events import (
    _TIME,
    BODY_KEYS,
    DOMAIN_TAG,
    MAX_INT,
    SCHEMA_VERSION,
    StoredEvent,
    canonical_bytes,
    parse_body,
)
from ._keys import ReadThrough
from ._privacy import AESGCMVault, Place, Vault, broken_seals, sealed_places, standins
from ._roster import Roster, committee_of, grants_for, verify_roster
from ._spec import registered, workflow_of
from ._validators import _ID_RE as _ID
from ._vocab import NEW, Role

__all__ = ["Fault", "FaultKind", "Verdict", "check_links", "replay", "verify"]

_ROLE_VALUES = frozenset(r.value for r in Role)


class FaultKind(str, enum.Enum):
    """What is wrong with a history, in the order the checks run."""

    GAP = "gap"  # an event is missing, duplicated or out of order
    WRONG_CASE = "wrong_case"  # a record of another case
    ALTERED = "altered"  # the stored bytes do not hash to the stored hash
    MALFORMED = "malformed"  # the bytes hash right but are not a well-formed event
    BROKEN_LINK = "broken_link"  # prev does not match the previous event's hash
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    UNKNOWN_WORKFLOW = "unknown_workflow"  # the case's version is not registered in this process
    ILLEGAL_TRANSITION = "illegal_transition"  # not allowed from that state, a guard failed, ...
    UNAUTHORIZED = "unauthorized"  # the recorded role or relation did not permit the command
    EMPTY = "empty"  # no events at all
    TRUNCATED = "truncated"  # fewer events than a signed checkpoint attests
    CHECKPOINT = "checkpoint"  # a checkpoint does not match or its signature is bad
    SUMMARY = "summary"  # the store's summary row disagrees with the replayed case, or is missing
    #: a transfer's link to another case of the store is not answered from the other end: the
    #: case it names is missing, or does not name this one back (verify_store; version 2 on)
    CASE_LINK = "case_link"
    #: a sealed value does not open with its key: its ciphertext, nonce or associated data was
    #: changed (checked when the verifier is given the vault)
    SEALED = "sealed"

    @property
    def integrity(self) -> bool:
        """True for faults of the bytes (tampering); False for an illegal but intact history."""
        return self not in (
            FaultKind.UNKNOWN_EVENT_TYPE,
            FaultKind.UNKNOWN_WORKFLOW,
            FaultKind.ILLEGAL_TRANSITION,
            FaultKind.UNAUTHORIZED,
        )


_ZH = {
    FaultKind.GAP: "序号缺失、重复或顺序错乱",
    FaultKind.WRONG_CASE: "混入其他案件的事件",
    FaultKind.ALTERED: "内容被篡改（哈希不符）",
    FaultKind.MALFORMED: "事件格式错误",
    FaultKind.SEALED: "加密的个人信息无法通过认证（密文、随机数或关联数据被篡改）",
    FaultKind.BROKEN_LINK: "哈希链断裂",
    FaultKind.UNKNOWN_EVENT_TYPE: "未知事件类型",
    FaultKind.UNKNOWN_WORKFLOW: "本程序未登记该流程版本",
    FaultKind.ILLEGAL_TRANSITION: "不合法的状态变更",
    FaultKind.UNAUTHORIZED: "无权限的操作",
    FaultKind.EMPTY: "没有任何事件",
    FaultKind.TRUNCATED: "事件被截断",
    FaultKind.CHECKPOINT: "签名检查点不符",
    FaultKind.SUMMARY: "案件摘要行与事件重放结果不符",
    FaultKind.CASE_LINK: "移交链接的另一端案件缺失或未回指本案",
}


def _severity(fault: Fault) -> tuple[bool, bool, int]:
    """The order of :attr:`Verdict.faults`: the integrity of the events, then the summary row
    (derived data), then legality; each by seq."""
    return (not fault.kind.integrity, fault.kind is FaultKind.SUMMARY, fault.seq)


def ranked(faults: Iterable[Fault]) -> tuple[Fault, ...]:
    """``faults`` in severity order (integrity evidence of the events first, then a summary row's,
    then legality; each by seq), keeping the first bad seq of each kind (the first given, on a
    tie)."""
    first: dict[FaultKind, Fault] = {}
    for f in faults:
        kept = first.get(f.kind)
        if kept is None or f.seq < kept.seq:
            first[f.kind] = f
    return tuple(sorted(first.values(), key=_severity))


@attrs.frozen
class Fault:
    seq: int
    kind: FaultKind
    message: str
    #: for a refused event, the error the live path raises for that command in that state
    error: MediationError | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def message_zh(self) -> str:
        """In Chinese: the live path's own Chinese message for a refused event (states, commands
        and roles by their declared labels), else the kind in Chinese with the detail."""
        detail = self.error.message_zh if self.error is not None else self.message
        return f"第 {self.seq} 号事件：{_ZH[self.kind]}（{detail}）"


@attrs.frozen
class Verdict:
    """The result of verifying one case's history."""

    case_id: str
    events: int  # how many events verified before the fault (all of them when valid)
    head_seq: int
    head_hash: str
    state: str
    #: the most severe fault (the first of :attr:`faults`), or None when the history holds
    fault: Fault | None = None
    case: Case | None = attrs.field(default=None, eq=False, repr=False)
    #: every fault class found, the first bad seq of each, in severity order: integrity evidence
    #: (altered, gap, broken link, malformed, truncated, checkpoint, summary) before legality
    #: (illegal transition, unauthorized, unknown event type or workflow), each by seq
    faults: tuple[Fault, ...] = attrs.field(
        default=attrs.Factory(lambda self: () if self.fault is None else (self.fault,), True)
    )
    #: how many events' bytes verified (seq, hash, ``prev`` link, the body's case and seq): after a
    #: legality fault the replay stops but these checks go on, so this can exceed :attr:`events`
    intact: int = attrs.field(default=attrs.Factory(lambda self: self.events, True))
    #: the seqs of the events whose role claim (``as`` a committee role) could not be checked:
    #: the committee kept no roster then (and no directory was given), so the role was taken as
    #: the host asserted it on the day
    unchecked: tuple[int, ...] = ()
    #: the links this case's events make to other cases of the store, as (direction, other case,
    #: seq of the event that names it): ``("to", new case, seq)`` for a transfer that opened a
    #: case, ``("from", origin, 1)`` for a case a transfer opened.  One case's history can only
    #: state its own side; :func:`~mediation.audit.verify_store` checks that each other end exists
    #: and points back (only cases of a version that declares ``receive_transfer`` link)
    links: tuple[tuple[str, str, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.fault is None

    def with_faults(self, *found: Fault) -> Verdict:
        """This verdict with ``found`` added: :attr:`faults` re-ranked, :attr:`fault` the most
        severe of them."""
        if not found:
            return self
        faults = ranked((*self.faults, *found))
        return attrs.evolve(self, fault=faults[0], faults=faults)

    def __bool__(self) -> bool:
        return self.ok

    def _unchecked_note(self, lang: str) -> str:
        n = len(self.unchecked)
        if not n:
            return ""
        seqs = ", ".join(map(str, self.unchecked[:10])) + (", ..." if n > 10 else "")
        if lang == "zh":
            return f"；另有 {n} 个角色声明无法核对（当时无人员名录：第 {seqs} 号事件）"
        claims = "claim" if n == 1 else "claims"
        return f"; {n} role {claims} not checked (no roster kept then: seq {seqs})"

    def describe(self, lang: str = "en") -> str:
        committee = committee_of(self.case_id)  # a committee's roster: entries, no state
        if self.fault is None:
            note = self._unchecked_note(lang)
            if committee is not None:
                if lang == "zh":
                    return f"调委会 {committee} 的人员名录：验证通过，共 {self.events} 条记录"
                return f"roster of committee {committee}: valid, {self.events} entries"
            if lang == "zh":
                return (
                    f"案件 {self.case_id}：验证通过，共 {self.events} 个事件，"
                    f"当前状态 {_state_zh(self.state)}{note}"
                )
            return f"case {self.case_id}: valid, {self.events} events, state {self.state}{note}"
        f = self.fault
        others = self.faults[1:]
        if lang == "zh":
            also = "".join(f"；另有 {o.message_zh}" for o in others)
            whose = (
                f"案件 {self.case_id}" if committee is None else f"调委会 {committee} 的人员名录"
            )
            return f"{whose}：验证失败，{f.message_zh}{also}"
        also = "".join(f"; also at seq {o.seq}: {o.kind.value}: {o.message}" for o in others)
        whose = f"case {self.case_id}" if committee is None else f"roster of committee {committee}"
        return f"{whose}: INVALID at seq {f.seq}: {f.kind.value}: {f.message}{also}"

    def without_case(self) -> Verdict:
        """The same verdict without the rebuilt case (small to keep or to send to a process)."""
        if self.case is None:
            return self
        return attrs.evolve(self, case=None)

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
            out["fault"] = _fault_json(self.fault)
            out["faults"] = [_fault_json(f) for f in self.faults]
        out["unchecked"] = list(self.unchecked)
        return out


def _state_zh(name: str) -> str:
    """A state's short Chinese label from the declaration (the latest registered version that
    declares it); the name itself when none does."""
    for workflow in reversed(registered()):
        try:
            return workflow.state(name).zh.split("（")[0]
        except KeyError:
            continue
    return name


def _fault_json(fault: Fault) -> dict[str, object]:
    return {"seq": fault.seq, "kind": fault.kind.value, "message": fault.message}


class _Stop(Exception):
    def __init__(self, kind: FaultKind, message: str, error: MediationError | None = None) -> None:
        self.kind = kind
        self.message = message
        self.error = error


def _check_event(
    case: Case,
    body: dict[str, Any],
    directory: Directory | None,
    strict: bool,
    rosters: Mapping[str, Roster] | None,
    vault: Vault | None = None,
) -> tuple[str, bool, list[tuple[Place, Any]]]:
    """Decide the event's command as the live path would; return the state it leads to, whether
    its role claim went unchecked (no roster of the day, and no directory), and the payload's
    sealed places (for the fold)."""
    workflow = case.workflow
    name = body["type"]
    if not isinstance(name, str) or not workflow.has_command(name):
        raise _Stop(FaultKind.UNKNOWN_EVENT_TYPE, f"unknown event type {name!r}")
    payload = body["payload"]
    if not isinstance(payload, dict):
        raise _Stop(FaultKind.MALFORMED, "payload is not an object")
    spec = workflow.command(name)
    places = sealed_places(workflow, spec, payload) if spec.persons or spec.sealed else []
    try:  # the payload as the decision sees it: each sealed value a stand-in, as on the live path
        shown = standins(workflow, spec, payload, places=places)
    except InvalidCommand as exc:
        raise _Stop(FaultKind.MALFORMED, f"payload of {name}: {exc}") from exc
    if vault is not None and places:
        broken = broken_seals(vault, workflow, spec, case.id, body["seq"], payload, places)
        if broken:
            raise _Stop(
                FaultKind.SEALED,
                f"the sealed value at {', '.join(broken)} does not open with its key: its "
                "ciphertext, nonce or associated data was changed",
            )
    if strict:
        try:
            command = from_payload(spec.payload, shown)
        except MediationError as exc:
            raise _Stop(FaultKind.MALFORMED, f"payload of {name}: {exc}") from exc
        if to_payload(command) != shown:  # every member, in the form the service writes it
            raise _Stop(
                FaultKind.MALFORMED,
                f"payload of {name} is not in the form the service writes (a member missing, "
                "or a value not in its normal form)",
            )
    actor = body["actor"]
    grants: frozenset[Grant] | _Trusted = TRUSTED
    people: Directory | None = directory
    if rosters is not None or "roster" in body:
        committee = case.committee if case.state != NEW else payload.get(spec.authority)
        found = rosters.get(committee) if rosters is not None and type(committee) is str else None
        roster, seq, problem = grants_for(found, actor, body["at"], body.get("roster"))
        if problem is not None and found is not None:  # (no roster known: claims unchecked)
            raise _Stop(FaultKind.UNAUTHORIZED, problem)
        if roster is not None and seq is not None:
            grants, people = roster.grants(actor, seq), roster.view(seq)
    if grants is TRUSTED and directory is not None:
        grants = directory.grants_of(actor)
    try:
        decision = decide(
            case,
            name,
            actor,
            shown,
            body["at"],
            grants=grants,
            claim=body["as"],
            directory=people,
        )
    except (IllegalTransition, NotPermitted, GuardFailed, InvalidCommand) as exc:
        # a refusal is unauthorized, or else an illegal transition
        kind = (
            FaultKind.UNAUTHORIZED
            if isinstance(exc, NotPermitted)
            else FaultKind.ILLEGAL_TRANSITION
        )
        raise _Stop(kind, exc.message, exc) from exc
    if body["state"] != decision.state:
        raise _Stop(
            FaultKind.ILLEGAL_TRANSITION,
            f"{name} from {case.state} leads to {decision.state}, but the event records "
            f"{body['state']}",
        )
    return decision.state, grants is TRUSTED and decision.acted_as in _ROLE_VALUES, places


_REQUIRED_MEMBERS = len(BODY_KEYS)


def _optional_members_ok(body: dict[str, Any], id_format: Callable[[str], object], at: str) -> bool:
    """``request`` is an id; ``clock``, the host's reading held back to ``at``, a time before it."""
    if "request" in body:
        request = body["request"]
        if type(request) is not str or not id_format(request):
            return False
    if "roster" in body:
        roster = body["roster"]
        if type(roster) is not int or not 0 < roster <= MAX_INT:
            return False
    if "clock" in body:
        clock = body["clock"]
        if type(clock) is not str or not _TIME.match(clock) or clock >= at:
            return False
        try:
            datetime.fromisoformat(clock[:-1])
        except ValueError:
            return False
    return True


def verify(
    records: Iterable[StoredEvent],
    case_id: str | None = None,
    *,
    directory: Directory | None = None,
    strict: bool = False,
    rosters: Mapping[str, Roster] | None = None,
    vault: Vault | None = None,
) -> Verdict:
    """Verify one case's stored records, in order, and rebuild it.

    ``case_id`` defaults to the first record's.  ``strict`` also re-validates every payload against
    its command class and checks that every body is in canonical form (slower; imports, timelines,
    reports, checkpoint signing and ``mediation verify --strict`` use it).  ``rosters`` are the
    store's verified rosters by committee (:func:`mediation.rosters_of`): each role claim and each
    look-up of a person's role (G3) is then checked against the roster seq the event was decided
    on; where the committee kept none then, ``directory`` (the host's directory of the day)
    answers, and without one the claim is taken as recorded and listed in
    :attr:`Verdict.unchecked`.  A roster stream (``@roster:<committee>``) is verified as a roster.
    With ``vault`` (the store's key store), every sealed value is opened too, so that a changed
    ciphertext, nonce or associated data is found even where the chain was rebuilt over it (a
    value whose keys were destroyed by an erasure is not checked: there is nothing to open it).
    """
    if case_id is None:
        records = iter(records)
        first = next(records, None)
        if first is not None:
            case_id = first.case_id
            records = itertools.chain((first,), records)
    if committee_of(case_id) is not None:
        assert case_id is not None
        return verify_roster(records, case_id)[0]
    if type(vault) is AESGCMVault and not isinstance(vault.keys, ReadThrough):
        vault = AESGCMVault(ReadThrough(vault.keys))  # the case's keys read once, not per value
    return _run(records, Case(case_id or ""), directory, strict, rosters, vault)


def _run(
    records: Iterable[StoredEvent],
    case: Case,
    directory: Directory | None,
    strict: bool,
    rosters: Mapping[str, Roster] | None = None,
    vault: Vault | None = None,
) -> Verdict:
    """The checks of :func:`verify`, continuing from ``case`` (folded in place)."""
    head = case.head
    seq = case.seq
    # the loop runs once per event: its globals are bound to locals once per case
    tagged = hashlib.sha256(DOMAIN_TAG)  # the tag's hash state, copied for every body
    intact = _intact
    check = _check_event
    apply = apply_event
    fault: Fault | None = None
    body: dict[str, Any] = {}
    unchecked: list[int] = []
    links: list[tuple[str, str, int]] = []
    rest = iter(records)
    rec: StoredEvent | None = None
    for rec in rest:
        expected = seq + 1
        if not case.id:
            case.id = rec.case_id
        # the checks of one record, in order; the first failure ends the replay
        body, fault = intact(rec, expected, case.id, head, tagged, case.updated_at)
        if fault is not None:
            break
        at = body["at"]
        if seq == 0:  # the first event names the version the case lives on
            try:
                case.workflow = workflow_of(body["workflow"])
            except InvalidCommand as exc:  # intact bytes this process cannot judge
                fault = Fault(expected, FaultKind.UNKNOWN_WORKFLOW, exc.message)
                break
        elif body["workflow"] != case.workflow.version:
            fault = Fault(
                expected,
                FaultKind.MALFORMED,
                f"the event names workflow {body['workflow']!r:.80}; the case was opened on "
                f"{case.workflow.version!r}",
            )
            break
        try:
            if strict and canonical_bytes(body, checked=False) != rec.body:
                fault = Fault(expected, FaultKind.MALFORMED, "the body is not in canonical form")
                break
            state, unsure, places = check(case, body, directory, strict, rosters, vault)
            if unsure:
                unchecked.append(expected)
            apply(
                case,
                expected,
                rec.hash,
                case.workflow.command(body["type"]),
                body["payload"],
                body["actor"],
                body["as"],
                at,
                state,
                places,
            )
            linking = case.workflow.command(body["type"]).link
            if linking is not None:
                other = body["payload"].get(linking[1])
                if isinstance(other, str) and other:
                    links.append((linking[0], other, expected))
        except _Stop as s:
            fault = Fault(expected, s.kind, s.message, s.error)
            break
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            fault = Fault(
                expected, FaultKind.MALFORMED, f"payload does not match its command: {exc!r}"
            )
            break
        head = rec.hash
        seq = expected
    if seq == 0 and fault is None:
        fault = Fault(1, FaultKind.EMPTY, "no events")
    verdict = Verdict(
        case.id or "?",
        seq,
        seq,
        head,
        case.state,
        fault,
        case if seq else None,
        unchecked=tuple(unchecked),
        links=tuple(links),
    )
    if fault is not None and not fault.kind.integrity and rec is not None:
        # an intact but illegal history: the bytes after the refused event are still checked, so
        # that tampering further on is reported and outranks the legality fault
        checked, found = _integrity_of_rest(
            rest, case.id, fault.seq, rec.hash, tagged, body["at"], body["workflow"]
        )
        verdict = attrs.evolve(verdict, intact=checked)
        if found is not None:
            verdict = verdict.with_faults(found)
    return verdict


#: texts that matched the id pattern (actors and roles recur from event to event: each is matched
#: once); emptied when it grows past _IDS_KEPT
_IDS: set[str] = set()
_IDS_KEPT = 4096


def _new_id(text: str) -> bool:
    """Is ``text`` (a str) an id of the log format?  Remembered in :data:`_IDS` when it is."""
    if not _ID.match(text):
        return False
    if len(_IDS) >= _IDS_KEPT:
        _IDS.clear()
    _IDS.add(text)
    return True


def check_links(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """``verdicts`` (the cases of one store) with a :attr:`FaultKind.CASE_LINK` fault added to
    each case whose link is not answered from the other end: the transfer names a case the store
    does not hold, or one that does not name this case as its origin; a case opened by a transfer
    names an origin that is missing, or whose transfer names another case."""
    out = list(verdicts)
    by_id = {v.case_id: v for v in out}
    for i, v in enumerate(out):
        found: list[Fault] = []
        for direction, other, seq in v.links:
            there = by_id.get(other)
            back = "from" if direction == "to" else "to"
            if there is None or there.events == 0:
                found.append(
                    Fault(seq, FaultKind.CASE_LINK, f"the linked case {other!r:.80} is missing")
                )
            elif not any(d == back and o == v.case_id for d, o, _ in there.links):
                found.append(
                    Fault(
                        seq,
                        FaultKind.CASE_LINK,
                        f"the linked case {other!r:.80} does not name this case back",
                    )
                )
        if found:
            out[i] = v.with_faults(*found)
    return out


def _envelope_problem(rec: StoredEvent, body: dict[str, Any], last_at: str) -> str | None:
    """What is wrong with the envelope of ``body`` (check 7 of docs/log-format.md, but the
    workflow version), or None: the types of seq, actor, role and time, time order, the request
    id, the optional members, the schema, and a time that names a real instant."""
    at = body["at"]
    actor, claim = body["actor"], body["as"]
    id_format, time_format, ids = _ID.match, _TIME.match, _IDS
    if (
        type(body["seq"]) is not int
        or type(actor) is not str
        or (actor not in ids and not _new_id(actor))
        or type(claim) is not str
        or (claim not in ids and not _new_id(claim))
        or type(at) is not str
        or not time_format(at)
        or at < last_at
    ):
        return "the envelope's seq, actor, role or time is not of the log format, or time went back"
    if rec.request_id is not None and rec.request_id != body.get("request"):
        return "the record's request id is not the one its body carries"
    if len(body) != _REQUIRED_MEMBERS and not _optional_members_ok(body, id_format, at):
        return (
            "the envelope's request id is not an id, its roster seq not a positive integer, or "
            "its clock reading not a time before the event's"
        )
    if type(body["schema"]) is not int or body["schema"] != SCHEMA_VERSION:
        return f"event schema {body['schema']!r}; this library reads schema {SCHEMA_VERSION}"
    try:
        datetime.fromisoformat(at[:-1])  # the pattern matched; a date that does not exist fails
    except ValueError:
        return f"the event's time {at!r} names no real instant"
    return None


def _intact(
    rec: StoredEvent, expected: int, case_id: str, head: str, tagged: Any, last_at: str
) -> tuple[dict[str, Any], Fault | None]:
    """Checks 1 to 7 of docs/log-format.md on one record (all but the workflow version): its case,
    its seq, the hash of its stored bytes, a well-formed body naming this case and seq, its
    ``prev`` link and its envelope.  Returns the parsed body and the first fault, if any."""
    if rec.case_id != case_id:
        return {}, Fault(expected, FaultKind.WRONG_CASE, f"record belongs to case {rec.case_id!r}")
    if rec.seq != expected:
        what = "missing" if rec.seq > expected else "duplicated or out of order"
        return {}, Fault(
            expected, FaultKind.GAP, f"expected seq {expected}, found {rec.seq}: event {what}"
        )
    hasher = tagged.copy()
    hasher.update(rec.body)
    if hasher.hexdigest() != rec.hash:
        return {}, Fault(expected, FaultKind.ALTERED, "stored bytes do not hash to the stored hash")
    try:
        body = parse_body(rec.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, Fault(expected, FaultKind.MALFORMED, str(exc))
    if body["case"] != case_id or body["seq"] != expected:
        return body, Fault(
            expected, FaultKind.MALFORMED, "body names another case or seq than its record"
        )
    if body["prev"] != head:
        return body, Fault(
            expected, FaultKind.BROKEN_LINK, "prev does not match the previous event's hash"
        )
    problem = _envelope_problem(rec, body, last_at)
    if problem is not None:
        return body, Fault(expected, FaultKind.MALFORMED, problem)
    return body, None


def _integrity_of_rest(
    records: Iterable[StoredEvent],
    case_id: str,
    seq: int,
    head: str,
    tagged: Any,
    last_at: str,
    version: str,
) -> tuple[int, Fault | None]:
    """Check the integrity of the records after seq ``seq`` (whose hash is ``head``, whose time is
    ``last_at``): checks 1 to 7 (:func:`_intact`) and the workflow ``version`` of the case's first
    event on every event.  Returns how many events are intact and the first integrity fault."""
    for rec in records:
        expected = seq + 1
        body, fault = _intact(rec, expected, case_id, head, tagged, last_at)
        if fault is None and body["workflow"] != version:
            fault = Fault(
                expected, FaultKind.MALFORMED, f"the event names workflow {body['workflow']!r:.80}"
            )
        if fault is not None:
            return seq, fault
        head, seq, last_at = rec.hash, expected, body["at"]
    return seq, None


def replay(
    records: Iterable[StoredEvent], case_id: str | None = None, *, start: Case | None = None
) -> Case:
    """Rebuild a case from its records; raise :class:`IntegrityViolation` if they do not verify.

    With ``start``, a case already folded up to some seq, ``records`` are the ones after it: they
    are checked and folded onto a copy of ``start`` (which is left as it was).
    """
    if start is None:
        verdict = verify(records, case_id)
    else:
        verdict = _run(records, start.clone(), None, False)
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
