"""The roster (人员名录): who held which role in a committee, when, granted by whom, on what basis.

A host's user directory tells who holds a role *today*; an auditor asks who held it on the day an
event was recorded.  The roster answers that from evidence: each committee's grants and
revocations are events of their own chained stream, ``@roster:<committee>``, in the same store as
the cases (so the same checkpoints cover them), written by the committee's registrars (the person
or process that keeps the roster in step with the appointments: members elected by the villagers'
or residents' assembly, PML 9; mediators engaged by the committee, PML 13).  A stream id starts
with ``@``, which no case id can, so the two never collide, and :meth:`Store.cases` lists cases
only.

A case event decided under a recorded roster names the roster's seq it was decided on (the
envelope's ``roster`` member).  Replay decides the event again with the grants of that seq, by the
same :func:`mediation._decide.decide`; it refuses a seq that did not exist yet at the event's time,
one superseded more than :data:`GRACE` before it (a decision on a roster that was stale for longer
than a server can lag), and a missing ``roster`` member where the committee kept a roster by then.
Where no roster was kept, role claims cannot be checked, and the verdict says so
(:attr:`mediation.Verdict.unchecked`).

The commands of the roster are decided by :func:`decide_roster`, which the live path
(:meth:`mediation.CaseService.grant_role` and its siblings) and replay (:func:`verify_roster`) both
call; their payloads are frozen classes validated by the same validators.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._authz import Grant
from ._case import CaseSummary
from ._errors import IllegalTransition, InvalidCommand, MediationError, NotPermitted
from ._events import DOMAIN_TAG, GENESIS, StoredEvent, by_stream, parse_time
from ._validators import ident, items, one_of, text
from ._vocab import NEW, Role

if TYPE_CHECKING:
    from ._audit import Verdict
    from .stores._base import Store

__all__ = [
    "GRACE",
    "PREFIX",
    "REGISTRAR",
    "STATE",
    "WORKFLOW",
    "GrantRole",
    "OpenRoster",
    "RevokeRole",
    "Roster",
    "RosterEntry",
    "RosterView",
    "committee_of",
    "decide_roster",
    "roster_id",
    "roster_payload",
    "roster_summary",
    "verify_roster",
]

#: the stream id of committee ``c``'s roster is ``PREFIX + c`` (no case id starts with ``@``)
PREFIX = "@roster:"
#: the version every roster event names (rosters are not mediation workflows: they are decided by
#: :func:`decide_roster`)
WORKFLOW = "mediation-roster/1"
#: the one state of a kept roster
STATE = "kept"
#: the standing under which a roster is kept (not a committee role: it is held in the roster only)
REGISTRAR = "registrar"
#: how long after a roster change a decision made on the roster before it is still accepted: the
#: time a server may lag behind the roster (the service's clock tolerance, 5 minutes by default,
#: plus the second for which it reuses a roster it has read).  A forger with database access can
#: use a revoked role for this long after the revocation, and only after the last checkpoint.
GRACE = _dt.timedelta(minutes=10)

_ROLES = (*(r.value for r in Role), REGISTRAR)


def roster_id(committee: str) -> str:
    """The stream id of ``committee``'s roster."""
    return PREFIX + committee


def committee_of(stream_id: object) -> str | None:
    """The committee whose roster ``stream_id`` is, or None for a case id."""
    if isinstance(stream_id, str) and stream_id.startswith(PREFIX):
        return stream_id[len(PREFIX) :]
    return None


# -- the commands ----------------------------------------------------------------------------------


def _registrars(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list | tuple) else value


@attrs.frozen
class OpenRoster:
    """Start a committee's roster: its first registrars (the actor among them), on what basis."""

    name = "open_roster"
    committee: str = attrs.field(validator=ident)
    registrars: tuple[str, ...] = attrs.field(
        converter=_registrars, validator=items(ident, min_len=1)
    )
    basis: str = attrs.field(validator=text(500, required=True))


@attrs.frozen
class GrantRole:
    """Record that ``person`` holds ``role`` in the committee from now on, on ``basis``."""

    name = "grant_role"
    person: str = attrs.field(validator=ident)
    role: str = attrs.field(validator=one_of(*_ROLES))
    basis: str = attrs.field(validator=text(500, required=True))


@attrs.frozen
class RevokeRole:
    """Record that ``person`` no longer holds ``role`` in the committee, on ``basis``."""

    name = "revoke_role"
    person: str = attrs.field(validator=ident)
    role: str = attrs.field(validator=one_of(*_ROLES))
    basis: str = attrs.field(validator=text(500, required=True))


