"""Issue 9, item 2: checkpoints a database administrator cannot roll back.

The append-only tree of case heads and its consistency proofs (property-tested against a naive
recomputation), the signer's state file, witnesses, and the attacks that used to pass: a store
rolled back together with its checkpoint file, a rewritten chain signed after the checkpoint file
was deleted, a checkpoint file's tail removed with the cases cut back to the previous checkpoint,
and a deleted summary row leaving a case out of the next checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediation import MemoryStore, SQLiteStore, Store
from mediation import commands as cmd
from mediation._checkpoints import (
    CheckpointAuditor,
    CheckpointError,
    CheckpointLog,
    CheckpointRefused,
    DirectoryWitness,
    Leaf,
    Signer,
    SignerState,
    SignerStateError,
    StoreCheckpoint,
    Tree,
    WitnessRefused,
    consistency_proof,
    default_store_id,
    generate_key,
    issue_checkpoint,
    key_id,
    leaf_hash,
    load_private_key,
    load_public_key,
    merkle_root,
    root_of_hashes,
    verify_consistency,
    verify_inclusion,
)
from mediation.demo import MEDIATOR, leak_dispute, new_service, noise_dispute
from test_cli import build_store, fix_summary, negotiating_case, run

pytest.importorskip("cryptography")

DOC = Path(__file__).resolve().parents[1] / "docs" / "log-format.md"


# -- consistency proofs: RFC 9162 2.1.4, against a naive recomputation ---------------------------


def _hashes(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"leaf-{salt}-{i}".encode()) for i in range(n)]


def _sample_consistent() -> Callable[..., bool]:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(
        r"<!-- sample-consistency -->\n```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE
    )
    assert m, "the consistency sample is not marked in docs/log-format.md"
    imports = set(re.findall(r"^(?:import|from) (\w+)", m.group(1), re.MULTILINE))
    assert imports <= {"hashlib"}, "the sample uses only the standard library"
    namespace: dict[str, Any] = {}
    exec(compile(m.group(1), str(DOC), "exec"), namespace)
    return namespace["consistent"]  # type: ignore[no-any-return]


SAMPLE = _sample_consistent()


def both(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """The library's verdict, which the documented sample must share."""
    ours = verify_consistency(m, n, old, new, proof)
    assert SAMPLE(m, n, old.hex(), new.hex(), [p.hex() for p in proof]) == ours
    return ours


@st.composite
def sizes(draw: st.DrawFn, top: int = 80) -> tuple[int, int]:
    n = draw(st.integers(0, top))
    return draw(st.integers(0, n)), n


@settings(max_examples=300, deadline=None)
@given(sizes())
def test_consistency_proofs_verify_between_every_pair_of_sizes(mn: tuple[int, int]) -> None:
    m, n = mn
    hashes = _hashes(n)
    old, new = root_of_hashes(hashes[:m]), root_of_hashes(hashes)
    proof = consistency_proof(hashes, m)
    assert both(m, n, old, new, proof)
    # the incremental tree gives the same roots as the naive recursion
    tree = Tree(hashes)
    assert tree.root() == new == merkle_root([f"leaf-0-{i}".encode() for i in range(n)])
    assert tree.root_at(m) == old and tree.consistency(m) == proof


@settings(max_examples=300, deadline=None)
@given(sizes(), st.data())
def test_tampered_consistency_proofs_are_rejected(mn: tuple[int, int], data: st.DataObject) -> None:
    m, n = mn
    hashes = _hashes(n)
    old, new = root_of_hashes(hashes[:m]), root_of_hashes(hashes)
    proof = consistency_proof(hashes, m)
    junk = leaf_hash(b"junk")
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        flipped = bytes([proof[i][0] ^ 1]) + proof[i][1:]
        assert not both(m, n, old, new, [*proof[:i], flipped, *proof[i + 1 :]])
        assert not both(m, n, old, new, proof[:i] + proof[i + 1 :])  # one dropped
        if len(proof) > 1:
            assert not both(m, n, old, new, proof[::-1])  # reordered
    assert not both(m, n, old, new, [*proof, junk])  # one added
    # another tree: a different old or new root (the sizes are the signatures' to hold: a proof
    # can fit two sizes, as an audit path can)
    other = _hashes(n, salt=1)
    if m > 0:
        assert not both(m, n, root_of_hashes(other[:m]), new, proof)
        assert not both(m, n, old, root_of_hashes(other), proof)
    assert not both(n + 1, n, old, new, proof)


