"""The cast of the test helpers: a :class:`World` (one committee's people and its directory) and a
deterministic :class:`TickClock`.  Needs nothing but the library (no hypothesis), so that the
paths of :mod:`mediation.testing._paths` and the store conformance suite can use it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from .. import commands as cmd
from .._authz import Actor, StaticDirectory
from .._case import Case
from .._service import CaseService
from .._vocab import Role
from ..stores.memory import MemoryStore

__all__ = [
    "AGENT_IDS",
    "COMMITTEE",
    "EPOCH",
    "INVITEE_IDS",
    "OTHER_COMMITTEE",
    "PARTY_IDS",
    "TickClock",
    "World",
    "party",
]

COMMITTEE = "c1"
OTHER_COMMITTEE = "c2"
#: Monday 5 January 2026, 08:00 UTC
EPOCH = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone.utc)
PARTY_IDS = ("p1", "p2", "p3", "org1")
AGENT_IDS = ("agent1", "agent2")
INVITEE_IDS = ("inv1", "inv2")
_NAMES = {"p1": "陈女士", "p2": "刘先生", "p3": "王阿姨", "org1": "天鹅堡物业公司"}
_ROLES = frozenset(r.value for r in Role)


@attrs.define
class TickClock:
    """A deterministic clock that advances by ``step`` on every call."""

    now: dt.datetime = EPOCH
    step: dt.timedelta = dt.timedelta(minutes=7)

    def __call__(self) -> dt.datetime:
        self.now += self.step
        return self.now


@attrs.define
class World:
    """The people of one committee, the directory that knows them, and handy actors by name."""

    committee: str = COMMITTEE
    directory: StaticDirectory = attrs.field(factory=StaticDirectory)
    people: dict[str, Actor] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        c = self.committee
        roles: dict[str, dict[str, list[str]]] = {
            "director": {c: [Role.DIRECTOR]},
            "med1": {c: [Role.MEDIATOR]},
            "med2": {c: [Role.MEDIATOR]},
            "med3": {c: [Role.MEDIATOR]},
            "outsider-med": {OTHER_COMMITTEE: [Role.MEDIATOR, Role.DIRECTOR]},
            "grid": {c: [Role.GRID_WORKER]},
            "platform": {c: [Role.SYSTEM]},
            "supervisor": {c: [Role.SUPERVISOR]},
            "auditor": {c: [Role.AUDITOR]},
        }
        for pid in (*PARTY_IDS, *AGENT_IDS, *INVITEE_IDS, "stranger"):
            roles.setdefault(pid, {})
        for name, grants in roles.items():
            self.people[name] = self.directory.add(Actor.with_roles(name, grants))

    def __getitem__(self, name: str) -> Actor:
        return self.people[name]

    def actor(self, name: str) -> Actor:
        """The person called ``name``, or an actor of that id with no role (a party named only
        in a payload)."""
        return self.people.get(name) or Actor(name)

    def service(self, store: Any | None = None, **kw: Any) -> CaseService:
        return CaseService(
            store if store is not None else MemoryStore(),
            directory=self.directory,
            clock=kw.pop("clock", TickClock()),
            **kw,
        )

    def holders(self, case: Case, grant: str) -> list[Actor]:
        """Actors who hold ``grant`` (a relation to ``case``, or a role in its committee)."""
        out = []
        for actor in self.people.values():
            if grant in case.relations_of(actor.id) or (
                grant in _ROLES and actor.has_role(grant, case.committee)
            ):
                out.append(actor)
        return out


def party(pid: str) -> cmd.Party:
    """A party of the cast, with a name, a phone and an ID number (for the privacy checks)."""
    n = str(sum(map(ord, pid)) % 10000).zfill(4)
    return cmd.Party(
        pid,
        _NAMES.get(pid, pid),
        kind="organisation" if pid.startswith("org") else "person",
        phone="1380000" + n,
        id_number="41090219800101" + n,
    )
