"""Confidentiality (保密): what each viewer sees of one case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import ID_NUMBERS, NAMES, PHONES, Env, apply_cmd, content, full_cast
from mediation import Actor, CaseView, NotPermitted
from mediation import commands as cmd
from mediation._views import mask_address, mask_id_number, mask_name, mask_phone

MINUTES = "双方陈述：机密笔录内容"
PROPOSAL = "机密方案：晚十点后停止"
REVISED = "修改后的机密方案"
AGREEMENT = "晚十点后不使用跑步机"  # the obligations of helpers.content()


@pytest.fixture(scope="module")
def case() -> Env:
    """Following up: agent2 for p2, lead med1, co med2, invitee inv1, minutes, proposals, agreement."""
    e = full_cast()
    e.run("med2", cmd.RecordMinutes(MINUTES))
    e.run("med1", cmd.ShareProposal(PROPOSAL))
    e.run("med1", cmd.ReviseProposal(1, REVISED))
    e.run("med1", cmd.DraftAgreement(content()))
    e.sign_all()
    e.run("med1", cmd.RecordFollowUp("已履行", "yes", 5))
    return e


def view(e: Env, who: str | Actor, reveal: bool = False) -> CaseView:
    actor = who if isinstance(who, Actor) else e[who]
    return e.service.view(actor, e.case_id, reveal_personal=reveal)


def dump(v: CaseView) -> str:
    """Everything a view shows, as one string to search."""
    entries = [
        {**{k: getattr(t, k) for k in ("type", "actor", "acted_as", "state")}, "payload": t.payload}
        for t in v.timeline
    ]
    return json.dumps(
        {"parties": list(map(dict, v.parties)), "agreement": v.agreement, "timeline": entries},
        ensure_ascii=False,
        default=str,
    )


def payloads(v: CaseView, type_: str) -> list[Any]:
    return [t.payload for t in v.timeline if t.type == type_]


CONFIDENTIAL = ("record_minutes", "share_proposal", "revise_proposal")


@pytest.mark.parametrize("who", ["med1", "med2"])
def test_mediators_of_the_case_see_minutes_and_proposals(case: Env, who: str) -> None:
    v = view(case, who)
    assert v.standing == "mediator"
    text = dump(v)
    for secret in (MINUTES, PROPOSAL, REVISED, AGREEMENT):
        assert secret in text
    assert v.agreement is not None


@pytest.mark.parametrize(
    ("who", "standing"),
    [
        ("director", "director"),
        ("p1", "party"),
        ("p2", "party"),
        ("agent2", "party"),
        ("inv1", "invitee"),
        ("auditor", "auditor"),
    ],
)
def test_nobody_else_sees_minutes_or_proposals(case: Env, who: str, standing: str) -> None:
    for reveal in (False, True):
        v = view(case, who, reveal)
        assert v.standing == standing
        text = dump(v)
        for secret in (MINUTES, PROPOSAL, REVISED):
            assert secret not in text, (who, secret)
        for type_ in CONFIDENTIAL:
            (p,) = payloads(v, type_)[:1]
            assert p == {"redacted": "confidential to the case's mediators / 仅限本案调解员"}


@pytest.mark.parametrize("who", ["director", "p1", "p2", "agent2", "med1", "med2"])
def test_agreement_text_for_parties_mediators_and_director(case: Env, who: str) -> None:
    v = view(case, who)
    assert v.agreement is not None and AGREEMENT in json.dumps(v.agreement, ensure_ascii=False)
    (p,) = payloads(v, "draft_agreement")
    assert AGREEMENT in json.dumps(p, ensure_ascii=False)


@pytest.mark.parametrize("who", ["inv1", "auditor", "supervisor"])
def test_agreement_text_hidden_from_everyone_else(case: Env, who: str) -> None:
    for reveal in (False, True):
        v = view(case, who, reveal)
        assert v.agreement is None
        assert AGREEMENT not in dump(v)


@pytest.mark.parametrize(
    "who", ["med1", "director", "p1", "agent2", "inv1", "auditor", "supervisor"]
)
def test_id_numbers_are_always_masked(case: Env, who: str) -> None:
    for reveal in (False, True):
        text = dump(view(case, who, reveal))
        for number in ID_NUMBERS.values():
            assert number not in text
    v = view(case, "med1")
    assert {p["id_number"] for p in v.parties} == {
        mask_id_number(ID_NUMBERS[p]) for p in ("p1", "p2")
    }


def test_a_committee_mediator_not_on_the_case_has_no_view(case: Env) -> None:
    with pytest.raises(NotPermitted):
        view(case, "med3")


def test_supervisor_sees_no_payloads_and_no_actor_ids(case: Env) -> None:
    for reveal in (False, True):
        v = view(case, "supervisor", reveal)
        assert v.standing == "supervisor"
        assert v.parties == () and v.mediators == () and v.agreement is None
        assert all(t.payload is None and t.actor is None for t in v.timeline)
        text = dump(v)
        for who in ("p1", "p2", "agent2", "med1", "med2", "inv1"):
            assert f'"{who}"' not in text
        # ``acted_as`` names a role or relation, never a person
        grants = {"director", "applicant", "respondent", "agent", "lead_mediator", "co_mediator"}
        assert {t.acted_as for t in v.timeline} <= grants
        for name in NAMES.values():
            assert name not in text
    # categories, counts and durations remain
    assert v.category == "邻里" and len(v.timeline) == len(case.service.history(case.case_id))
    assert [t.type for t in v.timeline][:2] == ["apply", "appoint_agent"]


def test_auditor_sees_the_full_chain_with_personal_data_masked(case: Env) -> None:
    history = case.service.history(case.case_id)
    v = view(case, "auditor")
    assert [(t.seq, t.hash, t.type, t.actor, t.acted_as, t.state) for t in v.timeline] == [
        (e.seq, e.hash, e.type, e.actor, e.acted_as, e.state) for e in history
    ]
    text = dump(v)
    for pid in ("p1", "p2", "agent2"):
        assert NAMES[pid] not in text
        assert PHONES[pid] not in text
    assert mask_name(NAMES["p1"]) in text
    assert "华龙区胜利路 1 号天鹅堡小区" not in text


def test_auditor_with_reveal_personal_sees_names_and_contacts_not_id_numbers(case: Env) -> None:
    text = dump(view(case, "auditor", reveal=True))
    for pid in ("p1", "p2", "agent2"):
        assert NAMES[pid] in text and PHONES[pid] in text
        assert ID_NUMBERS[pid] not in text


def test_a_party_sees_names_but_not_the_other_partys_contact(case: Env) -> None:
    for reveal in (False, True):  # the host's grant is for auditors and supervisors only
        v = view(case, "p1", reveal)
        by_id = {p["id"]: p for p in v.parties}
        assert by_id["p2"]["name"] == NAMES["p2"]
        assert by_id["p2"]["phone"] == mask_phone(PHONES["p2"])
        assert by_id["p1"]["phone"] == PHONES["p1"]  # one's own contact data
        assert PHONES["p2"] not in dump(v)


def test_an_agent_sees_its_principals_contact(case: Env) -> None:
    by_id = {p["id"]: p for p in view(case, "agent2").parties}
    assert by_id["p2"]["phone"] == PHONES["p2"]
    assert by_id["p1"]["phone"] == mask_phone(PHONES["p1"])


def test_mediators_and_director_see_contacts(case: Env) -> None:
    for who in ("med1", "director"):
        by_id = {p["id"]: p for p in view(case, who).parties}
        assert by_id["p1"]["phone"] == PHONES["p1"] and by_id["p1"]["name"] == NAMES["p1"]


@pytest.mark.parametrize(
    "who",
    [
        Actor("stranger"),
        Actor.with_roles("sup-c2", {"c2": ["supervisor", "auditor", "director", "mediator"]}),
        Actor.with_roles("gridder", {"c1": ["grid_worker", "system"]}),
    ],
    ids=["no-role", "other-committee", "grid-and-system"],
)
def test_an_unrelated_actor_may_not_view(case: Env, who: Actor) -> None:
    with pytest.raises(NotPermitted) as info:
        view(case, who)
    err = info.value
    assert (err.case, err.actor, err.state) == (case.case_id, who.id, "following_up")
    assert "无权查看" in err.message_zh


def test_a_recused_mediator_loses_its_view() -> None:
    e = Env()
    e.drive("negotiating")
    e.run("director", cmd.AssignMediator("med2"))
    assert view(e, "med2").standing == "mediator"
    e.run("med2", cmd.DeclareConflict((cmd.Tie("p1", "interest"),)))
    # med2 is still a mediator of the committee, but no longer of the case: no standing at all
    with pytest.raises(NotPermitted):
        view(e, "med2")


def test_views_do_not_alter_the_stored_history(case: Env) -> None:
    before = [e.stored for e in case.service.history(case.case_id)]
    for who in ("auditor", "supervisor", "p1", "inv1"):
        view(case, who)
    assert [e.stored for e in case.service.history(case.case_id)] == before
    # the minutes are sealed in the log; the case's mediator still reads them
    stored = [e.payload for e in case.service.history(case.case_id)]
    assert MINUTES not in json.dumps(stored, ensure_ascii=False)
    assert MINUTES in json.dumps(
        [t.payload for t in view(case, "med1").timeline], ensure_ascii=False
    )


def test_masks() -> None:
    assert mask_id_number("410902198001010001") == "4" + "*" * 16 + "1"
    assert mask_id_number("") == ""
    assert mask_phone("13800001502") == "*" * 7 + "1502"
    assert mask_phone("12345") == "***"
    assert mask_name("陈女士") == "陈*" and mask_name("陈") == "***" and mask_name("") == ""
    assert mask_address("华龙区胜利路 1 号天鹅堡小区") == "华龙区胜利路 1 号***"


def test_organisation_names_are_not_masked() -> None:
    e = Env()
    e.open(apply_cmd(respondents=("org1",)))
    by_id = {p["id"]: p for p in view(e, "auditor").parties}
    assert by_id["org1"]["name"] == NAMES["org1"]
    assert by_id["p1"]["name"] == mask_name(NAMES["p1"])
