"""The shape of a workflow declaration, and the registry of its versions.

A :class:`Workflow` is an immutable value: its states (:class:`StateSpec`), guards
(:class:`GuardSpec`), commands (:class:`CommandSpec`) and deadlines (:class:`DeadlineSpec`), each
carrying every fact the library knows about it.  The data of the current workflow is in
:mod:`mediation._workflow`; the decision (:mod:`mediation._decide`), the fold, replay, views,
privacy, deadlines, statistics, diagrams and test strategies read it from there.

Versions: a case records the version of the workflow it was opened on in every event (the
envelope's ``workflow`` member) and is decided and replayed on that version for ever.  Every
version a store may hold must be registered (:func:`register`) in the process that reads it; the
library registers its own.
"""

from __future__ import annotations

import enum
import threading
import types
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import InvalidCommand
from ._vocab import NEW, Relation, Role, Stage

if TYPE_CHECKING:
    from ._case import Case

__all__ = [
    "CommandSpec",
    "Confidentiality",
    "DeadlineSpec",
    "Effect",
    "FieldKind",
    "GuardSpec",
    "PeopleRule",
    "PersonalField",
    "StateSpec",
    "Workflow",
    "known",
    "register",
    "registered",
    "workflow_of",
]

#: what a command does to the case it is recorded on: ``effect(case, payload, actor, as, at)``
Effect = Callable[["Case", Mapping[str, Any], str, str, str], None]


class Confidentiality(str, enum.Enum):
    """Who may read a command's payload in a view (DOMAIN.md, Confidentiality; PML 15(4))."""

    #: everyone with standing in the case (personal fields are masked separately)
    OPEN = "open"
    #: the case's mediators only: minutes and proposals (保密准则)
    MEDIATORS = "mediators"
    #: mediators, parties and the director: the agreement's text
    AGREEMENT = "agreement"


class FieldKind(str, enum.Enum):
    """The kind of personal information a sealed member holds, which sets its mask in views
    (:mod:`mediation._masks`; DOMAIN.md, Confidentiality; PIPL 28, 51)."""

    NAME = "name"
    PHONE = "phone"
    ID_NUMBER = "id_number"
    ADDRESS = "address"
    EMPLOYER = "employer"
    HEALTH = "health"
    MINOR = "minor"
    BANK = "bank"
    #: free text (a description, minutes, a proposal, the agreement's text): shown whole to those
    #: entitled to it, to nobody else
    TEXT = "text"


@attrs.frozen
class PersonalField:
    """A member of a person object (a party, an agent) that holds personal information: sealed in
    the log under that person's key, masked in views by its kind."""

    name: str
    kind: FieldKind
    zh: str
    basis: str
    #: only for a natural person (``kind`` ``person``): an organisation's name is not personal
    natural_only: bool = False


class PeopleRule(str, enum.Enum):
    """How a payload field that names people must relate to the case (checked before the guards)."""

    #: every id named is a party of the case
    PARTIES = "parties"
    #: the person object's id is new to the case: no party, agent, mediator or invitee
    NEW_PERSON = "new_person"
    #: the id is one of the case's mediators or invitees
    MEDIATOR_OR_INVITEE = "mediator_or_invitee"
    #: each tie names a party or an agent of the case
    TIES = "ties"


@attrs.frozen
class StateSpec:
    name: str
    #: None: an outcome reachable from several stages (failed, withdrawn, ...)
    stage: Stage | None
    zh: str
    en: str
    #: no command but the archive's own leaves it
    terminal: bool = False
    #: an agreement is in effect (or was performed): counts as agreed in statistics; entering it
    #: from a state that is not agreed makes the agreement effective
    agreed: bool = False
    #: mediation ended without agreement (counts as decided, not agreed)
    failed: bool = False


@attrs.frozen
class GuardSpec:
    name: str
    zh: str
    en: str
    basis: str
    #: the implementation (a key of :data:`mediation._guards.GUARDS`) when it is not ``name``: a
    #: later version that changes what a guard checks keeps its name and names a new function,
    #: so that cases of the earlier version are decided and replayed as before
    impl: str = ""

    @property
    def function(self) -> str:
        """The key of the guard's implementation in :data:`mediation._guards.GUARDS`."""
        return self.impl or self.name


