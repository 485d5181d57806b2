"""Authorization: global roles granted per committee, plus relations derived from the case's log.

The host authenticates people and asserts their roles (:class:`Actor`); the library decides whether
that actor may issue this command on this case now, and names the role or relation it acted under,
which the event records (``as``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from ._errors import InvalidCommand, NotPermitted
from ._spec import CommandSpec
from ._validators import ident
from ._vocab import NEW, Relation, Role

__all__ = [
    "TRUSTED",
    "Actor",
    "Directory",
    "Grant",
    "StaticDirectory",
    "authorize",
    "relations_in",
]


def _role(value: Any) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise InvalidCommand(f"unknown role {value!r}", field="role") from exc


@attrs.frozen
class Grant:
    """A global role in one committee (调委会).  A role in one committee gives no right in another."""

    role: Role = attrs.field(converter=_role)
    committee: str = attrs.field(validator=ident)


def _grants(value: Iterable[Grant]) -> frozenset[Grant]:
    out = frozenset(value)
    for g in out:
        if not isinstance(g, Grant):
            raise InvalidCommand(f"grants must be Grant objects, got {type(g).__name__}")
    return out


@attrs.frozen
class Actor:
    """An identified person or process, with the roles the host asserts for it."""

    id: str = attrs.field(validator=ident)
    grants: frozenset[Grant] = attrs.field(default=frozenset(), converter=_grants)

    @classmethod
    def with_roles(cls, id: str, roles: Mapping[str, Iterable[str]] | None = None) -> Actor:
        """``Actor.with_roles("u1", {"c1": ["mediator", "director"]})``."""
        grants = [Grant(r, c) for c, rs in (roles or {}).items() for r in rs]
        return cls(id, frozenset(grants))

    def has_role(self, role: Role | str, committee: str) -> bool:
        return Grant(role, committee) in self.grants

    def committees(self, role: Role | str) -> frozenset[str]:
        r = _role(role)
        return frozenset(g.committee for g in self.grants if g.role is r)


class Directory(Protocol):
    """Where the service looks up people other than the actor (G3: is the assignee a mediator?)."""

    def grants_of(self, actor_id: str) -> frozenset[Grant]: ...


@attrs.define
class StaticDirectory:
    """A :class:`Directory` held in memory; hosts usually adapt their own user table instead."""

    _grants: dict[str, frozenset[Grant]] = attrs.field(factory=dict)

    def add(self, actor: Actor) -> Actor:
        self._grants[actor.id] = actor.grants
        return actor

    def grants_of(self, actor_id: str) -> frozenset[Grant]:
        return self._grants.get(actor_id, frozenset())


def relations_in(case: Any, actor_id: str, payload: Mapping[str, Any] | None = None) -> set[str]:
    """The relations ``actor_id`` holds to ``case`` (for a case not yet opened: to the payload)."""
    if case.state == NEW:
        if payload is None:
            return set()
        out = set()
        if any(p.get("id") == actor_id for p in payload.get("applicants", ())):
            out.add(Relation.APPLICANT.value)
        return out
    rels: set[str] = case.relations_of(actor_id)
    return rels


class _Trusted:
    """Role claims taken as recorded (replay without a directory of the day)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TRUSTED"


#: pass as ``grants`` to take the role a command claims as the host asserted it on the day
TRUSTED = _Trusted()


def authorize(
    spec: CommandSpec,
    case: Any,
    actor: str,
    payload: Mapping[str, Any],
    claim: str | None,
    grants: frozenset[Grant] | _Trusted,
) -> str:
    """Return the relation or role under which ``actor`` may issue ``spec`` now; else raise.

    Relations are tried before roles, in declaration order; ``claim`` picks one explicitly (a
    director who is also a party, say; replay passes the one the event records).  ``grants`` are
    the actor's roles of the day, or :data:`TRUSTED` to take a claimed role as recorded.  A recused
    person acts on the case under no role or relation (R2002 25).
    """
    committee = case.committee if case.state != NEW else payload.get(spec.authority)
    rels = relations_in(case, actor, payload)
    if actor in case.recused:
        committee = None
    for grant in spec.grants:
        if claim is not None and grant != claim:
            continue
        if grant in rels:
            return grant
        if grant in _ROLE_VALUES and committee is not None and _holds(grants, grant, committee):
            return grant
    roles = (
        []
        if not isinstance(grants, frozenset)
        else sorted(g.role.value for g in grants if g.committee == committee)
    )
    held = sorted(rels) + roles
    wanted = claim or " or ".join(spec.grants)
    raise NotPermitted(
        f"{actor} may not {spec.name} on this case: it needs {wanted}; "
        f"the actor holds {', '.join(held) or 'nothing here'}",
        message_zh=f"{actor} 无权对本案执行「{spec.zh}」",
        case=getattr(case, "id", None),
        command=spec.name,
        actor=actor,
    )  # no state: someone without standing learns nothing of the case


def _holds(grants: frozenset[Grant] | _Trusted, role: str, committee: str) -> bool:
    if isinstance(grants, _Trusted):
        return True
    return any(g.committee == committee and g.role.value == role for g in grants)


_ROLE_VALUES = frozenset(r.value for r in Role)