@settings(max_examples=150, deadline=None)
@given(sizes(40))
def test_a_forked_tree_never_proves_consistent(mn: tuple[int, int]) -> None:
    """Change any one of the first m leaves: no proof from the real old root reaches the fork."""
    m, n = mn
    if m == 0:
        return
    hashes = _hashes(n)
    old = root_of_hashes(hashes[:m])
    for i in range(m):
        fork = [*hashes[:i], leaf_hash(b"forged"), *hashes[i + 1 :]]
        assert not both(m, n, old, root_of_hashes(fork), consistency_proof(fork, m))


def test_consistency_proof_bounds() -> None:
    with pytest.raises(ValueError):
        consistency_proof(_hashes(3), 4)
    empty = root_of_hashes([])
    assert both(0, 0, empty, empty, [])
    assert not both(0, 0, empty, leaf_hash(b"x"), [])


# -- the API: a signer with its own state, and witnesses -------------------------------------------


@attrs.define
class Signing:
    store: MemoryStore
    private: Any
    public: Any
    dir: Path

    @property
    def log_path(self) -> Path:
        return self.dir / "cp.jsonl"

    def signer(self, **kw: Any) -> Signer:
        return Signer(self.private, self.dir / "signer.state.json", **kw)

    def sign(self, store: Store | None = None, **kw: Any) -> Any:
        witnesses = kw.pop("witnesses", ())
        return (
            self.signer(witnesses=witnesses, adopt=kw.pop("adopt", False))
            .sign(store or self.store, self.log_path, store_id="store-1", **kw)
            .checkpoint
        )

    def audit(self, store: Store, **kw: Any) -> list[str]:
        """Every fault found: of the checkpoints, then of each case (and missing cases)."""
        auditor = CheckpointAuditor(CheckpointLog.load(self.log_path), self.public, **kw)
        out = [f.message for f in auditor.store_faults]
        for case_id in store.case_ids():
            records = store.read(case_id)
            fault = auditor.check_case(case_id, lambda s, r=records: r[s - 1].hash, len(records))
            if fault is not None:
                out.append(f"{case_id}: {fault.kind.value} at {fault.seq}: {fault.message}")
        out += [f"{c}: {f.message}" for c, f in auditor.missing()]
        return out


@pytest.fixture
def signing(tmp_path: Path) -> Signing:
    store = MemoryStore()
    ids = iter(["case-a", "case-b", "case-c", "case-d"])
    service = new_service(store, new_id=lambda: next(ids))
    noise_dispute(service)
    leak_dispute(service)
    private_pem, public_pem = generate_key()
    return Signing(store, load_private_key(private_pem), load_public_key(public_pem), tmp_path)


def copy_of(store: MemoryStore, cut: dict[str, int] | None = None) -> MemoryStore:
    """A copy of ``store`` with some cases cut back to ``cut[case]`` events (0: deleted)."""
    out = MemoryStore()
    for case_id in store.case_ids():
        records = store.read(case_id)[: (cut or {}).get(case_id, 10**9)]
        summary = store.summary(case_id)
        if records and summary is not None:
            out.append(summary, records, 0)
    return out


def add_case(store: Store, case_id: str) -> None:
    noise_dispute(new_service(store, new_id=lambda: case_id))