@attrs.frozen
class DeadlineSpec:
    """A time limit (时限) a case is under while it is in one of ``states``."""

    kind: str
    states: tuple[str, ...]
    #: the case's time it runs from: ``opened_at``, ``registered_at`` or ``effective_at``
    start: str
    days: int
    basis: str
    #: counted in working days (the calendar's: holidays skipped, make-up days worked), else in
    #: calendar days; either way on the committee's local dates, the start day not counted
    working_days: bool = False
    #: extended by the days the parties agreed to (``extend_term``)
    extendable: bool = False
    #: only for cases of this category / not of that one / at this level (None: every case)
    category: str | None = None
    unless_category: str | None = None
    level: str | None = None
    #: (case attribute, value): the deadline runs only while the attribute has that value
    open_while: tuple[str, str] | None = None
    #: the ``Policy`` attribute that overrides ``days`` when the host sets it
    policy: str | None = None
    #: False for a window a party may use (judicial confirmation), not an obligation that warns
    warns: bool = True
    #: a calendar-day period whose last day is a holiday ends on the next working day (CC 203)
    rolls_over: bool = False
    #: a date the case may state that is the due day instead (``performance_deadline``: the
    #: agreement's performance deadline, for the first follow-up visit)
    due_from: str | None = None


def _payload_class(value: object) -> type:
    if not isinstance(value, type):
        raise TypeError(f"a command's payload must be a class, not {value!r}")
    return value


@attrs.frozen
class CommandSpec:
    """One command: where it may be issued, where it leads, who may issue it, what must hold, what
    its payload is, what it does to the case, and how its payload is protected."""

    name: str
    zh: str
    en: str
    sources: tuple[str, ...]
    #: None: no state change (an internal transition)
    target: str | None
    roles: tuple[Role, ...]
    relations: tuple[Relation, ...]
    guards: tuple[str, ...]
    basis: str
    #: the payload class (a frozen attrs class of :mod:`mediation.commands`)
    payload: type = attrs.field(converter=_payload_class)
    #: the fold (:mod:`mediation._fold`)
    effect: Effect
    #: when set, ``target`` is reached only once this guard-like predicate holds; until then the
    #: command is recorded without a state change (``sign`` until every signature is in).
    completes_when: str | None = None
    confidentiality: Confidentiality = Confidentiality.OPEN
    #: payload members that hold person objects (one or a list) with personal data to seal/mask
    persons: tuple[str, ...] = ()
    #: payload members that name people, and how they must relate to the case
    people: tuple[tuple[str, PeopleRule], ...] = ()
    #: for a command that opens a case: the payload member naming the committee whose roles
    #: authorize it (``committee``, the case's own; ``origin_committee`` for the case a transfer
    #: opens, which the transferring committee's director writes)
    authority: str = "committee"
    #: a link to another case of the store the command's event makes: (``"to"``, the payload
    #: member naming the case it opens: a transfer) or (``"from"``, the member naming the case it
    #: came from: the opening a transfer writes); verify_store checks both ends (version 2 on)
    link: tuple[str, str] | None = None
    #: free-text payload members sealed under the case's key (``content.facts`` reaches into a
    #: nested object); who reads them in a view is ``confidentiality``
    sealed: tuple[str, ...] = ()
    #: the command records an erasure of personal data (PIPL 47): the service destroys the keys
    #: of the person its ``person`` member names (or, empty, of the whole case) once it is written
    erases: bool = False
    #: relations first (they are case-specific), then roles, in declaration order
    grants: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)
    #: whether anything beyond the state and the grants is checked (people, erased personal
    #: data, guards, completion)
    checked: bool = attrs.field(init=False, repr=False, eq=False)
    #: ``sealed`` split for the walk: per member, the steps to its object and its name
    sealed_steps: tuple[tuple[tuple[str, ...], str], ...] = attrs.field(
        init=False, repr=False, eq=False
    )

    def __attrs_post_init__(self) -> None:
        grants = tuple(r.value for r in self.relations) + tuple(r.value for r in self.roles)
        object.__setattr__(self, "grants", grants)
        steps = tuple((tuple(p.split(".")[:-1]), p.split(".")[-1]) for p in self.sealed)
        object.__setattr__(self, "sealed_steps", steps)
        checked = bool(
            self.people or self.guards or self.completes_when or self.persons or self.sealed
        )
        object.__setattr__(self, "checked", checked)

    @property
    def opens(self) -> bool:
        """True for the commands that open a case (issued before its first event)."""
        return NEW in self.sources


