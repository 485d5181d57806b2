"""Witnesses: copies of the signed tree heads kept by someone other than the store's operator.

A signer's state file stops the signer from blessing a rolled-back store, but an auditor holding
only the public key cannot see the signer's state: a database administrator who rolls the store
and the checkpoint log back together leaves a store that agrees with its (shortened) log.  A
**witness** keeps every signed tree head it was shown, in order, and accepts a new one only if it
is signed, extends its latest (the RFC 9162 consistency proof verifies, and the leaves it is
given hash to the new root), and is not smaller; anything else it refuses and records.  An auditor
then checks the log and the store against the witness's copy (``mediation verify --witness``).

:class:`DirectoryWitness` is a directory (the street office's share, a USB stick): ``heads.jsonl``
holds the accepted heads, one store checkpoint record a line as in the checkpoint log, except that
``leaves`` and ``consistency`` are relative to the witness's previous head of the same key and
store; ``refused.jsonl`` the refused ones, with the reason.
"""

from __future__ import annotations

import abc
import datetime as _dt
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._events import format_time
from .keys import CheckpointError, key_id
from .merkle import Tree, verify_consistency
from .records import CheckpointLog, StoreCheckpoint, _dump, _json_lines
from .state import CheckpointRefused, locked

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["DirectoryWitness", "Witness", "WitnessRefused", "witness_tree"]


