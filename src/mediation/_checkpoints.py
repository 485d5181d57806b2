"""Signed checkpoints: what a hash chain alone cannot show.

A hash chain proves that the events it holds were not altered, but not that nothing was cut off the
end, that the chain was not recomputed from scratch, or that a whole case was not deleted.  A
*checkpoint* fixes the store's state at one moment under an Ed25519 signature held by someone other
than the store's operator (the committee's director, the 司法所), so that all three become
detectable later.  docs/auditing.md ("Signed checkpoints") is the normative description; in short:

- a **case checkpoint** signs ``(case id, seq, head hash, previous checkpoint hash)`` of one case;
- a **store checkpoint** signs the root of an RFC 6962 Merkle tree over every case's
  ``(case id, seq, head)``, sorted by case id, with the previous store checkpoint's hash;
- each signed message is a domain tag followed by the canonical JSON of its fields (the same
  encoding as event bodies, :func:`mediation.canonical_bytes`), so a signature over one kind of
  message can never be taken for another;
- a leaf hash is ``SHA-256(0x00 || leaf bytes)``, a node hash ``SHA-256(0x01 || left || right)``.

:func:`issue_checkpoint` is the host's call: it verifies the whole store, checks that it still
extends the previous checkpoints, and signs.  :class:`CheckpointAuditor` is the auditor's side.
Checkpoints are kept in a JSON Lines file (one record a line, appended, never rewritten; by default
``<database>.checkpoints.jsonl`` beside a SQLite store), and embedded in exports.

``cryptography`` is needed only here and only when signing or checking (``mediation[crypto]``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._audit import Fault, FaultKind, verify
from ._errors import IntegrityViolation, MediationError
from ._events import GENESIS, canonical_bytes, format_time
from .stores._base import Store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "CASE_TAG",
    "STORE_TAG",
    "CaseCheckpoint",
    "Checkpoint",
    "CheckpointAuditor",
    "CheckpointError",
    "CheckpointLog",
    "Leaf",
    "StoreCheckpoint",
    "generate_key",
    "inclusion_proof",
    "issue_checkpoint",
    "key_id",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "verify_inclusion",
]

CASE_TAG = b"mediation.checkpoint.case.v1\x00"
STORE_TAG = b"mediation.checkpoint.store.v1\x00"
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"[0-9a-f]{128}\Z")


class CheckpointError(MediationError):
    """A key or checkpoint file cannot be used (unreadable, malformed, wrong kind of key), or
    ``cryptography`` is not installed.  ``line`` names the offending line of a file, if any."""

    def __init__(self, message: str, *, line: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.line = line


def _crypto() -> None:
    """Fail with a clear message when the ``crypto`` extra is missing."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise CheckpointError(
            "signed checkpoints need the 'cryptography' package: pip install 'mediation[crypto]'",
            message_zh="签名检查点需要 cryptography 包：pip install 'mediation[crypto]'",
        ) from exc


# -- keys ------------------------------------------------------------------------------------------


def _passphrase(passphrase: bytes | None) -> bytes | None:
    if passphrase is not None:
        return passphrase
    env = os.environ.get("MEDIATION_KEY_PASSPHRASE")
    return env.encode() if env else None