RosterCommand = OpenRoster | GrantRole | RevokeRole
_COMMANDS: dict[str, type[Any]] = {c.name: c for c in (OpenRoster, GrantRole, RevokeRole)}


def roster_payload(command: RosterCommand) -> dict[str, Any]:
    """The payload the event records (lists as lists, every member)."""
    out = attrs.asdict(command, recurse=False)
    if "registrars" in out:
        out["registrars"] = list(out["registrars"])
    return out


def _command_of(name: object, payload: object) -> RosterCommand:
    """The command an event records, validated as the live path validates it."""
    cls = _COMMANDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise InvalidCommand(f"{name!r:.80} is not a roster command", field="type")
    if not isinstance(payload, dict):
        raise InvalidCommand("the payload is not an object", field="payload")
    wanted = {f.name for f in attrs.fields(cls)}
    if payload.keys() != wanted:
        raise InvalidCommand(
            f"{name} takes exactly {', '.join(sorted(wanted))}; got {', '.join(sorted(payload))}",
            field="payload",
        )
    command: RosterCommand = cls(**payload)
    if roster_payload(command) != payload:  # the form the service writes
        raise InvalidCommand(f"the payload of {name} is not in its normal form", field="payload")
    return command


# -- the state and the decision ----------------------------------------------------------------------


@attrs.frozen
class RosterEntry:
    """One event of a roster: who (``actor``) did what (``command``) when (``at``)."""

    seq: int
    at: str
    actor: str
    command: RosterCommand


class Roster:
    """One committee's roster as replayed: every entry, and who held what at every seq.

    ``roles(person, seq)`` is what ``person`` held after entry ``seq``; :meth:`view` is a
    :class:`~mediation.Directory` of one seq (what guards that look people up read).
    """

    def __init__(self, committee: str) -> None:
        self.committee = committee
        self.entries: list[RosterEntry] = []
        self.head = GENESIS
        #: (person, role) -> [from seq, to seq) intervals during which it was held
        self._held: dict[tuple[str, str], list[list[int]]] = {}
        #: what is held now
        self._now: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"Roster({self.committee!r}, seq={self.seq})"

    @property
    def seq(self) -> int:
        return len(self.entries)

    @property
    def state(self) -> str:
        return STATE if self.entries else NEW

    @property
    def updated_at(self) -> str:
        return self.entries[-1].at if self.entries else ""

    def at_of(self, seq: int) -> str:
        """The time of entry ``seq`` (1-based)."""
        return self.entries[seq - 1].at

    def holders(self, seq: int | None = None) -> dict[str, frozenset[str]]:
        """Person -> the roles held after entry ``seq`` (default: the last)."""
        if seq is None or seq >= self.seq:
            return {p: frozenset(r) for p, r in sorted(self._now.items()) if r}
        out: dict[str, set[str]] = {}
        for (person, role), spans in self._held.items():
            if any(lo <= seq < hi for lo, hi in spans):
                out.setdefault(person, set()).add(role)
        return {p: frozenset(r) for p, r in sorted(out.items())}

    def roles(self, person: str, seq: int | None = None) -> frozenset[str]:
        """The roles ``person`` held after entry ``seq`` (default: the last)."""
        if seq is None or seq >= self.seq:
            return frozenset(self._now.get(person, ()))
        return frozenset(
            role
            for (who, role), spans in self._held.items()
            if who == person and any(lo <= seq < hi for lo, hi in spans)
        )

    def grants(self, person: str, seq: int | None = None) -> frozenset[Grant]:
        """The committee roles ``person`` held after entry ``seq``, as grants."""
        return frozenset(
            Grant(r, self.committee) for r in self.roles(person, seq) if r != REGISTRAR
        )

    def copy(self) -> Roster:
        """An independent copy (to extend without changing this one)."""
        out = Roster(self.committee)
        out.entries = list(self.entries)
        out.head = self.head
        out._held = {k: [list(span) for span in v] for k, v in self._held.items()}
        out._now = {k: set(v) for k, v in self._now.items()}
        return out

    def view(self, seq: int | None = None) -> RosterView:
        return RosterView(self, self.seq if seq is None else seq)

    def _apply(self, entry: RosterEntry, head: str) -> None:
        seq, command = entry.seq, entry.command
        if isinstance(command, OpenRoster):
            changes = [(p, REGISTRAR, True) for p in command.registrars]
        else:
            changes = [(command.person, command.role, isinstance(command, GrantRole))]
        for person, role, held in changes:
            spans = self._held.setdefault((person, role), [])
            if held:
                spans.append([seq, 1 << 62])
                self._now.setdefault(person, set()).add(role)
            else:
                spans[-1][1] = seq
                self._now[person].discard(role)
        self.entries.append(entry)
        self.head = head


