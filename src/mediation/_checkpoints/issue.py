"""Issuing checkpoints: the host's call, which verifies the store, checks that it still extends the
checkpoints already issued (and, with the signer's state and witnesses, that the checkpoint log is
the one the signer last extended), and signs; :class:`Signer` does the whole round: the checks,
signing, appending to the log, recording the new head in the state file, publishing to the
witnesses."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._audit import Fault, FaultKind, Verdict, verify
from .._errors import IntegrityViolation
from .._events import GENESIS, StoredEvent, format_time
from .._roster import rosters_of
from ..stores._base import Store
from .keys import CheckpointError, key_id
from .merkle import Leaf, Tree
from .records import (
    CaseCheckpoint,
    Checkpoint,
    CheckpointLog,
    LegacyStoreCheckpoint,
    StoreCheckpoint,
)
from .state import CheckpointRefused, SignerState, locked
from .witness import Witness, WitnessRefused

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = ["Signed", "Signer", "issue_checkpoint"]


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
    store_id: str = "",
    state: SignerState | None = None,
    witnesses: Sequence[Witness] = (),
    adopt: bool = False,
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

    The store checkpoint is a signed tree head of ``store_id`` (see :mod:`.records`): it appends
    one leaf per case that changed to the tree of ``log``'s store checkpoints and carries the
    consistency proof from the previous one.  With the signer's ``state``
    (:class:`SignerState`), a log that does not hold the last checkpoint the signer issued for
    ``store_id`` (deleted, rolled back, replaced) is refused with :class:`CheckpointRefused`,
    signing nothing; so is a log signed by this key when the state has no entry for the store,
    unless ``adopt``.  Each of ``witnesses`` must hold no larger or different tree
    (:class:`WitnessRefused`).  :class:`Signer` also records and publishes what was signed.
    """
    log = CheckpointLog() if log is None else log
    issued_at = format_time(now or _dt.datetime.now(_dt.timezone.utc))
    public_key = private_key.public_key()
    kid = key_id(public_key)
    try:
        tree = log.tree()
    except CheckpointError as exc:
        raise CheckpointRefused(
            f"refusing to sign: the checkpoint log was altered: {exc}",
            message_zh=f"拒绝签名：检查点文件被篡改：{exc.message_zh}",
            reason="log_altered",
            store_id=store_id,
            line=exc.line,
        ) from exc
    if state is not None:
        _check_state(state, store_id, log, public_key, adopt)
    for witness in witnesses:
        _check_witness(witness, kid, store_id, tree)
    # every leaf of the tree is checked, not only each case's latest: a leaf appended past the
    # signer (a forged head the state did not stop) cannot hide an earlier one
    attested: dict[str, list[tuple[int, str]]] = {}
    latest_leaf: dict[str, tuple[int, str]] = {}
    for _, head in log.heads():
        for leaf in head.leaves:
            latest_leaf[leaf.case_id] = (leaf.seq, leaf.head)
            attested.setdefault(leaf.case_id, []).append((leaf.seq, leaf.head))
    last_store = log.latest_store()
    last_legacy = next(
        (r for _, r in reversed(log.records) if isinstance(r, LegacyStoreCheckpoint)), None
    )
    if last_legacy is not None:
        for leaf in last_legacy.leaves:
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

    # every role claim is judged on the committee's roster, as verification judges it
    rosters = rosters_of(store) if check else {}
    for case_id in store.case_ids():
        records = store.read(case_id)
        if check:
            verdict = verify(records, case_id, strict=True, rosters=rosters).without_case()
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
    base = len(tree)
    appended = [leaf for leaf in leaves if latest_leaf.get(leaf.case_id) != (leaf.seq, leaf.head)]
    tree.extend(appended)
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
    store_cp = _sign(
        StoreCheckpoint(
            store_id,
            len(tree),
            tree.root().hex(),
            last_store.hash if last_store else GENESIS,
            issued_at,
            kid,
            leaves=tuple(appended),
            consistency=tuple(p.hex() for p in tree.consistency(base)),
        ),
        private_key,
    )
    every_leaf = (*log.tree_leaves(), *appended)
    return Checkpoint(
        store_cp,
        tuple(cases),
        tuple(invalid),
        tree=every_leaf,
        signed=tuple(leaf.case_id for leaf in leaves),
    )


