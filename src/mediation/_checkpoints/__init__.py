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

This package is a facade over its modules: :mod:`.keys` (key pairs, :class:`CheckpointError`),
:mod:`.merkle` (the tree), :mod:`.records` (the signed records and the log file), :mod:`.issue`
(:func:`issue_checkpoint`) and :mod:`.auditor` (:class:`CheckpointAuditor`).
"""

from __future__ import annotations

from .auditor import CheckpointAuditor, StoreFault
from .issue import issue_checkpoint
from .keys import CheckpointError, generate_key, key_id, load_private_key, load_public_key
from .merkle import Leaf, inclusion_proof, leaf_hash, merkle_root, verify_inclusion
from .receipts import ReceiptCheck, check_receipt, parse_receipt  # noqa: F401 - a receipt's check
from .records import (
    CASE_TAG,
    STORE_TAG,
    CaseCheckpoint,
    Checkpoint,
    CheckpointLog,
    Record,
    StoreCheckpoint,
    record_from_json,
)
from .records import _json_lines as _json_lines  # the CLI reads checkpoint files line by line

__all__ = [
    "CASE_TAG",
    "STORE_TAG",
    "CaseCheckpoint",
    "Checkpoint",
    "CheckpointAuditor",
    "CheckpointError",
    "CheckpointLog",
    "Leaf",
    "Record",
    "StoreCheckpoint",
    "StoreFault",
    "generate_key",
    "inclusion_proof",
    "issue_checkpoint",
    "key_id",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "record_from_json",
    "verify_inclusion",
]
