"""The one store interface every backend implements, and its contract.

A store keeps, per case, the records of :class:`~mediation.StoredEvent` (seq, hash, the exact body
bytes, the client's request id) in an append-only sequence, plus one :class:`~mediation.CaseSummary`
row per case, written in the same transaction, which serves the list queries without replaying
cases.  Several appends commit together inside :meth:`Store.transaction`; :meth:`Store.scan`
streams every record of a range of case ids.  Every store is safe to share between threads.  The
contract is checked by :class:`mediation.testing.StoreConformance`, which a third-party store can
reuse.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import attrs

from .. import _commands
from .._case import CaseSummary
from .._errors import ConcurrencyConflict, RequestConflict, StoreError
from .._events import StoredEvent, loads_unique, parse_body
from .._keys import KeyStore

__all__ = [
    "DEFAULT_WORKFLOW",
    "STAT_PAYLOAD_TYPES",
    "SUMMARY_COLUMNS",
    "WARNINGS_TABLE",
    "DeadlineWarning",
    "MalformedRecord",
    "StatEvent",
    "Store",
    "check_batch",
    "checked_record",
    "in_range",
    "request_taken",
    "seq_taken",
    "stat_event",
    "stat_events_sql",
    "summary_filter",
    "summary_from_row",
    "summary_select",
    "summary_values",
]


@attrs.frozen
class DeadlineWarning:
    """One early warning (预警) recorded by :meth:`~mediation.CaseService.tick`: deadline ``kind``
    of case ``case_id``, whose last day is ``due`` (an ISO local date), reached ``level``
    (``nearly_due`` or ``overdue``); ``at`` is when it was recorded (the log's time format).

    A store keeps at most one warning per (case, kind, due, level): the key that makes
    ``tick`` record each exactly once, whoever runs it and however often (``docs/deadlines.md``).
    """

    case_id: str
    kind: str
    due: str
    level: str
    at: str
    committee: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.case_id, self.kind, self.due, self.level)


#: the SQL of the warnings table (both SQL backends; ``text`` is TEXT to SQLite)
WARNINGS_TABLE = """CREATE TABLE IF NOT EXISTS mediation_warnings (
    case_id   text NOT NULL,
    kind      text NOT NULL,
    due       text NOT NULL,
    level     text NOT NULL,
    at        text NOT NULL,
    committee text NOT NULL,
    PRIMARY KEY (case_id, kind, due, level)
)"""


class MalformedRecord(StoreError):
    """A stored event row whose columns have the wrong types (a BLOB case id or hash, a text seq:
    written past the library, which never writes them): the store cannot be read as a log.  The
    command line exits 5 (bad input)."""


def checked_record(
    case_id: object, seq: object, h: object, body: bytes, request_id: object
) -> StoredEvent:
    """A record read from a row whose types the database does not enforce (SQLite): the case id,
    the hash and the request id must be text and the seq an integer, else :class:`MalformedRecord`
    (naming the row with every value escaped)."""
    if (
        type(case_id) is str
        and type(seq) is int
        and type(h) is str
        and (request_id is None or type(request_id) is str)
    ):
        return StoredEvent(case_id, seq, h, body, request_id)
    for name, value, want in (
        ("case_id", case_id, "text"),
        ("seq", seq, "an integer"),
        ("hash", h, "text"),
        ("request_id", request_id, "text"),
    ):
        ok = type(value) is (int if name == "seq" else str) or (
            name == "request_id" and value is None
        )
        if not ok:
            where = f"case {case_id!r:.80} seq {seq!r:.40}"
            raise MalformedRecord(
                f"malformed event row ({where}): {name} is {type(value).__name__}, not {want}",
                message_zh=f"事件记录格式错误（{where}）：{name} 的类型是 {type(value).__name__}，应为{'整数' if name == 'seq' else '文本'}",
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _default_workflow() -> str:
    default = attrs.fields(CaseSummary).workflow.default
    assert isinstance(default, str), default
    return default


#: the workflow version of a summary row written before stores kept one (store schemas 1 and 2):
#: :class:`~mediation.CaseSummary`'s default
DEFAULT_WORKFLOW = _default_workflow()


def check_batch(case_id: str, expected_seq: int, records: Sequence[StoredEvent]) -> None:
    """Refuse a batch that is not the next consecutive records of ``case_id``."""
    if not records:
        raise StoreError("nothing to append", case=case_id)
    for i, rec in enumerate(records, start=expected_seq + 1):
        if rec.case_id != case_id or rec.seq != i:
            raise StoreError(
                f"records must be consecutive events of case {case_id} from seq "
                f"{expected_seq + 1}; got {rec.case_id}#{rec.seq}",
                case=case_id,
                seq=rec.seq,
            )


def seq_taken(case_id: str, expected_seq: int, current: int | None = None) -> ConcurrencyConflict:
    """The error of an append whose ``expected_seq`` is no longer the case's last seq."""
    if current is None:
        message = f"case {case_id}: another writer appended seq {expected_seq + 1} first"
    else:
        message = f"case {case_id} is at seq {current}, not {expected_seq}"
    return ConcurrencyConflict(message, expected_seq=expected_seq, case=case_id, seq=current)


def request_taken(case_id: str, records: Sequence[StoredEvent]) -> RequestConflict:
    """The error of an append whose request id the case already holds."""
    request = next((r.request_id for r in records if r.request_id), "")
    return RequestConflict(
        f"case {case_id} already holds an event of request {request}",
        request_id=request,
        case=case_id,
    )


#: the commands whose payload :meth:`Store.stat_events` carries (what the statistics read from it:
#: the opening's committee, category, subtype and level, the first mediator, an escalation's level,
#: an extension's days, a follow-up visit's satisfaction)
STAT_PAYLOAD_TYPES = tuple(
    c.name
    for c in (
        _commands.Apply,
        _commands.Report,
        _commands.AssignMediator,
        _commands.AppointAgent,
        _commands.Escalate,
        _commands.ExtendTerm,
        _commands.RecordFollowUp,
    )
)


@attrs.frozen
class StatEvent:
    """What the statistics read of one event (:meth:`Store.stat_events`): the envelope's ``at``,
    ``type`` and ``state``, and the payload of the commands of :data:`STAT_PAYLOAD_TYPES` (``None``
    for the others).  Read from the stored body without checking its hash or replaying it."""

    case_id: str
    seq: int
    at: str
    type: str
    state: str
    #: the workflow version the event names
    workflow: str
    payload: dict[str, Any] | None = None
    #: who issued it, and as what (a party's choice of mediator counts once every party chose)
    actor: str = ""
    acted_as: str = ""


def stat_event(
    case_id: object,
    seq: object,
    at: object,
    type_: object,
    state: object,
    workflow: object,
    payload: object,
    actor: object = "",
    acted_as: object = "",
) -> StatEvent:
    """A :class:`StatEvent` from a row (a store's query); a row of the wrong types (a body written
    past the library) raises :class:`MalformedRecord`."""
    if isinstance(payload, str | bytes):
        payload = loads_unique(payload)
    if (
        type(case_id) is not str
        or type(seq) is not int
        or not all(type(v) is str for v in (at, type_, state, workflow, actor, acted_as))
        or not (payload is None or type(payload) is dict)
    ):
        raise MalformedRecord(
            f"malformed event body (case {case_id!r:.80} seq {seq!r:.40}): not an event envelope",
            message_zh=f"事件内容格式错误（案件 {case_id!r:.80} 序号 {seq!r:.40}）",
        )
    assert isinstance(at, str) and isinstance(type_, str) and isinstance(state, str)
    assert isinstance(workflow, str) and isinstance(actor, str) and isinstance(acted_as, str)
    wanted = payload if type_ in STAT_PAYLOAD_TYPES else None
    return StatEvent(case_id, seq, at, type_, state, workflow, wanted, actor, acted_as)


def stat_events_sql(
    body: str, extract: str, placeholder: str, before: str | None
) -> tuple[str, list[str]]:
    """The query of :meth:`Store.stat_events` on ``mediation_events``: ``body`` is the SQL of the
    body as JSON, ``extract`` a format of one member of it as text (``{b}`` the body, ``{m}`` the
    member's name)."""

    def member(name: str) -> str:
        return extract.format(b="b", m=name)

    types = ", ".join(f"'{t}'" for t in STAT_PAYLOAD_TYPES)
    # a body without a text ``at`` (written past the library) is kept, to be refused as malformed
    at_or_later = f"{member('at')} >= {placeholder}"
    where = f" WHERE NOT COALESCE({at_or_later}, FALSE)" if before is not None else ""
    sql = (
        f"SELECT case_id, seq, {member('at')}, {member('type')}, {member('state')}, "
        f"{member('workflow')}, "
        f"CASE WHEN {member('type')} IN ({types}) THEN {member('payload')} END, "
        f"{member('actor')}, {member('as')} "
        f"FROM (SELECT case_id, seq, {body} AS b FROM mediation_events "
        "WHERE substr(case_id, 1, 1) <> '@') AS e" + where + " ORDER BY case_id, seq"
    )
    return sql, [] if before is None else [before]


#: the summary table's columns, in the order of its rows in the SQL stores (``workflow`` since store
#: schema version 3)
SUMMARY_COLUMNS = (
    "case_id", "committee", "state", "level", "category", "seq", "head", "opened_at",
    "updated_at", "registered_at", "paused", "paused_seconds", "extra_days", "workflow",
)  # fmt: skip


def summary_values(s: CaseSummary) -> tuple[object, ...]:
    """The summary's values in the order of :data:`SUMMARY_COLUMNS`."""
    return tuple(getattr(s, column) for column in SUMMARY_COLUMNS)


def summary_select(*, has_workflow: bool = True) -> str:
    """``SELECT <SUMMARY_COLUMNS> FROM mediation_cases``; on a table of schema 1 or 2 (no
    ``workflow`` column) the workflow is read as :data:`DEFAULT_WORKFLOW`."""
    legacy = "'" + DEFAULT_WORKFLOW.replace("'", "''") + "'"
    columns = [c if c != "workflow" or has_workflow else legacy for c in SUMMARY_COLUMNS]
    return f"SELECT {', '.join(columns)} FROM mediation_cases"


def summary_from_row(row: Sequence[object]) -> CaseSummary:
    """A summary from a row selected by :func:`summary_select`."""
    values: dict[str, Any] = dict(zip(SUMMARY_COLUMNS, row, strict=True))
    values["paused"] = bool(values["paused"])
    return CaseSummary(**values)


def summary_filter(placeholder: str, **filters: str | None) -> tuple[str, list[str]]:
    """The ``" WHERE state = ? AND ..."`` clause and its arguments for the summary columns given
    a value, rows of roster streams left out: what :meth:`Store.cases` means, for the SQL
    stores."""
    given = [(column, value) for column, value in filters.items() if value is not None]
    clause = " AND ".join(
        # the rows of roster streams (``@roster:<committee>``) are not cases
        [
            "(case_id IS NULL OR substr(case_id, 1, 1) <> '@')",
            *(f"{column} = {placeholder}" for column, _ in given),
        ]
    )
    return " WHERE " + clause, [value for _, value in given]


def in_range(case_id: str, start: str | None, stop: str | None) -> bool:
    """Whether ``case_id`` lies in the half-open range ``[start, stop)`` (None: unbounded), by code
    point, the order of :meth:`Store.cases` and :meth:`Store.scan`."""
    return (start is None or case_id >= start) and (stop is None or case_id < stop)


class Store(abc.ABC):
    """Append-only, per-case event storage with optimistic concurrency."""

    @abc.abstractmethod
    def append(
        self, summary: CaseSummary, records: Sequence[StoredEvent], expected_seq: int
    ) -> None:
        """Append ``records`` to ``summary.case_id`` if its last seq is ``expected_seq``.

        All or nothing: on any failure nothing is written.  A stale ``expected_seq`` (another
        writer got there first) raises :class:`~mediation.ConcurrencyConflict`; a record whose
        ``request_id`` the case already holds raises :class:`~mediation.RequestConflict`.  When the
        outcome cannot be known (the connection was lost after the commit was sent), it raises
        :class:`~mediation.OutcomeUnknown`.
        """

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A block whose appends commit together, or not at all::

            with store.transaction():
                store.append(summary_a, records_a, 0)
                store.append(summary_b, records_b, 0)

        When the block ends normally, every append made in it (by the calling thread) is committed;
        when it raises, none of them is written, and the exception propagates.  An append that
        fails inside the block (a conflict, say) writes nothing and leaves the block usable: the
        appends before it still commit with the block.  Reads in the block see its appends; other
        threads and processes see them only once the block has committed (they may wait for it).

        Blocks nest: an inner block is a savepoint, so an exception that leaves it undoes its own
        appends only.  On a store that works on a host's connection with the host's transaction
        open, the block is a savepoint of that transaction and the host commits or rolls back.  A
        failed COMMIT whose outcome cannot be known raises :class:`~mediation.OutcomeUnknown`.

        The block belongs to the calling thread; do not hand it to another.  Stores that share one
        connection (or one lock) between threads make other threads wait until it ends.
        """

    @abc.abstractmethod
    def find_request(self, case_id: str, request_id: str) -> StoredEvent | None:
        """The case's record that carries ``request_id``, or None."""

    @abc.abstractmethod
    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        """The case's records with seq > ``after_seq``, in seq order (empty for an unknown case)."""

    @abc.abstractmethod
    def summary(self, case_id: str) -> CaseSummary | None:
        """The case's summary row, or None."""

    @abc.abstractmethod
    def cases(
        self,
        *,
        state: str | None = None,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
    ) -> list[CaseSummary]:
        """Summaries matching every given filter, ordered by case id.  Cases only: the rows of
        roster streams (ids starting with ``@``, :mod:`mediation._roster`) are left out."""

    def case_ids(self) -> list[str]:
        """Every stream id that has events (cases and roster streams), in code point order: taken
        from the event records, not from the summary rows, so that a case whose summary row was
        deleted is still listed (the signer enumerates the streams to checkpoint with it).  This
        default reads the summary rows (cases only); a store whose summary rows can go missing apart
        from its events, or that keeps roster streams, overrides it (every store of this package
        does)."""
        return [s.case_id for s in self.cases()]

    def scan(self, start: str | None = None, stop: str | None = None) -> Iterator[StoredEvent]:
        """Every record of the cases whose id is in the half-open range ``[start, stop)`` (None:
        unbounded), by case id (in code point order) then seq.

        Consecutive ranges (``scan(None, "m")``, ``scan("m", None)``) together yield what
        ``scan()`` does, so a verifier may split the log between processes.  This default reads case
        by case; stores stream it in one query.
        """
        for case_id in self.case_ids():
            if stop is not None and case_id >= stop:
                return
            if start is None or case_id >= start:
                yield from self.read(case_id)

    def stat_events(self, before: str | None = None) -> Iterator[StatEvent]:
        """What the statistics read of every case's events (:class:`StatEvent`), by case id then
        seq: the events whose ``at`` is earlier than ``before`` (a time of the log format; None:
        every event).  Roster streams are left out.  Nothing is verified or replayed: this is a
        projection of the stored bodies, which the SQL stores compute in the database
        (:func:`mediation.evaluation`).  This default parses the bodies of :meth:`scan`."""
        for rec in self.scan():
            if rec.case_id.startswith("@"):
                continue
            try:
                body = parse_body(rec.body)
            except (ValueError, UnicodeDecodeError):
                raise MalformedRecord(
                    f"malformed event body (case {rec.case_id!r:.80} seq {rec.seq})",
                    message_zh=f"事件内容格式错误（案件 {rec.case_id!r:.80} 序号 {rec.seq}）",
                ) from None
            at = body.get("at")
            if before is not None and isinstance(at, str) and at >= before:
                continue
            yield stat_event(
                rec.case_id,
                rec.seq,
                at,
                body.get("type"),
                body.get("state"),
                body.get("workflow"),
                body.get("payload"),
                body.get("actor"),
                body.get("as"),
            )

    def record_warning(self, warning: DeadlineWarning) -> bool:
        """Record ``warning`` unless the store holds one of the same key (case, kind, due,
        level); True when this call recorded it.  Atomic: of concurrent calls with one key, in
        any processes, exactly one returns True.  A store that keeps no warnings raises
        :class:`~mediation.StoreError` (this default)."""
        raise StoreError(f"{type(self).__name__} keeps no deadline warnings")

    def warnings(self, case_id: str | None = None) -> list[DeadlineWarning]:
        """The recorded warnings (of one case, or all), by time recorded, then key."""
        raise StoreError(f"{type(self).__name__} keeps no deadline warnings")

    def key_store(self) -> KeyStore:
        """The store's default key store: where the sealing keys of personal data live, apart from
        the events (:mod:`mediation._keys`); the same object on every call.  A host may instead
        give the vault a key store of its own (a KMS, an HSM, a separate database).

        The stores of this package keep theirs beside the events (a file next to a SQLite store's,
        a schema of a PostgreSQL store's database, a memory store's memory) and close it in
        :meth:`close`.  A store of the host's own that keeps none raises
        :class:`~mediation.StoreError`: keys kept in memory by default would be lost with the
        process, and with them every sealed value of a store that outlives it; such a host passes
        ``CaseService(store, vault=AESGCMVault(its_key_store))`` (or ``sealing=False``)."""
        raise StoreError(
            f"{type(self).__name__} keeps no key store for sealing personal data: give the "
            "service one (CaseService(store, vault=AESGCMVault(key_store))), or turn sealing off "
            "(sealing=False); docs/privacy.md"
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default does nothing."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
