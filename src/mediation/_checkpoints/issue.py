"""Issuing checkpoints: the host's call, which verifies the store, checks that it still extends the
checkpoints already issued, and signs."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._audit import Fault, FaultKind, Verdict, verify
from .._errors import IntegrityViolation
from .._events import GENESIS, StoredEvent, format_time
from ..stores._base import Store
from .keys import key_id
from .merkle import Leaf, merkle_root
from .records import CaseCheckpoint, Checkpoint, CheckpointLog, StoreCheckpoint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["issue_checkpoint"]


def _sign(record: Any, private_key: Ed25519PrivateKey) -> Any:
    return attrs.evolve(record, signature=private_key.sign(record.message()).hex())


def issue_checkpoint(
    store: Store,
    private_key: Ed25519PrivateKey,
    *,
    log: CheckpointLog | None = None,
    now: _dt.datetime | None = None,
    check: bool = True,
    refuse_invalid: bool = False,
) -> Checkpoint:
    """Verify the store and sign a checkpoint of every valid case (the host's call; keep the key
    off the server).

    A case is left out, and listed in :attr:`Checkpoint.invalid` with its verdict, when it does not
    verify (strictly) or no longer extends ``log``'s latest checkpoints (shorter, or its chain
    differs at an attested seq); an attested case missing from the store is listed too.  A
    checkpoint never blesses a rewritten history, and one bad case leaves every other one signed.
    With ``refuse_invalid`` the first such case refuses the whole store instead
    (:class:`~mediation.IntegrityViolation`, signing nothing).  ``check=False`` skips the full
    replay (the chain extension is still checked); only for stores verified just before.  Returns
    the records to append to the log (:meth:`CheckpointLog.append_to`).
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
    invalid: list[Verdict] = []

    def left_out(verdict: Verdict, en: str, zh: str) -> None:
        if refuse_invalid:
            raise IntegrityViolation(
                en,
                message_zh=zh,
                verdict=verdict,
                case=verdict.case_id,
                seq=verdict.fault.seq if verdict.fault else None,
            )
        invalid.append(verdict)

    for case_id in store.case_ids():
        records = store.read(case_id)
        if check:
            verdict = verify(records, case_id, strict=True).without_case()
            if not verdict.ok:
                attested.pop(case_id, None)
                left_out(
                    verdict,
                    f"refusing to sign: {verdict.describe()}",
                    f"拒绝签名：{verdict.describe('zh')}",
                )
                continue
        broken = next(
            (
                seq
                for seq, head in sorted(attested.pop(case_id, ()))
                if seq > len(records) or records[seq - 1].hash != head
            ),
            None,
        )
        if broken is not None:
            kind = FaultKind.TRUNCATED if broken > len(records) else FaultKind.CHECKPOINT
            at = len(records) + 1 if kind is FaultKind.TRUNCATED else broken
            left_out(
                _invalid(
                    case_id,
                    records,
                    Fault(at, kind, f"the case no longer extends its checkpoint at seq {broken}"),
                ),
                f"refusing to sign: case {case_id} no longer extends its checkpoint at seq {broken}",
                f"拒绝签名：案件 {case_id} 与第 {broken} 号事件处的检查点不一致",
            )
            continue
        if records:
            leaves.append(Leaf(case_id, len(records), records[-1].hash))
    if attested:
        missing = sorted(attested)
        if refuse_invalid:
            raise IntegrityViolation(
                f"refusing to sign: case(s) {', '.join(missing)} attested by a checkpoint are "
                "missing",
                message_zh=f"拒绝签名：检查点记录的案件 {'、'.join(missing)} 已不在存储中",
                verdict=None,
                case=missing[0],
            )
        for case_id in missing:
            seq = max(s for s, _ in attested[case_id])
            invalid.append(
                _invalid(
                    case_id,
                    [],
                    Fault(
                        1,
                        FaultKind.TRUNCATED,
                        f"the whole case is missing from the store; a checkpoint attests {seq} "
                        "events",
                    ),
                )
            )
        invalid.sort(key=lambda v: v.case_id)
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
    return Checkpoint(store_cp, tuple(cases), tuple(invalid))


def _invalid(case_id: str, records: Sequence[StoredEvent], fault: Fault) -> Verdict:
    """The verdict of a case left out for a checkpoint fault (its events may verify)."""
    head = records[-1].hash if records else ""
    return Verdict(case_id, len(records), len(records), head, "?", fault)