@attrs.frozen
class RosterView:
    """A :class:`~mediation.Directory` answering from one seq of a roster."""

    roster: Roster
    seq: int

    def grants_of(self, actor_id: str) -> frozenset[Grant]:
        return self.roster.grants(actor_id, self.seq)


def decide_roster(roster: Roster, command: RosterCommand, actor: str) -> None:
    """Decide a roster command by ``actor`` on ``roster`` as it stands; raise the refusal.

    The first entry opens the roster (any actor naming themself among its registrars: the opening
    is the root the checkpoints then fix); every later one is a registrar's.  A grant of a role
    already held, a revocation of one not held, and revoking the last registrar are refused.
    """
    committee = roster.committee
    if isinstance(command, OpenRoster):
        if roster.entries:
            raise IllegalTransition(
                f"the roster of {committee} is already open",
                message_zh=f"调委会 {committee} 的人员名录已经建立",
                command=command.name,
                actor=actor,
            )
        if command.committee != committee:
            raise InvalidCommand(
                f"the roster of {committee} cannot be opened for {command.committee}",
                field="committee",
            )
        if actor not in command.registrars:
            raise NotPermitted(
                f"{actor} may open the roster of {committee} only as one of its registrars",
                message_zh=f"{actor} 须为名录登记员之一才能建立名录",
                command=command.name,
                actor=actor,
            )
        if len(set(command.registrars)) != len(command.registrars):
            raise InvalidCommand("a registrar is named twice", field="registrars")
        return
    if not roster.entries:
        raise IllegalTransition(
            f"the roster of {committee} is not open",
            message_zh=f"调委会 {committee} 尚未建立人员名录",
            command=command.name,
            actor=actor,
        )
    if REGISTRAR not in roster.roles(actor):
        raise NotPermitted(
            f"{actor} may not {command.name} in the roster of {committee}: it needs {REGISTRAR}",
            message_zh=f"{actor} 不是调委会 {committee} 的名录登记员",
            command=command.name,
            actor=actor,
        )
    held = command.role in roster.roles(command.person)
    if isinstance(command, GrantRole) and held:
        raise InvalidCommand(
            f"{command.person} already holds {command.role} in {committee}", field="role"
        )
    if isinstance(command, RevokeRole):
        if not held:
            raise InvalidCommand(
                f"{command.person} does not hold {command.role} in {committee}", field="role"
            )
        if (
            command.role == REGISTRAR
            and len([p for p, roles in roster.holders().items() if REGISTRAR in roles]) == 1
        ):
            raise InvalidCommand(
                f"the last registrar of {committee} cannot be revoked", field="person"
            )


def roster_summary(roster: Roster, head: str | None = None) -> CaseSummary:
    """The summary row a store keeps for a roster stream (the list queries skip it)."""
    return CaseSummary(
        case_id=roster_id(roster.committee),
        committee=roster.committee,
        state=roster.state,
        level="",
        category="",
        seq=roster.seq,
        head=roster.head if head is None else head,
        opened_at=roster.entries[0].at if roster.entries else "",
        updated_at=roster.updated_at,
        workflow=WORKFLOW,
    )


# -- replay ------------------------------------------------------------------------------------------


