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
from ._validators import ident
from ._workflow import NEW, CommandSpec, Relation, Role

__all__ = ["Actor", "Directory", "Grant", "StaticDirectory", "authorize", "relations_in"]


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


def authorize(
    spec: CommandSpec,
    case: Any,
    actor: Actor,
    payload: Mapping[str, Any],
    acting_as: str | None = None,
) -> str:
    """Return the relation or role under which ``actor`` may issue ``spec`` now; else raise.

    Relations are tried before roles, in declaration order; ``acting_as`` picks one explicitly
    (a director who is also a party, say).
    """
    committee = case.committee if case.state != NEW else payload.get("committee")
    rels = relations_in(case, actor.id, payload)
    if actor.id in getattr(case, "recused", ()):
        committee = None  # a recused person acts on the case under no role either (R2002 25)
    for grant in spec.grants:
        if acting_as is not None and grant != acting_as:
            continue
        if grant in rels or (
            grant in _ROLE_VALUES and committee is not None and actor.has_role(grant, committee)
        ):
            return grant
    held = sorted(rels) + sorted(g.role.value for g in actor.grants if g.committee == committee)
    wanted = acting_as or " or ".join(spec.grants)
    raise NotPermitted(
        f"{actor.id} may not {spec.name} on this case: it needs {wanted}; "
        f"the actor holds {', '.join(held) or 'nothing here'}",
        message_zh=f"{actor.id} 无权对本案执行「{spec.zh}」",
        case=getattr(case, "id", None),
        state=case.state,
        command=spec.name,
        actor=actor.id,
    )


_ROLE_VALUES = frozenset(r.value for r in Role)
