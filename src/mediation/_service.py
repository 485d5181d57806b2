"""The case service: the one place a host app calls to move cases.

``execute`` runs the command path: authorize (roles and case relations) → the shared ``transitions``
machine on a throw-away probe (legal source state, guards as conditions that raise) → one event,
canonically encoded and hashed → append to the store with the expected seq → the folded case
replaces the cached one.  A command that fails at any step raises and appends nothing.

Concurrency (docs/embedding.md): one service may be shared by any number of threads, and any number
of services (threads, processes, machines) may work on one store.  Cached cases are immutable
snapshots; a command is decided on the cached snapshot and appended only if the store's last seq is
still the snapshot's, so a decision never rests on stale state.  When another writer got there
first, or when the snapshot would refuse the command, the service reads the events it has not seen
(one indexed query) and decides again.  Reads (``case``, ``view``, ``allowed``, ``deadlines``) first
bring the snapshot up to what the store holds.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import attrs

from ._audit import Verdict, replay, verify
from ._authz import Actor, Directory, Grant, StaticDirectory, authorize
from ._calendar import CalendarNotCovered
from ._case import Case, CaseSummary, apply_event
from ._commands import Command, DocRef, from_payload, to_payload
from ._deadlines import (
    Deadline,
    Policy,
    deadlines,
    judicial_window_end,
    needs_case,
    summary_deadlines,
)
from ._decide import decide
from ._errors import (
    CaseExists,
    CaseNotFound,
    ClockSkew,
    ConcurrencyConflict,
    GuardFailed,
    IllegalTransition,
    InvalidCommand,
    NotPermitted,
    OutcomeUnknown,
    RequestConflict,
)
from ._events import (
    GENESIS,
    SCHEMA_VERSION,
    Event,
    StoredEvent,
    canonical_bytes,
    decode_event,
    encode_body,
    event_hash,
    format_time,
    parse_time,
)
from ._privacy import (
    AESGCMVault,
    Place,
    Vault,
    open_payload,
    seal_payload,
    sealed_places,
    standins,
    unopened,
)
from ._roster import (
    REGISTRAR,
    STATE,
    GrantRole,
    OpenRoster,
    RevokeRole,
    Roster,
    RosterCommand,
    RosterEntry,
    committee_of,
    decide_roster,
    roster_id,
    roster_payload,
    roster_summary,
    rosters_of,
    verify_roster,
)
from ._roster import WORKFLOW as ROSTER_WORKFLOW
from ._spec import CommandSpec, Workflow, known, registered, workflow_of
from ._stats import DEFAULT_DEFINITION, Evaluation, Statistics, compute_statistics, evaluation
from ._text import Text
from ._validators import _ID_RE
from ._views import CaseView, view_case
from ._vocab import NEW, JudicialStatus, Level, Role, TransferTarget
from ._workflow import WORKFLOW
from .stores._base import DeadlineWarning, Store

__all__ = ["CaseService", "Permission", "utc_now"]

T = TypeVar("T")


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


#: refusals that depend on the case's state: confirmed against the store before they are raised
_REFUSALS = (NotPermitted, IllegalTransition, GuardFailed, InvalidCommand)


#: how many locks serialize the commands of this process's threads, by case id
_CASE_LOCKS = 64


def _backoff(attempt: int, base: float) -> float:
    """Full jitter: a random pause up to ``base`` × 2^attempt, capped at 0.25 s."""
    return random.uniform(0, min(0.25, base * 2**attempt)) if base > 0 else 0.0


#: how long a roster read stays good for deciding commands, in seconds (a refusal reads it again)
_ROSTER_TTL = 1.0


class _Authority(NamedTuple):
    """What a command is decided with: the actor's grants, the directory of people, the roster seq
    (None: the committee keeps no roster) and the roster's last time."""

    grants: frozenset[Grant]
    directory: Directory
    roster: int | None
    since: str


@attrs.frozen
class Permission:
    """One answer of :meth:`CaseService.allowed`."""

    command: str
    allowed: bool
    acted_as: str | None = None
    #: why not, when not allowed: the refusal the command would meet now
    reasons: tuple[Text, ...] = ()
    #: guards that also depend on the command's payload and are judged when it is issued
    pending_guards: tuple[str, ...] = ()


