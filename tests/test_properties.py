"""Invariants of the core on generated histories: replay, tamper evidence, denied commands.

Histories are built through the real service (:func:`mediation.testing._strategies.driven_cases`:
a walk that mostly follows the flow 申请—登记—会议—协商—协议—回访 with random detours and endings),
then checked or tampered with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs
from hypothesis import assume, given, note
from hypothesis import strategies as st

from helpers import case_fields
from mediation import (
    WORKFLOW,
    Case,
    CaseSummary,
    ConcurrencyConflict,
    FaultKind,
    MediationError,
    MemoryStore,
    StoredEvent,
    StoreError,
    replay,
    verify,
)
from mediation._commands import to_payload
from mediation._events import (
    canonical_bytes,
    event_hash,
    format_time,
    make_body,
    parse_body,
    parse_time,
)
from mediation._workflow import Relation, Role
from mediation.testing._strategies import (
    Driven,
    World,
    command_for,
    driven_cases,
    guided_step,
    histories,
    opening_step,
    step,
)

CID = "case-h"
_RELATIONS = frozenset(r.value for r in Relation)
_GRANTS = tuple(r.value for r in Relation) + tuple(r.value for r in Role)

non_empty = histories().filter(bool)
at_least_two = histories().filter(lambda rs: len(rs) >= 2)


def fields(case: Case) -> dict[str, Any]:
    return case_fields(case)


def assert_same_case(live: Case, replayed: Case) -> None:
    a, b = fields(live), fields(replayed)
    differing = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not differing, f"live != replay on {differing}"


def case_invariants(case: Case, records: Sequence[StoredEvent]) -> list[str]:
    """What must hold of every case a valid history can produce (the violated ones, by name)."""
    c = case
    people = set(c.parties) | set(c.agents)
    mediators = set(c.mediators)
    agreed = ("agreement_effective", "following_up", "resolved")
    checks = {
        "seq and head are the log's": c.seq == len(records)
        and c.head == (records[-1].hash if records else c.head),
        "applicants and respondents are the parties": set(c.parties)
        == set(c.applicants) | set(c.respondents)
        and not set(c.applicants) & set(c.respondents),
        "an agent speaks for a party and is not one": all(
            principal in c.parties and agent not in c.parties
            for agent, (principal, _) in c.agents.items()
        ),
        "the lead is not also a co-mediator": c.lead not in c.co_mediators
        and len(set(c.co_mediators)) == len(c.co_mediators),
        "no recused person acts": not c.recused & (mediators | set(c.invitees)),
        "no party or agent mediates or is invited": not people & (mediators | set(c.invitees)),
        "an agreement stands from drafting on": c.state not in ("agreement_drafted", *agreed)
        or c.agreement is not None,
        "an agreement in effect has its date": (c.effective_at is not None) == (c.state in agreed),
        "a written agreement in effect bears every party's signature and the seal": (
            c.state not in agreed or c.oral_agreement or {*c.party_ids, "seal"} <= c.signatures
        ),
        "closed exactly when terminal": (c.closed_at is not None) == c.terminal,
        "a closed case is not paused": not (c.terminal and c.paused),
        "only a closed case is archived": c.terminal or not c.archived,
        "resolved means performed": c.state != "resolved" or c.performed,
        "failed means termination proposed and parties informed": c.state != "failed"
        or (c.termination is not None and c.terminated_informed),
        "registered from registration on": (c.registered_at is None)
        == (c.state in ("applied", "not_accepted", "refused"))
        or c.state in ("withdrawn", "transferred"),
        "the stage is the state's": c.state in ("failed", "withdrawn", "transferred")
        or c.stage is WORKFLOW.state(c.state).stage,
        "clock counters are not negative": c.paused_seconds >= 0 and c.extra_days >= 0,
        "level and judicial status are known": c.level in ("L0", "L1", "L2")
        and c.judicial in ("none", "applied", "confirmed", "rejected"),
    }
    return [name for name, ok in checks.items() if not ok]


def first_divergence(original: Sequence[StoredEvent], tampered: Sequence[StoredEvent]) -> int:
    """The 0-based position where ``tampered`` stops being ``original`` (len if a prefix)."""
    for i, rec in enumerate(tampered):
        if i >= len(original) or rec != original[i]:
            return i
    return len(tampered)


def forge(
    case_id: str,
    seq: int,
    prev: str,
    *,
    type: str,
    actor: str,
    acted_as: str,
    state: str,
    payload: dict[str, Any],
    at: str = "2026-06-01T00:00:00.000000Z",
) -> StoredEvent:
    """A record with a correct self-hash, built the way the service builds one."""
    body = canonical_bytes(
        make_body(
            case_id=case_id,
            seq=seq,
            type=type,
            at=at,
            actor=actor,
            acted_as=acted_as,
            state=state,
            payload=payload,
            prev=prev,
            workflow=WORKFLOW.version,
        )
    )
    return StoredEvent(case_id, seq, event_hash(body), body)


# -- replay equals the live state ------------------------------------------------------------------


@given(driven_cases())
def test_replay_of_the_log_equals_the_live_case(d: Driven) -> None:
    records = d.service.store.read(d.case_id)
    live = d.service.case(d.case_id)
    note(f"{len(records)} events, state {live.state}")
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    verdict = verify(records, d.case_id)
    assert verdict.ok, verdict.describe()
    assert (verdict.events, verdict.head_seq, verdict.state) == (len(records), live.seq, live.state)
    assert verdict.head_hash == live.head == records[-1].hash
    assert_same_case(live, replay(records, d.case_id))
    assert not case_invariants(live, records), case_invariants(live, records)
    # G3 re-checked against the directory, and every payload re-validated
    assert verify(records, d.case_id, directory=d.world.directory, strict=True).ok
    # the summary row is the live case's, and a fresh service rebuilds the same case
    assert d.service.store.summary(d.case_id) == live.summary()
    fresh = d.world.service(d.service.store)
    assert_same_case(live, fresh.case(d.case_id))


# -- any altered byte ------------------------------------------------------------------------------


@given(non_empty, st.data())
def test_any_flipped_bit_is_detected_at_its_record(
    records: list[StoredEvent], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    rec = records[i]
    bit = 1 << data.draw(st.integers(0, 7), label="bit")
    if data.draw(st.booleans(), label="in the hash column"):
        pos = data.draw(st.integers(0, len(rec.hash) - 1), label="hash char")
        flipped = rec.hash[:pos] + chr(ord(rec.hash[pos]) ^ bit) + rec.hash[pos + 1 :]
        bad = attrs.evolve(rec, hash=flipped)
    else:
        pos = data.draw(st.integers(0, len(rec.body) - 1), label="body byte")
        body = bytearray(rec.body)
        body[pos] ^= bit
        bad = attrs.evolve(rec, body=bytes(body))
    verdict = verify([*records[:i], bad, *records[i + 1 :]], CID)
    assert verdict.fault is not None
    assert (verdict.fault.seq, verdict.fault.kind) == (rec.seq, FaultKind.ALTERED)
    assert verdict.events == i


# -- deleted, inserted, reordered events -----------------------------------------------------------


def check_detected(
    original: list[StoredEvent], tampered: list[StoredEvent], kind: FaultKind | None = None
) -> None:
    """``tampered`` fails at the first position where it diverges from ``original``."""
    at = first_divergence(original, tampered)
    verdict = verify(tampered, CID)
    if at == len(tampered):  # a prefix: only a checkpoint can tell (see TRUNCATED)
        if tampered:
            assert verdict.ok and verdict.events == len(tampered)
        else:
            assert verdict.fault is not None and verdict.fault.kind is FaultKind.EMPTY
        return
    assert verdict.fault is not None, "tampering went unnoticed"
    assert verdict.fault.seq == at + 1, verdict.describe()
    assert verdict.fault.kind.integrity, verdict.describe()
    if kind is not None:
        assert verdict.fault.kind is kind, verdict.describe()
    assert verdict.events == at


@given(non_empty, st.data())
def test_deleted_events_are_detected(records: list[StoredEvent], data: st.DataObject) -> None:
    gone = data.draw(
        st.sets(st.integers(0, len(records) - 1), min_size=1, max_size=len(records)),
        label="deleted",
    )
    tampered = [r for i, r in enumerate(records) if i not in gone]
    check_detected(records, tampered, FaultKind.GAP)
    if gone != set(range(min(gone), len(records))):
        assert not verify(tampered, CID).ok  # anything but a cut tail is always caught


@given(non_empty, st.data())
def test_an_inserted_duplicate_is_detected(records: list[StoredEvent], data: st.DataObject) -> None:
    dup = records[data.draw(st.integers(0, len(records) - 1), label="copied")]
    at = data.draw(st.integers(0, len(records)), label="inserted at")
    tampered = [*records[:at], dup, *records[at:]]
    check_detected(records, tampered, FaultKind.GAP)
    assert not verify(tampered, CID).ok


@given(non_empty, st.data())
def test_an_inserted_forged_event_is_detected(
    records: list[StoredEvent], data: st.DataObject
) -> None:
    """A forged copy of event p (another time, correct self-hash) slipped in before it."""
    p = data.draw(st.integers(0, len(records) - 1), label="position")
    body = parse_body(records[p].body)
    earlier = parse_time(body["at"]) - dt.timedelta(seconds=data.draw(st.integers(1, 60)))
    body["at"] = format_time(earlier)
    variant = data.draw(st.sampled_from(("linked", "renumbered", "unlinked")), label="variant")
    if variant == "unlinked":
        body["prev"] = data.draw(
            st.binary(min_size=8, max_size=8).map(lambda b: event_hash(b)), label="prev"
        )
    raw = canonical_bytes(body)
    forged = StoredEvent(CID, p + 1, event_hash(raw), raw)
    tail = records[p:]
    if variant == "renumbered":  # the attacker also shifts the seq column of what follows
        tail = [attrs.evolve(r, seq=r.seq + 1) for r in tail]
    tampered = [*records[:p], forged, *tail]
    verdict = verify(tampered, CID)
    assert verdict.fault is not None
    # the forged event is as legal as the one it copies, so only a link or the seqs can tell
    expected = {
        "linked": (p + 2, FaultKind.GAP),  # the displaced original repeats seq p+1
        "renumbered": (p + 2, FaultKind.MALFORMED),  # its body still says seq p+1
        "unlinked": (p + 1, FaultKind.BROKEN_LINK),
    }[variant]
    assert (verdict.fault.seq, verdict.fault.kind) == expected, verdict.describe()


@given(at_least_two, st.data())
def test_reordered_events_are_detected(records: list[StoredEvent], data: st.DataObject) -> None:
    i, j = sorted(
        data.draw(
            st.lists(st.integers(0, len(records) - 1), min_size=2, max_size=2, unique=True),
            label="swapped",
        )
    )
    a, b = records[i], records[j]
    how = data.draw(st.sampled_from(("records", "contents", "bodies")), label="how")
    if how == "records":  # rows swapped as they are
        x, y, kind = b, a, FaultKind.GAP
    elif how == "contents":  # hash and body swapped, the seq column kept
        x, y = attrs.evolve(b, seq=a.seq), attrs.evolve(a, seq=b.seq)
        kind = FaultKind.MALFORMED
    else:  # bodies swapped, seq and hash columns kept
        x, y = attrs.evolve(a, body=b.body), attrs.evolve(b, body=a.body)
        kind = FaultKind.ALTERED
    tampered = list(records)
    tampered[i], tampered[j] = x, y
    check_detected(records, tampered, kind)
    verdict = verify(tampered, CID)
    assert verdict.fault is not None and verdict.fault.seq == i + 1


# -- a forged event at the end: chain intact, history illegal --------------------------------------


@given(driven_cases().filter(lambda d: bool(d.service.store.read(d.case_id))), st.data())
def test_a_forged_illegal_transition_is_detected(d: Driven, data: st.DataObject) -> None:
    records = d.service.store.read(d.case_id)
    case = d.service.case(d.case_id)
    illegal = [c for c in WORKFLOW.commands if (case.state, c.name) not in WORKFLOW.table]
    spec = data.draw(st.sampled_from(illegal), label="command")
    holders = [a for g in spec.grants for a in d.world.holders(case, g)]
    actor = data.draw(st.sampled_from(holders or [d.world["stranger"]]), label="actor")
    acted_as = data.draw(st.sampled_from(spec.grants), label="as")
    command = data.draw(command_for(d.world, case, spec.name), label="payload")
    target = spec.target or case.state
    forged = forge(
        d.case_id,
        case.seq + 1,
        case.head,
        type=spec.name,
        actor=actor.id,
        acted_as=acted_as,
        state=target,
        payload=to_payload(command),
    )
    verdict = verify([*records, forged], d.case_id)
    assert verdict.fault is not None
    # authorization is decided first: a claim the actor does not hold is reported as such
    roles = {r.value for r in Role}
    holds = acted_as in case.relations_of(actor.id) or (
        acted_as in roles and actor.id not in case.recused
    )
    kind = FaultKind.ILLEGAL_TRANSITION if holds else FaultKind.UNAUTHORIZED
    assert (verdict.fault.seq, verdict.fault.kind) == (case.seq + 1, kind)
    assert verdict.events == len(records)


@given(driven_cases().filter(lambda d: bool(d.service.store.read(d.case_id))), st.data())
def test_a_forged_wrong_outcome_is_detected(d: Driven, data: st.DataObject) -> None:
    """A legal command by someone allowed to issue it, recording a state it does not lead to."""
    records = d.service.store.read(d.case_id)
    case = d.service.case(d.case_id)
    choices = [
        (c, g, a)
        for c in WORKFLOW.commands_from(case.state)
        for g in c.grants
        for a in d.world.holders(case, g)
    ]
    assume(choices)
    spec, grant, actor = data.draw(st.sampled_from(choices), label="command, as, actor")
    command = data.draw(command_for(d.world, case, spec.name), label="payload")
    wrong = [s.name for s in WORKFLOW.states if s.name not in (case.state, spec.target)]
    forged = forge(
        d.case_id,
        case.seq + 1,
        case.head,
        type=spec.name,
        actor=actor.id,
        acted_as=grant,
        state=data.draw(st.sampled_from(wrong), label="recorded state"),
        payload=to_payload(command),
    )
    verdict = verify([*records, forged], d.case_id)
    assert verdict.fault is not None
    assert (verdict.fault.seq, verdict.fault.kind) == (case.seq + 1, FaultKind.ILLEGAL_TRANSITION)


@given(driven_cases().filter(lambda d: bool(d.service.store.read(d.case_id))), st.data())
def test_a_forged_event_by_someone_not_allowed_is_detected(d: Driven, data: st.DataObject) -> None:
    records = d.service.store.read(d.case_id)
    case = d.service.case(d.case_id)
    spec = data.draw(st.sampled_from(WORKFLOW.commands_from(case.state)), label="command")
    stranger = d.world["stranger"]
    assert not case.relations_of(stranger.id)
    options = [("not a grant of the command", g) for g in _GRANTS if g not in spec.grants]
    options += [("a relation not held", g) for g in spec.grants if g in _RELATIONS]
    why, acted_as = data.draw(st.sampled_from(options), label="as")
    actor = stranger
    if why == "not a grant of the command" and acted_as in _RELATIONS:
        # someone who really holds that relation, just not one that permits this command
        actor = data.draw(
            st.sampled_from(d.world.holders(case, acted_as) or [stranger]), label="actor"
        )
    command = data.draw(command_for(d.world, case, spec.name), label="payload")
    forged = forge(
        d.case_id,
        case.seq + 1,
        case.head,
        type=spec.name,
        actor=actor.id,
        acted_as=acted_as,
        state=spec.target or case.state,
        payload=to_payload(command),
    )
    verdict = verify([*records, forged], d.case_id)
    assert verdict.fault is not None
    assert (verdict.fault.seq, verdict.fault.kind) == (case.seq + 1, FaultKind.UNAUTHORIZED)


# -- a denied command appends nothing --------------------------------------------------------------


@given(driven_cases(max_steps=25), st.data())
def test_a_denied_command_appends_nothing(d: Driven, data: st.DataObject) -> None:
    store, service, cid = d.service.store, d.service, d.case_id
    denied = 0
    for _ in range(data.draw(st.integers(1, 12), label="steps")):
        case = service.case(cid)
        actor, command = data.draw(step(d.world, case, legal_only=False), label="step")
        before = store.read(cid)
        summary = store.summary(cid)
        others = store.cases()
        head = case.head  # the cached case is folded in place: keep what it was
        try:
            event = service.execute(actor, cid, command)
        except MediationError as exc:
            denied += 1
            note(f"denied: {type(exc).__name__}: {exc}")
            assert store.read(cid) == before  # StoredEvent equality compares the exact bytes
            assert store.summary(cid) == summary
            assert store.cases() == others
        else:
            after = store.read(cid)
            assert after[:-1] == before and after[-1] == event.stored
            assert (event.seq, event.prev) == (len(after), head)
            assert store.summary(cid) == service.case(cid).summary()
        assert_same_case(service.case(cid), replay(store.read(cid), cid))
    note(f"{denied} denied")


class FailingStore(MemoryStore):
    """A store whose appends fail from the ``fail_from``-th call on."""

    def __init__(self, fail_from: int, conflict: bool) -> None:
        super().__init__()
        self.calls = 0
        self.fail_from = fail_from
        self.conflict = conflict

    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        self.calls += 1
        if self.calls >= self.fail_from:
            if self.conflict:
                raise ConcurrencyConflict("injected", expected_seq=expected_seq)
            raise StoreError("injected")
        super().append(summary, records, expected_seq)


@given(st.data())
def test_a_failed_append_leaves_the_case_as_the_store_has_it(data: st.DataObject) -> None:
    """When the store refuses an append, the cached case is put back to what the store holds."""
    world = World()
    store = FailingStore(data.draw(st.integers(2, 30), label="fail from"), data.draw(st.booleans()))
    # one attempt: an injected conflict never clears, and the service's retries would only wait
    service = world.service(store, attempts=1)
    actor, command = data.draw(opening_step(world, CID))
    try:
        service.execute(actor, CID, command)
    except MediationError:
        return
    failures = 0
    for _ in range(data.draw(st.integers(1, 40))):
        case = service.case(CID)
        actor, command = data.draw(guided_step(world, case, weight=8))
        before = store.read(CID)
        try:
            service.execute(actor, CID, command)
        except MediationError:
            assert store.read(CID) == before
            failures += store.calls >= store.fail_from
        assert_same_case(service.case(CID), replay(store.read(CID), CID))
        if failures >= 3:
            break
