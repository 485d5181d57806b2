"""Verifying a whole store, in one process or several: :func:`verify_store`.

The store is cut into half-open ranges of case ids that together cover every possible id, in
order.  The calling process and ``jobs - 1`` worker processes (started with "spawn") verify them
range by range: workers take ranges from the front, the caller from the back, each reading its
range with ``store.scan(start, stop)`` over its own connection (workers reopen the store by URL),
and verifying each case exactly as one process would.  The verdicts are put back in range order:
the result is the one-process result.

The cuts are taken from the summary rows (:meth:`Store.cases`), which only balance the load:
whatever they say (an attacker may have edited them), the ranges cover every id, so every event is
read.  With one process, or when workers cannot be used, the store is read with one ``scan()``.

The summary rows are also checked (``summaries``): each case whose events verify is compared,
where it was rebuilt, with its summary row; a case with events but no row, and a row without
events, are faults too (:attr:`FaultKind.SUMMARY <mediation.FaultKind>`, an integrity fault).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import itertools
import multiprocessing
import os
import pickle
import signal
import sys
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._audit import Fault, FaultKind, Verdict, check_links, verify
from ._authz import Directory
from ._case import CaseSummary
from ._errors import MediationError, StoreError
from ._events import StoredEvent
from ._keys import ReadThrough
from ._privacy import AESGCMVault
from ._roster import Roster, committee_of, roster_summary, rosters_of, verify_roster
from ._spec import registered
from .stores import _open
from .stores._base import SUMMARY_COLUMNS, Store
from .stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from ._checkpoints import CheckpointLog

__all__ = ["StoreVerification", "checkpointed_seqs", "malformed_rows", "verify_store"]

#: with the default ``jobs``, a store of fewer events than this (by its summary rows) is verified
#: in one process: starting workers would cost more than they save
PARALLEL_MIN_EVENTS = 50_000
#: ranges per process at least, so that one that finishes early takes another
_CHUNKS_PER_JOB = 4
#: events per range at most (about): small ranges keep the processes finishing together
_CHUNK_EVENTS = 10_000


@attrs.frozen
class StoreVerification:
    """What :func:`verify_store` found: one verdict per case, in case-id order.

    Iterating over it gives the verdicts.  The verdicts do not carry the rebuilt case
    (:meth:`Verdict.without_case`): a whole store of them stays small.
    """

    #: one per case that has events, in case-id order (the order of ``store.scan()``), and with
    #: ``summaries``, one per summary row whose case has no events (a :attr:`FaultKind.SUMMARY`)
    verdicts: tuple[Verdict, ...]
    #: case id -> seq -> the stored hash of the seq-th event read, for the seqs ``hashes_at``
    #: asked for (what checkpoints compare); empty without ``hashes_at``
    hashes: Mapping[str, Mapping[int, str]] = attrs.field(factory=dict)
    #: how many processes verified the store (1: this one alone)
    processes: int = 1
    #: with ``summaries``, the summary rows that name no case: a ``case_id`` that is not text (NULL,
    #: a number, a BLOB: bad data written past the library), one message each
    bad_rows: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every case verified, and no summary row is malformed."""
        return not self.bad_rows and all(v.ok for v in self.verdicts)

    @property
    def invalid(self) -> tuple[Verdict, ...]:
        """The verdicts with a fault."""
        return tuple(v for v in self.verdicts if not v.ok)

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self.verdicts)

    def __len__(self) -> int:
        return len(self.verdicts)