def test_the_tree_only_grows_and_every_head_proves_its_predecessor(signing: Signing) -> None:
    first = signing.sign()
    add_case(signing.store, "case-c")
    second = signing.sign()
    third = signing.sign()  # nothing changed: the same tree again
    assert (first.store.size, second.store.size, third.store.size) == (2, 3, 3)
    assert [leaf.case_id for leaf in second.store.leaves] == ["case-c"]
    assert third.store.leaves == () and third.store.root == second.store.root
    log = CheckpointLog.load(signing.log_path)
    assert [leaf.case_id for leaf in log.tree_leaves()] == ["case-a", "case-b", "case-c"]
    assert verify_consistency(
        2,
        3,
        bytes.fromhex(first.store.root),
        bytes.fromhex(second.store.root),
        [bytes.fromhex(p) for p in second.store.consistency],
    )
    assert signing.audit(signing.store) == []
    state = json.loads((signing.dir / "signer.state.json").read_text())
    assert state["format"] == "mediation-signer-state" and state["key"] == key_id(signing.public)
    assert state["stores"]["store-1"] == {
        "size": 3,
        "root": third.store.root,
        "head": third.store.hash,
        "issued_at": third.store.issued_at,
    }
    mode = stat.S_IMODE(os.stat(signing.dir / "signer.state.json").st_mode)
    assert mode == 0o600
    # a receipt from the first checkpoint is still good against the later root
    receipt = first.receipt("case-a")
    leaf = Leaf("case-a", receipt["seq"], receipt["head"])
    assert verify_inclusion(
        leaf.data(),
        receipt["leaf_index"],
        3,
        [bytes.fromhex(p) for p in third.receipt("case-a")["inclusion_proof"]],
        bytes.fromhex(third.store.root),
    )


def test_a_case_that_changes_gets_a_new_leaf_and_its_receipt_names_the_latest(
    signing: Signing,
) -> None:
    service = new_service(signing.store)
    negotiating_case(service, "case-n")
    first = signing.sign()
    assert first.receipt("case-n")["seq"] == 7
    service.execute(MEDIATOR, "case-n", cmd.RecordMinutes("补充笔录"))
    cp = signing.sign()
    assert [leaf.case_id for leaf in cp.store.leaves] == ["case-n"]
    assert [leaf.case_id for leaf in cp.tree].count("case-n") == 2
    receipt = cp.receipt("case-n")
    assert receipt["seq"] == 8 and receipt["leaf_index"] == 3
    assert signing.audit(signing.store) == []
    # both leaves of case-n are attested: cut back to 7 events, it is truncated at 8
    assert any(
        f.startswith("case-n: truncated at 8")
        for f in signing.audit(copy_of(signing.store, {"case-n": 7}))
    )


def test_rewritten_chain_after_the_log_was_deleted_is_refused(signing: Signing) -> None:
    """Seen: rewriting the chain and deleting the checkpoint log got the rewritten store signed."""
    signing.sign()
    rewritten = MemoryStore()
    ids = iter(["case-a", "case-b"])
    service = new_service(rewritten, new_id=lambda: next(ids))
    leak_dispute(service)  # case-a is now another history, its chain valid on its own
    noise_dispute(service)
    signing.log_path.unlink()
    with pytest.raises(CheckpointRefused) as info:
        signing.sign(rewritten)
    assert info.value.reason == "log_missing" and info.value.signed_size == 2
    assert info.value.fields()["store_id"] == "store-1"
    assert "holds no store checkpoint" in str(info.value)
    assert not signing.log_path.exists()  # nothing signed
    # without the signer's state, the old behaviour: the rewritten store gets signed
    assert issue_checkpoint(rewritten, signing.private, store_id="store-1").store.size == 2


def test_store_and_log_rolled_back_together(signing: Signing) -> None:
    """Seen: rolling back the store and the checkpoint file together passed ``verify --key``."""
    witness = DirectoryWitness(signing.dir / "witness")
    signing.sign(witnesses=[witness])
    old_store, old_log = copy_of(signing.store), signing.log_path.read_bytes()
    add_case(signing.store, "case-c")
    signing.sign(witnesses=[witness])
    signing.log_path.write_bytes(old_log)  # both rolled back
    # against the log alone, the rollback is invisible ...
    assert signing.audit(old_store) == []
    # ... against the witness's copy it is not
    faults = signing.audit(old_store, witnesses=[witness])
    assert any("holds a store checkpoint of 3 leaves" in f and "rolled back" in f for f in faults)
    assert any(f.startswith("case-c: the whole case is missing") for f in faults)
    # and the signer refuses: its state remembers the tree of 3
    with pytest.raises(CheckpointRefused) as info:
        signing.sign(old_store)
    assert info.value.reason == "log_rolled_back"
    # a signer whose state was lost (or a second signer) is stopped by the witness
    fresh = Signer(signing.private, signing.dir / "other.state", witnesses=[witness], adopt=True)
    with pytest.raises(WitnessRefused) as refused:
        fresh.sign(old_store, signing.log_path, store_id="store-1")
    assert refused.value.reason == "witness_ahead" and refused.value.witness == witness.name


