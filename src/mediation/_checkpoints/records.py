"""Checkpoint records and the checkpoint log: the signed encodings of case and store checkpoints,
their JSON form, and the JSON Lines file that keeps them (appended, never rewritten).

A store checkpoint (``mediation.checkpoint.store.v2``) is a signed tree head of an append-only
Merkle tree: its leaves are the case heads ``(case, seq, head)`` in the order checkpoints attested
them (every earlier checkpoint's leaves first, then one leaf per case that changed, in case-id
order), so each tree is a prefix of the next and a consistency proof links them.  A record lists
only the leaves it appends and carries the proof from the previous store checkpoint.  Store
checkpoints of the first format (``store.v1``, a tree over every case sorted by id) are still read
and checked: :class:`LegacyStoreCheckpoint`."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._events import canonical_bytes, loads_unique
from .keys import CheckpointError
from .merkle import Leaf, Tree, inclusion_proof, merkle_root

if TYPE_CHECKING:
    from .._audit import Verdict

__all__ = [
    "CASE_TAG",
    "STORE_TAG",
    "STORE_TAG_V1",
    "CaseCheckpoint",
    "Checkpoint",
    "CheckpointLog",
    "LegacyStoreCheckpoint",
    "Record",
    "StoreCheckpoint",
    "record_from_json",
]

CASE_TAG = b"mediation.checkpoint.case.v1\x00"
STORE_TAG = b"mediation.checkpoint.store.v2\x00"
STORE_TAG_V1 = b"mediation.checkpoint.store.v1\x00"
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"[0-9a-f]{128}\Z")


def _signed(tag: bytes, fields: Mapping[str, Any]) -> bytes:
    return tag + canonical_bytes(dict(fields))


@attrs.frozen
class CaseCheckpoint:
    """A signed statement "case ``case_id`` had ``seq`` events ending in ``head``"."""

    case_id: str
    seq: int
    head: str
    prev: str  # hash of this case's previous checkpoint; GENESIS for its first
    issued_at: str
    key: str  # key_id of the signing key
    signature: str = ""  # 128 hex digits; empty until signed

    def message(self) -> bytes:
        """The bytes signed: ``CASE_TAG`` + canonical JSON of every field but the signature."""
        return _signed(
            CASE_TAG,
            {
                "case": self.case_id,
                "head": self.head,
                "issued_at": self.issued_at,
                "key": self.key,
                "prev": self.prev,
                "seq": self.seq,
            },
        )

    @property
    def hash(self) -> str:
        """What the next checkpoint of the case names as ``prev``: hex SHA-256 of the message."""
        return hashlib.sha256(self.message()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "case",
            "case": self.case_id,
            "seq": self.seq,
            "head": self.head,
            "prev": self.prev,
            "issued_at": self.issued_at,
            "key": self.key,
            "signature": self.signature,
        }


@attrs.frozen
class StoreCheckpoint:
    """A signed tree head: the root of the store's append-only Merkle tree of case heads at
    ``size`` leaves, for store ``store_id``.

    ``leaves`` are the leaves this checkpoint appended (the tree's leaves ``size - len(leaves)``
    to ``size``) and ``consistency`` the RFC 9162 consistency proof from the tree at that size to
    this one, hex; neither is signed (both are checked by recomputing the root)."""

    store_id: str
    size: int
    root: str
    prev: str  # hash of the previous store checkpoint; GENESIS for the first
    issued_at: str
    key: str
    signature: str = ""
    leaves: tuple[Leaf, ...] = attrs.field(default=(), eq=False, repr=False)
    consistency: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)

    def message(self) -> bytes:
        return _signed(
            STORE_TAG,
            {
                "issued_at": self.issued_at,
                "key": self.key,
                "prev": self.prev,
                "root": self.root,
                "size": self.size,
                "store": self.store_id,
            },
        )

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.message()).hexdigest()

    @property
    def base(self) -> int:
        """The tree size this checkpoint extends: ``size - len(leaves)``."""
        return self.size - len(self.leaves)

    def signed_fields(self) -> dict[str, Any]:
        """The record without its unsigned members (``leaves``, ``consistency``)."""
        return {
            "kind": "store",
            "store": self.store_id,
            "size": self.size,
            "root": self.root,
            "prev": self.prev,
            "issued_at": self.issued_at,
            "key": self.key,
            "signature": self.signature,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.signed_fields(),
            "leaves": [[leaf.case_id, leaf.seq, leaf.head] for leaf in self.leaves],
            "consistency": list(self.consistency),
        }


@attrs.frozen
class LegacyStoreCheckpoint:
    """A store checkpoint of the first format (``store.v1``): a signed Merkle root over every
    case's ``(id, seq, head)`` sorted by case id, all listed in ``leaves`` (unsigned).  Still read
    and checked; no longer issued."""

    size: int
    root: str
    prev: str
    issued_at: str
    key: str
    signature: str = ""
    leaves: tuple[Leaf, ...] = attrs.field(default=(), eq=False, repr=False)

    def message(self) -> bytes:
        return _signed(
            STORE_TAG_V1,
            {
                "issued_at": self.issued_at,
                "key": self.key,
                "prev": self.prev,
                "root": self.root,
                "size": self.size,
            },
        )

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.message()).hexdigest()

    def computed_root(self) -> str:
        return merkle_root([leaf.data() for leaf in self.leaves]).hex()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "store",
            "size": self.size,
            "root": self.root,
            "prev": self.prev,
            "issued_at": self.issued_at,
            "key": self.key,
            "signature": self.signature,
            "leaves": [[leaf.case_id, leaf.seq, leaf.head] for leaf in self.leaves],
        }


Record = CaseCheckpoint | StoreCheckpoint | LegacyStoreCheckpoint


@attrs.frozen
class Checkpoint:
    """What one :func:`issue_checkpoint` call produced: the store checkpoint and the checkpoints of
    the cases that changed since the last one.  Serializable (:meth:`to_json_lines`); a party's
    receipt for one case is :meth:`receipt`."""

    store: StoreCheckpoint
    cases: tuple[CaseCheckpoint, ...]
    #: the cases left out because they did not verify or no longer extend the checkpoints already
    #: issued (one verdict each, in case-id order); not part of the signed records
    invalid: tuple[Verdict, ...] = attrs.field(default=(), eq=False)
    #: every leaf of the tree ``store`` signs (the log's earlier leaves, then ``store.leaves``)
    tree: tuple[Leaf, ...] = attrs.field(default=(), eq=False, repr=False)
    #: the cases this call found valid and signed (their latest leaf is their current head)
    signed: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)

    def records(self) -> tuple[Record, ...]:
        return (*self.cases, self.store)

    def to_json_lines(self) -> list[str]:
        return [_dump(r.to_json()) for r in self.records()]

    def receipt(self, case_id: str) -> dict[str, Any]:
        """What to hand a party of ``case_id``: its latest leaf, the store checkpoint's signed
        fields and an inclusion proof, which show its case is in the signed root without naming
        other cases (and its case checkpoint when this call issued one)."""
        tree = self.tree or self.store.leaves
        leaves = [leaf.data() for leaf in tree]
        ids = [leaf.case_id for leaf in tree]
        if case_id not in ids:
            raise CheckpointError(f"case {case_id} is not in this checkpoint", case=case_id)
        index = len(ids) - 1 - ids[::-1].index(case_id)
        leaf = tree[index]
        out: dict[str, Any] = {
            "case": case_id,
            "seq": leaf.seq,
            "head": leaf.head,
            "store": self.store.signed_fields(),
            "leaf_index": index,
            "inclusion_proof": [h.hex() for h in inclusion_proof(leaves, index)],
        }
        for c in self.cases:
            if c.case_id == case_id:
                out["case_checkpoint"] = c.to_json()
        return out


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _field(obj: Mapping[str, Any], name: str, kind: type, line: int | None) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CheckpointError(
            f"checkpoint {name!r} is missing or not {kind.__name__}",
            message_zh=f"检查点字段 {name} 缺失或类型不对",
            line=line,
        )
    return value


def _hex(obj: Mapping[str, Any], name: str, line: int | None, pattern: re.Pattern[str]) -> str:
    value: str = _field(obj, name, str, line)
    if not pattern.match(value):
        raise CheckpointError(
            f"checkpoint {name!r} is not lowercase hex of the right length", line=line
        )
    return value


_STORE_V1 = {"kind", "size", "root", "prev", "issued_at", "key", "signature", "leaves"}
_STORE_V2 = _STORE_V1 | {"store", "consistency"}


def _leaves(obj: Mapping[str, Any], line: int | None) -> tuple[Leaf, ...]:
    leaves = []
    for item in _field(obj, "leaves", list, line):
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not isinstance(item[0], str)
            or not isinstance(item[1], int)
            or isinstance(item[1], bool)
            or not isinstance(item[2], str)
            or not _HEX64.match(item[2])
        ):
            raise CheckpointError("a leaf is [case id, seq, head hash]", line=line)
        leaves.append(Leaf(item[0], item[1], item[2]))
    return tuple(leaves)


def record_from_json(obj: Any, line: int | None = None) -> Record:
    """Parse one checkpoint record (raises :class:`CheckpointError` naming ``line``)."""
    if not isinstance(obj, dict):
        raise CheckpointError("a checkpoint record must be an object", line=line)
    kind = obj.get("kind")
    common = {
        "prev": _hex(obj, "prev", line, _HEX64),
        "issued_at": _field(obj, "issued_at", str, line),
        "key": _hex(obj, "key", line, _HEX64),
        "signature": _hex(obj, "signature", line, _HEX128),
    }
    if kind == "case":
        if set(obj) != {"kind", "case", "seq", "head", "prev", "issued_at", "key", "signature"}:
            raise CheckpointError("a case checkpoint has exactly the documented members", line=line)
        return CaseCheckpoint(
            case_id=_field(obj, "case", str, line),
            seq=_field(obj, "seq", int, line),
            head=_hex(obj, "head", line, _HEX64),
            **common,
        )
    if kind == "store":
        members = set(obj)
        if members == _STORE_V1:
            return LegacyStoreCheckpoint(
                size=_field(obj, "size", int, line),
                root=_hex(obj, "root", line, _HEX64),
                leaves=_leaves(obj, line),
                **common,
            )
        if members != _STORE_V2:
            raise CheckpointError(
                "a store checkpoint has exactly the documented members", line=line
            )
        proof = _field(obj, "consistency", list, line)
        if not all(isinstance(p, str) and _HEX64.match(p) for p in proof):
            raise CheckpointError(
                "a consistency proof is a list of 64-digit lowercase hex hashes", line=line
            )
        record = StoreCheckpoint(
            store_id=_field(obj, "store", str, line),
            size=_field(obj, "size", int, line),
            root=_hex(obj, "root", line, _HEX64),
            leaves=_leaves(obj, line),
            consistency=tuple(proof),
            **common,
        )
        if record.base < 0:
            raise CheckpointError("a store checkpoint lists more leaves than its size", line=line)
        return record
    raise CheckpointError(f"unknown checkpoint kind {kind!r}", line=line)


@attrs.frozen
class CheckpointLog:
    """The checkpoints of one store, in the order they were issued, each with its line number."""

    records: tuple[tuple[int, Record], ...] = ()
    source: str = ""

    @classmethod
    def parse(cls, lines: Iterable[tuple[int, Any]], source: str = "") -> CheckpointLog:
        """From ``(line number, decoded JSON object)`` pairs."""
        return cls(tuple((n, record_from_json(obj, n)) for n, obj in lines), source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CheckpointLog:
        """Read a checkpoints file; a missing file is an empty log."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return cls((), os.fspath(path))
        except OSError as exc:
            raise CheckpointError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc
        return cls.parse(_json_lines(data, os.fspath(path)), os.fspath(path))

    def __len__(self) -> int:
        return len(self.records)

    def latest_store(self) -> StoreCheckpoint | LegacyStoreCheckpoint | None:
        """The last store checkpoint of either format (the chain of store checkpoints links
        both)."""
        for _, r in reversed(self.records):
            if isinstance(r, (StoreCheckpoint, LegacyStoreCheckpoint)):
                return r
        return None

    def heads(self) -> list[tuple[int, StoreCheckpoint]]:
        """The store checkpoints of the current format (signed tree heads), with their lines."""
        return [(n, r) for n, r in self.records if isinstance(r, StoreCheckpoint)]

    def tree(self) -> Tree:
        """The append-only tree the log's signed tree heads describe: every head's leaves, in
        file order.  Raises :class:`CheckpointError` when a head does not extend the one before it
        (its leaves do not start where the tree ends) or does not hash to its root; the
        :class:`~mediation.audit.CheckpointAuditor` reports the same as faults instead."""
        tree = Tree()
        for line, head in self.heads():
            if head.base != len(tree):
                raise CheckpointError(
                    f"{self.source or 'checkpoint log'}: line {line}: the store checkpoint extends "
                    f"a tree of {head.base} leaves, the checkpoints before it hold {len(tree)}",
                    line=line,
                )
            tree.extend(head.leaves)
            if tree.root().hex() != head.root:
                raise CheckpointError(
                    f"{self.source or 'checkpoint log'}: line {line}: the leaves do not hash to "
                    "the signed Merkle root",
                    line=line,
                )
        return tree

    def tree_leaves(self) -> tuple[Leaf, ...]:
        """Every leaf of the log's tree, in order (see :meth:`tree`)."""
        return tuple(leaf for _, head in self.heads() for leaf in head.leaves)

    def latest_cases(self) -> dict[str, CaseCheckpoint]:
        out: dict[str, CaseCheckpoint] = {}
        for _, r in self.records:
            if isinstance(r, CaseCheckpoint):
                out[r.case_id] = r
        return out

    def append_to(self, path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
        """Append ``checkpoint``'s records to the file at ``path`` (durably: fsync)."""
        text = "".join(line + "\n" for line in checkpoint.to_json_lines())
        try:
            with open(path, "a", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise CheckpointError(f"cannot write {os.fspath(path)}: {exc.strerror}") from exc


def _json_lines(data: bytes, source: str) -> Iterator[tuple[int, Any]]:
    if data and not data.endswith(b"\n"):
        n = data.count(b"\n") + 1
        raise CheckpointError(
            f"{source}: line {n} is incomplete (the file is truncated)",
            message_zh=f"{source}：第 {n} 行不完整（文件被截断）",
            line=n,
        )
    for n, raw in enumerate(data.split(b"\n")[:-1] if data else [], start=1):
        try:
            yield n, loads_unique(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(
                f"{source}: line {n} is not JSON (or names a member twice): {exc}",
                message_zh=f"{source}：第 {n} 行不是 JSON",
                line=n,
            ) from exc