def verify_roster(
    records: Iterable[StoredEvent], stream_id: str, start: Roster | None = None
) -> tuple[Verdict, Roster]:
    """Verify a roster stream and rebuild it: the :class:`~mediation.Verdict` and the roster up to
    the first fault.  Every record gets checks 1-7 of docs/log-format.md, then its command is
    decided by :func:`decide_roster` as the live path decided it.  With ``start`` (the roster
    verified so far), ``records`` are the ones after it, folded onto a copy of it."""
    from ._audit import Fault, FaultKind, Verdict, _intact, _integrity_of_rest

    committee = committee_of(stream_id)
    if committee is None:
        raise ValueError(f"{stream_id!r} is not a roster stream")
    roster = Roster(committee) if start is None else start.copy()
    tagged = hashlib.sha256(DOMAIN_TAG)
    fault: Fault | None = None
    rest: Iterator[StoredEvent] = iter(records)
    body: dict[str, Any] = {}
    rec: StoredEvent | None = None
    for rec in rest:
        expected = roster.seq + 1
        body, fault = _intact(rec, expected, stream_id, roster.head, tagged, roster.updated_at)
        if fault is not None:
            break
        if body["workflow"] != WORKFLOW or body["state"] != STATE or body["as"] != REGISTRAR:
            fault = Fault(
                expected,
                FaultKind.MALFORMED,
                f"a roster event names workflow {WORKFLOW}, state {STATE} and standing {REGISTRAR}",
            )
            break
        if "roster" in body:
            fault = Fault(expected, FaultKind.MALFORMED, "a roster event names no roster seq")
            break
        try:
            command = _command_of(body["type"], body["payload"])
            decide_roster(roster, command, body["actor"])
        except MediationError as exc:
            kind = {
                NotPermitted: FaultKind.UNAUTHORIZED,
                IllegalTransition: FaultKind.ILLEGAL_TRANSITION,
            }.get(type(exc), FaultKind.ILLEGAL_TRANSITION)
            if body["type"] not in _COMMANDS:
                kind = FaultKind.UNKNOWN_EVENT_TYPE
            fault = Fault(expected, kind, exc.message, exc)
            break
        roster._apply(RosterEntry(expected, body["at"], body["actor"], command), rec.hash)
    seq = roster.seq
    if seq == 0 and fault is None:
        fault = Fault(1, FaultKind.EMPTY, "no events")
    verdict = Verdict(stream_id, seq, seq, roster.head, roster.state, fault)
    if fault is not None and not fault.kind.integrity and rec is not None:
        checked, found = _integrity_of_rest(
            rest, stream_id, fault.seq, rec.hash, tagged, body["at"], WORKFLOW
        )
        verdict = attrs.evolve(verdict, intact=checked)
        if found is not None:
            verdict = verdict.with_faults(found)
    return verdict, roster


def grants_for(
    roster: Roster | None, actor: str, at: str, named: object
) -> tuple[Roster | None, int | None, str | None]:
    """How a case event at ``at`` that names roster seq ``named`` (None: none) stands to the
    committee's ``roster``: ``(roster, seq, None)`` to decide it with the grants of ``seq``;
    ``(None, None, None)`` when no roster was kept by then (role claims are not checked); or
    ``(None, None, reason)`` when the event cannot have been decided so."""
    kept = roster is not None and roster.entries and roster.at_of(1) <= at
    if named is None:
        if not kept:
            return None, None, None
        assert roster is not None
        if parse_time(at) - parse_time(roster.at_of(1)) <= GRACE:
            return None, None, None  # recorded just as the roster was opened: not checked
        return (
            None,
            None,
            f"the committee has kept a roster since {roster.at_of(1)}; the event names none",
        )
    if type(named) is not int or named < 1:
        return None, None, f"the roster seq {named!r:.40} is not a positive integer"
    if roster is None or named > roster.seq:
        return None, None, f"the event names roster seq {named}, which the roster does not hold"
    if roster.at_of(named) > at:
        return None, None, f"the event names roster seq {named}, recorded after it"
    if named < roster.seq:
        superseded = roster.at_of(named + 1)
        if superseded <= at and parse_time(at) - parse_time(superseded) > GRACE:
            return (
                None,
                None,
                f"the event was decided on roster seq {named}, superseded at {superseded}",
            )
    return roster, named, None


def rosters_of(source: Store | Mapping[str, Sequence[StoredEvent]]) -> dict[str, Roster]:
    """The rosters of a store (or among ``streams``: stream id -> records), verified, by
    committee: what :func:`mediation.verify` takes as ``rosters``.  A roster with a fault is kept
    up to its first fault (its own verdict reports the fault)."""
    if isinstance(source, Mapping):
        streams: Iterable[tuple[str, Sequence[StoredEvent]]] = source.items()
    else:
        streams = _roster_streams(source)
    out = {}
    for stream_id, records in streams:
        committee = committee_of(stream_id)
        if committee is not None:
            out[committee] = verify_roster(records, stream_id)[1]
    return out


def _roster_streams(store: Store) -> Iterator[tuple[str, list[StoredEvent]]]:
    """Every roster stream of ``store`` with its records: the ids from ``@`` up to ``A`` (no
    case id starts with ``@``, and ``@`` sorts just before ``A``)."""
    try:
        records: Iterable[StoredEvent] = store.scan("@", "A")
    except TypeError:  # a store whose scan takes no range
        records = (r for c in store.case_ids() if c.startswith(PREFIX) for r in store.read(c))
    yield from by_stream(records)