def test_tail_removed_and_cases_cut_back(signing: Signing) -> None:
    """Seen: removing the checkpoint file's tail and cutting cases back to the previous
    checkpoint passed, unless the auditor kept its own copy."""
    witness = DirectoryWitness(signing.dir / "witness")
    signing.sign(witnesses=[witness])
    log_then = signing.log_path.read_bytes()
    a_then = len(signing.store.read("case-a"))
    # case-a grows (a copy with two more events, as if appended later) and is signed again
    grown = copy_of(signing.store)  # the same events (sealed values draw random nonces)
    assert grown.read("case-a") == signing.store.read("case-a")
    add_case(grown, "case-e")
    signing.sign(grown, witnesses=[witness])
    # the tail removed, and case-e cut (back to before the first checkpoint: gone)
    signing.log_path.write_bytes(log_then)
    cut = copy_of(grown, {"case-e": 0})
    assert len(cut.read("case-a")) == a_then
    assert signing.audit(cut) == []  # the log alone cannot tell
    faults = signing.audit(cut, witnesses=[witness])
    assert faults and "rolled back" in faults[0]
    with pytest.raises(CheckpointRefused, match="rolled back"):
        signing.sign(cut)


def test_a_case_cut_back_against_the_intact_log_is_left_out(signing: Signing) -> None:
    signing.sign()
    a = signing.store.read("case-a")
    cut = copy_of(signing.store, {"case-a": len(a) - 3})
    cp = signing.sign(cut)
    assert [v.case_id for v in cp.invalid] == ["case-a"] and cp.store.leaves == ()
    # case-a's signed leaf is still in the tree: the next audit names it
    assert any(f.startswith("case-a: truncated") for f in signing.audit(cut))


def test_witness_refuses_and_records_a_fork(signing: Signing) -> None:
    witness = DirectoryWitness(signing.dir / "witness")
    signing.sign(witnesses=[witness])
    # another tree signed with the same key for the same store (a rolled-back signer)
    other = copy_of(signing.store, {"case-b": 0})
    forked = issue_checkpoint(other, signing.private, store_id="store-1")
    with pytest.raises(WitnessRefused) as info:
        witness.publish(forked.store, signing.public)
    assert info.value.reason == "inconsistent" and "rollback" in str(info.value)
    refused = [
        json.loads(x) for x in (Path(witness.path) / "refused.jsonl").read_text().splitlines()
    ]
    assert refused[0]["reason"] == "inconsistent" and refused[0]["head"]["size"] == 1
    # same size, other root: a fork
    add_case(other, "case-z")
    same_size = issue_checkpoint(other, signing.private, store_id="store-1")
    assert same_size.store.size == 2
    with pytest.raises(WitnessRefused, match="fork"):
        witness.publish(same_size.store, signing.public)
    # a bad consistency proof
    add_case(signing.store, "case-c")
    good = signing.signer().sign(signing.store, signing.log_path, store_id="store-1").checkpoint
    bad_proof = attrs.evolve(good.store, consistency=("0" * 64,))
    with pytest.raises(WitnessRefused, match="consistency proof"):
        witness.publish(bad_proof, signing.public)
    # a signature that does not verify, and another key
    with pytest.raises(WitnessRefused, match="signature"):
        witness.publish(attrs.evolve(good.store, signature="0" * 128), signing.public)
    stranger = load_public_key(generate_key()[1])
    with pytest.raises(WitnessRefused, match="another key"):
        witness.publish(good.store, stranger)
    assert [h.size for h in witness.heads(key_id(signing.public))] == [2]
    # the witness that missed a head is brought up to date with a proof from its latest
    signer = signing.signer(witnesses=[witness])
    assert signer.publish(good) == []
    assert [h.size for h in witness.heads(key_id(signing.public), "store-1")] == [2, 3]
    assert signer.publish(good) == []  # the same head again: no new line
    assert len(witness.heads(key_id(signing.public))) == 2


