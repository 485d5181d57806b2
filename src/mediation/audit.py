"""The auditor's API: whole-store verification, signed checkpoints and portable exports (the CLI
is built on these).

- Whole stores: :func:`verify_store` verifies every case of a store, in several processes when it
  is large (``mediation verify --jobs``); it returns a :class:`StoreVerification`, one verdict per
  case in case-id order.  :func:`checkpointed_seqs` lists the seqs a checkpoint log names, for its
  ``hashes_at``.
- Statistics from evidence: :func:`verified_statistics` replays every case and counts the cases
  that verify, beside the figures of the summary rows, naming the rows that disagree
  (:class:`VerifiedStatistics`, :class:`Disagreement`; ``mediation stats --verified``).
- Checkpoints (``pip install mediation[crypto]``): :func:`generate_key`, :func:`load_private_key`,
  :func:`load_public_key`, :func:`issue_checkpoint` (a call the host makes, e.g. after each
  agreement or hourly), :class:`CheckpointLog`, :class:`CheckpointAuditor`; receipts are the
  :class:`CaseCheckpoint` records, which can be handed to the parties, and a party checks its
  receipt with :func:`check_receipt` (a :class:`ReceiptCheck`).  :class:`Signer` is the
  signer's whole round with its own state file (:class:`SignerState`, outside the database) and
  witnesses (:class:`DirectoryWitness`), refusing with :class:`CheckpointRefused` a store or log
  rolled back; :func:`consistency_proof` / :func:`verify_consistency` link two tree heads.  The
  construction is in docs/auditing.md.
- Exports: :func:`export_store` / :func:`write_export` write the portable JSON Lines format that
  carries the stored bytes and hashes unchanged; :class:`ExportReader` reads it back and
  :func:`import_export` imports atomically, refusing anything that does not verify.
"""

from ._checkpoints import (
    CaseCheckpoint,
    CheckpointAuditor,
    CheckpointError,
    CheckpointLog,
    CheckpointRefused,
    DirectoryWitness,
    Signer,
    SignerState,
    StoreCheckpoint,
    Witness,
    WitnessRefused,
    consistency_proof,
    default_store_id,
    generate_key,
    inclusion_proof,
    issue_checkpoint,
    load_private_key,
    load_public_key,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)
from ._checkpoints.receipts import ReceiptCheck, check_receipt
from ._export import ExportError, ExportReader, export_store, import_export, write_export
from ._stats import Disagreement, VerifiedStatistics, verified_statistics
from ._verify_store import StoreVerification, checkpointed_seqs, verify_store

__all__ = [
    "CaseCheckpoint",
    "CheckpointAuditor",
    "CheckpointError",
    "CheckpointLog",
    "CheckpointRefused",
    "DirectoryWitness",
    "Disagreement",
    "ExportError",
    "ExportReader",
    "ReceiptCheck",
    "Signer",
    "SignerState",
    "StoreCheckpoint",
    "StoreVerification",
    "VerifiedStatistics",
    "Witness",
    "WitnessRefused",
    "check_receipt",
    "checkpointed_seqs",
    "consistency_proof",
    "default_store_id",
    "export_store",
    "generate_key",
    "import_export",
    "inclusion_proof",
    "issue_checkpoint",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "verified_statistics",
    "verify_consistency",
    "verify_inclusion",
    "verify_store",
    "write_export",
]
