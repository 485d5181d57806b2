"""Checking a receipt (``mediation checkpoint --receipt CASE``, :meth:`Checkpoint.receipt`): what a
party of a case, or anyone it hands the receipt to, runs with the signer's public key.

A receipt holds the case's leaf ``(case, seq, head)``, the signed store checkpoint without its
leaves, the leaf's index and its RFC 6962 inclusion proof, and the case checkpoint when the same
issue signed one (docs/log-format.md, "Receipts").  :func:`check_receipt` checks every part of it:

1. its members and their types are the documented ones (else :class:`CheckpointError`: the receipt
   is not well formed, which is bad input, not a verdict);
2. the store checkpoint was signed by ``public_key`` (its key id, and the Ed25519 signature over
   the store message);
3. the inclusion proof leads from the leaf to the signed root;
4. a case checkpoint, when present, names the same case, seq and head and is signed by the key;
5. given the case's events, the chain up to ``seq`` is intact (a verdict's
   :attr:`~mediation.Verdict.intact`) and event ``seq`` hashes to ``head``: the events are those
   the signer attested (more events after ``seq`` are fine: they came later).

Each failure is one line of :attr:`ReceiptCheck.problems`; :attr:`ReceiptCheck.ok` when none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

from .._events import StoredEvent, loads_unique
from .keys import CheckpointError, key_id
from .merkle import Leaf, verify_inclusion
from .records import CaseCheckpoint, record_from_json

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["ReceiptCheck", "check_receipt", "parse_receipt"]

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_MEMBERS = {"case", "seq", "head", "store", "leaf_index", "inclusion_proof"}


@attrs.frozen
class Receipt:
    """A well-formed receipt, parsed."""

    case_id: str
    seq: int
    head: str
    store: SignedStore
    leaf_index: int
    proof: tuple[str, ...]
    case_checkpoint: CaseCheckpoint | None = None


@attrs.frozen
class ReceiptCheck:
    """What :func:`check_receipt` found."""

    case_id: str
    seq: int
    head: str
    #: the key id the store checkpoint names, and when it was issued
    key: str
    issued_at: str
    #: one line per failed check, in the order they run; empty when the receipt holds
    problems: tuple[str, ...] = ()
    #: whether the case's events were compared (``records`` given)
    events_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "seq": self.seq,
            "head": self.head,
            "key": self.key,
            "issued_at": self.issued_at,
            "events_checked": self.events_checked,
            "ok": self.ok,
            "problems": list(self.problems),
        }


def _bad(what: str) -> CheckpointError:
    return CheckpointError(f"not a receipt: {what}", message_zh=f"不是有效的收据：{what}")


def _int(value: object, name: str) -> int:
    if type(value) is not int or value < 0:
        raise _bad(f"{name!r} is not a non-negative integer")
    return value


def parse_receipt(data: Mapping[str, Any] | str | bytes) -> Receipt:
    """A receipt from its JSON text or decoded object; :class:`CheckpointError` when it is not one
    (a member missing or extra, a wrong type, a member named twice, not JSON)."""
    obj: object = data
    if isinstance(data, (str, bytes)):
        try:
            obj = loads_unique(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise _bad(f"not JSON (or a member named twice): {exc}") from exc
    if not isinstance(obj, Mapping):
        raise _bad("not a JSON object")
    names = set(obj)
    if not _MEMBERS <= names <= _MEMBERS | {"case_checkpoint"}:
        raise _bad(f"members {sorted(names)!r:.200}; expected {sorted(_MEMBERS)}")
    case_id, head, store = obj["case"], obj["head"], obj["store"]
    if type(case_id) is not str or not case_id:
        raise _bad("'case' is not a case id")
    seq = _int(obj["seq"], "seq")
    if seq < 1:
        raise _bad("'seq' is not a positive integer")
    if type(head) is not str or not _HEX64.match(head):
        raise _bad("'head' is not 64 lowercase hex digits")
    parsed = _store_record(store)
    proof = obj["inclusion_proof"]
    if not isinstance(proof, list) or not all(type(h) is str and _HEX64.match(h) for h in proof):
        raise _bad("'inclusion_proof' is not a list of 64-hex hashes")
    case_cp = None
    if "case_checkpoint" in obj:
        record = record_from_json(obj["case_checkpoint"])
        if not isinstance(record, CaseCheckpoint):
            raise _bad("'case_checkpoint' is not a case checkpoint")
        case_cp = record
    return Receipt(
        case_id, seq, head, parsed, _int(obj["leaf_index"], "leaf_index"), tuple(proof), case_cp
    )


class SignedStore(Protocol):
    """What a receipt's store checkpoint must offer, whatever its record format: the signed
    message, and the signed size, root, key, time and signature."""

    size: int
    root: str
    key: str
    issued_at: str
    signature: str

    def message(self) -> bytes: ...


def _store_record(store: object) -> SignedStore:
    """The receipt's ``store`` member as the log's store checkpoint record: the record without its
    unsigned members (``leaves``, and ``consistency`` where the format has it), read by the log's
    own parser, which refuses any member it does not know."""
    if not isinstance(store, Mapping) or store.get("kind") != "store":
        raise _bad("'store' is not a store checkpoint")
    if "leaves" in store or "consistency" in store:
        raise _bad("'store' carries unsigned members (a receipt holds the signed fields only)")
    problem: CheckpointError | None = None
    formats: tuple[dict[str, list[Any]], ...] = ({"leaves": []}, {"leaves": [], "consistency": []})
    for unsigned in formats:
        try:
            record = record_from_json({**store, **unsigned})
        except CheckpointError as exc:
            problem = problem or exc
            continue
        if isinstance(record, CaseCheckpoint):
            break
        return cast("SignedStore", record)
    raise _bad(f"'store' is not a store checkpoint: {problem}")


def _signed_by(public_key: Ed25519PublicKey, record: SignedStore | CaseCheckpoint) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(bytes.fromhex(record.signature), record.message())
    except (InvalidSignature, ValueError):
        return False
    return True


def check_receipt(
    receipt: Receipt | Mapping[str, Any] | str | bytes,
    public_key: Ed25519PublicKey,
    *,
    case_id: str | None = None,
    records: Sequence[StoredEvent] | None = None,
) -> ReceiptCheck:
    """Check ``receipt`` under the signer's ``public_key``: its signature, its inclusion proof, its
    case checkpoint; with ``case_id``, that it is that case's; with ``records`` (the case's events,
    in seq order), that they are the events it attests.  Raises :class:`CheckpointError` when the
    receipt is not well formed (:func:`parse_receipt`)."""
    r = receipt if isinstance(receipt, Receipt) else parse_receipt(receipt)
    store = r.store
    problems: list[str] = []
    if case_id is not None and case_id != r.case_id:
        problems.append(f"the receipt is case {r.case_id}'s, not case {case_id}'s")
    kid = key_id(public_key)
    if store.key != kid:
        problems.append(
            f"the store checkpoint was signed by key {store.key[:16]}, not by this key {kid[:16]}"
        )
    elif not _signed_by(public_key, store):
        problems.append("the store checkpoint's signature does not verify: it was altered")
    leaf = Leaf(r.case_id, r.seq, r.head).data()
    proof = [bytes.fromhex(h) for h in r.proof]
    if not verify_inclusion(leaf, r.leaf_index, store.size, proof, bytes.fromhex(store.root)):
        problems.append(
            f"the inclusion proof does not lead from leaf {r.leaf_index} of {store.size} to the "
            "signed root: the case is not under it as the receipt says"
        )
    cp = r.case_checkpoint
    if cp is not None:
        if (cp.case_id, cp.seq, cp.head) != (r.case_id, r.seq, r.head):
            problems.append("the case checkpoint names another case, seq or head than the leaf")
        if cp.key != kid or not _signed_by(public_key, cp):
            problems.append("the case checkpoint is not signed by this key")
    if records is not None:
        problems += _events_problems(r, records)
    return ReceiptCheck(
        r.case_id,
        r.seq,
        r.head,
        store.key,
        store.issued_at,
        tuple(problems),
        events_checked=records is not None,
    )


def _events_problems(r: Receipt, records: Sequence[StoredEvent]) -> list[str]:
    """The events against the receipt: intact up to ``seq``, and event ``seq`` is ``head``."""
    from .._audit import verify

    verdict = verify(records, r.case_id)
    if verdict.intact < r.seq:
        fault = verdict.fault
        why = f": {fault.kind.value} at seq {fault.seq}: {fault.message}" if fault else ""
        return [
            f"the case's events are intact only up to seq {verdict.intact}, the receipt attests "
            f"{r.seq}{why}"
        ]
    if records[r.seq - 1].hash != r.head:
        return [
            f"event {r.seq} hashes to {records[r.seq - 1].hash[:16]}…, not to the attested head"
        ]
    return []