def verify_store(
    store: Store,
    *,
    jobs: int | None = None,
    strict: bool = False,
    directory: Directory | None = None,
    url: str | None = None,
    hashes_at: Mapping[str, Collection[int]] | None = None,
    on_fallback: Callable[[BaseException], object] | None = None,
    summaries: bool = True,
    seals: bool = False,
) -> StoreVerification:
    """Verify every case of ``store`` (as :func:`~mediation.verify` does, case by case), in
    ``jobs`` processes.

    - ``jobs``: the number of processes; by default one per CPU for a store of 50,000 events or
      more (by its summary rows) and one below that; ``1`` is this process alone.  Several
      processes need a store that reads a range of case ids (``store.scan(start, stop)``) and can
      be reopened in a worker: by ``url`` (any form :func:`mediation.stores.open` takes), or, for a
      SQLite file store, by its path.  Otherwise, and in a daemon process, the store is verified
      in this one.  Workers are started with "spawn", which re-imports the main module: a program
      calling this with several jobs needs the ``if __name__ == "__main__":`` guard.
    - ``strict`` and ``directory`` are :func:`~mediation.verify`'s (the directory is sent to the
      workers, so it must pickle; one that does not is used in this process alone).
    - ``hashes_at``: case id -> seqs whose stored hashes to return in
      :attr:`StoreVerification.hashes` (e.g. :func:`checkpointed_seqs` of a checkpoint log, for
      :class:`~mediation.audit.CheckpointAuditor`).
    - ``on_fallback(exc)`` is called when the worker processes fail (one was killed, none could
      start) and the store is verified again in this process; by default a ``RuntimeWarning``.
    - ``summaries`` (the default): also compare each case's summary row (:meth:`Store.summary`)
      with the case its events rebuild (for a case whose events verify), and report a row that
      differs (naming the columns), a case with events but no row, and a row without events as a
      :attr:`FaultKind.SUMMARY` fault (integrity: the table statistics and listings read was
      edited).
    - ``seals``: also open every sealed value with the store's own key store
      (:meth:`Store.key_store`), so that a changed ciphertext, nonce or associated data is a
      :attr:`FaultKind.SEALED` fault.

    With several processes each range is read in its own snapshot; on a store being written to, a
    range read later may include events appended after an earlier one was read.  Raises
    :class:`~mediation.StoreError` (or what :func:`mediation.stores.open` raises in a worker) when
    the store cannot be read.
    """
    return run(
        store,
        jobs=jobs,
        strict=strict,
        directory=directory,
        url=url,
        hashes_at=hashes_at,
        on_fallback=on_fallback,
        summaries=summaries,
        seals=seals,
    )


def run(
    store: Store,
    *,
    jobs: int | None = None,
    strict: bool = False,
    directory: Directory | None = None,
    url: str | None = None,
    hashes_at: Mapping[str, Collection[int]] | None = None,
    on_fallback: Callable[[BaseException], object] | None = None,
    meanwhile: Callable[[], object] | None = None,
    summaries: bool = True,
    seals: bool = False,
) -> StoreVerification:
    """:func:`verify_store`, and ``meanwhile()``: called once, while the workers verify (or
    before verifying in one process) — the CLI checks the checkpoints' signatures then."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    attested = None if hashes_at is None else {c: tuple(s) for c, s in hashes_at.items()}
    # every role claim is checked against the committee's recorded roster (read once, here)
    setup = _Setup(
        url or "", strict, directory, attested, summaries, rosters=rosters_of(store), seals=seals
    )
    once = _Once(meanwhile)
    n = jobs if jobs is not None else _cpus()
    target = _worker_url(store, url) if n > 1 else None
    if target is not None and _can_use_workers(directory):
        ranges = _chunk_bounds(store, n, explicit=jobs is not None)
        if len(ranges) >= 2:
            versions = registered()
            setup = attrs.evolve(
                setup,
                url=target,
                ranges=tuple(ranges),
                modules=tuple(sorted({c.payload.__module__ for w in versions for c in w.commands})),
            )
            workers = min(n, len(ranges)) - 1
            chunks = _run_chunks(store, setup, workers, once)
            if not isinstance(chunks, BaseException):
                result = _result([_judged_here(store, setup, c) for c in chunks], workers + 1)
                return _linked(_with_rows_without_events(store, result) if summaries else result)
            if on_fallback is not None:
                on_fallback(chunks)
            else:
                warnings.warn(
                    f"worker processes failed ({chunks}); verifying in one process",
                    RuntimeWarning,
                    stacklevel=3,
                )
    once()
    bad_rows: list[str] = []
    whole = _verify_chunk(store, (None, None), setup, whole=True, bad_rows=bad_rows)
    return _linked(attrs.evolve(_result([whole], 1), bad_rows=tuple(bad_rows)))


def _linked(result: StoreVerification) -> StoreVerification:
    """``result`` with the links between its cases checked both ways (:func:`check_links`)."""
    if not any(v.links for v in result.verdicts):
        return result
    return attrs.evolve(result, verdicts=tuple(check_links(result.verdicts)))


def checkpointed_seqs(log: CheckpointLog) -> dict[str, tuple[int, ...]]:
    """Every (case, seq) a checkpoint of ``log`` names, as ``hashes_at`` takes them: a superset of
    those a :class:`~mediation.audit.CheckpointAuditor` of the log compares."""
    from ._checkpoints import CaseCheckpoint

    seqs: dict[str, set[int]] = {}
    for _, rec in log.records:
        if isinstance(rec, CaseCheckpoint):
            seqs.setdefault(rec.case_id, set()).add(rec.seq)
        else:
            for leaf in rec.leaves:
                seqs.setdefault(leaf.case_id, set()).add(leaf.seq)
    return {case_id: tuple(sorted(s)) for case_id, s in seqs.items()}


# -- choosing how many processes --------------------------------------------------------------------


class _Once:
    """Calls ``action`` the first time it is called, never again."""

    def __init__(self, action: Callable[[], object] | None) -> None:
        self._action = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


def _cpus() -> int:
    """The CPUs this process may run on (the default of ``jobs``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _reads_ranges(store: Store) -> bool:
    """Does ``store.scan`` take a case-id range (``scan(start, stop)``)?  A store whose ``scan``
    takes no range (a third-party store written against the older interface) is verified in one
    process."""
    try:
        params = inspect.signature(store.scan).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a scan without a signature
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional for p in params) >= 2 or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in params
    )