def _check_state(
    state: SignerState,
    store_id: str,
    log: CheckpointLog,
    public_key: Ed25519PublicKey,
    adopt: bool,
) -> None:
    """Refuse a log that does not hold the last store checkpoint the signer issued for the store
    (and, after it, only checkpoints the signer signed: a crash between appending and recording
    leaves one more)."""
    from cryptography.exceptions import InvalidSignature

    kid = key_id(public_key)
    heads = log.heads()
    size = heads[-1][1].size if heads else 0
    where = log.source or "the checkpoint log"
    signed = state.stores.get(store_id)
    if signed is None:
        ours = [h for _, h in heads if h.key == kid]
        if ours and not adopt:
            raise CheckpointRefused(
                f"refusing to sign: the signer has no record of store {store_id!r}, but {where} "
                f"holds {len(ours)} store checkpoint(s) signed by this key: if the store was "
                "renamed or the state file is new, sign once with adopt (--adopt)",
                message_zh=f"拒绝签名：签名方没有存储 {store_id!r} 的记录，但 {where} 中有 {len(ours)} 个本密钥签发的"
                "存储检查点；若存储改名或状态文件是新的，请用 --adopt 签发一次",
                reason="unknown_store",
                store_id=store_id,
                found_size=size,
            )
        return
    found = next((i for i, (_, h) in enumerate(heads) if h.hash == signed.head), None)
    if found is None:
        if not heads:
            reason, what = "log_missing", f"{where} holds no store checkpoint (deleted or replaced)"
            zh = "检查点文件中没有存储检查点（被删除或替换）"
        elif size < signed.size:
            reason, what = (
                "log_rolled_back",
                f"{where} ends at a tree of {size} leaves (rolled back)",
            )
            zh = f"检查点文件只到 {size} 个叶子（被回滚）"
        else:
            reason, what = "log_diverged", f"{where} holds another tree of {size} leaves (replaced)"
            zh = f"检查点文件中是另一棵 {size} 个叶子的树（被替换）"
        raise CheckpointRefused(
            f"refusing to sign store {store_id!r}: the signer last signed a tree of "
            f"{signed.size} leaves (root {signed.root[:16]}…, {signed.issued_at}), but {what}",
            message_zh=f"拒绝签名存储 {store_id!r}：签名方上次签发的树有 {signed.size} 个叶子"
            f"（{signed.issued_at}），但{zh}",
            reason=reason,
            store_id=store_id,
            signed_size=signed.size,
            found_size=size,
        )
    for line, head in heads[found + 1 :]:
        try:
            if head.key != kid:
                raise InvalidSignature
            public_key.verify(bytes.fromhex(head.signature), head.message())
        except InvalidSignature:
            raise CheckpointRefused(
                f"refusing to sign store {store_id!r}: line {line} of {where} is a store "
                "checkpoint after the last one this signer issued, not signed by it",
                message_zh=f"拒绝签名存储 {store_id!r}：{where} 第 {line} 行是签名方上次签发之后、"
                "并非由它签发的存储检查点",
                reason="log_diverged",
                store_id=store_id,
                signed_size=signed.size,
                found_size=size,
                line=line,
            ) from None