@attrs.frozen
class Workflow:
    version: str
    states: tuple[StateSpec, ...]
    guards: tuple[GuardSpec, ...]
    commands: tuple[CommandSpec, ...]
    deadlines: tuple[DeadlineSpec, ...] = ()
    #: what changed from the previous version (docs/workflow.md lists it)
    changes: str = ""
    #: the members of a person object that hold personal information (sealed and masked)
    personal: tuple[PersonalField, ...] = ()
    _state_index: Mapping[str, StateSpec] = attrs.field(init=False, repr=False, eq=False)
    _command_index: Mapping[str, CommandSpec] = attrs.field(init=False, repr=False, eq=False)
    _guard_index: Mapping[str, GuardSpec] = attrs.field(init=False, repr=False, eq=False)
    #: (state, command) -> target state (the same state for internal transitions)
    table: Mapping[tuple[str, str], str] = attrs.field(init=False, repr=False, eq=False)
    #: run-time caches (the transitions machine) keyed by their builder
    _cache: dict[str, Any] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        states = {s.name: s for s in self.states}
        commands = {c.name: c for c in self.commands}
        guards = {g.name: g for g in self.guards}
        if len(states) != len(self.states) or len(commands) != len(self.commands):
            raise ValueError(f"workflow {self.version}: duplicate state or command names")
        table: dict[tuple[str, str], str] = {}
        for c in self.commands:
            for src in c.sources:
                if src != NEW and src not in states:
                    raise ValueError(f"command {c.name}: unknown source state {src}")
                table[(src, c.name)] = c.target or src
            if c.target is not None and c.target not in states:
                raise ValueError(f"command {c.name}: unknown target state {c.target}")
            for g in (*c.guards, *((c.completes_when,) if c.completes_when else ())):
                if g not in guards:
                    raise ValueError(f"command {c.name}: undeclared guard {g}")
            if getattr(c.payload, "name", None) != c.name:
                raise ValueError(f"command {c.name}: its payload class is named otherwise")
        for d in self.deadlines:
            for s in d.states:
                if s not in states:
                    raise ValueError(f"deadline {d.kind}: unknown state {s}")
        object.__setattr__(self, "_state_index", states)
        object.__setattr__(self, "_command_index", commands)
        object.__setattr__(self, "_guard_index", guards)
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "_cache", {})

    def state(self, name: str) -> StateSpec:
        return self._state_index[name]

    def command(self, name: str) -> CommandSpec:
        return self._command_index[name]

    def guard(self, name: str) -> GuardSpec:
        return self._guard_index[name]

    def find(self, name: str) -> CommandSpec | None:
        """The command ``name``, or None when this version has no such command."""
        return self._command_index.get(name)

    @property
    def erasure(self) -> CommandSpec | None:
        """The command that records an erasure of personal data, if this version has one."""
        return next((c for c in self.commands if c.erases), None)

    def has_command(self, name: str) -> bool:
        return name in self._command_index

    def is_terminal(self, state: str) -> bool:
        spec = self._state_index.get(state)
        return spec is not None and spec.terminal

    def commands_from(self, state: str) -> tuple[CommandSpec, ...]:
        return tuple(c for c in self.commands if state in c.sources)

    @property
    def opening(self) -> tuple[CommandSpec, ...]:
        """The commands that open a case."""
        return tuple(c for c in self.commands if c.opens)

    def states_where(self, flag: str) -> frozenset[str]:
        """The names of the states whose ``flag`` (``terminal``, ``agreed``, ``failed``) is set."""
        return frozenset(s.name for s in self.states if getattr(s, flag))

    def cached(self, key: str, build: Callable[[Workflow], Any]) -> Any:
        """A value derived from this workflow, built once (the run-time machine)."""
        try:
            return self._cache[key]
        except KeyError:
            with _LOCK:
                if key not in self._cache:
                    self._cache[key] = build(self)
            return self._cache[key]

    def evolve(
        self,
        version: str,
        *,
        changes: str,
        commands: Iterable[CommandSpec] = (),
        deadlines: Iterable[DeadlineSpec] = (),
        states: Iterable[StateSpec] = (),
        guards: Iterable[GuardSpec] = (),
    ) -> Workflow:
        """The next version: the given specs replace those of the same name, or are added."""

        def merged(old: tuple[Any, ...], new: Iterable[Any], key: str) -> tuple[Any, ...]:
            by = {getattr(x, key): x for x in new}
            out = [by.pop(getattr(x, key), x) for x in old]
            return (*out, *by.values())

        return Workflow(
            version=version,
            states=merged(self.states, states, "name"),
            guards=merged(self.guards, guards, "name"),
            commands=merged(self.commands, commands, "name"),
            deadlines=merged(self.deadlines, deadlines, "kind"),
            changes=changes,
            personal=self.personal,
        )


