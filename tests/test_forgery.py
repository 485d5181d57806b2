"""Forged histories with a correct hash chain: an attacker who controls the database rewrites
events and recomputes every hash.  Each forgery must come out as a fault at the forged seq, never as
a valid history and never as a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import Env
from mediation import FaultKind, MemoryStore, StoredEvent, demo, verify
from mediation import commands as cmd
from mediation._events import GENESIS, canonical_bytes, event_hash


def _history() -> list[StoredEvent]:
    service = demo.new_service(MemoryStore())
    case_id = demo.noise_dispute(service)
    return service.store.read(case_id)


def _bodies(records: list[StoredEvent]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in records]


def _rechain(
    bodies: list[dict[str, Any]], raw: dict[int, bytes] | None = None
) -> list[StoredEvent]:
    """Re-number, re-link and re-hash ``bodies`` as a forger would (``raw`` overrides bytes)."""
    out, prev = [], GENESIS
    for seq, body in enumerate(bodies, start=1):
        body = {**body, "seq": seq, "prev": prev}
        data = (raw or {}).get(seq) or canonical_bytes(body, checked=False)
        out.append(StoredEvent(body["case"], seq, event_hash(data), data))
        prev = out[-1].hash
    return out


def _fault(records: list[StoredEvent], **kw: Any) -> tuple[int, FaultKind]:
    verdict = verify(records, **kw)
    assert verdict.fault is not None, "the forgery verified"
    return verdict.fault.seq, verdict.fault.kind


def test_the_untouched_history_verifies_with_the_directory() -> None:
    assert verify(_history(), directory=demo.directory(), strict=True).ok


@pytest.mark.parametrize(("index", "actor"), [(17, "res-1302"), (2, "nobody")])
def test_a_role_claimed_by_someone_else_fails_against_the_directory(index: int, actor: str) -> None:
    bodies = _bodies(_history())
    # a neighbour applies the seal; a stranger registers the case (a party claiming the
    # director's role on its own case is refused even without a directory: guard impartial)
    bodies[index]["actor"] = actor
    forged = _rechain(bodies)
    assert verify(forged).ok  # without a directory a role is the host's word: trusted
    assert _fault(forged, directory=demo.directory()) == (index + 1, FaultKind.UNAUTHORIZED)


def test_deep_nesting_and_non_finite_numbers_are_faults_not_crashes() -> None:
    bodies = _bodies(_history())[:2]
    text = canonical_bytes(bodies[1], checked=False).decode()
    nested = text.replace('"payload":{', '"payload":{"x":' + "[" * 100_000 + "]" * 100_000 + ",")
    assert nested != text
    for bad in (
        nested,
        text.replace('"schema":1', '"schema":NaN'),
        text.replace('"seq":2', '"seq":1e400'),
    ):
        forged = _rechain(bodies, raw={2: bad.encode()})
        for strict in (False, True):
            assert _fault(forged, strict=strict) == (2, FaultKind.MALFORMED)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", "yesterday"),
        ("at", 12345),
        ("at", "2026-02-30T00:00:00.000000Z"),
        ("at", "1970-01-01T00:00:00.000000Z"),  # earlier than the event before it
        ("actor", ""),
        ("seq", True),
        ("schema", True),
    ],
)
def test_the_envelope_is_checked_on_every_event(field: str, value: Any) -> None:
    bodies = _bodies(_history())[:4]
    bodies[2][field] = value
    raw = None
    if field in ("seq", "schema"):  # _rechain would renumber the seq: write the bytes by hand
        forged = _rechain(bodies)
        body = {**json.loads(forged[2].body), field: value}
        raw = {3: canonical_bytes(body, checked=False)}
    forged = _rechain(bodies, raw)
    for strict in (False, True):
        assert _fault(forged, strict=strict) == (3, FaultKind.MALFORMED)


def test_an_extension_by_a_forged_number_of_days_is_refused() -> None:
    e = Env()
    e.drive("registered")
    e.consent_all("extend_term")
    e.run("med1", cmd.ExtendTerm(10))
    bodies = _bodies(e.store.read(e.case_id))
    for days in (10**15, -5, 2.5):
        bodies[-1]["payload"]["days"] = days
        raw = {len(bodies): json.dumps(bodies[-1]).encode()} if days == 2.5 else None
        assert _fault(_rechain(bodies, raw))[1] is FaultKind.MALFORMED


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("request", "has space"),
        ("request", 7),
        ("request", None),
        ("request", ""),
        ("clock", "yesterday"),
        ("clock", None),
        ("clock", "2026-02-30T08:00:00.000000Z"),  # not a date
        ("clock", "later"),  # replaced below by a time after the event's
        ("clock", "same"),  # replaced below by the event's own time
    ],
)
def test_a_forged_optional_envelope_member_is_malformed(member: str, value: Any) -> None:
    bodies = _bodies(_history())
    index = 5
    at = bodies[index]["at"]
    if value == "later":
        value = at.replace(at[:4], str(int(at[:4]) + 1), 1)
    elif value == "same":
        value = at
    bodies[index][member] = value
    assert _fault(_rechain(bodies)) == (index + 1, FaultKind.MALFORMED)


def test_well_formed_optional_members_verify() -> None:
    bodies = _bodies(_history())
    bodies[5]["request"] = "req-1"
    bodies[6]["clock"] = "2000-01-01T00:00:00.000000Z"  # the host clock was behind: held at `at`
    assert verify(_rechain(bodies), strict=True).ok


def test_a_request_id_column_that_disagrees_with_the_body_is_malformed() -> None:
    """The store indexes request ids in a column beside the body; a column rewritten to another
    id (or to one the body lacks) would let a retry write twice, so it must not verify."""
    import attrs

    bodies = _bodies(_history())
    bodies[5]["request"] = "req-1"
    records = _rechain(bodies)
    records[5] = attrs.evolve(records[5], request_id="req-1")
    assert verify(records).ok
    for seq, forged in ((6, "req-2"), (5, "req-1")):
        tampered = list(records)
        tampered[seq - 1] = attrs.evolve(tampered[seq - 1], request_id=forged)
        assert _fault(tampered) == (seq, FaultKind.MALFORMED)
