"""Checkpoint records and the checkpoint log: the signed encodings of case and store checkpoints,
their JSON form, and the JSON Lines file that keeps them (appended, never rewritten)."""

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
from .merkle import Leaf, inclusion_proof, merkle_root

if TYPE_CHECKING:
    from .._audit import Verdict

__all__ = [
    "CASE_TAG",
    "STORE_TAG",
    "CaseCheckpoint",
    "Checkpoint",
    "CheckpointLog",
    "Record",
    "StoreCheckpoint",
    "record_from_json",
]

CASE_TAG = b"mediation.checkpoint.case.v1\x00"
STORE_TAG = b"mediation.checkpoint.store.v1\x00"
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
    """A signed Merkle root over every case's ``(id, seq, head)``; ``leaves`` list them (unsigned
    themselves: they are checked by recomputing the root)."""

    size: int
    root: str
    prev: str  # hash of the previous store checkpoint; GENESIS for the first
    issued_at: str
    key: str
    signature: str = ""
    leaves: tuple[Leaf, ...] = attrs.field(default=(), eq=False, repr=False)

    def message(self) -> bytes:
        return _signed(
            STORE_TAG,
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


Record = CaseCheckpoint | StoreCheckpoint


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

    def records(self) -> tuple[Record, ...]:
        return (*self.cases, self.store)

    def to_json_lines(self) -> list[str]:
        return [_dump(r.to_json()) for r in self.records()]

    def receipt(self, case_id: str) -> dict[str, Any]:
        """What to hand a party of ``case_id``: its leaf, the store checkpoint's signed fields and
        an inclusion proof, which show its case is in the signed root without naming other cases
        (and its case checkpoint when this call issued one)."""
        leaves = [leaf.data() for leaf in self.store.leaves]
        ids = [leaf.case_id for leaf in self.store.leaves]
        if case_id not in ids:
            raise CheckpointError(f"case {case_id} is not in this checkpoint", case=case_id)
        index = ids.index(case_id)
        leaf = self.store.leaves[index]
        out: dict[str, Any] = {
            "case": case_id,
            "seq": leaf.seq,
            "head": leaf.head,
            "store": {k: v for k, v in self.store.to_json().items() if k != "leaves"},
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
        if set(obj) != {"kind", "size", "root", "prev", "issued_at", "key", "signature", "leaves"}:
            raise CheckpointError(
                "a store checkpoint has exactly the documented members", line=line
            )
        raw = _field(obj, "leaves", list, line)
        leaves = []
        for item in raw:
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
        return StoreCheckpoint(
            size=_field(obj, "size", int, line),
            root=_hex(obj, "root", line, _HEX64),
            leaves=tuple(leaves),
            **common,
        )
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

    def latest_store(self) -> StoreCheckpoint | None:
        for _, r in reversed(self.records):
            if isinstance(r, StoreCheckpoint):
                return r
        return None

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
