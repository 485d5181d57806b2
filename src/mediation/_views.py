"""Per-actor views of a case, applying DOMAIN.md's confidentiality rules (保密).

- Minutes, proposals, offers and concessions: the case's mediators only (PML15(4)).
- Agreement text: the parties, the case's mediators and the director.
- Personal data (names, phones, addresses, ID numbers; PIPL 4, 51): ID numbers are always masked;
  a party sees the other parties' names but not their contact data; supervisors and auditors see
  personal data masked unless the host grants more (``reveal_personal``).
- Supervisors see categories, counts and durations only: no payloads, no actor ids.
- Auditors see the full chain of events with personal data masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ._authz import Actor
from ._case import Case
from ._errors import NotPermitted
from ._events import Event
from ._privacy import Vault, unseal_party
from ._spec import CommandSpec, Confidentiality
from ._vocab import Relation, Role, Standing

__all__ = ["CaseView", "TimelineEntry", "mask_id_number", "mask_name", "mask_phone", "view_case"]

_PARTY_RELATIONS = frozenset((Relation.APPLICANT, Relation.RESPONDENT, Relation.AGENT))
_MEDIATOR_RELATIONS = frozenset((Relation.LEAD_MEDIATOR, Relation.CO_MEDIATOR))
_PERSONAL = ("name", "phone", "address", "id_number")


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "*" * len(digits)


def mask_id_number(number: str) -> str:
    return "*" * max(len(number) - 4, 0) + number[-4:] if number else ""


def mask_address(address: str) -> str:
    return address[:6] + "***" if address else ""


_UNREADABLE = frozenset(("[sealed]", "[erased]"))


def _mask_party(
    party: Mapping[str, Any],
    *,
    keep_name: bool,
    keep_contact: bool,
    vault: Vault | None = None,
    case_id: str = "",
) -> dict[str, Any]:
    out = unseal_party(vault, case_id, dict(party))

    def mask(field: str, how: Callable[[str], str]) -> None:
        value = out.get(field, "")
        if value not in _UNREADABLE:
            out[field] = how(value)

    mask("id_number", mask_id_number)
    if not keep_name and party.get("kind") != "organisation":
        mask("name", mask_name)
    if not keep_contact:
        mask("phone", mask_phone)
        mask("address", mask_address)
    return out


@attrs.frozen
class TimelineEntry:
    seq: int
    at: str
    type: str
    label_zh: str
    label_en: str
    actor: str | None
    acted_as: str | None
    state: str
    payload: Mapping[str, Any] | None
    hash: str


@attrs.frozen
class CaseView:
    """What one viewer may see of one case."""

    case_id: str
    viewer: str
    standing: str  # party, mediator, director, invitee, supervisor, auditor
    state: str
    state_zh: str
    stage: str
    stage_zh: str
    level: str
    category: str
    parties: tuple[Mapping[str, Any], ...]
    mediators: tuple[str, ...]
    agreement: Mapping[str, Any] | None
    timeline: tuple[TimelineEntry, ...]
    #: the workflow version the case lives on
    workflow: str = ""


def standing_of(case: Case, actor: Actor) -> tuple[str, set[str]]:
    rels = case.relations_of(actor.id)
    if rels & _MEDIATOR_RELATIONS:
        return Standing.MEDIATOR.value, rels
    if rels & _PARTY_RELATIONS:
        return Standing.PARTY.value, rels
    if actor.has_role(Role.DIRECTOR, case.committee):
        return Standing.DIRECTOR.value, rels
    if Relation.INVITEE in rels:
        return Standing.INVITEE.value, rels
    if actor.has_role(Role.AUDITOR, case.committee):
        return Standing.AUDITOR.value, rels
    if actor.has_role(Role.SUPERVISOR, case.committee):
        return Standing.SUPERVISOR.value, rels
    raise NotPermitted(
        f"{actor.id} has no standing to view case {case.id}",
        message_zh=f"{actor.id} 无权查看案件 {case.id}",
        case=case.id,
        actor=actor.id,
        state=case.state,
    )


def _redact_payload(
    spec: CommandSpec | None,
    payload: Mapping[str, Any],
    standing: str,
    reveal: bool,
    vault: Vault | None,
    case_id: str,
) -> Mapping[str, Any] | None:
    """What ``standing`` may read of a payload, by its command's declared confidentiality and the
    members that carry people's personal data."""
    if standing == Standing.SUPERVISOR:
        return None
    if spec is None:  # a command its workflow does not know (a forged log): nothing of it
        return {"redacted": "unknown command / 未知操作"}
    secrecy = spec.confidentiality
    if secrecy is Confidentiality.MEDIATORS and standing != Standing.MEDIATOR:
        return {"redacted": "confidential to the case's mediators / 仅限本案调解员"}
    if secrecy is Confidentiality.AGREEMENT and standing not in _READS_AGREEMENT:
        return {"redacted": "agreement text / 协议内容不公开"}
    if not spec.persons:
        return payload
    keep = reveal or standing in (Standing.MEDIATOR, Standing.DIRECTOR)
    out = dict(payload)

    def masked(p: Mapping[str, Any]) -> dict[str, Any]:
        return _mask_party(
            p,
            keep_name=keep or standing == Standing.PARTY,
            keep_contact=keep,
            vault=vault,
            case_id=case_id,
        )

    for key in spec.persons:
        value = payload.get(key)
        if isinstance(value, list | tuple):
            out[key] = [masked(p) for p in value]
        elif isinstance(value, Mapping):
            out[key] = masked(value)
    return out


