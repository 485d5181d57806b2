"""Signed checkpoints: the Merkle tree, the signed encodings, issuing and auditing (the API; the CLI
side is in test_cli.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import attrs
import pytest

from mediation import IntegrityViolation, MemoryStore, StoredEvent, canonical_bytes
from mediation._checkpoints import (
    CASE_TAG,
    STORE_TAG,
    CaseCheckpoint,
    CheckpointAuditor,
    CheckpointError,
    CheckpointLog,
    Leaf,
    StoreCheckpoint,
    generate_key,
    inclusion_proof,
    issue_checkpoint,
    key_id,
    leaf_hash,
    load_private_key,
    load_public_key,
    merkle_root,
    record_from_json,
    verify_consistency,
    verify_inclusion,
)
from mediation.demo import leak_dispute, new_service, noise_dispute

ZERO = "0" * 64
NOW = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- the Merkle tree ------------------------------------------------------------------------------


def test_merkle_small_trees_by_hand() -> None:
    a, b, c = b"a", b"b", b"c"
    la, lb, lc = (h(b"\x00" + x) for x in (a, b, c))
    assert merkle_root([]) == h(b"")
    assert merkle_root([a]) == la == leaf_hash(a)
    assert merkle_root([a, b]) == h(b"\x01" + la + lb)
    # three leaves: the left subtree takes the largest power of two below 3
    assert merkle_root([a, b, c]) == h(b"\x01" + h(b"\x01" + la + lb) + lc)
    d = b"d"
    ld = h(b"\x00" + d)
    e = b"e"
    le = h(b"\x00" + e)
    left = h(b"\x01" + h(b"\x01" + la + lb) + h(b"\x01" + lc + ld))
    assert merkle_root([a, b, c, d, e]) == h(b"\x01" + left + le)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """A node can never pass for a leaf: 0x00 and 0x01 prefixes (second-preimage resistance)."""
    la, lb = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([la + lb]) != merkle_root([b"a", b"b"])


@pytest.mark.parametrize("n", [*range(1, 18), 31, 32, 33])
def test_inclusion_proofs(n: int) -> None:
    leaves = [f"leaf-{i}".encode() for i in range(n)]
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, i)
        assert verify_inclusion(leaf, i, n, proof, root)
        assert not verify_inclusion(b"other", i, n, proof, root)
        if n > 1:
            assert not verify_inclusion(leaf, (i + 1) % n, n, proof, root)
            assert not verify_inclusion(leaf, i, n, proof[:-1], root)
            bad = [bytes(32), *proof[1:]]
            assert not verify_inclusion(leaf, i, n, bad, root)
    assert not verify_inclusion(leaves[0], n, n, [], root)


def test_leaf_bytes_are_canonical_json() -> None:
    assert Leaf("c1", 3, "ab" * 32).data() == canonical_bytes(
        {"case": "c1", "head": "ab" * 32, "seq": 3}
    )
    assert Leaf("c1", 3, "ab" * 32).data().startswith(b'{"case":"c1","head":"abab')


# -- the signed messages --------------------------------------------------------------------------


def test_signed_messages_are_tagged_canonical_json() -> None:
    cp = CaseCheckpoint("c1", 7, "1" * 64, ZERO, "2026-04-01T00:00:00.000000Z", "f" * 64)
    assert cp.message() == (
        b"mediation.checkpoint.case.v1\x00"
        b'{"case":"c1","head":"' + b"1" * 64 + b'","issued_at":"2026-04-01T00:00:00.000000Z",'
        b'"key":"' + b"f" * 64 + b'","prev":"' + b"0" * 64 + b'","seq":7}'
    )
    assert cp.hash == hashlib.sha256(cp.message()).hexdigest()
    sp = StoreCheckpoint("s1", 2, "3" * 64, ZERO, "2026-04-01T00:00:00.000000Z", "f" * 64)
    assert sp.message() == (
        b"mediation.checkpoint.store.v2\x00"
        b'{"issued_at":"2026-04-01T00:00:00.000000Z","key":"'
        + b"f" * 64
        + b'","prev":"'
        + b"0" * 64
        + b'","root":"'
        + b"3" * 64
        + b'","size":2,"store":"s1"}'
    )
    assert CASE_TAG != STORE_TAG and b"\x00" in CASE_TAG


def test_a_case_signature_is_no_store_signature() -> None:
    private_pem, public_pem = generate_key()
    private, public = load_private_key(private_pem), load_public_key(public_pem)
    kid = key_id(public)
    cp = CaseCheckpoint("c1", 1, "1" * 64, ZERO, "t", kid)
    signature = private.sign(cp.message())
    from cryptography.exceptions import InvalidSignature

    public.verify(signature, cp.message())
    as_store = StoreCheckpoint("c1", 1, "1" * 64, ZERO, "t", kid)
    with pytest.raises(InvalidSignature):
        public.verify(signature, as_store.message())


def test_record_json_round_trip_and_errors() -> None:
    cp = CaseCheckpoint("c1", 7, "1" * 64, ZERO, "t", "f" * 64, "a" * 128)
    assert record_from_json(json.loads(json.dumps(cp.to_json()))) == cp
    sp = StoreCheckpoint(
        "s", 1, "3" * 64, ZERO, "t", "f" * 64, "b" * 128, (Leaf("c1", 7, "1" * 64),), ("4" * 64,)
    )
    back = record_from_json(sp.to_json())
    assert isinstance(back, StoreCheckpoint) and back.leaves == sp.leaves
    assert back.consistency == sp.consistency and back == sp
    for bad in (
        {**cp.to_json(), "seq": "7"},
        {**cp.to_json(), "head": "XYZ"},
        {**cp.to_json(), "extra": 1},
        {**cp.to_json(), "kind": "other"},
        {**sp.to_json(), "leaves": [["c1", 7]]},
        {**sp.to_json(), "consistency": ["XYZ"]},
        {**sp.to_json(), "size": 0},  # more leaves than the tree holds
        {**sp.to_json(), "store": 5},
        [1, 2],
    ):
        with pytest.raises(CheckpointError) as info:
            record_from_json(bad, 9)
        assert info.value.line == 9


# -- keys -----------------------------------------------------------------------------------------


def test_key_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    private_pem, public_pem = generate_key()
    public = load_public_key(public_pem)
    assert key_id(load_private_key(private_pem).public_key()) == key_id(public)
    from cryptography.hazmat.primitives import serialization as ser

    raw = public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    import base64

    assert key_id(load_public_key(raw.hex().encode())) == key_id(public)
    assert key_id(load_public_key(base64.b64encode(raw))) == key_id(public)
    for bad in (b"", b"abc", raw.hex().encode()[:-2], private_pem):
        with pytest.raises(CheckpointError):
            load_public_key(bad)
    with pytest.raises(CheckpointError):
        load_private_key(public_pem)

    monkeypatch.setenv("MEDIATION_KEY_PASSPHRASE", "s3cret")
    locked, _ = generate_key()
    assert b"ENCRYPTED" in locked
    load_private_key(locked)
    monkeypatch.delenv("MEDIATION_KEY_PASSPHRASE")
    with pytest.raises(CheckpointError):
        load_private_key(locked)


def test_not_ed25519() -> None:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(CheckpointError, match="not Ed25519"):
        load_public_key(pem)


# -- issuing and auditing -------------------------------------------------------------------------


@attrs.define
class World:
    store: MemoryStore
    private: object
    public: object


@pytest.fixture
def world() -> World:
    store = MemoryStore()
    ids = iter(["case-a", "case-b", "case-c"])
    service = new_service(store, new_id=lambda: next(ids))
    noise_dispute(service)
    leak_dispute(service)
    private_pem, public_pem = generate_key()
    return World(store, load_private_key(private_pem), load_public_key(public_pem))


def audit_all(store: MemoryStore, log: CheckpointLog, public: object) -> dict[str, object]:
    auditor = CheckpointAuditor(log, public)  # type: ignore[arg-type]
    out: dict[str, object] = {}
    for case_id in store.case_ids():
        records = store.read(case_id)
        out[case_id] = auditor.check_case(case_id, lambda s, r=records: r[s - 1].hash, len(records))
    for case_id, fault in auditor.missing():
        out[case_id] = fault
    out["store"] = auditor.store_faults
    return out


def as_log(*checkpoints: object) -> CheckpointLog:
    records = []
    n = 0
    for cp in checkpoints:
        for rec in cp.records():  # type: ignore[attr-defined]
            n += 1
            records.append((n, rec))
    return CheckpointLog(tuple(records), "mem")


def test_issue_and_audit(world: World) -> None:
    cp = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    assert cp.store.size == 2 and [c.case_id for c in cp.cases] == ["case-a", "case-b"]
    assert cp.store.prev == ZERO and all(c.prev == ZERO for c in cp.cases)
    assert merkle_root([leaf.data() for leaf in cp.store.leaves]).hex() == cp.store.root
    assert cp.store.consistency == () and cp.tree == cp.store.leaves
    assert cp.store.issued_at == "2026-04-01T00:00:00.000000Z"
    result = audit_all(world.store, as_log(cp), world.public)
    assert result == {"case-a": None, "case-b": None, "store": []}


def test_second_checkpoint_chains_and_skips_unchanged_cases(world: World) -> None:
    first = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    ids = iter(["case-c"])
    noise_dispute(new_service(world.store, new_id=lambda: next(ids)))
    second = issue_checkpoint(
        world.store,
        world.private,  # type: ignore[arg-type]
        log=as_log(first),
        now=NOW + dt.timedelta(days=1),
    )
    assert [c.case_id for c in second.cases] == ["case-c"]  # a and b did not change
    assert second.store.prev == first.store.hash and second.store.size == 3
    # the tree only grows: the second appends case-c's leaf, proving the first is its prefix
    assert [leaf.case_id for leaf in second.store.leaves] == ["case-c"]
    assert verify_consistency(
        2,
        3,
        bytes.fromhex(first.store.root),
        bytes.fromhex(second.store.root),
        [bytes.fromhex(p) for p in second.store.consistency],
    )
    assert audit_all(world.store, as_log(first, second), world.public)["store"] == []


def store_of(source: MemoryStore, cases: dict[str, list[StoredEvent]]) -> MemoryStore:
    """A store holding these records (as an attacker with write access would leave it)."""
    out = MemoryStore()
    for case_id, records in cases.items():
        summary = source.summary(case_id)
        assert summary is not None
        out.append(summary, records, 0)
    return out


def test_issue_refuses_a_store_that_does_not_extend_the_log(world: World) -> None:
    first = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    a, b = world.store.read("case-a"), world.store.read("case-b")
    shorter = store_of(world.store, {"case-a": a[:-2], "case-b": b})
    with pytest.raises(IntegrityViolation, match="case-a no longer extends"):
        issue_checkpoint(shorter, world.private, log=as_log(first), refuse_invalid=True)  # type: ignore[arg-type]
    gone = store_of(world.store, {"case-b": b})
    with pytest.raises(IntegrityViolation, match=r"case\(s\) case-a attested"):
        issue_checkpoint(gone, world.private, log=as_log(first), refuse_invalid=True)  # type: ignore[arg-type]


def test_issue_refuses_a_store_that_does_not_verify(world: World) -> None:
    b = world.store.read("case-b")
    altered = attrs.evolve(b[2], body=b[2].body.replace(b"dir-li", b"dir-lu"))
    bad = store_of(world.store, {"case-b": [*b[:2], altered, *b[3:]]})
    with pytest.raises(IntegrityViolation, match="case-b: INVALID at seq 3"):
        issue_checkpoint(bad, world.private, refuse_invalid=True)  # type: ignore[arg-type]


def test_issue_signs_every_valid_case_and_lists_the_invalid_ones(world: World) -> None:
    """Issue 9, item 8: one bad case no longer leaves every other case unsigned."""
    first = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    a, b = world.store.read("case-a"), world.store.read("case-b")
    shorter = store_of(world.store, {"case-a": a[:-2], "case-b": b})
    cp = issue_checkpoint(shorter, world.private, log=as_log(first))  # type: ignore[arg-type]
    # nothing is appended: case-b did not change and case-a is left out (its signed leaf stays)
    assert cp.store.leaves == () and cp.store.size == 2 and cp.store.root == first.store.root
    assert [(v.case_id, v.fault.kind.value) for v in cp.invalid if v.fault] == [
        ("case-a", "truncated")
    ]
    gone = store_of(world.store, {"case-b": b})
    cp = issue_checkpoint(gone, world.private, log=as_log(first))  # type: ignore[arg-type]
    assert cp.store.leaves == () and cp.store.size == 2
    assert [v.case_id for v in cp.invalid] == ["case-a"]
    assert (
        cp.invalid[0].fault is not None and "whole case is missing" in cp.invalid[0].fault.message
    )
    altered = attrs.evolve(b[2], body=b[2].body.replace(b"dir-li", b"dir-lu"))
    bad = store_of(world.store, {"case-a": a, "case-b": [*b[:2], altered, *b[3:]]})
    cp = issue_checkpoint(bad, world.private)  # type: ignore[arg-type]
    assert [leaf.case_id for leaf in cp.store.leaves] == ["case-a"]
    assert cp.invalid[0].describe().startswith("case case-b: INVALID at seq 3")
    # the partial checkpoint audits clean for the cases it signed; case-b is not attested
    auditor = CheckpointAuditor(as_log(cp), world.public)  # type: ignore[arg-type]
    assert auditor.check_case("case-a", lambda s: a[s - 1].hash, len(a)) is None


def test_audit_finds_truncation_rewrite_and_deletion(world: World) -> None:
    cp = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    log = as_log(cp)
    auditor = CheckpointAuditor(log, world.public)  # type: ignore[arg-type]
    a = world.store.read("case-a")
    truncated = auditor.check_case("case-a", lambda s: a[s - 1].hash, 18)
    assert truncated is not None and truncated.seq == 19 and truncated.kind.value == "truncated"
    rewritten = auditor.check_case("case-a", lambda s: "9" * 64, 21)
    assert rewritten is not None and rewritten.seq == 21 and rewritten.kind.value == "checkpoint"
    assert [c for c, _ in auditor.missing()] == ["case-b"]  # never checked: deleted
    assert auditor.missing(only="case-a") == []


def test_audit_of_an_altered_log(world: World, tmp_path: Path) -> None:
    cp = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    path = tmp_path / "cp.jsonl"
    CheckpointLog().append_to(path, cp)
    log = CheckpointLog.load(path)
    assert [type(r).__name__ for _, r in log.records] == [
        "CaseCheckpoint",
        "CaseCheckpoint",
        "StoreCheckpoint",
    ]
    assert audit_all(world.store, log, world.public)["store"] == []

    lines = path.read_text().splitlines()
    forged = json.loads(lines[0])
    forged["seq"] = 5  # claims less than was signed
    path.write_text("\n".join([json.dumps(forged), *lines[1:]]) + "\n")
    faults = audit_all(world.store, CheckpointLog.load(path), world.public)["store"]
    assert faults and "line 1" in faults[0].message and "signature" in faults[0].message  # type: ignore[index]

    path.write_text("\n".join(lines[1:]) + "\n")  # the first case checkpoint removed: still fine
    assert audit_all(world.store, CheckpointLog.load(path), world.public)["store"] == []

    path.write_text(lines[0][:-5])
    with pytest.raises(CheckpointError, match="truncated"):
        CheckpointLog.load(path)
    path.write_text("{not json\n")
    with pytest.raises(CheckpointError, match="line 1 is not JSON"):
        CheckpointLog.load(path)
    assert len(CheckpointLog.load(tmp_path / "absent.jsonl")) == 0


def test_receipt(world: World) -> None:
    cp = issue_checkpoint(world.store, world.private, now=NOW)  # type: ignore[arg-type]
    receipt = cp.receipt("case-b")
    json.dumps(receipt)  # serializable
    leaf = Leaf("case-b", receipt["seq"], receipt["head"]).data()
    assert verify_inclusion(
        leaf,
        receipt["leaf_index"],
        receipt["store"]["size"],
        [bytes.fromhex(x) for x in receipt["inclusion_proof"]],
        bytes.fromhex(receipt["store"]["root"]),
    )
    assert "leaves" not in receipt["store"]  # other cases are not disclosed
    with pytest.raises(CheckpointError):
        cp.receipt("case-z")
