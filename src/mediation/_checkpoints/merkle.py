"""The Merkle tree of store checkpoints (RFC 6962 / RFC 9162, section 2.1): a leaf hash is
``SHA-256(0x00 || leaf bytes)``, a node hash ``SHA-256(0x01 || left || right)``; inclusion proofs
(audit paths) and consistency proofs between two sizes of the same append-only tree (RFC 9162,
sections 2.1.4.1 and 2.1.4.2)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs

from .._events import canonical_bytes

__all__ = [
    "Leaf",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "root_of_hashes",
    "verify_consistency",
    "verify_inclusion",
]


@attrs.frozen
class Leaf:
    """One case as a store checkpoint sees it: "case ``case_id`` had ``seq`` events ending in
    ``head``"."""

    case_id: str
    seq: int
    head: str

    def data(self) -> bytes:
        """The leaf's bytes: canonical JSON of ``{"case", "head", "seq"}``."""
        return canonical_bytes({"case": self.case_id, "head": self.head, "seq": self.seq})


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(hashes: Sequence[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = _split(n)
    return _node(_root(hashes[:k]), _root(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH of RFC 6962 over the leaves' bytes (the empty tree hashes to SHA-256 of nothing)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _root([leaf_hash(d) for d in leaves])


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 6962 PATH), bottom-up."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)

    def path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
        n = len(hashes)
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, hashes[:k]), _root(hashes[k:])]
        return [*path(m - k, hashes[k:]), _root(hashes[:k])]

    return path(index, [leaf_hash(d) for d in leaves])


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Does ``proof`` show leaf ``index`` of a tree of ``size`` leaves under ``root``?"""
    if not 0 <= index < size:
        return False
    # walk down to find, for each level, whether our subtree is the left or right child
    sides: list[bool] = []  # True: the sibling is on the right
    m, n = index, size
    while n > 1:
        k = _split(n)
        if m < k:
            sides.append(True)
            n = k
        else:
            sides.append(False)
            m, n = m - k, n - k
    if len(sides) != len(proof):
        return False
    h = leaf_hash(leaf)
    for right, sibling in zip(reversed(sides), proof, strict=True):
        h = _node(h, sibling) if right else _node(sibling, h)
    return h == root


_EMPTY = hashlib.sha256(b"").digest()


def root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes already computed (the empty tree hashes to SHA-256 of nothing)."""
    return _root(hashes) if hashes else _EMPTY


def consistency_proof(hashes: Sequence[bytes], m: int) -> list[bytes]:
    """The consistency proof from the first ``m`` leaves to all ``len(hashes)`` of them (RFC 9162
    section 2.1.4.1, PROOF(m, D[n])), over leaf hashes.  Empty when ``m`` is 0 (every tree extends
    the empty one) or ``m == n``."""
    n = len(hashes)
    if not 0 <= m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    if m in (0, n):
        return []

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [_root(d)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, d[:k], complete), _root(d[k:])]
        return [*subproof(m - k, d[k:], False), _root(d[:k])]

    return subproof(m, hashes, True)


def verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Does ``proof`` show that the tree of ``n`` leaves under ``new_root`` extends the tree of its
    first ``m`` leaves under ``old_root``?  RFC 9162 section 2.1.4.2; size 0 is the empty tree,
    which every tree extends (empty proof), and equal sizes need equal roots and an empty proof."""
    if not 0 <= m <= n:
        return False
    if m == 0:
        return not proof and (n > 0 or new_root == _EMPTY) and (old_root == _EMPTY)
    if m == n:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Tree:
    """An append-only Merkle tree over leaf hashes: appending is O(log n), the root of the whole
    tree O(log n) (from the roots of its perfect subtrees), the root at an earlier size and the
    proofs O(n)."""

    def __init__(self, hashes: Sequence[bytes] = ()) -> None:
        self.hashes: list[bytes] = []
        self._peaks: list[
            tuple[int, bytes]
        ] = []  # (size, root) of the perfect subtrees, left first
        for h in hashes:
            self.append(h)

    def __len__(self) -> int:
        return len(self.hashes)

    def append(self, h: bytes) -> None:
        self.hashes.append(h)
        size, node = 1, h
        while self._peaks and self._peaks[-1][0] == size:
            _, left = self._peaks.pop()
            size, node = size * 2, _node(left, node)
        self._peaks.append((size, node))

    def extend(self, leaves: Sequence[Leaf]) -> None:
        for leaf in leaves:
            self.append(leaf_hash(leaf.data()))

    def root(self) -> bytes:
        """MTH of every leaf so far: the perfect subtrees folded right to left (the left subtree
        of RFC 6962's split is always the largest of them)."""
        if not self._peaks:
            return _EMPTY
        node = self._peaks[-1][1]
        for _, left in reversed(self._peaks[:-1]):
            node = _node(left, node)
        return node

    def root_at(self, m: int) -> bytes:
        """MTH of the first ``m`` leaves."""
        if m == len(self.hashes):
            return self.root()
        return root_of_hashes(self.hashes[:m])

    def consistency(self, m: int) -> list[bytes]:
        """The consistency proof from size ``m`` to the current size."""
        return consistency_proof(self.hashes, m)