def test_a_late_witness_receives_the_whole_tree(signing: Signing) -> None:
    signing.sign()
    add_case(signing.store, "case-c")
    witness = DirectoryWitness(signing.dir / "late")
    cp = signing.sign(witnesses=[witness])
    (head,) = witness.heads(key_id(signing.public))
    assert head.size == 3 and len(head.leaves) == 3 and head.consistency == ()
    assert head == cp.store
    assert signing.audit(signing.store, witnesses=[witness]) == []


def test_the_signer_state(signing: Signing, tmp_path: Path) -> None:
    signing.sign()
    path = tmp_path / "signer.state.json"
    state = SignerState.load(path, key_id(signing.public))
    assert state.stores["store-1"].size == 2
    other_key = key_id(load_public_key(generate_key()[1]))
    with pytest.raises(SignerStateError, match="state of key"):
        SignerState.load(path, other_key)
    for bad in (
        "{not json",
        "[]",
        '{"format": "x"}',
        json.dumps({**state.to_json(), "stores": {"s": {"size": -1}}}),
    ):
        path.write_text(bad)
        with pytest.raises(SignerStateError):
            SignerState.load(path)
    assert SignerState.load(tmp_path / "absent.json").stores == {}


def test_a_state_without_the_store_needs_adopt(signing: Signing) -> None:
    signing.sign()
    (signing.dir / "signer.state.json").unlink()
    with pytest.raises(CheckpointRefused) as info:
        signing.sign()
    assert info.value.reason == "unknown_store"
    assert signing.sign(adopt=True).store.size == 2
    assert signing.sign().store.size == 2  # recorded now


def test_a_crash_between_appending_and_recording_is_recovered(signing: Signing) -> None:
    signing.sign()
    saved = (signing.dir / "signer.state.json").read_bytes()
    add_case(signing.store, "case-c")
    signing.sign()
    (signing.dir / "signer.state.json").write_bytes(saved)  # the state write was lost
    assert signing.sign().store.size == 3
    # but a later head that another key signed is not taken for the signer's own
    stranger = load_private_key(generate_key()[0])
    foreign = issue_checkpoint(
        signing.store, stranger, log=CheckpointLog.load(signing.log_path), store_id="store-1"
    )
    (signing.dir / "signer.state.json").write_bytes(saved)
    CheckpointLog().append_to(signing.log_path, foreign)
    with pytest.raises(CheckpointRefused, match="not signed by it"):
        signing.sign()


def test_an_altered_tree_in_the_log(signing: Signing) -> None:
    signing.sign()
    add_case(signing.store, "case-c")
    signing.sign()
    lines = signing.log_path.read_text().splitlines()
    # drop the first store checkpoint: the second one's leaves no longer continue a tree
    first_store = next(i for i, x in enumerate(lines) if '"kind":"store"' in x)
    signing.log_path.write_text("\n".join(lines[:first_store] + lines[first_store + 1 :]) + "\n")
    faults = signing.audit(signing.store)
    assert any("extends a tree of 2 leaves" in f for f in faults)
    with pytest.raises(CheckpointRefused) as info:
        signing.sign()
    assert info.value.reason == "log_altered"
    # an edited consistency proof is named
    obj = json.loads(lines[-1])
    obj["consistency"] = ["0" * 64]
    signing.log_path.write_text("\n".join([*lines[:-1], json.dumps(obj)]) + "\n")
    assert any("consistency proof" in f for f in signing.audit(signing.store))


def test_legacy_store_checkpoints_are_still_checked_and_extended(signing: Signing) -> None:
    """A log of the first format (store.v1) is read, checked, and continued by a new tree."""
    from mediation._checkpoints import LegacyStoreCheckpoint

    v2 = issue_checkpoint(signing.store, signing.private, store_id="store-1")
    leaves = tuple(sorted(v2.tree, key=lambda leaf: leaf.case_id))
    legacy = LegacyStoreCheckpoint(
        len(leaves),
        merkle_root([leaf.data() for leaf in leaves]).hex(),
        "0" * 64,
        v2.store.issued_at,
        key_id(signing.public),
        leaves=leaves,
    )
    legacy = attrs.evolve(legacy, signature=signing.private.sign(legacy.message()).hex())
    signing.log_path.write_text(
        "".join(json.dumps(r.to_json()) + "\n" for r in (*v2.cases, legacy))
    )
    assert signing.audit(signing.store) == []
    cp = signing.sign()
    assert cp.store.prev == legacy.hash and cp.store.size == 2
    assert signing.audit(signing.store) == []
    truncated = copy_of(signing.store, {"case-a": 5})
    assert any(f.startswith("case-a: truncated at 6") for f in signing.audit(truncated))