_LOCK = threading.RLock()
_REGISTRY: dict[str, Workflow] = {}


def register(workflow: Workflow) -> Workflow:
    """Make ``workflow`` known by its version, so cases opened on it can be decided and replayed.

    Registering the same version twice is allowed only with an equal declaration.
    """
    if not isinstance(workflow, Workflow):
        raise TypeError(f"register a Workflow, not {type(workflow).__name__}")
    _check_runnable(workflow)
    with _LOCK:
        known = _REGISTRY.get(workflow.version)
        if known is not None and known != workflow:
            raise ValueError(f"workflow version {workflow.version} is already registered")
        _REGISTRY[workflow.version] = workflow
    return workflow


def _check_runnable(workflow: Workflow) -> None:
    """Refuse a declaration that would fail later, or silently: a guard without an
    implementation, a ``persons`` or ``people`` member its payload class does not have (personal
    data left unsealed); then build its machine, so that a bad one fails here."""
    from ._decide import machine_of
    from ._guards import GUARDS

    for g in workflow.guards:
        if g.function not in GUARDS:
            raise ValueError(f"workflow {workflow.version}: guard {g.name} has no implementation")
    for c in workflow.commands:
        fields = {f.name for f in attrs.fields(c.payload)} if attrs.has(c.payload) else set()
        named = (*c.persons, *(field for field, _ in c.people))
        missing = [m for m in named if m not in fields]
        missing += [path for path in c.sealed if not _reaches(c.payload, path)]
        if missing:
            raise ValueError(
                f"workflow {workflow.version}: command {c.name} names payload members its "
                f"payload class {c.payload.__name__} does not have: {', '.join(missing)}"
            )
    machine_of(workflow)


def _reaches(cls: type, path: str) -> bool:
    """Whether the payload class has the (dotted) member ``path``, nested attrs classes followed
    (``*``: the items of a tuple member, ``ties.*.note``)."""
    import typing

    node: Any = cls
    for part in path.split(".")[:-1]:
        if part == "*":
            args = typing.get_args(node) if typing.get_origin(node) is tuple else ()
            node = args[0] if args else None
            continue
        if not (isinstance(node, type) and attrs.has(node)):
            return False
        if part not in {f.name for f in attrs.fields(node)}:
            return False
        node = typing.get_type_hints(node).get(part)
        if typing.get_origin(node) in (typing.Union, types.UnionType):  # DocRef | None
            node = next((a for a in typing.get_args(node) if a is not type(None)), None)
    last = path.split(".")[-1]
    return (
        isinstance(node, type) and attrs.has(node) and last in {f.name for f in attrs.fields(node)}
    )


def registered() -> tuple[Workflow, ...]:
    """Every registered version, in the order of registration."""
    return tuple(_REGISTRY.values())


def known(version: object) -> Workflow | None:
    """The registered workflow of ``version``, or None (a version this process does not know)."""
    return _REGISTRY.get(version) if isinstance(version, str) else None


def workflow_of(version: object) -> Workflow:
    """The registered workflow of ``version``; :class:`~mediation.InvalidCommand` if unknown."""
    found = _REGISTRY.get(version) if isinstance(version, str) else None
    if found is None:
        raise InvalidCommand(
            f"unknown workflow version {version!r:.80}; this process knows "
            f"{', '.join(_REGISTRY) or 'none'}",
            message_zh=f"未知的流程版本 {version!r:.80}",
            field="workflow",
        )
    return found
