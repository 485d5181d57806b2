"""Issue 9, item 10: the sample verifier of docs/log-format.md, run against the project's own
tampering cases.

The verifier is taken from the document (the ```python block after ``<!-- sample-verifier -->``)
and compared with :func:`mediation.verify` on every mutation of tests/test_properties.py,
tests/test_forgery.py and tests/test_verdicts.py that concerns the bytes, the seqs, the links and
the envelope, on every kind of malformed body, and on valid histories built by the service:

- a history the library accepts, the sample verifier accepts;
- when the library's verdict is an integrity fault with no legality fault before it, the sample
  verifier reports the same seq and kind (the one exception, documented: a payload the fold cannot
  use, which needs the workflow);
- when a legality fault comes first, the sample verifier (which does not judge legality, and keeps
  checking the envelope where the library only checks checks 1 to 6) reports an integrity fault no
  later than the library's, of the same kind when at the same seq.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediation import StoredEvent, verify
from mediation._events import GENESIS, canonical_bytes, event_hash, format_time, parse_time
from mediation.testing._strategies import histories
from test_forgery import _bodies, _history, _rechain

DOC = Path(__file__).resolve().parents[1] / "docs" / "log-format.md"
Sample = Callable[..., "tuple[int, str] | None"]


def _sample() -> Sample:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"<!-- sample-verifier -->\n```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert m, "the sample verifier is not marked in docs/log-format.md"
    code = m.group(1)
    imports = set(re.findall(r"^(?:import|from) (\w+)", code, re.MULTILINE))
    assert imports <= {"datetime", "hashlib", "json", "re"}, (
        "the sample uses only the standard library"
    )
    namespace: dict[str, Any] = {"__name__": "sample_verifier"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["verify_integrity"]


SAMPLE = _sample()


def _rows(records: list[StoredEvent]) -> list[tuple[str, int, str, bytes]]:
    return [(r.case_id, r.seq, r.hash, r.body) for r in records]


def agree(records: list[StoredEvent], *, strict: bool = False) -> tuple[int, str] | None:
    """Check the sample verifier against ``mediation.verify`` on ``records``; return its result."""
    verdict = verify(records, strict=strict)
    found = SAMPLE(_rows(records), strict=strict)
    if verdict.ok:
        assert found is None, f"the sample refuses a valid history: {found}"
        return found
    integrity = [f for f in verdict.faults if f.kind.integrity and f.kind.value != "summary"]
    legality = [f for f in verdict.faults if not f.kind.integrity]
    if not integrity:  # intact bytes, an illegal history: nothing for the sample to match
        assert found is None or found[0] >= legality[0].seq, (found, verdict.describe())
        return found
    fault = integrity[0]
    if fault.message.startswith(("payload does not match", "payload of ")) and found != (
        fault.seq,
        fault.kind.value,
    ):  # a payload the fold cannot use: only a verifier with the workflow sees it (the library
        # reports an `at` that names no real instant under the same message, and so does not
        # tell the two apart: the sample then agrees exactly)
        assert found is None or found[0] > fault.seq, (found, verdict.describe())
        return found
    assert found is not None, f"the sample accepts what the library rejects: {verdict.describe()}"
    if legality and legality[0].seq < fault.seq:
        assert legality[0].seq <= found[0] <= fault.seq, (found, verdict.describe())
        if found[0] == fault.seq:
            assert found[1] == fault.kind.value, (found, verdict.describe())
    else:
        assert found == (fault.seq, fault.kind.value), verdict.describe()
    return found


def test_the_sample_accepts_the_demo_cases_and_the_worked_example() -> None:
    from mediation import MemoryStore, demo
    from mediation.docs import example_records

    service = demo.new_service(MemoryStore())
    for case_id in (demo.noise_dispute(service), demo.leak_dispute(service)):
        records = service.store.read(case_id)
        for strict in (False, True):
            assert agree(records, strict=strict) is None
    assert SAMPLE(_rows(list(example_records())), strict=True) is None
    assert SAMPLE([]) == (1, "empty")


# -- test_properties.py: bits, deletions, insertions, reorderings, on generated histories ---------


@settings(max_examples=60, deadline=None)
@given(histories().filter(bool), st.data())
def test_the_sample_agrees_on_generated_histories(
    records: list[StoredEvent], data: st.DataObject
) -> None:
    assert agree(records) is None
    assert SAMPLE(_rows(records), strict=True) is None
    n = len(records)
    i = data.draw(st.integers(0, n - 1), label="record")
    rec = records[i]
    how = data.draw(
        st.sampled_from(
            ("bit", "hash bit", "delete", "duplicate", "linked", "renumbered", "unlinked", "swap",
             "swap contents", "swap bodies", "other case")
        ),
        label="how",
    )  # fmt: skip
    tampered = list(records)
    if how in ("bit", "hash bit"):
        bit = 1 << data.draw(st.integers(0, 7), label="bit")
        if how == "hash bit":
            pos = data.draw(st.integers(0, 63), label="pos")
            flipped = rec.hash[:pos] + chr(ord(rec.hash[pos]) ^ bit) + rec.hash[pos + 1 :]
            tampered[i] = attrs.evolve(rec, hash=flipped)
        else:
            body = bytearray(rec.body)
            body[data.draw(st.integers(0, len(body) - 1), label="pos")] ^= bit
            tampered[i] = attrs.evolve(rec, body=bytes(body))
    elif how == "delete":
        gone = data.draw(st.sets(st.integers(0, n - 1), min_size=1), label="deleted")
        tampered = [r for j, r in enumerate(records) if j not in gone]
    elif how == "duplicate":
        tampered.insert(data.draw(st.integers(0, n), label="at"), rec)
    elif how in ("linked", "renumbered", "unlinked"):  # a forged copy slipped in before rec
        body = json.loads(rec.body)
        body["at"] = format_time(parse_time(body["at"]).replace(microsecond=0))
        if how == "unlinked":
            body["prev"] = event_hash(b"elsewhere")
        raw = canonical_bytes(body)
        tail = records[i:]
        if how == "renumbered":
            tail = [attrs.evolve(r, seq=r.seq + 1) for r in tail]
        tampered = [*records[:i], StoredEvent(rec.case_id, i + 1, event_hash(raw), raw), *tail]
    elif how == "other case":
        tampered[i] = attrs.evolve(rec, case_id="case-other")
    elif n >= 2:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="other")
        a, b = records[i], records[j]
        if how == "swap":
            tampered[i], tampered[j] = b, a
        elif how == "swap contents":
            tampered[i], tampered[j] = attrs.evolve(b, seq=a.seq), attrs.evolve(a, seq=b.seq)
        else:
            tampered[i], tampered[j] = attrs.evolve(a, body=b.body), attrs.evolve(b, body=a.body)
    agree(tampered)


# -- test_forgery.py: forged bodies with a correct chain -------------------------------------------


def _forge(index: int, change: Callable[[dict[str, Any]], Any]) -> list[StoredEvent]:
    bodies = _bodies(_history())
    change(bodies[index])
    return _rechain(bodies)


MALFORMED_TEXT: dict[str, Callable[[str], str]] = {
    # not UTF-8, not JSON, not one object, not the members, duplicates, not integers, too deep
    "latin-1": lambda t: t,  # written as bytes below
    "not json": lambda t: t[:-1],
    "leading space": lambda t: " " + t,
    "trailing space": lambda t: t + " ",
    "trailing bytes": lambda t: t + "{}",
    "an array": lambda t: "[" + t + "]",
    "member missing": lambda t: t.replace('"schema":1,', ""),
    "member added": lambda t: t.replace('"schema":1,', '"schema":1,"signed":true,'),
    "member twice": lambda t: '{"actor":"someone-else",' + t[1:],
    "nested member twice": lambda t: t.replace('"payload":{', '"payload":{"x":{"a":1,"a":2},'),
    "float": lambda t: t.replace('"payload":{', '"payload":{"x":2.5,'),
    "exponent": lambda t: t.replace('"seq":3', '"seq":3e0'),
    "NaN": lambda t: t.replace('"schema":1', '"schema":NaN'),
    "Infinity": lambda t: t.replace('"payload":{', '"payload":{"x":-Infinity,'),
    "deep": lambda t: t.replace('"payload":{', '"payload":{"x":' + "[" * 100_000 + "]" * 100_000 + ","),
    "another case": lambda t: t.replace('"case":"', '"case":"x'),
    "another seq": lambda t: t.replace('"seq":3', '"seq":4'),
    "seq true": lambda t: t.replace('"seq":3', '"seq":true'),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(MALFORMED_TEXT))
def test_the_sample_refuses_every_malformed_body(kind: str) -> None:
    edit = MALFORMED_TEXT[kind]
    bodies = _bodies(_history())
    records = _rechain(bodies)
    text = records[2].body.decode()
    if kind == "latin-1":
        raw = text.encode().replace(b'"dir-li"', b'"dir-l\xe9"')  # a Latin-1 byte
    elif kind == "seq true":  # seq 1 is the only place where true == seq
        text = records[0].body.decode()
        raw = text.replace('"seq":1', '"seq":true').encode()
        records[0] = StoredEvent(records[0].case_id, 1, event_hash(raw), raw)
        assert agree(records) == (1, "malformed")
        return
    else:
        raw = edit(text).encode()
    assert raw != records[2].body
    forged = _rechain(bodies, raw={3: raw})
    for strict in (False, True):
        assert agree(forged, strict=strict) == (3, "malformed")


def _set(member: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda body: body.__setitem__(member, value)


ENVELOPE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "at words": _set("at", "yesterday"),
    "at number": _set("at", 12345),
    "at not a date": _set("at", "2026-02-30T00:00:00.000000Z"),
    "at 25 o'clock": _set("at", "2026-03-02T25:00:00.000000Z"),
    "at with offset": _set("at", "2026-03-02T08:00:00.000000+00:00"),
    "at milliseconds": _set("at", "2026-03-02T08:00:00.123Z"),
    "at back in time": _set("at", "1970-01-01T00:00:00.000000Z"),
    "actor empty": _set("actor", ""),
    "actor space": _set("actor", "a b"),
    "actor long": _set("actor", "a" * 65),
    "actor number": _set("actor", 7),
    "as empty": _set("as", ""),
    "as null": _set("as", None),
    "schema 2": _set("schema", 2),
    "schema text": _set("schema", "1"),
    "schema true": _set("schema", True),
    "workflow changed": _set("workflow", "mediation-workflow/1"),
    "payload list": _set("payload", []),
    "payload null": _set("payload", None),
    "request space": _set("request", "has space"),
    "request number": _set("request", 7),
    "request null": _set("request", None),
    "request empty": _set("request", ""),
    "clock words": _set("clock", "yesterday"),
    "clock null": _set("clock", None),
    "clock not a date": _set("clock", "2026-02-30T08:00:00.000000Z"),
    "clock later": lambda b: b.__setitem__("clock", "2099" + b["at"][4:]),
    "clock same": lambda b: b.__setitem__("clock", b["at"]),
}


@pytest.mark.parametrize("kind", sorted(ENVELOPE))
def test_the_sample_checks_the_envelope_as_the_library_does(kind: str) -> None:
    forged = _forge(5, ENVELOPE[kind])
    assert agree(forged) == (6, "malformed")


def test_well_formed_optional_members_and_legal_forgeries_pass() -> None:
    def change(body: dict[str, Any]) -> None:
        body["request"] = "req-1"
        body["clock"] = "2000-01-01T00:00:00.000000Z"

    assert agree(_forge(5, change), strict=True) is None
    # a forged but legal event: only a checkpoint can tell
    assert agree(_forge(17, _set("actor", "res-1502"))) is None


def test_strict_checks_the_canonical_form() -> None:
    bodies = _bodies(_history())
    records = _rechain(bodies)

    def ascii_only(body: bytes) -> bytes:
        return json.dumps(json.loads(body), ensure_ascii=True, separators=(",", ":")).encode()

    for seq, raw in (
        (3, json.dumps(json.loads(records[2].body), sort_keys=True).encode()),  # ", " and ": "
        (1, ascii_only(records[0].body)),  # Chinese text written as \\uXXXX
        (3, records[2].body.replace(b'"payload":{', b'"payload":{"z":1,"a":1,')),  # unsorted
    ):
        assert raw != records[seq - 1].body
        forged = _rechain(bodies, raw={seq: raw})
        assert SAMPLE(_rows(forged)) is None  # default: the stored bytes count, not their form
        assert agree(forged, strict=True) == (seq, "malformed")


# -- test_verdicts.py: tampering after an illegal event --------------------------------------------


def _illegal_then(tamper: str, seq: int) -> list[StoredEvent]:
    """An illegal state recorded at seq 5, the chain resealed, then ``tamper`` at ``seq``."""
    bodies = _bodies(_history())
    bodies[4]["state"] = "closed"
    records = _rechain(bodies)
    assert verify(records).fault is not None
    rec = records[seq - 1]
    if tamper == "alter":
        records[seq - 1] = attrs.evolve(rec, body=rec.body.replace(b'"actor":"', b'"actor":"x'))
    elif tamper == "delete":
        del records[seq - 1]
    elif tamper == "rehash":
        obj = json.loads(rec.body)
        obj["payload"] = {**obj["payload"], "note": "x"}
        new = canonical_bytes(obj)
        records[seq - 1] = attrs.evolve(rec, body=new, hash=event_hash(new))
    elif tamper == "duplicate":
        new = b'{"actor":"someone-else",' + rec.body[1:]
        records[seq - 1] = attrs.evolve(rec, body=new, hash=event_hash(new))
    elif tamper == "envelope":  # after a legality fault the library still checks 1 to 7
        obj = json.loads(rec.body)
        obj["actor"] = "not an id"
        new = canonical_bytes(obj)
        records[seq - 1] = attrs.evolve(rec, body=new, hash=event_hash(new))
        records = _rechain([json.loads(r.body) for r in records], raw={seq: new})
    return records


@pytest.mark.parametrize(
    ("tamper", "seq", "library", "sample"),
    [
        ("alter", 10, (10, "altered"), (10, "altered")),
        ("delete", 12, (12, "gap"), (12, "gap")),
        ("rehash", 14, (15, "broken_link"), (15, "broken_link")),
        ("duplicate", 16, (16, "malformed"), (16, "malformed")),
        ("envelope", 9, (9, "malformed"), (9, "malformed")),
    ],
)
def test_tampering_after_an_illegal_event(
    tamper: str, seq: int, library: tuple[int, str], sample: tuple[int, str]
) -> None:
    records = _illegal_then(tamper, seq)
    fault = verify(records).fault
    assert fault is not None and (fault.seq, fault.kind.value) == library
    assert agree(records) == sample


def test_a_record_of_another_case_and_a_wrong_case_id() -> None:
    records = _history()
    other = attrs.evolve(records[3], case_id="case-z")
    assert agree([*records[:3], other, *records[4:]]) == (4, "wrong_case")
    assert SAMPLE(_rows(records), case_id="case-z") == (1, "wrong_case")
    assert verify(records, "case-z").fault.kind.value == "wrong_case"  # type: ignore[union-attr]


def test_a_first_event_that_does_not_link_to_genesis() -> None:
    bodies = _bodies(_history())
    raw = canonical_bytes({**bodies[0], "prev": "1" * 64})
    records = _rechain(bodies, raw={1: raw})
    assert json.loads(records[0].body)["prev"] != GENESIS
    assert agree(records) == (1, "broken_link")


# -- the receipt sample ----------------------------------------------------------------------------


def test_the_receipt_sample_checks_real_receipts() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mediation import MemoryStore, demo
    from mediation.audit import issue_checkpoint

    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"<!-- sample-receipt -->\n```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert m, "the receipt sample is not marked in docs/log-format.md"
    namespace: dict[str, Any] = {}
    exec(compile(m.group(1), str(DOC), "exec"), namespace)
    leaf_in_root, store_message = namespace["leaf_in_root"], namespace["store_message"]
    service = demo.new_service(MemoryStore())
    ids = [demo.noise_dispute(service) for _ in range(5)]
    key = Ed25519PrivateKey.generate()
    checkpoint = issue_checkpoint(service.store, key)
    for case_id in ids:
        receipt = json.loads(json.dumps(checkpoint.receipt(case_id)))
        assert leaf_in_root(receipt), case_id
        message = store_message(receipt["store"])
        assert message == checkpoint.store.message()
        key.public_key().verify(bytes.fromhex(receipt["store"]["signature"]), message)
        assert receipt["case_checkpoint"]["kind"] == "case"
        for forged in (
            {**receipt, "seq": receipt["seq"] - 1},
            {**receipt, "leaf_index": (receipt["leaf_index"] + 1) % 5},
            {**receipt, "inclusion_proof": receipt["inclusion_proof"][:-1]},
            {**receipt, "head": receipt["store"]["root"]},
        ):
            assert not leaf_in_root(forged)
        # the size is the signature's to hold (a proof can fit two sizes)
        assert store_message({**receipt["store"], "size": 6}) != message