class CaseService:
    """Moves cases through the workflow and records every step in the store.

    ``clock`` returns timezone-aware UTC datetimes (inject one in tests); ``directory`` answers
    "is this person a mediator of that committee" for G3; ``policy`` holds deadlines and the recusal
    profile new cases take.

    One service may be shared by every thread of a process (docs/embedding.md).  ``cache_size``
    bounds the cached cases (0 caches none); ``attempts`` bounds how often a command is decided
    again after another writer appended to its case first.  ``clock_tolerance`` is how far the
    host's clock may read behind a case's last event: within it, the event is timed at the last
    event's time and the clock's reading is kept beside it (``Event.clock``); beyond it the command
    raises :class:`~mediation.ClockSkew`; ``None`` tolerates any step back.  ``workflow`` is the
    registered version new cases are opened on; every case is decided on its own version.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], _dt.datetime] = utc_now,
        directory: Directory | None = None,
        policy: Policy | None = None,
        new_id: Callable[[], str] | None = None,
        vault: Vault | None = None,
        sealing: bool = True,
        cache_size: int = 10_000,
        attempts: int = 24,
        clock_tolerance: _dt.timedelta | None = _dt.timedelta(minutes=5),
        workflow: Workflow = WORKFLOW,
    ) -> None:
        if cache_size < 0 or attempts < 1:
            raise InvalidCommand("cache_size must be at least 0 and attempts at least 1")
        if clock_tolerance is not None and (
            not isinstance(clock_tolerance, _dt.timedelta) or clock_tolerance < _dt.timedelta(0)
        ):
            raise InvalidCommand(
                f"clock_tolerance must be a timedelta of 0 or more, or None: {clock_tolerance!r}",
                field="clock_tolerance",
            )
        self.store = store
        #: the workflow new cases are opened on (a case stays on the version it was opened on)
        self.workflow = workflow_of(getattr(workflow, "version", None))
        if self.workflow != workflow:
            raise InvalidCommand(f"workflow {workflow.version} is not the one registered")
        #: the names of the commands that open a case of that workflow
        self._opening = frozenset(c.name for c in self.workflow.opening)
        #: the openings a linking command writes (a transfer's ``receive_transfer``), never a host
        self._written_by_links = frozenset(
            c.name
            for w in registered()
            for c in w.opening
            if c.link is not None and c.link[0] == _FROM
        )
        self.clock = clock
        self.directory: Directory = directory if directory is not None else StaticDirectory()
        self.policy = policy or Policy()
        if not sealing and vault is not None:
            raise InvalidCommand("a vault was given with sealing=False", field="vault")
        #: seals personal data per case before it enters the log (see :mod:`mediation._privacy`):
        #: by default with keys in the store's own key store (``Store.key_store()``); None when
        #: the host turned sealing off (``sealing=False``)
        self.vault: Vault | None = (
            (vault if vault is not None else AESGCMVault(store.key_store())) if sealing else None
        )
        self.attempts = attempts
        self.clock_tolerance = clock_tolerance
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        #: case id -> the newest snapshot seen; snapshots are never changed once cached
        self._cache: OrderedDict[str, Case] = OrderedDict()  # least recently used first
        self._cache_size = cache_size
        self._lock = threading.Lock()
        #: commands on one case from this service's threads take turns (striped by case id), so
        #: they never race each other; other processes are met by the store's seq check
        self._case_locks = tuple(threading.Lock() for _ in range(_CASE_LOCKS))
        #: committee -> (its roster as last read, or None: none kept; when it was read)
        self._rosters: dict[str, tuple[Roster | None, float]] = {}

    @staticmethod
    def request_case_id(actor_id: str, request_id: str) -> str:
        """The case id an ``open`` with a request id and no case id gets: the same for every retry
        of that request by that actor, so a retried open finds the case it opened."""
        digest = hashlib.sha256(
            f"mediation.open\x00{actor_id}\x00{request_id}".encode()
        ).hexdigest()
        return "r" + digest[:31]

    @staticmethod
    def transfer_case_id(case_id: str, seq: int) -> str:
        """The id of the case a transfer (event ``seq`` of ``case_id``) opens at the receiving
        committee when the command names none: derived from the event's place, so every service
        and every retry of it choose the same one."""
        digest = hashlib.sha256(f"mediation.transfer\x00{case_id}\x00{seq}".encode()).hexdigest()
        return "t" + digest[:31]

    # -- reading -----------------------------------------------------------------------------------

    def case(self, case_id: str) -> Case:
        """The case as the store holds it now (the cached snapshot, brought up to date)."""
        return self._load(case_id)[0]

    def history(self, case_id: str) -> list[Event]:
        records = self.store.read(case_id)
        if not records:
            raise CaseNotFound(
                f"no case {case_id}", message_zh=f"案件 {case_id} 不存在", case=case_id
            )
        return [decode_event(r) for r in records]

    def verify(self, case_id: str) -> Verdict:
        """Verify the stored history of one case (chain, transitions, permissions, guards).

        Role claims are checked against the committee's recorded roster (:meth:`sync_roster`) as
        of the roster seq each event was decided on; today's directory is not consulted (it need
        not be the one of the day).  Claims made where no roster was kept are listed in
        :attr:`Verdict.unchecked`.
        """
        records = self.store.read(case_id)
        committee = committee_of(case_id)
        if committee is not None:
            return verify(records, case_id)
        rosters = {}
        if records:
            first = decode_event(records[0]).payload
            # the case's committee, and for a case a transfer opened the committee whose director
            # wrote its opening (``receive_transfer`` is authorized there)
            named = (first.get("committee"), first.get("origin_committee"))
            streams = {roster_id(c) for c in named if isinstance(c, str) and c}
            rosters = rosters_of({stream: self.store.read(stream) for stream in streams})
        return verify(records, case_id, rosters=rosters, vault=self.vault)

    def view(self, actor: Actor, case_id: str, *, reveal_personal: bool = False) -> CaseView:
        """What ``actor`` may see of the case (DOMAIN.md, Confidentiality), as the store holds it."""
        case, records = self._load(case_id, full=True)
        history = [decode_event(r) for r in records]
        return view_case(case, history, actor, reveal_personal, self.vault)

    def deadlines(self, case_id: str, now: _dt.datetime | None = None) -> tuple[Deadline, ...]:
        return deadlines(self.case(case_id), now or self.clock(), self.policy)

    def overdue(
        self,
        now: _dt.datetime | None = None,
        *,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
        mediator: str | None = None,
        uncovered: list[CalendarNotCovered] | None = None,
    ) -> list[tuple[CaseSummary, Deadline]]:
        """Early warnings (预警): open cases past a deadline, by case id.  Read from the store's
        summary rows; a case is read itself only where a deadline runs from facts the row lacks
        (the first follow-up) or to filter by ``mediator`` (its lead or a co-mediator).

        A case whose deadlines reach a year the calendar does not cover raises
        :class:`CalendarNotCovered`; given a list as ``uncovered``, the case is left out instead
        and its error (whose ``case`` names it) appended to the list."""
        return [
            (s, d)
            for s, d in self._due_rows(now, committee, level, category, mediator, uncovered)
            if d.overdue
        ]

    def upcoming(
        self,
        now: _dt.datetime | None = None,
        *,
        within_days: int | None = None,
        committee: str | None = None,
        level: str | None = None,
        category: str | None = None,
        mediator: str | None = None,
        uncovered: list[CalendarNotCovered] | None = None,
    ) -> list[tuple[CaseSummary, Deadline]]:
        """Deadlines not yet passed whose last day is at most ``within_days`` local days away
        (default: ``Policy.warn_days_before``, the nearly-due ones), by due time then case id.
        Windows a party may use (judicial confirmation) are listed too; they never warn.
        ``uncovered``: as for :meth:`overdue`."""
        now = now or self.clock()
        days = self.policy.warn_days_before if within_days is None else within_days
        if days < 0:
            raise InvalidCommand(f"within_days must be 0 or more: {days}", field="within_days")
        until = self.policy.calendar.local_date(now) + _dt.timedelta(days=days)
        rows = [
            (s, d)
            for s, d in self._due_rows(now, committee, level, category, mediator, uncovered)
            if now < d.due and d.due_date is not None and d.due_date <= until
        ]
        return sorted(rows, key=lambda r: (r[1].due, r[0].case_id, r[1].kind))

    def _due_rows(
        self,
        now: _dt.datetime | None,
        committee: str | None,
        level: str | None,
        category: str | None,
        mediator: str | None,
        uncovered: list[CalendarNotCovered] | None = None,
    ) -> list[tuple[CaseSummary, Deadline]]:
        """The deadlines of the open cases; a case whose deadlines reach a year the calendar does
        not cover raises :class:`CalendarNotCovered`, or is left out and its error appended to
        ``uncovered`` when that list is given."""
        now = now or self.clock()
        out: list[tuple[CaseSummary, Deadline]] = []
        for s in self.store.cases(committee=committee, level=level, category=category):
            if s.paused:
                continue  # the clock is stopped
            workflow = known(s.workflow)
            if workflow is None or workflow.is_terminal(s.state):
                continue
            try:
                if mediator is not None or needs_case(s):
                    case = self.case(s.case_id)
                    if mediator is not None and mediator not in case.mediators:
                        continue
                    found = deadlines(case, now, self.policy)
                else:
                    found = summary_deadlines(s, now, self.policy)
            except CalendarNotCovered as exc:
                exc.case = s.case_id  # which case it was
                if uncovered is None:
                    raise
                uncovered.append(exc)
                continue
            out.extend((s, d) for d in found)
        return out

    def tick(self, now: _dt.datetime | None = None) -> list[DeadlineWarning]:
        """Record an early warning (预警) for each deadline that is newly nearly due or overdue
        (``Policy.warn_days_before``); returns the warnings this call recorded.

        Exactly once: the store keeps one warning per (case, deadline, due day, level) and records
        it atomically, so running ``tick`` again, or in several processes at the same moment,
        records nothing twice.  A case whose deadlines reach a year the calendar does not cover
        raises :class:`CalendarNotCovered` once every other case was handled (its ``case`` names
        it; the warnings recorded are in :meth:`warnings`).  A warning is not an event of the case: it changes nothing the
        workflow decides, and an overdue case may still take every command
        (``docs/deadlines.md``)."""
        now = now or self.clock()
        at = format_time(now)
        recorded = []
        uncovered: list[CalendarNotCovered] = []
        for s, d in self._due_rows(now, None, None, None, None, uncovered):
            if not d.warns or not (d.overdue or d.nearly_due) or d.due_date is None:
                continue
            level = "overdue" if d.overdue else "nearly_due"
            warning = DeadlineWarning(
                s.case_id, d.kind, d.due_date.isoformat(), level, at, s.committee
            )
            if self.store.record_warning(warning):
                recorded.append(warning)
        if uncovered:  # every other case was warned about; these need the year's holiday data
            raise uncovered[0]
        return recorded

    def warnings(self, case_id: str | None = None) -> list[DeadlineWarning]:
        """The early warnings :meth:`tick` recorded (of one case, or all)."""
        return self.store.warnings(case_id)

    def statistics(self, actor: Actor, committees: Iterable[str] | None = None) -> Statistics:
        """Counts, success rate, durations and overdue cases over the committees ``actor`` holds a
        supervisor, director or auditor role in (or the given subset of them)."""
        wanted = self._supervised(actor, committees)
        rows = [row for c in sorted(wanted) for row in self.store.cases(committee=c)]
        now = self.clock()
        counted = compute_statistics(rows, wanted, now, self.policy)
        # days to close are days to the outcome (agreement, failure, withdrawal, ...), read from
        # the events: the summary rows know only the last event (the archive)
        ended = evaluation(self.store, committees=wanted, policy=self.policy, now=now)
        return attrs.evolve(counted, median_days_to_close=ended.days_to_outcome["all"].median)

    def evaluation(
        self,
        actor: Actor,
        committees: Iterable[str] | None = None,
        *,
        start: _dt.date | None = None,
        end: _dt.date | None = None,
        as_of: _dt.date | _dt.datetime | None = None,
        definition: str = DEFAULT_DEFINITION,
    ) -> Evaluation:
        """The figures a street office reports (:func:`mediation.stats.evaluation`, definitions in
        docs/evaluation.md) for the period ``start``–``end`` as of ``as_of``, over the committees
        ``actor`` holds a supervisor, director or auditor role in (or the given subset)."""
        wanted = self._supervised(actor, committees)
        return evaluation(
            self.store,
            start=start,
            end=end,
            as_of=as_of,
            definition=definition,
            committees=wanted,
            policy=self.policy,
            now=self.clock(),
        )

    def _supervised(self, actor: Actor, committees: Iterable[str] | None) -> frozenset[str]:
        """The committees whose figures ``actor`` asks for and may see; else NotPermitted."""
        entitled = (
            actor.committees(Role.SUPERVISOR)
            | actor.committees(Role.DIRECTOR)
            | actor.committees(Role.AUDITOR)
        )
        wanted = entitled if committees is None else frozenset(committees)
        if not wanted or not wanted <= entitled:
            raise NotPermitted(
                f"{actor.id} may not see statistics of {', '.join(sorted(wanted - entitled)) or 'any committee'}",
                message_zh=f"{actor.id} 无权查看该调委会的统计",
                actor=actor.id,
            )
        return wanted

    def allowed(self, actor: Actor, case_id: str) -> tuple[Permission, ...]:
        """For every command of the case's workflow: may ``actor`` issue it on this case now, and if
        not, why not (the first check that refuses it, as :meth:`execute` would).  Guards that
        depend on the payload are listed as pending, not judged."""
        case = self.case(case_id)
        authority = self._authority(actor, case.committee, fresh=True)
        at = max(format_time(self.clock()), case.updated_at, authority.since)
        out = []
        for spec in case.workflow.commands:
            try:
                d = decide(
                    case,
                    spec.name,
                    actor.id,
                    None,
                    at,
                    grants=authority.grants,
                    directory=authority.directory,
                )
            except _REFUSALS as exc:
                reason = Text(zh=exc.message_zh, en=exc.message)
                out.append(Permission(spec.name, False, None, (reason,)))
            else:
                out.append(Permission(spec.name, True, d.acted_as, (), d.pending))
        return tuple(out)

    # -- the roster (人员名录) ---------------------------------------------------------------------

    def roster(self, committee: str) -> Roster | None:
        """``committee``'s roster as the store holds it now (verified up to its first fault), or
        None when it keeps none."""
        return self._roster_of(committee, fresh=True)

    def open_roster(
        self,
        actor: Actor,
        committee: str,
        *,
        basis: str,
        registrars: Iterable[str] | None = None,
    ) -> RosterEntry:
        """Start recording ``committee``'s roles, kept by ``registrars`` (default: the actor
        alone; the actor must be one of them).  From then on, role claims in the committee's
        cases are decided on, and verified against, the roster."""
        command = OpenRoster(committee, tuple(registrars or (actor.id,)), basis)
        return self._roster_write(actor, committee, [command])[0]

    def grant_role(
        self, actor: Actor, committee: str, person: str, role: str, *, basis: str
    ) -> RosterEntry:
        """Record that ``person`` holds ``role`` in ``committee`` from now on (a registrar's)."""
        return self._roster_write(actor, committee, [GrantRole(person, role, basis)])[0]

    def revoke_role(
        self, actor: Actor, committee: str, person: str, role: str, *, basis: str
    ) -> RosterEntry:
        """Record that ``person`` no longer holds ``role`` in ``committee`` (a registrar's)."""
        return self._roster_write(actor, committee, [RevokeRole(person, role, basis)])[0]

    def sync_roster(
        self,
        actor: Actor,
        committee: str,
        holders: Mapping[str, Iterable[str]],
        *,
        basis: str,
    ) -> tuple[RosterEntry, ...]:
        """Bring ``committee``'s recorded roles in step with the host's directory: ``holders``
        maps each person to the committee roles they hold now (``mediator``, ``director``, ...);
        roles recorded for anyone else, or not listed, are revoked, the missing ones granted, in
        one atomic batch (nothing when it already agrees).  Opens the roster, with the actor as
        its registrar, if the committee keeps none yet.  Registrars are kept with
        :meth:`grant_role` and :meth:`revoke_role` (the pseudo-role ``registrar``), not here."""
        if not isinstance(holders, Mapping):
            raise InvalidCommand("holders must map each person to their roles", field="holders")
        wanted: dict[str, set[str]] = {}
        for person, roles in holders.items():
            if isinstance(roles, str) or not isinstance(roles, Iterable):
                raise InvalidCommand(f"the roles of {person!r:.80} are not a list", field="roles")
            wanted[person] = {r.value if isinstance(r, Role) else r for r in roles}

        def commands(roster: Roster | None) -> list[RosterCommand]:
            out: list[RosterCommand] = []
            if roster is None or not roster.entries:
                out.append(OpenRoster(committee, (actor.id,), basis))
            held = roster.holders() if roster is not None else {}
            for person in sorted(set(held) | set(wanted)):
                have = set(held.get(person, ())) - {REGISTRAR}
                want = wanted.get(person, set()) - {REGISTRAR}
                for role in sorted(have - want):
                    out.append(RevokeRole(person, role, basis))
                for role in sorted(want - have):
                    out.append(GrantRole(person, role, basis))
            return out

        return self._roster_write(actor, committee, commands)

    def _roster_write(
        self,
        actor: Actor,
        committee: str,
        commands: list[RosterCommand] | Callable[[Roster | None], list[RosterCommand]],
    ) -> tuple[RosterEntry, ...]:
        """Decide ``commands`` (or those ``commands(roster)`` returns) on the roster as the store
        holds it, and append them in one batch if it is still at that seq; else read and decide
        again."""
        if not isinstance(actor, Actor):
            raise InvalidCommand(f"actor must be an Actor, got {type(actor).__name__}")
        if not isinstance(committee, str) or not _ID_RE.match(committee):
            raise InvalidCommand(f"not a valid committee id: {committee!r:.80}", field="committee")
        stream = roster_id(committee)
        start = 0
        for attempt in range(self.attempts):
            roster = self._roster_of(committee, fresh=True)
            batch = commands(roster) if callable(commands) else commands
            if not batch:
                return ()
            after = roster.copy() if roster is not None else Roster(committee)
            start = after.seq
            now = self.clock()
            at = max(format_time(now), after.updated_at)
            records = []
            for command in batch:
                decide_roster(after, command, actor.id)
                seq = after.seq + 1
                raw = encode_body(
                    case_id=stream,
                    seq=seq,
                    type=command.name,
                    at=at,
                    actor=actor.id,
                    acted_as=REGISTRAR,
                    state=STATE,
                    payload=roster_payload(command),
                    prev=after.head,
                    workflow=ROSTER_WORKFLOW,
                )
                stored = StoredEvent(stream, seq, event_hash(raw), raw, None)
                after._apply(RosterEntry(seq, at, actor.id, command), stored.hash)
                records.append(stored)
            try:
                self.store.append(roster_summary(after), records, start)
            except ConcurrencyConflict:
                time.sleep(_backoff(attempt, 0.002))
                continue
            with self._lock:
                self._rosters[committee] = (after, time.monotonic())
            return tuple(after.entries[start:])
        raise ConcurrencyConflict(
            f"roster {committee}: another writer was first {self.attempts} times in a row",
            expected_seq=start,
            case=stream,
        )

    def _roster_of(self, committee: object, *, fresh: bool = False) -> Roster | None:
        """``committee``'s roster, as read at most :data:`_ROSTER_TTL` seconds ago (``fresh``:
        now); None when it keeps none."""
        if type(committee) is not str or not committee:
            return None
        now = time.monotonic()
        with self._lock:
            held, read_at = self._rosters.get(committee, (None, -_ROSTER_TTL))
        if not fresh and now - read_at < _ROSTER_TTL:
            return held
        stream = roster_id(committee)
        # the summary row says whether there is anything new (one indexed lookup); the records
        # after the seq held are read only then
        row = self.store.summary(stream)
        fresh_seq = row.seq if row is not None else 0
        known = held.seq if held is not None else 0
        new = self.store.read(stream, after_seq=known) if fresh_seq != known else []
        roster = held
        if new:
            roster = verify_roster(new, stream, held)[1]
            if roster.seq == 0:
                roster = None
        with self._lock:
            self._rosters[committee] = (roster, now)
        return roster

    def _authority(self, actor: Actor, committee: object, *, fresh: bool = False) -> _Authority:
        """What a command by ``actor`` in ``committee`` is decided with: where the committee keeps
        a roster, the roles it records (narrowed to those the host asserts for the actor) and the
        roster as the directory of people; else the host's assertion and directory."""
        roster = self._roster_of(committee, fresh=fresh)
        if roster is None:
            return _Authority(actor.grants, self.directory, None, "")
        recorded = roster.grants(actor.id)
        grants = frozenset(g for g in actor.grants if g.committee != committee or g in recorded)
        return _Authority(grants, roster.view(), roster.seq, roster.updated_at)

    # -- writing -----------------------------------------------------------------------------------

    def open(
        self,
        actor: Actor,
        command: Command,
        *,
        case_id: str | None = None,
        request_id: str | None = None,
    ) -> Case:
        """Open a case with ``apply`` or ``report``; returns the new case.

        With a ``request_id`` and no ``case_id``, the case id is derived from the actor and the
        request id (:meth:`request_case_id`), so a retried request returns the case it opened.
        """
        opening = [c.name for c in self.workflow.opening]
        if getattr(command, "name", None) not in opening:
            raise InvalidCommand(
                f"a case opens with {' or '.join(sorted(opening))}, not "
                f"{getattr(command, 'name', type(command).__name__)}"
            )
        if case_id is None:
            if request_id is not None and isinstance(actor, Actor):
                _check_request_id(request_id)
                case_id = self.request_case_id(actor.id, request_id)
            else:
                case_id = self._new_id()
        case = self._execute(actor, case_id, command, None, request_id)[1]
        return case if case is not None else self._load(case_id)[0]

    def execute(
        self,
        actor: Actor,
        case_id: str,
        command: Command,
        *,
        acting_as: str | None = None,
        request_id: str | None = None,
    ) -> Event:
        """Issue ``command`` on case ``case_id`` as ``actor``; returns the recorded event.

        A ``request_id`` (the client's idempotency key, an id of the same form as case ids) makes
        the command idempotent: if the case already holds an event of that request, by the same
        actor and command, that event is returned and nothing is written; if it holds one of
        another command or actor, :class:`~mediation.RequestConflict` is raised.
        """
        return self._execute(actor, case_id, command, acting_as, request_id)[0]

    def erase(
        self,
        actor: Actor,
        case_id: str,
        *,
        basis: str,
        person: str = "",
        request: DocRef | None = None,
        request_id: str | None = None,
    ) -> Event:
        """Erase the personal data of ``person`` (a party or agent of the case) or, with no person,
        of the whole case (PIPL 47): the erasure is recorded as an ``erase_personal_data`` event
        (by the director, with its ``basis``), then the keys its data was sealed under are
        destroyed (as for that command issued with :meth:`execute`).  The mediation's record
        stays, and so does every hash (PML27).

        Erasing again what was erased records nothing and destroys the keys again (a host that
        crashed between the event and the keys' destruction completes it so); returns the event
        that recorded the erasure.  With sealing off there is nothing this library can erase:
        :class:`~mediation.InvalidCommand`.
        """
        case = self.case(case_id)
        spec = case.workflow.erasure
        if spec is None:
            raise InvalidCommand(
                f"workflow {case.workflow.version} records no erasure", case=case_id
            )
        done = next(
            (
                e
                for e in reversed(self.history(case_id))
                if e.type == spec.name and e.payload.get("person") in ("", person)
            ),
            None,
        )
        if done is not None and self.vault is not None:
            # erased before: only someone who may erase learns it, and the keys go again
            grants = self._authority(actor, case.committee).grants
            authorize(spec, case, actor.id, done.payload, None, grants)
            self.vault.erase(case_id, done.payload.get("person") or None)
            return done
        command = spec.payload(basis=basis, person=person, request=request)
        return self.execute(actor, case_id, command, request_id=request_id)

    def _execute(
        self,
        actor: Actor,
        case_id: str,
        command: Command,
        acting_as: str | None,
        request_id: str | None,
    ) -> tuple[Event, Case | None]:
        """The event, and the new case (None when a request already held answered)."""
        if not isinstance(actor, Actor):
            raise InvalidCommand(f"actor must be an Actor, got {type(actor).__name__}")
        name = getattr(command, "name", None)
        if not isinstance(command, Command) or not isinstance(name, str):
            raise InvalidCommand(f"not a command: a {type(command).__name__}")
        if not isinstance(case_id, str) or not _ID_RE.match(case_id):
            raise InvalidCommand(f"not a valid case id: {case_id!r:.80}", field="case_id")
        if request_id is not None:
            _check_request_id(request_id)
        opening = name in self._opening
        lock = self._case_locks[hash(case_id) % _CASE_LOCKS]
        case: Case | None = None
        lost = False  # the last attempt lost a race: catch up after the pause, not before it
        for attempt in range(self.attempts):
            with lock:  # this process's threads take turns on the case; the backoff is outside
                try:
                    if request_id is not None:
                        repeat = self._held(case_id, actor, command, acting_as, request_id)
                        if repeat is not None:
                            return repeat
                    if opening:
                        case = Case(case_id, self.workflow)
                    elif case is None:
                        case = self._snapshot(case_id)
                    elif lost:  # what the store holds now, read as late as possible
                        case = self._fresher(case)
                    lost = False
                    return self._decide(actor, case, command, acting_as, request_id)
                except RequestConflict:
                    continue  # another attempt of this request landed first: found next round
                except (ConcurrencyConflict, *_REFUSALS, CaseExists, ClockSkew) as exc:
                    # before anything is concluded: another process may have recorded this very
                    # request after the lookup above (a double submit reaching two workers at once)
                    repeat = self._held(case_id, actor, command, acting_as, request_id)
                    if repeat is not None:
                        return repeat
                    lost_race = isinstance(exc, ConcurrencyConflict)
                    if opening:
                        if lost_race:
                            raise CaseExists(
                                f"case {case_id} already exists", case=case_id
                            ) from None
                        raise
                    if case is None:
                        raise
                    if not lost_race:
                        fresher = self._catch_up(case)
                        if fresher is case:  # the refusal rests on what the store holds: it stands
                            raise
                        case = fresher
                        continue
                    lost = True
                    if attempt == self.attempts - 1:
                        raise
            time.sleep(_backoff(attempt, 0.002))
        repeat = self._held(case_id, actor, command, acting_as, request_id)
        if repeat is not None:
            return repeat
        raise ConcurrencyConflict(
            f"case {case_id}: another writer was first {self.attempts} times in a row",
            expected_seq=case.seq if case is not None else 0,
            case=case_id,
        )

    def _fresher(self, case: Case) -> Case:
        """The case after a lost race: the events read after ``case`` folded on; if there are
        none, the snapshot was ahead of the store (a host's rollback): reloaded from it."""
        fresher = self._catch_up(case)
        if fresher is case:
            self.forget(case.id)
            fresher = self._load(case.id)[0]
        return fresher

    def _landed(self, stored: StoredEvent) -> bool | None:
        """After :class:`OutcomeUnknown`: is ``stored`` what the store holds at its seq?  True: it
        was written.  False: another event holds the seq for good, so it never will be.  None:
        nothing there yet, or the store cannot be read: still unknown."""
        try:
            there = self.store.read(stored.case_id, after_seq=stored.seq - 1)[:1]
        except Exception:  # whatever fails here, what the caller must hear is the unknown outcome
            return None
        if not there:
            return None
        return there[0].hash == stored.hash

    def _decide(
        self,
        actor: Actor,
        case: Case,
        command: Command,
        acting_as: str | None,
        request_id: str | None,
    ) -> tuple[Event, Case]:
        """Decide ``command`` on the snapshot ``case`` and append its event if the store is still
        at the snapshot's seq; returns the event and the new snapshot (``case`` is not changed)."""
        case_id = case.id
        workflow = case.workflow
        opening = case.state == NEW
        spec = workflow.find(command.name)
        if spec is not None and type(command) is not spec.payload:
            raise InvalidCommand(  # the type only: a command's repr holds personal data
                f"not a command: a {type(command).__name__} ({command.name} on workflow "
                f"{workflow.version} takes a {spec.payload.__name__})"
            )
        payload = to_payload(command)
        if opening and "profile" in payload and not payload["profile"]:
            payload["profile"] = self.policy.recusal
        if "window_ends" in payload:  # G11 decides on the window of this service's policy
            ends = None
            if payload.get("status") == JudicialStatus.APPLIED:
                ends = judicial_window_end(case, self.policy)
            payload["window_ends"] = format_time(ends) if ends is not None else ""
        links = _links_transfer(workflow, command.name, payload)
        member = spec.link[1] if links and spec is not None and spec.link else ""
        if links and not payload[member]:  # the case the transfer opens at the receiving end
            payload[member] = self.transfer_case_id(case_id, case.seq + 1)
        committee = (
            payload.get(spec.authority if spec is not None else "committee")
            if opening
            else case.committee
        )
        # the decision never reads what will be sealed: it sees the stand-in replay sees (the
        # sealed places are found once, for the stand-ins and the sealing)
        found: list[tuple[Place, Any]] = []
        decided_on = payload
        if self.vault is not None and spec is not None:  # (an unknown command is refused)
            found = sealed_places(workflow, spec, payload)
            decided_on = standins(workflow, spec, payload, plaintext=True, places=found)
        for fresh in (False, True):
            authority = self._authority(actor, committee, fresh=fresh)
            # the event is timed no earlier than the case's last event and the roster entry it
            # is decided on: a host clock behind them is held back
            floor = max(case.updated_at, authority.since)
            now = self.clock()
            at = format_time(now)
            clock_reading = None
            if at < floor:
                clock_reading, at = at, floor
            try:
                decision = decide(
                    case,
                    command.name,
                    actor.id,
                    decided_on,
                    at,
                    grants=authority.grants,
                    claim=acting_as,
                    directory=authority.directory,
                )
            except NotPermitted:
                if fresh or authority.roster is None:
                    raise
                continue  # refused on a roster read up to a second ago: read it again first
            break
        spec, acted_as, state = decision.command, decision.acted_as, decision.state
        if clock_reading is not None:  # decided first: only those who may act learn the time
            behind = parse_time(floor) - now
            if self.clock_tolerance is not None and behind > self.clock_tolerance:
                raise ClockSkew(
                    f"the clock reads {clock_reading}, {behind.total_seconds():.3f} s before the "
                    f"case's last event or roster entry at {floor} (tolerance "
                    f"{self.clock_tolerance.total_seconds():g} s)",
                    message_zh=f"本机时钟 {clock_reading} 早于案件最后一个事件的时间 {floor}",
                    clock=clock_reading,
                    last=floor,
                    tolerance=self.clock_tolerance.total_seconds(),
                    case=case_id,
                    command=command.name,
                )
        # only someone who may open a case learns that the id is taken
        if opening and self.store.summary(case_id) is not None:
            raise CaseExists(f"case {case_id} already exists", case=case_id)
        if spec.name in self._written_by_links:  # decided first, like every command
            raise InvalidCommand(
                f"{spec.name} is written by the service with the transfer that opens the case; "
                "issue the transfer on the origin case instead",
                message_zh="接收移交的案件由移交操作同时建立，请在原案件上执行「移交」",
                command=spec.name,
                actor=actor.id,
            )
        if spec.erases and self.vault is None:  # decided first, like every command
            raise InvalidCommand(
                "sealing is off: personal data in this store is in plain text and cannot be "
                "erased by destroying keys (docs/privacy.md)",
                message_zh="未启用加密封存，无法通过销毁密钥删除个人信息",
                case=case_id,
                command=spec.name,
            )
        seq = case.seq + 1
        plain = payload  # what the case a transfer opens is built from (sealed again there)
        if self.vault is not None:  # only once it was accepted
            payload = seal_payload(self.vault, workflow, spec, case_id, seq, payload, found)
        prev = case.head
        raw = encode_body(
            case_id=case_id,
            seq=seq,
            type=spec.name,
            at=at,
            actor=actor.id,
            acted_as=acted_as,
            state=state,
            payload=payload,
            prev=prev,
            workflow=workflow.version,
            request=request_id,
            clock=clock_reading,
            roster=authority.roster,
        )
        stored = StoredEvent(case_id, seq, event_hash(raw), raw, request_id)
        # the new snapshot is folded on a copy: the cached one stays what the store holds
        folded = case.clone()
        # sealed, the payload holds no plain text at any sealed place: nothing for the fold to find
        sealed: list[tuple[Place, Any]] | None = [] if self.vault is not None else None
        apply_event(folded, seq, stored.hash, spec, payload, actor.id, acted_as, at, state, sealed)
        receiving = (
            self._receiving(actor, spec.name, folded, plain, at, authority, clock_reading)
            if links
            else None
        )
        try:
            if receiving is None:
                self.store.append(folded.summary(), (stored,), seq - 1)
            else:  # the transfer and the case it opens are written together, or not at all
                with self.store.transaction():
                    self.store.append(folded.summary(), (stored,), seq - 1)
                    self.store.append(receiving[0].summary(), (receiving[1],), 0)
        except OutcomeUnknown:
            self.forget(case_id)
            landed = self._landed(stored)
            if landed is None:
                raise
            if not landed:  # the seq went to another event: decide again on what the store holds
                raise ConcurrencyConflict(
                    f"case {case_id}: seq {seq} holds another event", expected_seq=seq - 1
                ) from None
        self._remember(folded)
        if receiving is not None:
            self._remember(receiving[0])
        if spec.erases and self.vault is not None:  # recorded: now the keys go (PIPL 47)
            self.vault.erase(case_id, payload.get("person") or None)
        event = Event(
            case_id,
            seq,
            spec.name,
            parse_time(at) if clock_reading is not None else now,
            actor.id,
            acted_as,
            state,
            payload,
            prev,
            workflow.version,
            SCHEMA_VERSION,
            stored,
            request_id,
            now if clock_reading is not None else None,
            authority.roster,
        )
        return event, folded

    def _receiving(
        self,
        actor: Actor,
        transfer_name: str,
        origin: Case,
        transfer: Mapping[str, Any],
        at: str,
        authority: _Authority,
        clock_reading: str | None,
    ) -> tuple[Case, StoredEvent]:
        """The case a transfer to a committee opens there: its opening event (``receive_transfer``,
        by the transferring director, naming the origin) decided like any command, and the case
        folded from it.  The parties, the category and the description are the origin's."""
        opening = _receiving_opening(origin.workflow)
        link = origin.workflow.command(transfer_name).link
        assert opening is not None and opening.link is not None and link is not None
        new_id = transfer[link[1]]
        if self.store.summary(new_id) is not None or self.store.read(new_id):
            raise CaseExists(
                f"case {new_id} already exists: a transfer opens a new case",
                message_zh=f"案件 {new_id} 已存在，移交须新建案件",
                case=new_id,
            )
        first = decode_event(self.store.read(origin.id)[0])
        first_spec = origin.workflow.command(first.type)
        opened = open_payload(self.vault, origin.workflow, first_spec, origin.id, 1, first.payload)
        if unopened(origin.workflow, first_spec, opened):
            raise InvalidCommand(
                f"case {origin.id}: the parties' personal data was erased (or does not open); "
                "it cannot be transferred",
                message_zh=f"案件 {origin.id} 的当事人个人信息已删除或无法解密，不能移交",
                case=origin.id,
            )
        command = from_payload(
            opening.payload,
            {
                **{k: opened[k] for k in _CARRIED if k in opened},
                "committee": transfer["target"],
                "level": Level.L2,  # the street's committee
                "profile": origin.profile,
                opening.link[1]: origin.id,
                opening.authority: origin.committee,
                "reason": transfer["reason"],
            },
        )
        payload = to_payload(command)
        case = Case(new_id, origin.workflow)
        decision = decide(
            case,
            command.name,
            actor.id,
            standins(origin.workflow, opening, payload, plaintext=True)
            if self.vault is not None
            else payload,
            at,
            grants=authority.grants,
            directory=authority.directory,
        )
        spec = decision.command
        if self.vault is not None:
            payload = seal_payload(self.vault, origin.workflow, spec, new_id, 1, payload)
        raw = encode_body(
            case_id=new_id,
            seq=1,
            type=spec.name,
            at=at,
            actor=actor.id,
            acted_as=decision.acted_as,
            state=decision.state,
            payload=payload,
            prev=GENESIS,
            workflow=origin.workflow.version,
            request=None,
            clock=clock_reading,
            roster=authority.roster,
        )
        stored = StoredEvent(new_id, 1, event_hash(raw), raw, None)
        apply_event(
            case, 1, stored.hash, spec, payload, actor.id, decision.acted_as, at, decision.state
        )
        return case, stored

    def _held(
        self,
        case_id: str,
        actor: Actor,
        command: Command,
        acting_as: str | None,
        request_id: str | None,
    ) -> tuple[Event, None] | None:
        """The answer to a request the store already holds an event of, or None."""
        if request_id is None:
            return None
        done = self.store.find_request(case_id, request_id)
        return None if done is None else self._repeat(done, actor, command, acting_as, request_id)

    def _repeat(
        self,
        done: StoredEvent,
        actor: Actor,
        command: Command,
        acting_as: str | None,
        request_id: str,
    ) -> tuple[Event, None]:
        """The answer to a request the case already holds: its event, if it is the same command by
        the same actor with the same payload (a retry); :class:`RequestConflict` if the id was
        used for something else."""
        event = decode_event(done)
        case_id = done.case_id
        if event.actor != actor.id:
            # someone else's request: only those who may issue this command learn anything, and
            # they learn no more than that the id is taken
            case = self._load(case_id)[0]
            if case.workflow.has_command(command.name):
                spec = case.workflow.command(command.name)
                payload = to_payload(command)
                authorize(spec, case, actor.id, payload, acting_as, actor.grants)
            raise RequestConflict(
                f"request {request_id} is taken on case {case_id}",
                message_zh=f"请求号 {request_id} 已被占用",
                request_id=request_id,
                case=case_id,
                command=command.name,
                actor=actor.id,
            )
        payload = to_payload(command)
        if event.seq == 1 and "profile" in payload and not payload["profile"]:
            payload["profile"] = event.payload.get("profile")
        if _links_transfer(workflow_of(event.workflow), event.type, payload):
            member = workflow_of(event.workflow).command(event.type).link[1]  # type: ignore[index]
            if not payload[member]:
                payload[member] = event.payload.get(member)  # the id the service chose
        recorded: dict[str, Any] = dict(event.payload)
        known = workflow_of(event.workflow)
        if known.has_command(event.type):
            spec = known.command(event.type)
            recorded = open_payload(self.vault, known, spec, case_id, event.seq, event.payload)
            if unopened(known, spec, recorded):
                # erased: what was sealed cannot be compared any more, the rest still is
                recorded = dict(standins(known, spec, event.payload))
                payload = dict(standins(known, spec, payload, plaintext=True))
        same = (
            event.type == command.name
            and (acting_as is None or acting_as == event.acted_as)
            and canonical_bytes(payload, checked=False) == canonical_bytes(recorded, checked=False)
        )
        if not same:
            raise RequestConflict(
                f"request {request_id} was already used on case {case_id} for {event.type} "
                f"(seq {event.seq})",
                message_zh=f"请求号 {request_id} 已用于本案的另一操作（第 {event.seq} 号事件）",
                request_id=request_id,
                case=case_id,
                seq=event.seq,
                command=command.name,
                actor=actor.id,
            )
        return event, None

    def execute_with_retry(
        self,
        actor: Actor,
        case_id: str,
        command: Command,
        *,
        acting_as: str | None = None,
        request_id: str | None = None,
        attempts: int = 10,
        backoff: float = 0.002,
    ) -> Event:
        """``execute``, retried after a concurrency conflict that outlasted its own attempts.

        Each retry runs the whole command path again on what the other writers recorded, so guards
        and permissions are re-checked.  A command that fails for any other reason (a guard, a
        permission) is not retried.
        """
        return self.retry(
            lambda: self.execute(
                actor, case_id, command, acting_as=acting_as, request_id=request_id
            ),
            attempts=attempts,
            backoff=backoff,
        )

    @staticmethod
    def retry(
        fn: Callable[[], T],
        *,
        attempts: int = 10,
        backoff: float = 0.002,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Call ``fn`` until it does not raise :class:`ConcurrencyConflict` (at most ``attempts``).

        Between tries it sleeps a random time up to ``backoff`` × 2^try (capped at 0.25 s), so
        writers that collided do not collide again in lockstep ("full jitter").
        """
        if attempts < 1:
            raise InvalidCommand("attempts must be at least 1", field="attempts")
        for attempt in range(attempts):
            try:
                return fn()
            except ConcurrencyConflict:
                if attempt == attempts - 1:
                    raise
                pause = _backoff(attempt, backoff)
                if pause > 0:
                    sleep(pause)
        raise AssertionError("unreachable")

    # -- the cache ---------------------------------------------------------------------------------

    def _snapshot(self, case_id: str) -> Case:
        """The cached snapshot as it is (possibly behind the store), or the case loaded."""
        with self._lock:
            case = self._cache.get(case_id)
            if case is not None:
                self._cache.move_to_end(case_id)
                return case
        return self._load(case_id)[0]

    def _load(self, case_id: str, *, full: bool = False) -> tuple[Case, list[StoredEvent]]:
        """The case as the store holds it now: the cached snapshot with the events after it folded
        on, or a replay of every event.  With ``full``, every record is read and returned too."""
        with self._lock:
            cached = self._cache.get(case_id)
        if full or cached is None:
            records = self.store.read(case_id)
            if not records:
                self.forget(case_id)
                raise CaseNotFound(
                    f"no case {case_id}", message_zh=f"案件 {case_id} 不存在", case=case_id
                )
            if (
                cached is not None
                and cached.seq <= len(records)
                and records[cached.seq - 1].hash == cached.head
            ):
                case = self._fold(cached, records[cached.seq :])
            else:
                case = replay(records, case_id)
                self._remember(case)
            return case, records
        return self._catch_up(cached), []

    def _catch_up(self, case: Case) -> Case:
        """``case`` with the events the store holds after it folded on (``case`` itself if none)."""
        return self._fold(case, self.store.read(case.id, after_seq=case.seq))

    def _fold(self, case: Case, newer: list[StoredEvent]) -> Case:
        if not newer:
            return case
        fresher = replay(newer, case.id, start=case)
        self._remember(fresher)
        return fresher

    def _remember(self, case: Case) -> None:
        if self._cache_size == 0:
            return
        with self._lock:
            cached = self._cache.get(case.id)
            if cached is None or cached.seq <= case.seq:
                self._cache[case.id] = case
            self._cache.move_to_end(case.id)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def forget(self, case_id: str | None = None) -> None:
        """Drop cached cases (all, or one) so the next access rebuilds them from the store."""
        with self._lock:
            if case_id is None:
                self._cache.clear()
            else:
                self._cache.pop(case_id, None)


_TO, _FROM = "to", "from"

#: what a transferred case carries over from its origin's opening event
_CARRIED = (
    "category",
    "subtype",
    "description",
    "applicants",
    "respondents",
    "involves_privacy",
    "trade_secrets",
    "evidence",
)


def _links_transfer(workflow: Workflow, name: str, payload: Mapping[str, Any]) -> bool:
    """Does this command open the linked case at a receiving committee: a command that links
    ``to`` another case (a transfer, version 2 on), sent to a committee?"""
    spec = workflow.find(name)
    return (
        spec is not None
        and spec.link is not None
        and spec.link[0] == _TO
        and _receiving_opening(workflow) is not None
        and payload.get("to") == TransferTarget.STREET_COMMITTEE
    )


def _receiving_opening(workflow: Workflow) -> CommandSpec | None:
    """The opening a linking command writes at the other end (``link`` ``from``), if any."""
    return next((c for c in workflow.opening if c.link is not None and c.link[0] == _FROM), None)


def _check_request_id(request_id: object) -> None:
    if not isinstance(request_id, str) or not _ID_RE.match(request_id):
        raise InvalidCommand(
            f"not a valid request id: {request_id!r:.80} (1-64 of A-Z a-z 0-9 _ . : @ -)",
            field="request_id",
        )