def _check_witness(witness: Witness, kid: str, store_id: str, tree: Tree) -> None:
    """Refuse to extend a tree a witness has seen a larger or different version of."""
    latest = witness.latest(kid, store_id)
    if latest is None:
        return
    if latest.size > len(tree):
        raise WitnessRefused(
            f"refusing to sign store {store_id!r}: witness {witness.name} holds a tree of "
            f"{latest.size} leaves signed {latest.issued_at}; the checkpoint log holds "
            f"{len(tree)} (the log was rolled back)",
            message_zh=f"拒绝签名存储 {store_id!r}：见证方 {witness.name} 保存的树有 {latest.size} 个叶子，"
            f"检查点文件只有 {len(tree)} 个（被回滚）",
            witness=witness.name,
            reason="witness_ahead",
            store_id=store_id,
            signed_size=latest.size,
            found_size=len(tree),
        )
    if tree.root_at(latest.size).hex() != latest.root:
        raise WitnessRefused(
            f"refusing to sign store {store_id!r}: witness {witness.name} holds another tree "
            f"of {latest.size} leaves (signed {latest.issued_at}) than the checkpoint log",
            message_zh=f"拒绝签名存储 {store_id!r}：见证方 {witness.name} 保存的 {latest.size} 个叶子的树与检查点文件不同",
            witness=witness.name,
            reason="witness_diverged",
            store_id=store_id,
            signed_size=latest.size,
            found_size=len(tree),
        )


@attrs.frozen
class Signed:
    """What :meth:`Signer.sign` did: the checkpoint appended and recorded, and the witnesses that
    refused to take it (the checkpoint stands; publish again later)."""

    checkpoint: Checkpoint
    refused: tuple[CheckpointError, ...] = ()


class Signer:
    """The signer's round: :func:`issue_checkpoint` against its state file and witnesses, append
    to the checkpoint log, record the new head in the state file, publish it to every witness.

    ``state_path`` is the signer's own file (keep it with the private key, off the database
    server); ``adopt`` lets it take on a store whose log it signed before but has no record of.
    """

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        state_path: str | os.PathLike[str],
        *,
        witnesses: Sequence[Witness] = (),
        adopt: bool = False,
    ) -> None:
        self.private_key = private_key
        self.key_id = key_id(private_key.public_key())
        self.state_path = os.fspath(state_path)
        self.witnesses = tuple(witnesses)
        self.adopt = adopt

    def sign(
        self,
        store: Store,
        log_path: str | os.PathLike[str],
        *,
        store_id: str,
        now: _dt.datetime | None = None,
        check: bool = True,
        refuse_invalid: bool = False,
        log: CheckpointLog | None = None,
    ) -> Signed:
        """Check, sign, append to the log at ``log_path`` (read from it unless ``log`` is given),
        record, publish.  Raises :class:`CheckpointRefused` (signing nothing) when the log or a
        witness is inconsistent with what was signed before."""
        with locked(self.state_path):
            state = SignerState.load(self.state_path, self.key_id)
            if log is None:
                log = CheckpointLog.load(log_path)
            checkpoint = issue_checkpoint(
                store,
                self.private_key,
                log=log,
                now=now,
                check=check,
                refuse_invalid=refuse_invalid,
                store_id=store_id,
                state=state,
                witnesses=self.witnesses,
                adopt=self.adopt,
            )
            log.append_to(log_path, checkpoint)
            state.with_head(store_id, checkpoint.store).save()
        return Signed(checkpoint, tuple(self.publish(checkpoint)))

    def publish(self, checkpoint: Checkpoint) -> list[CheckpointError]:
        """Hand the checkpoint's tree head to every witness, with the leaves and the consistency
        proof from the witness's latest head; the refusals (and failures), one per witness."""
        head = checkpoint.store
        hashes = Tree()
        hashes.extend(checkpoint.tree)
        refused: list[CheckpointError] = []
        for witness in self.witnesses:
            try:
                latest = witness.latest(head.key, head.store_id)
                size = 0 if latest is None or latest.size > head.size else latest.size
                witness.publish(
                    attrs.evolve(
                        head,
                        leaves=checkpoint.tree[size:],
                        consistency=tuple(p.hex() for p in hashes.consistency(size)),
                    ),
                    self.private_key.public_key(),
                )
            except CheckpointError as exc:
                refused.append(exc)
        return refused


def _invalid(case_id: str, records: Sequence[StoredEvent], fault: Fault) -> Verdict:
    """The verdict of a case left out for a checkpoint fault (its events may verify)."""
    head = records[-1].hash if records else ""
    return Verdict(case_id, len(records), len(records), head, "?", fault)
