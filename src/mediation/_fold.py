"""The fold: what each command does to a :class:`~mediation._case.Case`.

One function per effect, each named on its command's declaration (``CommandSpec.effect``); the
live path and replay fold through :func:`mediation._case.apply_event`, which calls it.  An effect
sees an event that was already decided (authorized, legal, guarded) and only records it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._case import Case, seconds_between, signature_slot
from ._vocab import ConsentSubject


def opening(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.committee = p["committee"]
    c.category = p["category"]
    c.subtype = p["subtype"]
    c.description = p["description"]
    c.level = p["level"]
    c.profile = p["profile"] or "default"
    c.opened_by = actor
    c.involves_privacy = p["involves_privacy"]
    c.trade_secrets = p["trade_secrets"]
    c.applicants = tuple(x["id"] for x in p["applicants"])
    c.respondents = tuple(x["id"] for x in p["respondents"])
    c.parties = {x["id"]: x for x in (*p["applicants"], *p["respondents"])}
    c.opened_at = at


def opening_transfer(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    """A case opened at the receiving committee by a transfer: an opening that names its origin."""
    opening(c, p, actor, acted_as, at)
    c.origin = {"case": p["origin"], "committee": p["origin_committee"], "reason": p["reason"]}


def _consent(c: Case, subject: str, party: str | None) -> None:
    if party is not None:
        c.consents = {**c.consents, subject: c.consents.get(subject, frozenset()) | {party}}


def _consume(c: Case, subject: str) -> None:
    c.consents = {k: v for k, v in c.consents.items() if k != subject}


def _add_ties(c: Case, person: str, ties: Any) -> None:
    if ties:
        c.ties = {**c.ties, person: c.ties.get(person, ()) + tuple(ties)}


def _remove_person(c: Case, person: str) -> None:
    c.recused = c.recused | {person}
    if c.lead == person:
        c.lead = None
    c.co_mediators = tuple(m for m in c.co_mediators if m != person)
    if person in c.invitees:
        c.invitees = {k: v for k, v in c.invitees.items() if k != person}
    c.recusal_requests = {k: v for k, v in c.recusal_requests.items() if k != person}


def record_consent(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    _consent(c, "mediation", c.party_of(actor))


def register(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.registered_at = at


def appoint_agent(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.agents = {**c.agents, p["agent"]["id"]: (actor, p["agent"])}


def assign(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    who = p["mediator"]
    _add_ties(c, who, p["ties"])
    if p["lead"] or c.lead is None:
        if c.lead is not None and c.lead != who:
            c.co_mediators = (*c.co_mediators, c.lead)
        c.lead = who
        c.co_mediators = tuple(m for m in c.co_mediators if m != who)
    elif who != c.lead and who not in c.co_mediators:
        c.co_mediators = (*c.co_mediators, who)


def assign_jointly(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    """Version 2: the director's assignment takes effect at once; a party's is that party's choice,
    and the mediator is assigned once every party has made the same choice (PML19)."""
    if acted_as not in _PARTY_SIDE:
        assign(c, p, actor, acted_as, at)
        return
    key = f"{p['mediator']}:{'lead' if p['lead'] else 'co'}"
    chosen = c.mediator_choices.get(key, frozenset()) | {c.party_of(actor) or actor}
    _add_ties(c, p["mediator"], p["ties"])
    if chosen >= set(c.party_ids):
        c.mediator_choices = {k: v for k, v in c.mediator_choices.items() if k != key}
        assign(c, {**p, "ties": ()}, actor, acted_as, at)
    else:
        c.mediator_choices = {**c.mediator_choices, key: chosen}


_PARTY_SIDE = frozenset(("applicant", "respondent", "agent"))


def request_recusal(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    person = p["person"]
    _add_ties(c, person, p["ties"])
    if c.profile == "sz":  # SZ23: one party's request is enough to remove
        _remove_person(c, person)
        return
    party = c.party_of(actor) or actor
    c.recusal_requests = {
        **c.recusal_requests,
        person: c.recusal_requests.get(person, frozenset()) | {party},
    }


def declare_conflict(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    _add_ties(c, actor, p["ties"])
    _remove_person(c, actor)


def decide_recusal(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    if p["upheld"]:
        _remove_person(c, p["person"])
    else:
        c.recusal_requests = {k: v for k, v in c.recusal_requests.items() if k != p["person"]}


def consent(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    subject = p["subject"] + (":" + p["person"] if p["person"] else "")
    _consent(c, subject, c.party_of(actor))


def invite(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.invitees = {**c.invitees, p["invitee"]: dict(p)}
    _add_ties(c, p["invitee"], p["ties"])


def notify_rights(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.rights_notified = c.rights_notified | set(p["parties"])


def schedule(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.meeting = dict(p)


def minutes(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.minutes += 1


def proposal(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.proposals += 1


def draft(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.agreement = dict(p)
    c.signatures = frozenset()


def sign(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.signatures = c.signatures | {signature_slot(c, actor, acted_as)}


def oral(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.agreement = dict(p)
    c.oral_agreement = True


def follow_up(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.follow_ups += 1
    c.performed = p["performed"] == "yes"


def reopen(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    _consume(c, ConsentSubject.REOPEN.value)
    c.agreement = None
    c.oral_agreement = False
    c.signatures = frozenset()
    c.effective_at = None
    c.performed = False


def propose_termination(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.termination = dict(p)


def terminate(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.terminated_informed = bool(p["parties_informed"])


def escalate(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.level = "L1"


def escalate_level(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    """Version 2: one level up, 楼栋 L0 → 社区 L1 → 街道 L2, with the reason recorded (NB12)."""
    before = c.level
    c.level = _NEXT_LEVEL[before]
    c.escalations = (*c.escalations, (before, c.level, p["reason"]))


_NEXT_LEVEL = {"L0": "L1", "L1": "L2"}


def transfer(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.transfer = dict(p)


def extend(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    days = p["days"]
    if type(days) is not int or not 1 <= days <= 90:  # replay folds unvalidated payloads too
        raise ValueError(f"extend_term days must be an integer in 1..90, not {days!r}")
    c.extra_days += days
    _consume(c, ConsentSubject.EXTEND_TERM.value)


def pause(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.paused_since = at


def resume(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    if c.paused_since is not None:
        c.paused_seconds += seconds_between(c.paused_since, at)
    c.paused_since = None


def judicial(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.judicial = p["status"]


def archive(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    c.archived = True


def nothing(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    return None


def erase_personal_data(c: Case, p: Mapping[str, Any], actor: str, acted_as: str, at: str) -> None:
    """The person's (or, ``*``, the whole case's) personal data is erased: its keys are destroyed."""
    c.erased = c.erased | {p["person"] or "*"}