def _worker_url(store: Store, url: str | None) -> str | None:
    """The URL workers reopen ``store`` by: ``url``, or a SQLite file store's own path; None when
    there is none or the store reads no range (then one process verifies)."""
    if not _reads_ranges(store):
        return None
    if url is not None:
        _open.parse_url(url)  # a bad URL is refused here, not in every worker
        return url
    path = getattr(store, "path", None) if isinstance(store, SQLiteStore) else None
    if not isinstance(path, str) or path in ("", ":memory:"):
        return None
    return _open.sqlite_url(path)


def _can_use_workers(directory: Directory | None) -> bool:
    """Can spawned workers start and be given ``directory``?  Not from a daemon process (it may
    have no children), nor when the main module cannot be re-imported (a script read from stdin),
    nor with a directory that does not pickle."""
    if multiprocessing.current_process().daemon:
        return False
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) is None:
        path = getattr(main, "__file__", None)
        if path is not None and not os.path.isfile(path):
            return False
    if directory is not None:
        try:
            pickle.dumps(directory)
        except Exception:  # anything pickling raises: verify here instead
            return False
    return True


_Bounds = tuple[str | None, str | None]


def _chunk_bounds(store: Store, jobs: int, explicit: bool) -> list[_Bounds]:
    """Half-open ranges ``[start, stop)`` of case ids (None: unbounded) that cover every possible
    id, in order: at least ``jobs * _CHUNKS_PER_JOB`` of them (fewer for fewer cases), of about as
    many events each, at most about ``_CHUNK_EVENTS``.  A single range means "one process".

    The cuts are taken from the summary rows, which only balance the load: whatever they say,
    the ranges cover every id, so every event is read.
    """
    # only rows that name a case (a NULL or numeric id would make a cut of None, an unbounded
    # end: ranges read twice), in code-point order (the order ``scan`` ranges compare in), once each
    named = {s.case_id: s.seq for s in store.cases() if type(s.case_id) is str}
    rows = sorted(named.items())
    weights = [seq if type(seq) is int and seq > 0 else 1 for _, seq in rows]
    total = sum(weights)
    if not explicit and total < PARALLEL_MIN_EVENTS:
        return [(None, None)]
    parts = min(max(jobs * _CHUNKS_PER_JOB, -(-total // _CHUNK_EVENTS)), len(rows))
    cuts: list[str] = []
    done = 0
    for (case_id, _), weight in zip(rows, weights, strict=True):
        if done > 0 and done >= total * (len(cuts) + 1) / parts:
            cuts.append(case_id)
        done += weight
    return list(itertools.pairwise([None, *cuts, None]))


# -- verifying ranges ---------------------------------------------------------------------------------


@attrs.frozen
class _Setup:
    """What verifying ranges needs (sent once to each worker)."""

    url: str
    strict: bool
    directory: Directory | None
    #: case id -> the seqs whose stored hashes to return
    attested: dict[str, tuple[int, ...]] | None
    #: compare the summary rows with the replayed cases
    summaries: bool = True
    ranges: tuple[_Bounds, ...] = ()
    #: the store's rosters, by committee (role claims are checked against them)
    rosters: dict[str, Roster] = attrs.field(factory=dict)
    #: the modules that declare the payload classes of the versions registered here: a worker
    #: imports them, so that the versions they register on import are known there too
    modules: tuple[str, ...] = ()
    #: open every sealed value with the store's key store
    seals: bool = False


#: the verdicts of one range: per case, its id, its verdict (without the case) and the stored
#: hashes asked for; or the error that stopped reading the range
_Chunk = list[tuple[str, Verdict, dict[int, str] | None]] | MediationError


def _verify_chunk(
    store: Store,
    bounds: _Bounds,
    setup: _Setup,
    *,
    whole: bool = False,
    bad_rows: list[str] | None = None,
) -> _Chunk:
    """Verify every case whose id is in ``bounds``, grouping the records of that slice of the scan
    into cases; ``whole``: the whole store, with ``store.scan()`` (the malformed summary rows are
    then added to ``bad_rows``)."""
    out: list[tuple[str, Verdict, dict[int, str] | None]] = []
    strict, attested, directory = setup.strict, setup.attested, setup.directory
    #: per case verified (the index in ``out``): the summary of the case rebuilt, if it verified
    rebuilt: list[CaseSummary | None] = []
    # the keys read once per run (a case's values share a few keys)
    vault = AESGCMVault(ReadThrough(store.key_store())) if setup.seals else None

    def one(case_id: str, batch: list[StoredEvent]) -> None:
        if committee_of(case_id) is not None:
            verdict, roster = verify_roster(batch, case_id)
            if setup.summaries:
                rebuilt.append(roster_summary(roster) if verdict.ok else None)
        else:
            verdict = verify(
                batch,
                case_id,
                strict=strict,
                directory=directory,
                rosters=setup.rosters,
                vault=vault,
            )
            if setup.summaries:
                case = verdict.case
                rebuilt.append(case.summary() if verdict.ok and case is not None else None)
        verdict = verdict.without_case()
        hashes: dict[int, str] | None = None
        if attested is not None:
            hashes = {}
            for seq in attested.get(case_id, ()):
                with contextlib.suppress(IndexError):
                    hashes[seq] = batch[seq - 1].hash  # as a list of the records is indexed
        out.append((case_id, verdict, hashes))

    # Store.scan takes (start, stop); typed loosely for stores written before it did
    scan: Callable[..., Iterator[StoredEvent]] = store.scan
    records = scan() if whole else scan(*bounds)
    current: str | None = None
    batch: list[StoredEvent] = []
    try:
        for record in records:
            if record.case_id != current:
                if batch:
                    one(current or "", batch)
                current, batch = record.case_id, []
            batch.append(record)
    except StoreError as exc:
        if whole:
            raise
        return exc
    if batch:
        one(current or "", batch)
    if not setup.summaries:
        return out
    try:
        return _summaries_checked(store, out, rebuilt, whole, bad_rows)
    except StoreError as exc:
        if whole:
            raise
        return exc


def _summaries_checked(
    store: Store,
    out: list[tuple[str, Verdict, dict[int, str] | None]],
    rebuilt: list[CaseSummary | None],
    whole: bool,
    bad_rows: list[str] | None = None,
) -> list[tuple[str, Verdict, dict[int, str] | None]]:
    """``out`` with each case's summary row compared with the case rebuilt (read after the scan,
    so that the stores' connections are free); for the whole store, with the rows without events
    too, and the rows that name no case added to ``bad_rows``."""
    rows: dict[object, CaseSummary] | None = None
    if whole:
        listing = store.cases()
        if bad_rows is not None:
            bad_rows.extend(malformed_rows(listing))
        rows = {s.case_id: s for s in listing if type(s.case_id) is str}
    for i, (case_id, verdict, hashes) in enumerate(out):
        # a roster stream's row is not among the cases' rows: read it alone
        listed = rows is not None and committee_of(case_id) is None
        row = rows.pop(case_id, None) if listed and rows is not None else store.summary(case_id)
        fault = summary_fault(verdict, row, rebuilt[i])
        if fault is not None:
            out[i] = (case_id, verdict.with_faults(fault), hashes)
    if rows:
        out.extend((c, _row_without_events(c), None) for c in rows if isinstance(c, str))
        out.sort(key=lambda entry: entry[0])
    return out


def summary_fault(
    verdict: Verdict, row: CaseSummary | None, rebuilt: CaseSummary | None
) -> Fault | None:
    """The :attr:`FaultKind.SUMMARY` fault of a case whose events gave ``verdict`` (and, when they
    verified, the summary ``rebuilt``) and whose stored summary row is ``row``; None when they
    agree.  A case whose events do not verify is only checked to have a row."""
    at = max(verdict.head_seq, 1)
    if row is None:
        return Fault(
            at,
            FaultKind.SUMMARY,
            "the case has events but no summary row (listings and statistics leave it out)",
        )
    if rebuilt is None or row == rebuilt:
        return None
    differ = [c for c in SUMMARY_COLUMNS if getattr(row, c) != getattr(rebuilt, c)]
    if not differ:  # equal column by column, in another type (an int stored as 1.0, say)
        return None
    shown = ", ".join(
        f"{c} {getattr(row, c)!r:.40} (replayed: {getattr(rebuilt, c)!r:.40})" for c in differ
    )
    return Fault(
        at,
        FaultKind.SUMMARY,
        f"the summary row disagrees with the replayed events: {shown}",
    )


def malformed_rows(rows: Iterable[CaseSummary]) -> list[str]:
    """One message per summary row whose ``case_id`` is not text (NULL, a number, a BLOB): bad
    data that only a write past the library leaves (the stores' schemas declare the column text);
    such a row names no case, so no verdict can carry it."""
    out = []
    for s in rows:
        case_id: object = s.case_id
        if type(case_id) is not str:
            shown = "NULL" if case_id is None else f"{type(case_id).__name__} {case_id!r:.40}"
            out.append(
                f"a summary row whose case_id is {shown}, not text (written past the "
                f"library; state {s.state!r:.40}, seq {s.seq!r:.20})"
            )
    return out


def _row_without_events(case_id: str) -> Verdict:
    return Verdict(
        case_id,
        0,
        0,
        "",
        "?",
        Fault(1, FaultKind.SUMMARY, "a summary row without events (the events were deleted)"),
    )


def _with_rows_without_events(store: Store, result: StoreVerification) -> StoreVerification:
    """``result`` with a verdict for every summary row whose case has no events (several
    processes: each range checked its cases' rows; the rows without events are found here)."""
    seen = {v.case_id for v in result.verdicts}
    listing = store.cases()
    bad = tuple(malformed_rows(listing))
    extra = [
        _row_without_events(s.case_id)
        for s in listing
        if type(s.case_id) is str and s.case_id not in seen
    ]
    if not extra:
        return attrs.evolve(result, bad_rows=bad)
    verdicts = sorted((*result.verdicts, *extra), key=lambda v: v.case_id)
    return attrs.evolve(result, verdicts=tuple(verdicts), bad_rows=bad)


def _judged_here(store: Store, setup: _Setup, chunk: _Chunk) -> _Chunk:
    """``chunk`` with every case a worker could not judge for want of its workflow version (one
    registered in this process at run time) verified again here: the verdicts of several processes
    are always those of one."""
    if isinstance(chunk, MediationError):
        return chunk
    out = list(chunk)
    for i, (case_id, verdict, _) in enumerate(out):
        if verdict.fault is not None and verdict.fault.kind is FaultKind.UNKNOWN_WORKFLOW:
            again = _verify_chunk(store, (case_id, case_id + "\x00"), setup)
            if isinstance(again, MediationError):
                return again
            out[i] = next(entry for entry in again if entry[0] == case_id)
    return out


def _result(chunks: Sequence[_Chunk], processes: int) -> StoreVerification:
    """The verdicts of ``chunks`` in order; the first range that could not be read raises."""
    verdicts: list[Verdict] = []
    hashes: dict[str, dict[int, str]] = {}
    for chunk in chunks:
        if isinstance(chunk, MediationError):
            raise chunk
        for case_id, verdict, found in chunk:
            verdicts.append(verdict)
            if found is not None:
                hashes[case_id] = found
    return StoreVerification(tuple(verdicts), hashes, processes)


# -- the processes ----------------------------------------------------------------------------------


class _Claims(Protocol):
    """``[next range from the front, end of the ranges left]``, shared by every process."""

    def __getitem__(self, i: int) -> int: ...
    def __setitem__(self, i: int, value: int) -> None: ...
    def get_lock(self) -> contextlib.AbstractContextManager[Any]: ...


def _claim(claims: _Claims, front: bool) -> int | None:
    """The index of a range no process has taken yet, from the front or the back; None when none
    is left."""
    with claims.get_lock():
        lo, hi = claims[0], claims[1]
        if lo >= hi:
            return None
        if front:
            claims[0] = lo + 1
            return lo
        claims[1] = hi - 1
        return hi - 1


_worker: tuple[_Setup, _Claims] | None = None  # in a worker process


def _init_worker(setup: _Setup, claims: _Claims) -> None:
    global _worker
    for module in setup.modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _worker = setup, claims
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle


def _verify_next() -> tuple[int, _Chunk] | None:
    """In a worker: verify the next range from the front, if one is left."""
    assert _worker is not None
    setup, claims = _worker
    i = _claim(claims, front=True)
    if i is None:
        return None
    try:
        store = _open.open(setup.url, read_only=True)
    except MediationError as exc:
        return i, _portable(exc)
    try:
        chunk = _verify_chunk(store, setup.ranges[i], setup)
    finally:
        store.close()
    return i, _portable(chunk) if isinstance(chunk, MediationError) else chunk


def _portable(exc: MediationError) -> MediationError:
    """``exc``, or a :class:`StoreError` with its messages if it does not survive pickling (the
    trip back from a worker); without its cause either way."""
    exc.__cause__ = exc.__context__ = None
    exc.__traceback__ = None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # a subclass that does not pickle: keep what the caller shows
        return StoreError(exc.message, message_zh=exc.message_zh, case=exc.case, seq=exc.seq)
    return exc


def _run_chunks(
    store: Store, setup: _Setup, workers: int, meanwhile: Callable[[], object]
) -> list[_Chunk] | BaseException:
    """Verify ``setup.ranges`` in ``workers`` processes and this one; the results in range order,
    or the exception that made the workers fail (the caller then verifies in one process).

    The workers take ranges from the front, each when it is ready for one; this process first calls
    ``meanwhile``, then takes ranges from the back, until none is left.
    """
    context = multiprocessing.get_context("spawn")
    claims: _Claims = context.Array("q", [0, len(setup.ranges)])
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(setup, claims)
    )
    results: dict[int, _Chunk] = {}
    try:
        try:
            futures = [pool.submit(_verify_next) for _ in setup.ranges]
        except OSError as exc:  # no worker could be started
            return exc
        meanwhile()
        while (i := _claim(claims, front=False)) is not None:
            results[i] = _verify_chunk(store, setup.ranges[i], setup)
        for f in futures:
            done = f.result()
            if done is not None:
                results[done[0]] = done[1]
    except BrokenProcessPool as exc:  # a worker was killed (out of memory, say): start again
        return exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in range(len(setup.ranges))]
