"""The case service: the one place a host app calls to move cases.

``execute`` runs the command path: authorize (roles and case relations) → the shared ``transitions``
machine on a throw-away probe (legal source state, guards as conditions that raise) → one event,
canonically encoded and hashed → append to the store with the expected seq → fold the event into
the cached case.  A command that fails at any step raises and appends nothing.
"""

from __future__ import annotations

import datetime as _dt
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs
from transitions import MachineError

from ._audit import Verdict, replay, verify
from ._authz import Actor, Directory, StaticDirectory, authorize
from ._case import Case, CaseSummary, apply_event
from ._commands import _ID_RE, COMMAND_TYPES, Command, to_payload
from ._deadlines import Deadline, Policy, deadlines, summary_deadlines
from ._errors import (
    CaseExists,
    CaseNotFound,
    ConcurrencyConflict,
    IllegalTransition,
    InvalidCommand,
    MediationError,
    NotPermitted,
)
from ._events import (
    SCHEMA_VERSION,
    Event,
    StoredEvent,
    decode_event,
    encode_body,
    event_hash,
    format_time,
)
from ._guards import GUARDS, NAMES_PEOPLE, Context, check_people, condition
from ._privacy import SEALS_PERSONAL_DATA, Vault, seal_payload
from ._stats import Statistics, compute_statistics
from ._views import CaseView, view_case
from ._workflow import NEW, WORKFLOW, Role, build_machine
from .stores._base import Store

__all__ = ["CaseService", "Permission", "utc_now"]

T = TypeVar("T")


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _machine() -> Any:
    def guard(name: str) -> Callable[[Any], bool]:
        completes = any(c.completes_when == name for c in WORKFLOW.commands)
        return condition(name, raising=not completes)

    return build_machine(WORKFLOW, guard)


#: The one machine shared by every service and case in the process (it has no models).
MACHINE = _machine()
_EVENTS = MACHINE.events


#: the commands whose transitions carry conditions (guards, or a completion predicate)
_GUARDED = frozenset(c.name for c in WORKFLOW.commands if c.guards or c.completes_when)


