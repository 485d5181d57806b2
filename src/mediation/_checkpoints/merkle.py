"""The Merkle tree of store checkpoints (RFC 6962, section 2.1): a leaf hash is
``SHA-256(0x00 || leaf bytes)``, a node hash ``SHA-256(0x01 || left || right)``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs

from .._events import canonical_bytes

__all__ = ["Leaf", "inclusion_proof", "leaf_hash", "merkle_root", "verify_inclusion"]


@attrs.frozen
class Leaf:
    """One case as a store checkpoint sees it."""

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