_READS_AGREEMENT = frozenset((Standing.MEDIATOR, Standing.PARTY, Standing.DIRECTOR))


def view_case(
    case: Case,
    history: Sequence[Event] | Iterable[Event],
    actor: Actor,
    reveal_personal: bool,
    vault: Vault | None = None,
) -> CaseView:
    """``actor``'s view of ``case``; sealed personal data is opened with ``vault`` where the viewer
    may see it (and shows as ``[sealed]`` without a vault, ``[erased]`` once the key is gone)."""
    standing, _ = standing_of(case, actor)
    reveal = reveal_personal and standing in (Standing.AUDITOR, Standing.SUPERVISOR)
    keep = reveal or standing in (Standing.MEDIATOR, Standing.DIRECTOR)
    parties: tuple[Mapping[str, Any], ...] = ()
    if standing != Standing.SUPERVISOR:
        parties = tuple(
            _mask_party(
                p,
                keep_name=keep or standing in (Standing.PARTY, Standing.INVITEE),
                keep_contact=keep or case.party_of(actor.id) == pid,
                vault=vault,
                case_id=case.id,
            )
            for pid, p in case.parties.items()
        )
    agreement = (
        case.agreement
        if standing in (Standing.MEDIATOR, Standing.PARTY, Standing.DIRECTOR)
        else None
    )
    specs = {c.name: c for c in case.workflow.commands}
    timeline = tuple(
        TimelineEntry(
            seq=e.seq,
            at=e.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            type=e.type,
            label_zh=specs[e.type].zh if e.type in specs else e.type,
            label_en=specs[e.type].en if e.type in specs else e.type,
            actor=None if standing == Standing.SUPERVISOR else e.actor,
            acted_as=e.acted_as,
            state=e.state,
            payload=_redact_payload(specs.get(e.type), e.payload, standing, reveal, vault, case.id),
            hash=e.hash,
        )
        for e in history
    )
    st = case.workflow.state(case.state)
    return CaseView(
        case_id=case.id,
        viewer=actor.id,
        standing=standing,
        state=case.state,
        state_zh=st.zh,
        stage=case.stage.en,
        stage_zh=case.stage.zh,
        level=case.level,
        category=case.category,
        parties=parties,
        mediators=case.mediators if standing != Standing.SUPERVISOR else (),
        agreement=agreement,
        timeline=timeline,
        workflow=case.workflow.version,
    )