class WitnessRefused(CheckpointRefused):
    """A witness refused a signed tree head (``witness`` names it)."""

    def __init__(
        self,
        message: str,
        *,
        witness: str,
        reason: str,
        store_id: str,
        signed_size: int | None = None,
        found_size: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(
            message,
            reason=reason,
            store_id=store_id,
            signed_size=signed_size,
            found_size=found_size,
            **kw,
        )
        self.witness = witness

    def fields(self) -> dict[str, object]:
        return {**super().fields(), "witness": self.witness}


class Witness(abc.ABC):
    """Where signed tree heads are published and later compared with."""

    #: how messages name the witness
    name: str

    @abc.abstractmethod
    def heads(self, key: str, store_id: str | None = None) -> list[StoreCheckpoint]:
        """The heads accepted under key id ``key`` (of ``store_id``, or of every store), oldest
        first; each one's ``leaves`` continue the previous head of its store."""

    @abc.abstractmethod
    def publish(self, head: StoreCheckpoint, public_key: Ed25519PublicKey) -> None:
        """Accept ``head``, whose ``leaves`` and ``consistency`` start at the witness's latest head
        of its key and store (:meth:`latest`), or raise :class:`WitnessRefused` (and record the
        refusal)."""

    def latest(self, key: str, store_id: str) -> StoreCheckpoint | None:
        heads = self.heads(key, store_id)
        return heads[-1] if heads else None

    def stores(self, key: str) -> list[str]:
        """The store ids the witness holds heads of, under ``key``."""
        return sorted({h.store_id for h in self.heads(key)})


def witness_tree(heads: Sequence[StoreCheckpoint]) -> Tree:
    """The tree a witness's heads of one store describe; :class:`CheckpointError` when its copy
    does not hold together (a head not continuing the one before, leaves not hashing to a root)."""
    tree = Tree()
    for head in heads:
        continues = head.base == len(tree)
        if continues:
            tree.extend(head.leaves)
        if not continues or tree.root().hex() != head.root:
            raise CheckpointError(
                f"the witness's copy is damaged at the head of {head.size} leaves signed "
                f"{head.issued_at}"
            )
    return tree


class DirectoryWitness(Witness):
    """A witness kept as a directory (created if missing): ``heads.jsonl`` and ``refused.jsonl``,
    JSON Lines, appended and fsynced under a lock (``heads.jsonl.lock``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.name = self.path
        self._heads = os.path.join(self.path, "heads.jsonl")
        self._refused = os.path.join(self.path, "refused.jsonl")

    def heads(self, key: str, store_id: str | None = None) -> list[StoreCheckpoint]:
        try:
            with open(self._heads, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CheckpointError(f"cannot read the witness {self._heads}: {exc.strerror}") from exc
        log = CheckpointLog.parse(_json_lines(data, self._heads), self._heads)
        return [
            r
            for _, r in log.records
            if isinstance(r, StoreCheckpoint)
            and r.key == key
            and (store_id is None or r.store_id == store_id)
        ]

    def publish(self, head: StoreCheckpoint, public_key: Ed25519PublicKey) -> None:
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(f"cannot create the witness {self.path}: {exc.strerror}") from exc
        with locked(self._heads):
            heads = self.heads(head.key, head.store_id)
            problem = _refusal(head, heads, public_key)
            if problem is not None:
                reason, en, zh = problem
                self._append(
                    self._refused,
                    {
                        "refused_at": format_time(_dt.datetime.now(_dt.timezone.utc)),
                        "reason": reason,
                        "message": en,
                        "head": head.signed_fields(),
                    },
                )
                raise WitnessRefused(
                    f"witness {self.name} refuses the store checkpoint of {head.size} leaves "
                    f"signed {head.issued_at}: {en}",
                    message_zh=f"见证方 {self.name} 拒绝 {head.issued_at} 签发的检查点（{head.size} 个叶子）：{zh}",
                    witness=self.name,
                    reason=reason,
                    store_id=head.store_id,
                    signed_size=heads[-1].size if heads else 0,
                    found_size=head.size,
                )
            if heads and heads[-1].size == head.size:
                return  # seen already
            self._append(self._heads, head.to_json())

    @staticmethod
    def _append(path: str, obj: object) -> None:
        try:
            with open(path, "a", encoding="utf-8", newline="\n") as f:
                f.write(_dump(obj) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise CheckpointError(f"cannot write the witness {path}: {exc.strerror}") from exc


def _refusal(
    head: StoreCheckpoint, heads: Sequence[StoreCheckpoint], public_key: Ed25519PublicKey
) -> tuple[str, str, str] | None:
    """Why a witness holding ``heads`` (of the head's key and store) refuses ``head``, or None."""
    from cryptography.exceptions import InvalidSignature

    if key_id(public_key) != head.key:
        return "bad_signature", "it names another key", "签名密钥不符"
    try:
        public_key.verify(bytes.fromhex(head.signature), head.message())
    except (InvalidSignature, ValueError):
        return "bad_signature", "its signature does not verify", "签名无效"
    try:
        tree = witness_tree(heads)
    except CheckpointError as exc:
        return "damaged", str(exc), "见证方的副本已损坏"
    latest = heads[-1] if heads else None
    size, root = (latest.size, latest.root) if latest else (0, tree.root().hex())
    if head.size < size:
        return (
            "inconsistent",
            f"it is smaller than the {size} leaves witnessed on {latest.issued_at if latest else ''}"
            " (a rollback)",
            f"比已见证的 {size} 个叶子少（回滚）",
        )
    if head.size == size:
        if head.root != root:
            return (
                "inconsistent",
                f"another tree of the same size ({size} leaves) was witnessed (a fork)",
                "已见证同样大小的另一棵树（分叉）",
            )
        return None
    proof = [bytes.fromhex(p) for p in head.consistency]
    if head.base != size or not verify_consistency(
        size, head.size, bytes.fromhex(root), bytes.fromhex(head.root), proof
    ):
        return (
            "inconsistent",
            f"it does not extend the {size} leaves witnessed (the consistency proof fails)",
            f"不延续已见证的 {size} 个叶子（一致性证明不成立）",
        )
    tree.extend(head.leaves)
    if tree.root().hex() != head.root:
        return (
            "inconsistent",
            "its leaves do not hash to its signed root",
            "叶子与签名的根不符",
        )
    return None