def test_default_store_id(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert default_store_id(str(db)) == "sqlite:" + os.path.realpath(db)
    assert default_store_id(f"sqlite:///{db}") == "sqlite:" + os.path.realpath(db)
    pytest.importorskip("psycopg")
    assert (
        default_store_id("postgresql://auditor:s3cret@db.example:6543/cases?sslmode=require")
        == "postgresql://db.example:6543/cases"
    )
    assert default_store_id("postgresql://db.example/cases") == "postgresql://db.example:5432/cases"


# -- deleting a summary row does not drop the case from the next checkpoint ----------------------


def _summary_row_deleted(store: Store, drop: Callable[[str], None], tmp_path: Path) -> None:
    ids = iter(["case-a", "case-b"])
    service = new_service(store, new_id=lambda: next(ids))
    noise_dispute(service)
    leak_dispute(service)
    private = load_private_key(generate_key()[0])
    signer = Signer(private, tmp_path / "state.json")
    first = signer.sign(store, tmp_path / "cp.jsonl", store_id="s").checkpoint
    assert [leaf.case_id for leaf in first.store.leaves] == ["case-a", "case-b"]
    drop("case-b")
    assert store.summary("case-b") is None and [s.case_id for s in store.cases()] == ["case-a"]
    add_case(store, "case-c")
    second = signer.sign(store, tmp_path / "cp.jsonl", store_id="s").checkpoint
    assert second.signed == ("case-a", "case-b", "case-c")  # case-b still covered
    assert [leaf.case_id for leaf in second.store.leaves] == ["case-c"] and not second.invalid
    # a fresh tree (new log and state) covers it too
    third = issue_checkpoint(store, private, store_id="s2")
    assert [leaf.case_id for leaf in third.store.leaves] == ["case-a", "case-b", "case-c"]


def test_a_deleted_summary_row_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    with SQLiteStore(path) as store:

        def drop(case_id: str) -> None:
            with sqlite3.connect(path, isolation_level=None) as conn:
                conn.execute("DELETE FROM mediation_cases WHERE case_id = ?", (case_id,))

        _summary_row_deleted(store, drop, tmp_path)


def test_a_deleted_summary_row_in_memory(tmp_path: Path) -> None:
    store = MemoryStore()
    _summary_row_deleted(store, lambda c: store._summaries.pop(c), tmp_path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    import pg

    with pg.fresh_schema("ckpt") as url:
        yield url


def test_a_deleted_summary_row_on_postgres(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    from mediation.stores.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:

        def drop(case_id: str) -> None:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("DELETE FROM mediation_cases WHERE case_id = %s", (case_id,))

        _summary_row_deleted(store, drop, tmp_path)
    finally:
        store.close()


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


@pytest.fixture
def cli(tmp_path: Path) -> dict[str, Path]:
    db = build_store(tmp_path / "cases.db")
    assert run("keygen", "--out", str(tmp_path / "signer.key")).code == 0
    return {
        "db": db,
        "key": tmp_path / "signer.key",
        "pub": tmp_path / "signer.key.pub",
        "log": Path(str(db) + ".checkpoints.jsonl"),
        "witness": tmp_path / "street-office",
        "state": tmp_path / "signer.key.state.json",
    }


def sign(p: dict[str, Path], *extra: str) -> Any:
    return run("checkpoint", "--db", str(p["db"]), "--key", str(p["key"]), *extra)


def verify(p: dict[str, Path], *extra: str) -> Any:
    return run("verify", "--db", str(p["db"]), "--key", str(p["pub"]), *extra)


def one_line_refusal(result: Any) -> None:
    assert result.code == 1, result.text
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.err.startswith("mediation: refusing to sign")


def add_minutes(db: Path, text: str) -> None:
    with SQLiteStore(db) as store:
        later = dt.datetime(2026, 3, 20, tzinfo=dt.timezone.utc)
        service = new_service(store, clock=lambda: later)
        service.execute(MEDIATOR, "case-d", cmd.RecordMinutes(text))


def test_cli_store_and_checkpoint_file_rolled_back_together(
    cli: dict[str, Path], tmp_path: Path
) -> None:
    first = sign(cli, "--witness", str(cli["witness"]))
    assert first.code == 0, first.text
    assert cli["state"].exists() and (cli["witness"] / "heads.jsonl").exists()
    shutil.copy(cli["db"], tmp_path / "db.then")
    shutil.copy(cli["log"], tmp_path / "log.then")
    add_minutes(cli["db"], "第二次调解")
    assert sign(cli, "--witness", str(cli["witness"])).code == 0
    shutil.copy(tmp_path / "db.then", cli["db"])
    shutil.copy(tmp_path / "log.then", cli["log"])

    assert verify(cli).code == 0  # the checkpoint file alone cannot tell
    caught = verify(cli, "--witness", str(cli["witness"]))
    assert caught.code == 1, caught.text
    assert "rolled back" in caught.out and "case case-d: INVALID at seq 8: truncated" in caught.out
    as_json = verify(cli, "--witness", str(cli["witness"]), "--json")
    assert as_json.code == 1 and json.loads(as_json.out)["ok"] is False
    jobs = verify(cli, "--witness", str(cli["witness"]), "--jobs", "2")
    assert (jobs.code, jobs.out) == (caught.code, caught.out)

    refused = sign(cli)
    one_line_refusal(refused)
    assert "rolled back" in refused.err
    # a fresh state file, adopting the store: the witness still refuses
    again = sign(cli, "--state", str(tmp_path / "new.state"), "--adopt",
                 "--witness", str(cli["witness"]))  # fmt: skip
    one_line_refusal(again)
    assert "witness" in again.err and "rolled back" in again.err


def test_cli_rewritten_chain_after_the_checkpoint_file_was_deleted(cli: dict[str, Path]) -> None:
    assert sign(cli).code == 0
    before = cli["log"].read_bytes()
    with sqlite3.connect(cli["db"], isolation_level=None) as conn:
        conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_delete")
        conn.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq > 18")
        fix_summary(conn, "case-a")
    cli["log"].unlink()
    refused = sign(cli)
    one_line_refusal(refused)
    assert "holds no store checkpoint" in refused.err
    assert not cli["log"].exists()
    # with the auditor's copy of the log, the rewrite is seen, and the signer signs the rest
    cli["log"].write_bytes(before)
    assert verify(cli).code == 1
    again = sign(cli)
    assert again.code == 1 and "not signed: case case-a" in again.err


def test_cli_tail_removed_and_case_cut_back(cli: dict[str, Path]) -> None:
    assert sign(cli, "--witness", str(cli["witness"])).code == 0
    tail_from = len(cli["log"].read_bytes())
    add_minutes(cli["db"], "第二次调解")
    assert sign(cli, "--witness", str(cli["witness"])).code == 0
    cli["log"].write_bytes(cli["log"].read_bytes()[:tail_from])  # the tail removed
    with sqlite3.connect(cli["db"], isolation_level=None) as conn:  # case-d cut back
        conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_delete")
        conn.execute("DELETE FROM mediation_events WHERE case_id = 'case-d' AND seq = 8")
        fix_summary(conn, "case-d")
    assert verify(cli).code == 0
    caught = verify(cli, "--witness", str(cli["witness"]))
    assert caught.code == 1 and "rolled back" in caught.out
    one_line_refusal(sign(cli))


def test_cli_witness_options(cli: dict[str, Path], tmp_path: Path) -> None:
    no_key = run("verify", "--db", str(cli["db"]), "--witness", str(cli["witness"]))
    assert no_key.code == 2 and "--witness needs --key" in no_key.err
    missing = verify(cli, "--witness", str(tmp_path / "nowhere"))
    assert missing.code == 4 and "no such witness directory" in missing.err
    assert sign(cli, "--store-id", "rongyue-committee", "--witness", str(cli["witness"])).code == 0
    assert verify(cli, "--witness", str(cli["witness"])).code == 0
    other = verify(cli, "--witness", str(cli["witness"]), "--store-id", "elsewhere")
    assert other.code == 1 and "holds no store checkpoint of store 'elsewhere'" in other.out
    state = json.loads(cli["state"].read_text())
    assert list(state["stores"]) == ["rongyue-committee"]
    # a damaged state file: bad input, one line
    cli["state"].write_text("{")
    bad = sign(cli, "--store-id", "rongyue-committee")
    assert bad.code == 5 and bad.err.count("\n") == 1 and "signer state" in bad.err
    cli["state"].unlink()
    cli["state"].mkdir()  # cannot be read as a file: I/O
    unreadable = sign(cli, "--store-id", "rongyue-committee")
    assert unreadable.code == 4 and "cannot read the signer state" in unreadable.err


def test_cli_deleted_summary_row_still_checkpointed(cli: dict[str, Path]) -> None:
    with sqlite3.connect(cli["db"], isolation_level=None) as conn:
        conn.execute("DELETE FROM mediation_cases WHERE case_id = 'case-c'")
    result = sign(cli, "--receipt", "case-c")
    assert result.code == 0, result.text
    assert "checkpoint issued: 4 case(s)" in result.err
    receipt = json.loads(result.out)  # standard output is the receipt alone
    assert receipt["case"] == "case-c" and receipt["store"]["size"] == 4


def test_cli_deleted_checkpoint_file_against_a_witness(cli: dict[str, Path]) -> None:
    assert sign(cli, "--witness", str(cli["witness"])).code == 0
    cli["log"].unlink()
    assert run("verify", "--db", str(cli["db"])).code == 0  # without a key nothing is asked
    caught = verify(cli, "--witness", str(cli["witness"]))
    assert caught.code == 1
    assert "the checkpoint log's tree has 0: the log was rolled back" in caught.out
    # the store itself still matches every leaf the witness holds
    assert "case case-a: valid" in caught.out and "INVALID at" not in caught.out


def test_cli_a_witness_that_cannot_be_written(
    cli: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    result = sign(cli, "--witness", str(blocker))
    assert result.code == 4 and "cannot read the witness" in result.err
    assert not cli["log"].exists()  # the witness cannot be checked: nothing is signed
    # a witness that cannot be written once the checkpoint was appended: not published, exit 4

    def fail(*_: Any) -> None:
        raise CheckpointError("cannot write the witness") from OSError("disk full")

    monkeypatch.setattr(DirectoryWitness, "publish", fail)
    result = sign(cli, "--witness", str(cli["witness"]))
    assert result.code == 4 and "not published: cannot write the witness" in result.err
    assert "checkpoint issued: 4 case(s)" in result.out  # the checkpoint stands
    assert verify(cli).code == 0


def test_a_forged_head_cannot_hide_an_earlier_leaf(signing: Signing) -> None:
    """A store checkpoint appended past the signer (another key, a bad signature) whose leaves
    attest a rewritten history: the signer still checks every earlier leaf, and its state refuses
    the log outright."""
    first = signing.sign()
    rewritten = MemoryStore()
    ids = iter(["case-a", "case-b"])
    service = new_service(rewritten, new_id=lambda: next(ids))
    leak_dispute(service)
    noise_dispute(service)
    tree = CheckpointLog.load(signing.log_path).tree()
    fake = tuple(
        Leaf(c, len(rewritten.read(c)), rewritten.read(c)[-1].hash) for c in ("case-a", "case-b")
    )
    tree.extend(fake)
    forged = StoreCheckpoint(
        "store-1",
        len(tree),
        tree.root().hex(),
        first.store.hash,
        first.store.issued_at,
        "f" * 64,
        "0" * 128,
        leaves=fake,
        consistency=tuple(p.hex() for p in tree.consistency(2)),
    )
    with signing.log_path.open("a") as f:
        f.write(json.dumps(forged.to_json()) + "\n")
    log = CheckpointLog.load(signing.log_path)
    cp = issue_checkpoint(rewritten, signing.private, log=log, store_id="store-1")
    assert [v.case_id for v in cp.invalid] == ["case-a", "case-b"] and cp.store.leaves == ()
    with pytest.raises(CheckpointRefused, match="not signed by it"):
        signing.sign(rewritten)
