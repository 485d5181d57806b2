"""Auditing against checkpoints: the auditor's side, which checks a store, case by case, against a
checkpoint log under one public key, and the log against the witnesses' copies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from .._audit import Fault, FaultKind
from .._events import GENESIS
from .keys import CheckpointError, key_id
from .merkle import Tree, verify_consistency
from .records import CaseCheckpoint, CheckpointLog, LegacyStoreCheckpoint, StoreCheckpoint
from .witness import Witness, witness_tree

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["CheckpointAuditor", "StoreFault"]


@attrs.frozen
class _Attestation:
    seq: int
    head: str
    where: str  # "checkpoint of <time> (line N)"


@attrs.frozen
class StoreFault:
    """A fault of the checkpoints themselves (not of one case's events)."""

    line: int | None
    message: str
    message_zh: str


class CheckpointAuditor:
    """Checks a store (streamed case by case) against a checkpoint log under one public key.

    On construction: every record signed by the key must carry a valid signature, each case's and
    the store's checkpoints must chain (``prev``), and each store checkpoint's leaves must hash to
    its signed root; problems become :attr:`store_faults`.  Then :meth:`check_case` for every case
    read, and :meth:`missing` for the attested cases never seen.

    Store checkpoints are signed tree heads: each one's leaves must continue the tree of the ones
    before it (whatever key signed them), hash with them to its root, and its consistency proof
    from the previous head must verify.  With ``witnesses``, the log's tree must hold each
    witness's latest head of the store (same root at that size: else the log was rolled back or
    replaced), and every leaf a witness holds is compared with the store too, so a store and log
    rolled back together are caught.  ``store_id`` picks the witnessed store (default: the one the
    log's last store checkpoint names, else the only one the witness holds under the key).
    """

    def __init__(
        self,
        log: CheckpointLog,
        public_key: Ed25519PublicKey,
        *,
        witnesses: Sequence[Witness] = (),
        store_id: str | None = None,
    ) -> None:
        from cryptography.exceptions import InvalidSignature

        self.key_id = key_id(public_key)
        self.store_faults: list[StoreFault] = []
        self.checked = 0  # checkpoints signed by the key and checked
        self.case_checkpoints = 0
        self.store_checkpoints = 0
        self.other_keys: set[str] = set()
        self._attested: dict[str, list[_Attestation]] = {}
        self._seen: set[str] = set()
        self.witnessed = 0  # witnessed heads checked
        last_case: dict[str, str] = {}
        last_store = GENESIS
        self.tree = Tree()
        broken_at: int | None = None  # the line where the tree of store checkpoints broke
        roots: dict[int, str] = {}  # line -> the root its leaves give
        previous: tuple[int, bytes] = (0, self.tree.root())  # the last tree head: size, root
        for line, rec in log.records:
            where = f"line {line}" + (f" of {log.source}" if log.source else "")
            # the chains link every record, whatever key signed it
            if isinstance(rec, CaseCheckpoint):
                expected = last_case.get(rec.case_id, GENESIS)
                last_case[rec.case_id] = rec.hash
            else:
                expected = last_store
                last_store = rec.hash
            if rec.prev != expected:
                self._fault(
                    line,
                    f"{where}: checkpoint chain broken ({'case ' + rec.case_id if isinstance(rec, CaseCheckpoint) else 'store'}): "
                    "a checkpoint before it was removed or altered",
                    f"{where}：检查点链断裂，之前的检查点被删除或篡改",
                )
            if isinstance(rec, StoreCheckpoint) and broken_at is None:
                ok, previous = self._grow(line, where, rec, previous, roots)
                broken_at = None if ok else line
            if rec.key != self.key_id:
                self.other_keys.add(rec.key)
                continue
            try:
                public_key.verify(bytes.fromhex(rec.signature), rec.message())
            except InvalidSignature:
                self._fault(
                    line,
                    f"{where}: the signature does not verify: the checkpoint was altered",
                    f"{where}：签名无效，检查点被篡改",
                )
                continue
            self.checked += 1
            label = f"checkpoint of {rec.issued_at} ({where})"
            if isinstance(rec, CaseCheckpoint):
                self.case_checkpoints += 1
                self._attest(rec.case_id, rec.seq, rec.head, label)
                continue
            self.store_checkpoints += 1
            if isinstance(rec, LegacyStoreCheckpoint):
                ids = [leaf.case_id for leaf in rec.leaves]
                if (
                    rec.size != len(rec.leaves)
                    or ids != sorted(set(ids))
                    or rec.computed_root() != rec.root
                ):
                    self._fault(
                        line,
                        f"{where}: the cases listed do not hash to the signed Merkle root "
                        "(the checkpoint file was altered)",
                        f"{where}：所列案件与签名的 Merkle 根不符（检查点文件被篡改）",
                    )
                    continue
            elif line not in roots:  # the tree broke here or before: its leaves are unchecked
                if broken_at != line:
                    self._fault(
                        line,
                        f"{where}: its leaves cannot be checked: the tree of store checkpoints "
                        f"is broken at line {broken_at}",
                        f"{where}：无法核对其叶子：存储检查点的树在第 {broken_at} 行已断裂",
                    )
                continue
            elif rec.root != roots[line]:
                self._fault(
                    line,
                    f"{where}: the cases listed do not hash to the signed Merkle root "
                    "(the checkpoint file was altered)",
                    f"{where}：所列案件与签名的 Merkle 根不符（检查点文件被篡改）",
                )
                continue
            for leaf in rec.leaves:
                self._attest(leaf.case_id, leaf.seq, leaf.head, f"Merkle root of {label}")
        if self.checked == 0:
            others = ", ".join(sorted(k[:16] for k in self.other_keys)) or "none"
            self._fault(
                None,
                f"no checkpoint signed by key {self.key_id[:16]} "
                f"({len(log)} checkpoint(s) read; signed by: {others}): wrong key or no checkpoints",
                f"没有由密钥 {self.key_id[:16]} 签名的检查点（共读到 {len(log)} 个）：密钥不对或没有检查点",
            )
        self.store_id = store_id or next((h.store_id for _, h in reversed(log.heads())), None)
        for witness in witnesses:
            self._witness(witness, public_key)

    def _grow(
        self,
        line: int,
        where: str,
        rec: StoreCheckpoint,
        previous: tuple[int, bytes],
        roots: dict[int, str],
    ) -> tuple[bool, tuple[int, bytes]]:
        """Add a tree head's leaves to the log's tree; False when it does not continue it."""
        if rec.base != len(self.tree):
            self._fault(
                line,
                f"{where}: the cases listed do not hash to the signed Merkle root (the checkpoint "
                f"file was altered): the store checkpoint extends a tree of {rec.base} leaves, "
                f"the checkpoints before it hold {len(self.tree)}",
                f"{where}：所列案件与签名的 Merkle 根不符（检查点文件被篡改）：存储检查点延续的树有 {rec.base} 个叶子，"
                f"之前的检查点有 {len(self.tree)} 个",
            )
            return False, previous
        self.tree.extend(rec.leaves)
        root = self.tree.root()
        roots[line] = root.hex()
        proof = [bytes.fromhex(p) for p in rec.consistency]
        if root.hex() == rec.root and not verify_consistency(
            previous[0], rec.size, previous[1], root, proof
        ):
            self._fault(
                line,
                f"{where}: the consistency proof from the tree of {previous[0]} leaves does not "
                "verify (the checkpoint file was altered)",
                f"{where}：与前一个 {previous[0]} 个叶子的树之间的一致性证明不成立（检查点文件被篡改）",
            )
        return True, (rec.size, root)

    def _witness(self, witness: Witness, public_key: Ed25519PublicKey) -> None:
        """Check the log's tree against a witness's copy, and attest the witness's leaves."""
        from cryptography.exceptions import InvalidSignature

        name = f"witness {witness.name}"
        try:
            store_id = self.store_id
            if store_id is None:
                stores = witness.stores(self.key_id)
                if len(stores) != 1:
                    self._fault(
                        None,
                        f"{name}: cannot tell which store to compare: the checkpoint log names "
                        f"none and the witness holds {len(stores)} under key {self.key_id[:16]} "
                        "(give the store id)",
                        f"{name}：无法确定要比较的存储（请给出存储标识）",
                    )
                    return
                store_id = stores[0]
            heads = witness.heads(self.key_id, store_id)
            for head in heads:
                public_key.verify(bytes.fromhex(head.signature), head.message())
            witness_tree(heads)  # the copy must hold together: one tree, every root recomputed
        except InvalidSignature:
            self._fault(None, f"{name}: a signature does not verify", f"{name}：签名无效")
            return
        except CheckpointError as exc:
            self._fault(None, f"{name}: {exc}", f"{name}：{exc.message_zh}")
            return
        if not heads:
            self._fault(
                None,
                f"{name} holds no store checkpoint of store {store_id!r} signed by key "
                f"{self.key_id[:16]}",
                f"{name} 没有存储 {store_id!r} 由密钥 {self.key_id[:16]} 签发的检查点",
            )
            return
        self.witnessed += len(heads)
        latest = heads[-1]
        if latest.size > len(self.tree):
            self._fault(
                None,
                f"{name} holds a store checkpoint of {latest.size} leaves signed "
                f"{latest.issued_at}; the checkpoint log's tree has {len(self.tree)}: the log was "
                "rolled back",
                f"{name} 保存了 {latest.issued_at} 签发的 {latest.size} 个叶子的检查点，检查点文件只有 "
                f"{len(self.tree)} 个：检查点文件被回滚",
            )
        elif self.tree.root_at(latest.size).hex() != latest.root:
            self._fault(
                None,
                f"{name} holds another tree of {latest.size} leaves (signed {latest.issued_at}) "
                "than the checkpoint log: the log was replaced",
                f"{name} 保存的 {latest.size} 个叶子的树与检查点文件不同：检查点文件被替换",
            )
        label = f"copy at {name} of the checkpoint of {latest.issued_at}"
        for head in heads:
            for leaf in head.leaves:
                self._attest(leaf.case_id, leaf.seq, leaf.head, label)

    def _fault(self, line: int | None, en: str, zh: str) -> None:
        self.store_faults.append(StoreFault(line, en, zh))

    def _attest(self, case_id: str, seq: int, head: str, where: str) -> None:
        self._attested.setdefault(case_id, []).append(_Attestation(seq, head, where))

    @property
    def attested_cases(self) -> int:
        return len(self._attested)

    def check_case(
        self, case_id: str, hashes: Callable[[int], str | None], verified: int
    ) -> Fault | None:
        """Check one case read from the store against every attestation of it.

        ``hashes(seq)`` gives the stored hash at ``seq``; ``verified`` is how many events the chain
        verification accepted (the prefix that can be trusted).  Returns the first fault, by seq.
        """
        faults = self.case_faults(case_id, hashes, verified)
        return min(faults, key=lambda f: f.seq) if faults else None

    def case_faults(
        self, case_id: str, hashes: Callable[[int], str | None], verified: int
    ) -> list[Fault]:
        """:meth:`check_case`, every fault: the first bad seq of each kind (truncated,
        checkpoint), in seq order."""
        self._seen.add(case_id)
        faults = []
        for a in self._attested.get(case_id, ()):
            if a.seq > verified:
                faults.append(
                    Fault(
                        verified + 1,
                        FaultKind.TRUNCATED,
                        f"the store holds {verified} verified events; the {a.where} attests {a.seq}",
                    )
                )
            elif hashes(a.seq) != a.head:
                faults.append(
                    Fault(
                        a.seq,
                        FaultKind.CHECKPOINT,
                        f"event {a.seq} hashes to {str(hashes(a.seq))[:12]}…, the {a.where} attests "
                        f"{a.head[:12]}…: the chain was rewritten",
                    )
                )
        first: dict[FaultKind, Fault] = {}
        for f in sorted(faults, key=lambda f: f.seq):
            first.setdefault(f.kind, f)
        return sorted(first.values(), key=lambda f: f.seq)

    def missing(self, only: str | None = None) -> list[tuple[str, Fault]]:
        """Attested cases that :meth:`check_case` never saw: deleted from the store."""
        out = []
        for case_id, atts in sorted(self._attested.items()):
            if case_id in self._seen or (only is not None and case_id != only):
                continue
            a = max(atts, key=lambda x: x.seq)
            out.append(
                (
                    case_id,
                    Fault(
                        1,
                        FaultKind.TRUNCATED,
                        f"the whole case is missing from the store; the {a.where} attests "
                        f"{a.seq} events",
                    ),
                )
            )
        return out
