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
from ._masks import MASKS, mask_address, mask_id_number, mask_name, mask_phone
from ._privacy import (
    UNOPENED,
    Opened,
    Place,
    Vault,
    is_marker,
    person_places,
    replace_places,
)
from ._spec import CommandSpec, Confidentiality, FieldKind
from ._vocab import Relation, Role, Standing

__all__ = [
    "CaseView",
    "TimelineEntry",
    "mask_address",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "view_case",
]

_PARTY_RELATIONS = frozenset((Relation.APPLICANT, Relation.RESPONDENT, Relation.AGENT))
_MEDIATOR_RELATIONS = frozenset((Relation.LEAD_MEDIATOR, Relation.CO_MEDIATOR))
#: the standings that read the case's free text that is open to the case (its description, a
#: recusal request's grounds, a follow-up note): those with a part in it
_READS_TEXT = frozenset((Standing.MEDIATOR, Standing.DIRECTOR, Standing.PARTY, Standing.INVITEE))


@attrs.frozen
class _Rules:
    """What one viewer reads whole: names, contact and the rest (by person), free text."""

    keep_name: bool
    keep_contact: bool
    keep_text: bool


class _Masker:
    """Applies the masks of one view and remembers which rules it applied (by member)."""

    def __init__(self) -> None:
        self.applied: dict[str, str] = {}

    def value(self, place: Place, value: object, rules: _Rules) -> object:
        if not isinstance(value, str) or not value or is_marker(value):
            return value
        kind = place.kind
        if kind is FieldKind.TEXT:
            shown = rules.keep_text
        elif kind is FieldKind.NAME:
            shown = rules.keep_name
        elif kind is FieldKind.ID_NUMBER:
            shown = False  # ID numbers are masked in every view (DOMAIN.md, Confidentiality)
        else:
            shown = rules.keep_contact
        if shown:
            return value
        self.applied[place.member] = MASKS[kind].rule
        return UNOPENED if kind is FieldKind.TEXT else MASKS[kind].apply(value)


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
    #: the dispute's description, where this viewer reads it (else :data:`UNOPENED` or None)
    description: str | None = None
    #: the masks this view applied, by member: the rule each states (English / 中文)
    masks: Mapping[str, str] = attrs.field(factory=dict)
    #: whose personal data was erased (a party's or agent's id; ``*``: the whole case's); their
    #: sealed values show as ``[erased]``
    erased: tuple[str, ...] = ()


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


def _masked(
    workflow: Any,
    spec: CommandSpec,
    payload: Mapping[str, Any],
    rules: Callable[[str], _Rules],
    masker: _Masker,
) -> dict[str, Any]:
    """``payload`` (opened) with every sealed place masked by the rules for its subject."""
    return replace_places(
        workflow, spec, payload, lambda place, v: masker.value(place, v, rules(place.subject))
    )


def _mask_person(
    workflow: Any, person: object, rules: Callable[[str], _Rules], masker: _Masker
) -> dict[str, Any]:
    if not isinstance(person, Mapping):  # a forged log's party that is no object: shown as is
        return {"value": person}
    out = dict(person)
    for place, value in person_places(workflow, "", person):
        out[place.member] = masker.value(place, value, rules(place.subject))
    return out


def _redact_payload(
    spec: CommandSpec | None,
    payload: Mapping[str, Any],
    standing: str,
    rules: Callable[[str], _Rules],
    masker: _Masker,
    workflow: Any,
) -> Mapping[str, Any] | None:
    """What ``standing`` may read of an (opened) payload: by its command's declared
    confidentiality, then each personal or free-text member by its mask."""
    if standing == Standing.SUPERVISOR:
        return None
    if spec is None:  # a command its workflow does not know (a forged log): nothing of it
        return {"redacted": "unknown command / 未知操作"}
    secrecy = spec.confidentiality
    if secrecy is Confidentiality.MEDIATORS and standing != Standing.MEDIATOR:
        return {"redacted": "confidential to the case's mediators / 仅限本案调解员"}
    if secrecy is Confidentiality.AGREEMENT and standing not in _READS_AGREEMENT:
        return {"redacted": "agreement text / 协议内容不公开"}
    if not spec.persons and not spec.sealed:
        return payload
    return _masked(workflow, spec, payload, rules, masker)


_READS_AGREEMENT = frozenset((Standing.MEDIATOR, Standing.PARTY, Standing.DIRECTOR))


def view_case(
    case: Case,
    history: Sequence[Event] | Iterable[Event],
    actor: Actor,
    reveal_personal: bool,
    vault: Vault | None = None,
) -> CaseView:
    """``actor``'s view of ``case``; sealed values are opened with ``vault`` where the viewer may
    read them, then masked by kind (:mod:`mediation._masks`); one that cannot be opened shows as
    ``[sealed]`` (no vault) or ``[erased]`` (its keys destroyed)."""
    standing, _ = standing_of(case, actor)
    history = list(history)
    workflow = case.workflow
    reveal = reveal_personal and standing in (Standing.AUDITOR, Standing.SUPERVISOR)
    keep = reveal or standing in (Standing.MEDIATOR, Standing.DIRECTOR)
    own = case.party_of(actor.id)
    opened = Opened(vault, workflow, case.id, history, case.erased)
    masker = _Masker()

    def rules(subject: str) -> _Rules:
        return _Rules(
            keep_name=keep or standing in (Standing.PARTY, Standing.INVITEE),
            keep_contact=keep or (own is not None and subject == own) or subject == actor.id,
            keep_text=reveal or standing in _READS_TEXT,
        )

    parties: tuple[Mapping[str, Any], ...] = ()
    if standing != Standing.SUPERVISOR:
        parties = tuple(
            _mask_person(workflow, opened.value(p), rules, masker) for p in case.parties.values()
        )
    agreement = None
    if standing in _READS_AGREEMENT and case.agreement is not None:
        agreement = opened.value(case.agreement)
    description: str | None = None
    if standing != Standing.SUPERVISOR:
        text = opened.value(case.description)
        description = text if rules("").keep_text or is_marker(text) else UNOPENED
        if description == UNOPENED and not is_marker(text):
            masker.applied["description"] = MASKS[FieldKind.TEXT].rule
    specs = {c.name: c for c in workflow.commands}
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
            payload=_redact_payload(
                specs.get(e.type),
                opened.payload(e.seq) or e.payload,
                standing,
                rules,
                masker,
                workflow,
            ),
            hash=e.hash,
        )
        for e in history
    )
    st = workflow.state(case.state)
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
        workflow=workflow.version,
        description=description,
        masks=dict(sorted(masker.applied.items())),
        erased=tuple(sorted(case.erased)),
    )