def generate_key(passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as ``(private PEM, public PEM)``.

    The private key is PKCS#8, encrypted with ``passphrase`` (or ``$MEDIATION_KEY_PASSPHRASE``)
    when one is given; the public key is SubjectPublicKeyInfo PEM.
    """
    _crypto()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    secret = _passphrase(passphrase)
    encryption: Any = ser.BestAvailableEncryption(secret) if secret else ser.NoEncryption()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return bytes(private), bytes(public)


def load_private_key(data: bytes, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8)."""
    _crypto()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = ser.load_pem_private_key(data, password=_passphrase(passphrase))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(
            f"not a usable PEM private key: {exc}", message_zh="不是可用的 PEM 私钥"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(
            f"the private key is {type(key).__name__}, not Ed25519",
            message_zh="私钥不是 Ed25519 密钥",
        )
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or from its 32 raw bytes written as hex or base64."""
    _crypto()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        if b"PRIVATE KEY" in text.split(b"\n", 1)[0]:
            raise CheckpointError(
                "this is a private key; verify with the public key (the .pub file)",
                message_zh="这是私钥；请使用公钥（.pub 文件）验证",
            )
        try:
            key = ser.load_pem_public_key(text)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(
                f"not a usable PEM public key: {exc}", message_zh="不是可用的 PEM 公钥"
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointError(
                f"the public key is {type(key).__name__}, not Ed25519",
                message_zh="公钥不是 Ed25519 密钥",
            )
        return key
    raw: bytes | None = None
    try:
        raw = bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise CheckpointError(
            "not an Ed25519 public key (expected PEM, or 32 bytes as hex or base64)",
            message_zh="不是 Ed25519 公钥（应为 PEM，或 32 字节的十六进制/base64）",
        )
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise CheckpointError(f"not an Ed25519 public key: {exc}") from exc


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: hex SHA-256 of its 32 raw bytes (recorded in every checkpoint)."""
    from cryptography.hazmat.primitives import serialization as ser

    raw = public_key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


# -- the Merkle tree (RFC 6962, section 2.1) --------------------------------------------------------


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


# -- checkpoint records ----------------------------------------------------------------------------


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
            yield n, json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(
                f"{source}: line {n} is not JSON: {exc}",
                message_zh=f"{source}：第 {n} 行不是 JSON",
                line=n,
            ) from exc


# -- issuing ---------------------------------------------------------------------------------------


def _sign(record: Any, private_key: Ed25519PrivateKey) -> Any:
    return attrs.evolve(record, signature=private_key.sign(record.message()).hex())


def issue_checkpoint(
    store: Store,
    private_key: Ed25519PrivateKey,
    *,
    log: CheckpointLog | None = None,
    now: _dt.datetime | None = None,
    check: bool = True,
) -> Checkpoint:
    """Verify the store and sign a checkpoint of it (the host's call; keep the key off the server).

    Refuses (:class:`~mediation.IntegrityViolation`) when a case does not verify, or when the store
    no longer extends ``log``'s latest checkpoints (a case is missing, shorter, or its chain differs
    at an attested seq): a checkpoint must never bless a rewritten history.  ``check=False`` skips
    the full replay (the chain extension is still checked); only for stores verified just before.
    Returns the records to append to the log (:meth:`CheckpointLog.append_to`).
    """
    log = log or CheckpointLog()
    issued_at = format_time(now or _dt.datetime.now(_dt.timezone.utc))
    kid = key_id(private_key.public_key())
    attested: dict[str, list[tuple[int, str]]] = {}
    last_store = log.latest_store()
    if last_store is not None:
        for leaf in last_store.leaves:
            attested.setdefault(leaf.case_id, []).append((leaf.seq, leaf.head))
    last_cases = log.latest_cases()
    for cp in last_cases.values():
        attested.setdefault(cp.case_id, []).append((cp.seq, cp.head))

    leaves: list[Leaf] = []
    for case_id in store.case_ids():
        records = store.read(case_id)
        if check:
            verdict = verify(records, case_id, strict=True)
            if not verdict.ok:
                raise IntegrityViolation(
                    f"refusing to sign: {verdict.describe()}",
                    message_zh=f"拒绝签名：{verdict.describe('zh')}",
                    verdict=verdict,
                    case=case_id,
                    seq=verdict.fault.seq if verdict.fault else None,
                )
        for seq, head in attested.pop(case_id, ()):
            if seq > len(records) or records[seq - 1].hash != head:
                raise IntegrityViolation(
                    f"refusing to sign: case {case_id} no longer extends its checkpoint at seq {seq}",
                    message_zh=f"拒绝签名：案件 {case_id} 与第 {seq} 号事件处的检查点不一致",
                    verdict=None,
                    case=case_id,
                    seq=seq,
                )
        if records:
            leaves.append(Leaf(case_id, len(records), records[-1].hash))
    if attested:
        missing = sorted(attested)
        raise IntegrityViolation(
            f"refusing to sign: case(s) {', '.join(missing)} attested by a checkpoint are missing",
            message_zh=f"拒绝签名：检查点记录的案件 {'、'.join(missing)} 已不在存储中",
            verdict=None,
            case=missing[0],
        )
    leaves.sort(key=lambda leaf: leaf.case_id)
    cases = []
    for leaf in leaves:
        prev_cp = last_cases.get(leaf.case_id)
        if prev_cp is not None and (prev_cp.seq, prev_cp.head) == (leaf.seq, leaf.head):
            continue
        cases.append(
            _sign(
                CaseCheckpoint(
                    leaf.case_id,
                    leaf.seq,
                    leaf.head,
                    prev_cp.hash if prev_cp else GENESIS,
                    issued_at,
                    kid,
                ),
                private_key,
            )
        )
    root = merkle_root([leaf.data() for leaf in leaves]).hex()
    store_cp = _sign(
        StoreCheckpoint(
            len(leaves),
            root,
            last_store.hash if last_store else GENESIS,
            issued_at,
            kid,
            leaves=tuple(leaves),
        ),
        private_key,
    )
    return Checkpoint(store_cp, tuple(cases))


# -- auditing --------------------------------------------------------------------------------------


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
    """

    def __init__(self, log: CheckpointLog, public_key: Ed25519PublicKey) -> None:
        from cryptography.exceptions import InvalidSignature

        self.key_id = key_id(public_key)
        self.store_faults: list[StoreFault] = []
        self.checked = 0  # checkpoints signed by the key and checked
        self.case_checkpoints = 0
        self.store_checkpoints = 0
        self.other_keys: set[str] = set()
        self._attested: dict[str, list[_Attestation]] = {}
        self._seen: set[str] = set()
        last_case: dict[str, str] = {}
        last_store = GENESIS
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
        return min(faults, key=lambda f: f.seq) if faults else None

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