class _Probe:
    """What the machine transitions: one attribute, set from the case, read back, dropped."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@attrs.frozen
class Permission:
    """One answer of :meth:`CaseService.allowed`."""

    command: str
    allowed: bool
    acted_as: str | None = None
    #: why not (English, Chinese), when not allowed
    reasons: tuple[tuple[str, str], ...] = ()
    #: guards that also depend on the command's payload and are judged when it is issued
    pending_guards: tuple[str, ...] = ()


class CaseService:
    """Moves cases through the workflow and records every step in the store.

    ``clock`` returns timezone-aware UTC datetimes (inject one in tests); ``directory`` answers
    "is this person a mediator of that committee" for G3; ``policy`` holds deadlines and the recusal
    profile new cases take.
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
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.directory: Directory = directory if directory is not None else StaticDirectory()
        self.policy = policy or Policy()
        #: seals personal data per case before it enters the log (see :mod:`mediation._privacy`)
        self.vault = vault
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        self._cache: OrderedDict[str, Case] = OrderedDict()  # least recently used first
        self._cache_size = cache_size

    # -- reading -----------------------------------------------------------------------------------

    def case(self, case_id: str) -> Case:
        """The current case, from the cache or rebuilt from the store (and verified)."""
        case = self._cache.get(case_id)
        if case is not None:
            self._cache.move_to_end(case_id)
            return case
        records = self.store.read(case_id)
        if not records:
            raise CaseNotFound(
                f"no case {case_id}", message_zh=f"案件 {case_id} 不存在", case=case_id
            )
        case = replay(records, case_id)
        self._remember(case)
        return case

    def history(self, case_id: str) -> list[Event]:
        records = self.store.read(case_id)
        if not records:
            raise CaseNotFound(f"no case {case_id}", case=case_id)
        return [decode_event(r) for r in records]

    def verify(self, case_id: str) -> Verdict:
        """Verify the stored history of one case (chain, transitions, permissions, guards).

        Role claims are taken as recorded: today's directory need not be the one of the day a role
        was used.  To check them, call :func:`mediation.verify` with a directory of that time.
        """
        return verify(self.store.read(case_id), case_id, directory=None)

    def view(self, actor: Actor, case_id: str, *, reveal_personal: bool = False) -> CaseView:
        """What ``actor`` may see of the case (DOMAIN.md, Confidentiality)."""
        return view_case(
            self.case(case_id), self.history(case_id), actor, reveal_personal, self.vault
        )

    def deadlines(self, case_id: str, now: _dt.datetime | None = None) -> tuple[Deadline, ...]:
        return deadlines(self.case(case_id), now or self.clock(), self.policy)

    def overdue(
        self, now: _dt.datetime | None = None, *, committee: str | None = None
    ) -> list[tuple[CaseSummary, Deadline]]:
        """Early warnings (预警): open cases past a deadline, from the store's summary rows."""
        now = now or self.clock()
        out = []
        for s in self.store.cases(committee=committee):
            for d in summary_deadlines(s, now, self.policy):
                if d.overdue:
                    out.append((s, d))
        return out

    def statistics(self, actor: Actor, committees: Iterable[str] | None = None) -> Statistics:
        """Counts, success rate, durations and overdue cases over the committees ``actor`` holds a
        supervisor, director or auditor role in (or the given subset of them)."""
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
        rows = [row for c in sorted(wanted) for row in self.store.cases(committee=c)]
        return compute_statistics(rows, wanted, self.clock(), self.policy)

    def allowed(self, actor: Actor, case_id: str) -> tuple[Permission, ...]:
        """For every command of the workflow: may ``actor`` issue it on this case now, and if not,
        why not.  Guards that depend on the payload are listed as pending, not judged."""
        case = self.case(case_id)
        at = format_time(self.clock())
        out = []
        for spec in WORKFLOW.commands:
            reasons: list[tuple[str, str]] = []
            acted_as = None
            if (case.state, spec.name) not in WORKFLOW.table:
                reasons.append(
                    (
                        f"not allowed from state {case.state}",
                        f"当前状态「{WORKFLOW.state(case.state).zh}」下不可执行",
                    )
                )
            try:
                acted_as = authorize(spec, case, actor, {})
            except NotPermitted as exc:
                reasons.append((exc.message, exc.message_zh))
            pending = []
            if not reasons:
                ctx = Context(case, spec.name, {}, actor.id, acted_as or "", at, self.directory)
                for g in spec.guards:
                    if GUARDS[g].needs_payload:
                        pending.append(g)
                        continue
                    reason = GUARDS[g].fn(ctx)
                    if reason is not None:
                        reasons.append((f"{g}: {reason[0]}", f"{g}：{reason[1]}"))
            out.append(
                Permission(
                    spec.name,
                    not reasons,
                    acted_as if not reasons else None,
                    tuple(reasons),
                    tuple(pending),
                )
            )
        return tuple(out)

    # -- writing -----------------------------------------------------------------------------------

    def open(self, actor: Actor, command: Command, *, case_id: str | None = None) -> Case:
        """Open a case with ``apply`` or ``report``; returns the new case."""
        if command.name not in ("apply", "report"):
            raise InvalidCommand(f"a case opens with apply or report, not {command.name}")
        case_id = case_id or self._new_id()
        self.execute(actor, case_id, command)
        return self._cache[case_id]

    def execute(
        self, actor: Actor, case_id: str, command: Command, *, acting_as: str | None = None
    ) -> Event:
        """Issue ``command`` on case ``case_id`` as ``actor``; returns the recorded event."""
        if not isinstance(actor, Actor):
            raise InvalidCommand(f"actor must be an Actor, got {type(actor).__name__}")
        cls = COMMAND_TYPES.get(getattr(command, "name", ""))
        if cls is None or type(command) is not cls:
            raise InvalidCommand(f"not a command: {command!r}")
        opening = command.name in ("apply", "report")
        if opening:
            if not isinstance(case_id, str) or not _ID_RE.match(case_id):
                raise InvalidCommand(f"not a valid case id: {case_id!r:.80}", field="case_id")
            case = Case(case_id)
        else:
            case = self.case(case_id)
        spec = WORKFLOW.command(command.name)
        payload = to_payload(command)
        if opening and not payload["profile"]:
            payload["profile"] = self.policy.recusal
        acted_as = authorize(spec, case, actor, payload, acting_as)
        # only someone who may open a case learns that the id is taken
        if opening and (case_id in self._cache or self.store.summary(case_id) is not None):
            raise CaseExists(f"case {case_id} already exists", case=case_id)
        now = self.clock()
        at = format_time(now)
        # the conditions are the guards: a command without guards needs no context
        ctx = (
            Context(case, spec.name, payload, actor.id, acted_as, at, self.directory)
            if spec.name in _GUARDED
            else None
        )
        probe = _Probe(case.state)
        try:
            _EVENTS[spec.name].trigger(probe, ctx=ctx)
        except MachineError as exc:  # not allowed from this state (a failed guard raises its own)
            where = "a new case" if case.state == NEW else f"state {case.state}"
            raise IllegalTransition(
                f"{spec.name} is not allowed from {where}",
                message_zh=f"当前状态下不能「{spec.zh}」",
                case=case_id,
                state=case.state,
                command=spec.name,
                actor=actor.id,
            ) from exc
        if spec.name in NAMES_PEOPLE:
            check_people(case, spec.name, payload)
        if self.vault is not None and spec.name in SEALS_PERSONAL_DATA:  # only once it passed
            seal_payload(self.vault, case_id, spec.name, payload)
        seq = case.seq + 1
        prev = case.head
        raw = encode_body(
            case_id=case_id,
            seq=seq,
            type=spec.name,
            at=at,
            actor=actor.id,
            acted_as=acted_as,
            state=probe.state,
            payload=payload,
            prev=prev,
            workflow=WORKFLOW.version,
        )
        stored = StoredEvent(case_id, seq, event_hash(raw), raw)
        # Fold first (the summary row must show the new state), append second; if the append
        # fails, the case is put back to what the store holds, so nobody sees an unwritten event.
        apply_event(case, seq, stored.hash, spec.name, payload, actor.id, acted_as, at, probe.state)
        try:
            self.store.append(case.summary(), (stored,), seq - 1)
        except BaseException as exc:
            self._restore(case, opening)
            if opening and isinstance(exc, ConcurrencyConflict):
                raise CaseExists(f"case {case_id} already exists", case=case_id) from None
            raise
        if opening:
            self._remember(case)
        return Event(
            case_id,
            seq,
            spec.name,
            now,
            actor.id,
            acted_as,
            probe.state,
            payload,
            prev,
            WORKFLOW.version,
            SCHEMA_VERSION,
            stored,
        )

    def execute_with_retry(
        self,
        actor: Actor,
        case_id: str,
        command: Command,
        *,
        acting_as: str | None = None,
        attempts: int = 10,
        backoff: float = 0.002,
    ) -> Event:
        """``execute``, retried after a concurrency conflict.

        Each retry reloads the case from the store and runs the whole command path again, so guards
        and permissions are re-checked against what the other writer recorded.  A command that
        fails for any other reason (a guard, a permission) is not retried.
        """
        return self.retry(
            lambda: self.execute(actor, case_id, command, acting_as=acting_as),
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
                if backoff > 0:
                    sleep(random.uniform(0, min(0.25, backoff * 2**attempt)))
        raise AssertionError("unreachable")

    # -- internals ---------------------------------------------------------------------------------

    def _remember(self, case: Case) -> None:
        self._cache[case.id] = case
        self._cache.move_to_end(case.id)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, case_id: str | None = None) -> None:
        """Drop cached cases (all, or one) so the next access rebuilds them from the store."""
        if case_id is None:
            self._cache.clear()
        else:
            self._cache.pop(case_id, None)

    def _restore(self, case: Case, opening: bool) -> None:
        """Undo a fold whose append failed: reload the case's committed state from the store."""
        self._cache.pop(case.id, None)
        if opening:
            return
        try:
            committed = replay(self.store.read(case.id), case.id)
        except MediationError:
            return  # the store is unreachable: the case stays out of the cache
        for field in attrs.fields(Case):
            setattr(case, field.name, getattr(committed, field.name))
        self._remember(case)
