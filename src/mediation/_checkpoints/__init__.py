"""Signed checkpoints: what a hash chain alone cannot show.

A hash chain proves that the events it holds were not altered, but not that nothing was cut off the
end, that the chain was not recomputed from scratch, or that a whole case was not deleted.  A
*checkpoint* fixes the store's state at one moment under an Ed25519 signature held by someone other
than the store's operator (the committee's director, the 司法所), so that all three become
detectable later.  docs/auditing.md ("Signed checkpoints") is the normative description; in short:

- a **case checkpoint** signs ``(case id, seq, head hash, previous checkpoint hash)`` of one case;
- a **store checkpoint** is a signed tree head: the root of an append-only RFC 6962 Merkle tree
  whose leaves are case heads ``(case id, seq, head)`` in the order checkpoints attested them,
  with its size, the store's id and the previous store checkpoint's hash; each carries the RFC 9162
  consistency proof from the previous one, so every tree is provably a prefix of the next;
- each signed message is a domain tag followed by the canonical JSON of its fields (the same
  encoding as event bodies, :func:`mediation.canonical_bytes`), so a signature over one kind of
  message can never be taken for another;
- a leaf hash is ``SHA-256(0x00 || leaf bytes)``, a node hash ``SHA-256(0x01 || left || right)``.

:func:`issue_checkpoint` is the host's call: it verifies the whole store, checks that it still
extends the previous checkpoints, and signs.  :class:`Signer` adds what a database administrator
cannot roll back: the signer's own state file (:class:`SignerState`, outside the database) and
witnesses (:class:`DirectoryWitness`) that keep every tree head and refuse one that does not
extend the last.  :class:`CheckpointAuditor` is the auditor's side.
Checkpoints are kept in a JSON Lines file (one record a line, appended, never rewritten; by default
``<database>.checkpoints.jsonl`` beside a SQLite store), and embedded in exports.

``cryptography`` is needed only here and only when signing or checking (``mediation[crypto]``).

This package is a facade over its modules: :mod:`.keys` (key pairs, :class:`CheckpointError`),
:mod:`.merkle` (the tree and its proofs), :mod:`.records` (the signed records and the log file),
:mod:`.state` (the signer's state file), :mod:`.witness` (witnesses), :mod:`.issue`
(:func:`issue_checkpoint`, :class:`Signer`) and :mod:`.auditor` (:class:`CheckpointAuditor`).
"""

from __future__ import annotations

from .auditor import CheckpointAuditor, StoreFault
from .issue import Signed, Signer, issue_checkpoint
from .keys import CheckpointError, generate_key, key_id, load_private_key, load_public_key
from .merkle import (
    Leaf,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    root_of_hashes,
    verify_consistency,
    verify_inclusion,
)
from .receipts import ReceiptCheck, check_receipt, parse_receipt  # noqa: F401 - a receipt's check
from .records import (
    CASE_TAG,
    STORE_TAG,
    STORE_TAG_V1,
    CaseCheckpoint,
    Checkpoint,
    CheckpointLog,
    LegacyStoreCheckpoint,
    Record,
    StoreCheckpoint,
    record_from_json,
)
from .records import _json_lines as _json_lines  # the CLI reads checkpoint files line by line
from .state import (
    CheckpointRefused,
    SignedHead,
    SignerState,
    SignerStateError,
    default_store_id,
)
from .witness import DirectoryWitness, Witness, WitnessRefused

__all__ = [
    "CASE_TAG",
    "STORE_TAG",
    "STORE_TAG_V1",
    "CaseCheckpoint",
    "Checkpoint",
    "CheckpointAuditor",
    "CheckpointError",
    "CheckpointLog",
    "CheckpointRefused",
    "DirectoryWitness",
    "Leaf",
    "LegacyStoreCheckpoint",
    "Record",
    "Signed",
    "SignedHead",
    "Signer",
    "SignerState",
    "SignerStateError",
    "StoreCheckpoint",
    "StoreFault",
    "Tree",
    "Witness",
    "WitnessRefused",
    "consistency_proof",
    "default_store_id",
    "generate_key",
    "inclusion_proof",
    "issue_checkpoint",
    "key_id",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "record_from_json",
    "root_of_hashes",
    "verify_consistency",
    "verify_inclusion",
]
