"""Every guard of DOMAIN.md, through the service: the failing case and the passing case.

A failing guard raises :class:`GuardFailed` naming the guard, its legal basis, the case, the state
and the command, with an English and a Chinese reason, and writes nothing.  ``COVERED`` lists the
guards this module tests; a test keeps it equal to the declaration, so a new guard needs a test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from helpers import (
    EPOCH,
    Env,
    apply_cmd,
    assert_guard,
    content,
    doc,
    party,
    ties,
    unchanged,
)
from mediation import WORKFLOW, GuardFailed, IllegalTransition, NotPermitted
from mediation import commands as cmd
from mediation._case import Case
from mediation._events import format_time
from mediation._guards import GUARDS, Context, check
from mediation._workflow import WORKFLOW_V1

AT = format_time(EPOCH)

COVERED = {
    "parties_named",
    "source_recorded",
    "reason_and_route",
    "G1",
    "G2",
    "G3",
    "G4",
    "G5",
    "G6",
    "G7",
    "G8a",
    "G8b",
    "G9",
    "G11",
    "G12",
    "G13",
    "all_parties_consent",
    "not_paused",
    "paused",
    "level_L0",
    "recusal_pending",
    "termination_proposed",
    "proposal_exists",
    "not_signed_yet",
    "not_archived",
    "respondent_side",
    # version 2
    "impartial",
    "level_below_L2",
    "replacement_only",
    "transfer_link",
    "origin_named",
    "judicial_settled",
    # both versions: erasure of personal data (PIPL 47)
    "erasure_subject",
}


def test_every_declared_guard_is_covered_here_and_implemented() -> None:
    """Over every version the library registers: each guard name is tested, each implementation
    (a later version's revision of a guard names its own, ``GuardSpec.impl``) exists."""
    versions = (WORKFLOW_V1, WORKFLOW)
    declared = {g.name for w in versions for g in w.guards}
    assert declared == COVERED
    assert set(GUARDS) == {g.function for w in versions for g in w.guards}
    for w in versions:
        for g in w.guards:
            assert g.basis and g.en and g.zh


def fails(e: Env, who: str, command: cmd.Command, guard: str, **kw: Any) -> GuardFailed:
    """Run ``command`` expecting ``guard`` to fail; check the error and that nothing was written."""
    state = e.case.state if e.store.summary(e.case_id) is not None else "new"
    with unchanged(e), pytest.raises(GuardFailed) as info:
        e.run(who, command)
    assert_guard(info.value, guard, command=command.name, state=state, case=e.case_id, **kw)
    assert info.value.actor == who
    return info.value


def unvalidated(cls: type[Any], **kw: Any) -> Any:
    """Build a command with its validators off: what a buggy host could hand the guards."""
    with attrs.validators.disabled():
        return cls(**kw)


# -- opening -------------------------------------------------------------------------------------


def test_parties_named() -> None:
    e = Env()
    bad = unvalidated(
        cmd.Apply,
        committee="c1",
        category="邻里",
        description="噪声",
        applicants=(party("p1"),),
        respondents=(),
    )
    fails(e, "p1", bad, "parties_named", reason="applicant and one respondent")
    undescribed = unvalidated(
        cmd.Apply,
        committee="c1",
        category="邻里",
        description="   ",
        applicants=(party("p1"),),
        respondents=(party("p2"),),
    )
    fails(e, "p1", undescribed, "parties_named", reason="described", reason_zh="描述纠纷")
    assert e.store.summary("case-1") is None
    assert e.open().state == "applied"


def report(**kw: Any) -> cmd.Report:
    base: dict[str, Any] = dict(
        committee="c1",
        category="邻里",
        description="平台预警：多次噪声投诉",
        applicants=(party("p1"),),
        respondents=(party("p2"),),
    )
    base.update(kw)
    return cmd.Report(**base)


def test_source_recorded() -> None:
    e = Env()
    fails(e, "grid", report(source="court_referral"), "source_recorded", reason="file number")
    fails(e, "grid", report(source="police_referral"), "source_recorded", reason_zh="来源文号")
    fails(
        e,
        "grid",
        unvalidated(cmd.Report, **{**attrs.asdict(report(), recurse=False), "source": ""}),
        "source_recorded",
        reason="source of the report",
    )
    e.run("grid", report(source="court_referral", source_ref="(2026)豫0902民诉前调1号"))
    assert e.case.state == "applied"


def test_reason_and_route() -> None:
    e = Env()
    e.open()
    fails(e, "director", cmd.NotAccept("   ", "litigation"), "reason_and_route", reason="route")
    e.run("director", cmd.NotAccept("属于劳动仲裁受理范围", "arbitration"))
    assert e.case.state == "not_accepted"


# -- registration --------------------------------------------------------------------------------


def test_g1_every_respondent_consented() -> None:
    e = Env()
    e.open(apply_cmd(respondents=("p2", "p3")))
    err = fails(e, "director", cmd.Register(), "G1", reason="p2, p3")
    assert "p2" in err.message_zh
    e.run("p2", cmd.RecordConsent())
    fails(e, "director", cmd.Register(), "G1", reason="p3")
    e.run("p3", cmd.RecordConsent())
    e.run("director", cmd.Register())
    assert e.case.state == "registered"


def test_g1_applicant_consent_does_not_stand_in_for_the_respondent() -> None:
    e = Env()
    e.open()
    with pytest.raises(NotPermitted):
        e.run("p1", cmd.RecordConsent())  # the applicant has no respondent relation
    fails(e, "director", cmd.Register(), "G1")


def test_refusal_ends_the_case_so_nothing_can_register_it() -> None:
    e = Env()
    e.drive("refused")
    with pytest.raises(IllegalTransition):
        e.run("director", cmd.Register())


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (cmd.Scope(civil=False), "not a civil dispute"),
        (cmd.Scope(handled_elsewhere="court"), "already accepted or decided by court"),
        (cmd.Scope(handled_elsewhere="arbitration"), "by arbitration"),
        (cmd.Scope(handled_elsewhere="police"), "by police"),
        (cmd.Scope(handled_elsewhere="administrative"), "by administrative"),
        (cmd.Scope(reserved_matter="marriage_status"), "reserved to another authority"),
        (cmd.Scope(reserved_matter="adoption_status"), "adoption_status"),
        (cmd.Scope(reserved_matter="identity"), "identity"),
        (cmd.Scope(criminal=True), "criminal"),
        (cmd.Scope(public_security=True), "police"),
    ],
)
def test_g2_scope(scope: cmd.Scope, reason: str) -> None:
    e = Env()
    e.open()
    e.run("p2", cmd.RecordConsent())
    fails(e, "director", cmd.Register(scope), "G2", reason=reason)
    e.run("director", cmd.Register(cmd.Scope(civil=True)))
    assert e.case.state == "registered"


def test_g2_criminal_flag_wins_over_a_civil_finding() -> None:
    e = Env()
    e.open()
    e.run("p2", cmd.RecordConsent())
    err = fails(e, "director", cmd.Register(cmd.Scope(civil=True, criminal=True)), "G2")
    assert "transfer" in str(err) and "公安" in err.message_zh


# -- people: G3, G4 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who",
    [
        "stranger",  # no role at all
        "outsider-med",  # a mediator, but of committee c2
        "director",  # the director of c1 is not a mediator
        "grid",
    ],
)
def test_g3_assignee_must_be_a_mediator_of_this_committee(who: str) -> None:
    e = Env()
    e.drive("registered", lead="med2")
    fails(
        e,
        "director",
        cmd.AssignMediator(who),
        "G3",
        reason=f"{who} holds no mediator role in committee c1",
    )
    e.run("director", cmd.AssignMediator("med1"))
    assert e.case.co_mediators == ("med1",)


def test_g3_parties_may_choose_but_only_a_mediator() -> None:
    e = Env()
    e.open()
    e.run("p2", cmd.RecordConsent())
    e.run("director", cmd.Register())
    fails(e, "p1", cmd.AssignMediator("stranger", lead=True), "G3")
    e.run("p1", cmd.AssignMediator("med2", lead=True))
    assert e.case.lead is None  # one party's choice (version 2: the parties choose jointly)
    e.run("p2", cmd.AssignMediator("med2", lead=True))
    assert e.case.lead == "med2"


TIE_KINDS = (
    "spouse",
    "parent",
    "child",
    "sibling",
    "grandparent",
    "grandchild",
    "interest",
    "other",
    "employee",
)


def registered(profile: str = "", **kw: Any) -> Env:
    """A registered case between p1 and p2 (plus org1 when asked), no mediator yet."""
    e = Env()
    e.open(apply_cmd(profile=profile, **kw))
    for r in e.case.respondents:
        e.run(r, cmd.RecordConsent())
    e.run("director", cmd.Register())
    return e


def test_cc1045_close_relatives_are_the_declared_ones() -> None:
    assert cmd.TIE_KINDS[:6] == (
        "spouse",
        "parent",
        "child",
        "sibling",
        "grandparent",
        "grandchild",
    )


@pytest.mark.parametrize("kind", TIE_KINDS)
@pytest.mark.parametrize("profile", ["", "default", "sz", "court"])
def test_g4_a_tie_to_a_party_disqualifies_a_mediator(kind: str, profile: str) -> None:
    e = registered(profile)
    employed = kind == "employee"  # version 2: an employee of any party, never waived
    err = fails(
        e,
        "director",
        cmd.AssignMediator("med1", ties=ties(("p2", kind))),
        "G4",
        reason="employed by a party" if employed else f"{kind} tie to p2",
    )
    assert ("waive" in str(err)) == (profile == "court" and not employed)
    assert ("受雇于本案当事人" if employed else "应当回避") in err.message_zh
    e.run("director", cmd.AssignMediator("med2"))
    assert e.case.lead == "med2"


def test_g4_a_tie_to_an_agent_disqualifies() -> None:
    e = registered()
    e.run("p1", cmd.AppointAgent(party("agent1"), doc("授权委托书")))
    fails(
        e,
        "director",
        cmd.AssignMediator("med1", ties=ties(("agent1", "sibling"))),
        "G4",
        reason="agent1",
    )


def test_g4_ties_recorded_earlier_still_count() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med2", lead=True))
    e.run("p1", cmd.RequestRecusal("med2", "他是对方的表哥", ties(("p2", "other"))))
    # the director keeps med2 on the case, but the recorded tie still bars a fresh assignment
    e.run("director", cmd.DecideRecusal("med2", upheld=False))
    assert e.case.lead == "med2"
    fails(e, "director", cmd.AssignMediator("med2", lead=True), "G4", reason="other tie to p2")


def test_g4_a_party_cannot_mediate_its_own_case() -> None:
    e = Env()
    e.add_person("p3", {"c1": ["mediator"]})
    e.open(apply_cmd(respondents=("p2", "p3")))
    e.run("p2", cmd.RecordConsent())
    e.run("p3", cmd.RecordConsent())
    e.run("director", cmd.Register())
    fails(e, "director", cmd.AssignMediator("p3"), "G4", reason="p3 is a party or agent")


def test_g4_applies_to_invitees() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.consent_all("invitee", "inv1")
    invite = cmd.Invite("inv1", "legal_adviser", doc("保密承诺书"), ties=ties(("p1", "spouse")))
    fails(e, "med1", invite, "G4", reason="spouse tie to p1", reason_zh="配偶")
    e.run("med1", cmd.Invite("inv1", "legal_adviser", doc("保密承诺书")))
    assert "inv1" in e.case.invitees


def test_g4_court_profile_every_party_may_waive() -> None:
    e = registered("court")
    assign = cmd.AssignMediator("med1", lead=True, ties=ties(("p1", "interest")))
    fails(e, "director", assign, "G4")
    e.run("p1", cmd.Consent("waive_recusal", "med1"))
    fails(e, "director", assign, "G4")  # one waiver is not enough
    e.run("p2", cmd.Consent("waive_recusal", "med1"))
    e.run("director", assign)
    assert e.case.lead == "med1"


def test_g4_court_profile_waiver_by_an_agent_counts_for_its_principal() -> None:
    e = registered("court")
    e.run("p2", cmd.AppointAgent(party("agent2"), doc("授权委托书")))
    e.run("p1", cmd.Consent("waive_recusal", "med1"))
    e.run("agent2", cmd.Consent("waive_recusal", "med1"))
    e.run("director", cmd.AssignMediator("med1", ties=ties(("p2", "spouse"))))
    assert e.case.lead == "med1"


@pytest.mark.parametrize("profile", ["default", "sz"])
def test_g4_waivers_do_not_count_outside_the_court_profile(profile: str) -> None:
    e = registered(profile)
    e.consent_all("waive_recusal", "med1")
    fails(e, "director", cmd.AssignMediator("med1", ties=ties(("p1", "sibling"))), "G4")


def test_g4_waiver_is_per_person() -> None:
    e = registered("court")
    e.consent_all("waive_recusal", "med2")
    fails(e, "director", cmd.AssignMediator("med1", ties=ties(("p1", "sibling"))), "G4")


def with_org(profile: str = "") -> Env:
    """A property dispute: the property company (org1) is the respondent; med1 leads."""
    e = registered(profile, category="物业", respondents=("org1",))
    e.run("director", cmd.AssignMediator("med1", lead=True))
    return e


@pytest.mark.parametrize("employer", ["org1", "天鹅堡物业公司"])
@pytest.mark.parametrize("profile", ["default", "sz", "court"])
def test_g4_property_company_employee_is_never_an_invitee(employer: str, profile: str) -> None:
    e = with_org(profile)
    e.consent_all("invitee", "inv1")
    e.consent_all("waive_recusal", "inv1")
    invite = cmd.Invite("inv1", "property_manager", doc("保密承诺书"), employer=employer)
    err = fails(e, "med1", invite, "G4", reason="employed by a party")
    assert "受雇于本案当事人" in err.message_zh
    assert "inv1" not in e.case.invitees


@pytest.mark.parametrize("kind", ["other", "legal_adviser", "zongzhi"])
def test_g4_the_company_rule_does_not_depend_on_the_invitation_kind(kind: str) -> None:
    e = with_org("court")
    e.consent_all("invitee", "inv1")
    e.consent_all("waive_recusal", "inv1")
    invite = cmd.Invite("inv1", kind, doc("保密承诺书"), employer="org1")
    fails(e, "med1", invite, "G4", reason="employed by a party")


def test_g4_an_employee_tie_to_an_organisation_party_is_never_waived() -> None:
    e = with_org("court")
    e.consent_all("invitee", "inv1")
    e.consent_all("waive_recusal", "inv1")
    tie = (cmd.Tie("org1", "employee"),)
    invite = cmd.Invite("inv1", "police", doc("保密承诺书"), ties=tie)
    fails(e, "med1", invite, "G4", reason="employed by a party")
    # the same waiver does lift an ordinary tie under the court profile
    e.run("med1", cmd.Invite("inv1", "police", doc("保密承诺书"), ties=(cmd.Tie("p1", "other"),)))
    assert "inv1" in e.case.invitees


def test_respondent_side_only_the_respondents_agent_consents_or_refuses() -> None:
    e = Env()
    e.open(apply_cmd())
    e.run("p1", cmd.AppointAgent(party("agent1"), doc("授权委托书")))  # the applicant's agent
    for command in (cmd.RecordConsent(), cmd.Refuse()):
        fails(e, "agent1", command, "respondent_side", reason="only a respondent")
    e.run("p2", cmd.AppointAgent(party("agent2"), doc("授权委托书")))
    assert e.run("agent2", cmd.RecordConsent()).acted_as == "agent"
    assert "p2" in e.case.consents["mediation"]


def test_erasure_subject_a_party_or_agent_on_a_basis_not_erased_before() -> None:
    e = Env()
    e.open(apply_cmd())
    e.run("p1", cmd.AppointAgent(party("agent1"), doc("授权委托书")))
    fails(e, "director", cmd.ErasePersonalData("PIPL 47", "med1"), "erasure_subject")
    fails(
        e, "director", unvalidated(cmd.ErasePersonalData, basis=" ", person="p1"), "erasure_subject"
    )
    e.run("director", cmd.ErasePersonalData("PIPL 47", "agent1"))  # an agent is a subject too
    assert e.case.erased == {"agent1"}
    fails(e, "director", cmd.ErasePersonalData("PIPL 47", "agent1"), "erasure_subject")
    e.run("director", cmd.ErasePersonalData("PIPL 47"))  # then the whole case
    for person in ("", "p1"):  # everything is erased now
        fails(e, "director", cmd.ErasePersonalData("PIPL 47", person), "erasure_subject")


def test_g4_property_manager_of_another_company_may_be_invited() -> None:
    e = with_org()
    e.consent_all("invitee", "inv1")
    e.run(
        "med1", cmd.Invite("inv1", "property_manager", doc("保密承诺书"), employer="别的物业公司")
    )
    assert e.case.relations_of("inv1") == {"invitee"}


def test_g4_the_employer_is_any_party_from_version_2() -> None:
    """Version 1 judged the employer rule on organisation parties only; version 2 on every
    party (see ``test_levels.py`` for version 1's behaviour, kept for its cases)."""
    e = registered()  # p1 v p2, both persons
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.consent_all("invitee", "inv1")
    invite = cmd.Invite("inv1", "property_manager", doc("承诺书"), employer="p2")
    fails(e, "med1", invite, "G4", reason="employed by a party")
    assert "inv1" not in e.case.invitees


def test_g4_recused_person_cannot_be_reassigned_and_loses_relation() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("director", cmd.AssignMediator("med2"))
    assert e.case.relations_of("med1") == {"lead_mediator"}
    e.run("p2", cmd.RequestRecusal("med1", "曾为申请人代写材料"))
    # default profile: the request is pending; med1 still leads until the director decides
    assert e.case.lead == "med1" and "med1" in e.case.recusal_requests
    e.run("director", cmd.DecideRecusal("med1", upheld=True, reason="理由成立"))
    c = e.case
    assert "med1" in c.recused and c.lead is None and "med1" not in c.mediators
    assert c.relations_of("med1") == set()
    with pytest.raises(NotPermitted):
        e.run("med1", cmd.NotifyRights(("p1",)))
    fails(
        e,
        "director",
        cmd.AssignMediator("med1", lead=True),
        "G4",
        reason="was recused",
        reason_zh="已被决定回避",
    )
    e.run("director", cmd.AssignMediator("med2", lead=True))
    assert e.case.lead == "med2"


def test_g4_recusal_request_rejected_keeps_the_mediator() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("p1", cmd.RequestRecusal("med1", "担心不公"))
    e.run("director", cmd.DecideRecusal("med1", upheld=False, reason="无法定事由"))
    assert e.case.lead == "med1" and e.case.recusal_requests == {}
    assert e.case.relations_of("med1") == {"lead_mediator"}


def test_g4_sz_profile_one_request_removes_immediately() -> None:
    e = registered("sz")
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("p1", cmd.RequestRecusal("med1", "申请回避"))
    c = e.case
    assert "med1" in c.recused and c.lead is None and c.recusal_requests == {}
    fails(e, "director", cmd.DecideRecusal("med1", upheld=False), "recusal_pending")
    fails(e, "director", cmd.AssignMediator("med1", lead=True), "G4", reason="recused")


def test_g4_court_profile_requests_are_decided_by_the_director() -> None:
    e = registered("court")
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("p1", cmd.RequestRecusal("med1", "申请回避"))
    assert e.case.lead == "med1" and "med1" in e.case.recusal_requests


def test_g4_invitee_recusal_removes_the_invitee() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.consent_all("invitee", "inv1")
    e.run("med1", cmd.Invite("inv1", "police", doc("承诺书")))
    e.run("p2", cmd.RequestRecusal("inv1", "与申请人是同事"))
    e.run("director", cmd.DecideRecusal("inv1", upheld=True))
    assert "inv1" not in e.case.invitees and e.case.relations_of("inv1") == set()
    fails(e, "med1", cmd.Invite("inv1", "police", doc("承诺书")), "G4", reason="recused")


def test_g4_declared_conflict_removes_at_once() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("med1", cmd.DeclareConflict(ties(("p1", "grandchild"))))
    assert e.case.lead is None and "med1" in e.case.recused
    fails(e, "director", cmd.AssignMediator("med1"), "G4")


# -- G5, G6, G7 ----------------------------------------------------------------------------------


def test_g5_every_party_consents_to_the_invitee_with_an_undertaking() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    invite = cmd.Invite("inv1", "street_cadre", doc("保密承诺书"))
    fails(e, "med1", invite, "G5", reason="p1, p2 have not consented to inviting inv1")
    e.run("p1", cmd.Consent("invitee", "inv1"))
    fails(e, "med1", invite, "G5", reason="p2")
    e.run("p2", cmd.Consent("invitee", "inv2"))  # consent to someone else does not count
    fails(e, "med1", invite, "G5", reason="p2")
    e.run("p2", cmd.Consent("invitee", "inv1"))
    no_undertaking = unvalidated(cmd.Invite, invitee="inv1", kind="street_cadre", undertaking=None)
    fails(e, "med1", no_undertaking, "G5", reason="undertaking", reason_zh="保密承诺")
    e.run("med1", invite)
    assert e.case.relations_of("inv1") == {"invitee"}


def test_g6_rights_notified_before_the_meeting() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    meeting = cmd.ScheduleMeeting(EPOCH + dt.timedelta(days=2), "调解室")
    fails(e, "med1", meeting, "G6", reason="p1, p2", reason_zh="权利义务")
    e.run("med1", cmd.NotifyRights(("p1",)))
    fails(e, "med1", meeting, "G6", reason="party(ies) p2 were not told")
    e.run("med1", cmd.NotifyRights(("p2",)))
    e.run("med1", meeting)
    assert e.case.state == "meeting_scheduled"


@pytest.mark.parametrize(
    ("opening", "objection", "reason"),
    [
        ({"involves_privacy": True}, False, "privacy or trade secrets"),
        ({"trade_secrets": True}, False, "privacy or trade secrets"),
        ({}, True, "objected"),
    ],
)
def test_g7_non_public_when_privacy_secrets_or_objection(
    opening: dict[str, Any], objection: bool, reason: str
) -> None:
    e = registered(**opening)
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("med1", cmd.NotifyRights(("p1", "p2")))
    if objection:
        e.run("p2", cmd.Consent("non_public"))
    at = EPOCH + dt.timedelta(days=2)
    fails(e, "med1", cmd.ScheduleMeeting(at, "社区会议室", public=True), "G7", reason=reason)
    e.run("med1", cmd.ScheduleMeeting(at, "调解室", public=False))
    assert e.case.meeting is not None and e.case.meeting["public"] is False


def test_g7_public_meeting_allowed_when_nothing_forbids_it() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("med1", cmd.NotifyRights(("p1", "p2")))
    e.run("med1", cmd.ScheduleMeeting(EPOCH + dt.timedelta(days=2), "社区广场", public=True))
    assert e.case.state == "meeting_scheduled"


def test_open_session_requires_a_scheduled_meeting_and_the_lead() -> None:
    e = Env()
    e.drive("registered")
    with pytest.raises(IllegalTransition):
        e.run("med1", cmd.OpenSession())
    e = Env()
    e.drive("meeting_scheduled")
    with pytest.raises(NotPermitted):
        e.run("director", cmd.OpenSession())


def test_schedule_meeting_needs_a_lead_mediator() -> None:
    e = registered()
    with pytest.raises(NotPermitted):  # nobody holds the lead_mediator relation yet
        e.run("director", cmd.ScheduleMeeting(EPOCH, "调解室"))


# -- negotiation and agreement --------------------------------------------------------------------


def test_proposal_exists() -> None:
    e = Env()
    e.drive("negotiating", minutes=False)
    fails(e, "med1", cmd.ReviseProposal(1, "修改"), "proposal_exists", reason="no proposal 1")
    e.run("med1", cmd.ShareProposal("方案一"))
    e.run("med1", cmd.ReviseProposal(1, "方案一（修改）"))
    fails(e, "med1", cmd.ReviseProposal(2, "修改"), "proposal_exists", reason_zh="第 2 号方案")


@pytest.mark.parametrize(
    "missing",
    [
        "facts",
        "issues",
        "responsibilities",
        "obligations",
        "performance_method",
        "performance_place",
    ],
)
def test_g8a_agreement_content(missing: str) -> None:
    e = Env()
    e.drive("negotiating")
    fails(e, "med1", cmd.DraftAgreement(content(**{missing: "  "})), "G8a", reason=missing)
    e.run("med1", cmd.DraftAgreement(content()))
    assert e.case.state == "agreement_drafted"


def test_g8a_needs_a_performance_deadline() -> None:
    e = Env()
    e.drive("negotiating")
    bad = unvalidated(
        cmd.AgreementContent, **{**attrs.asdict(content()), "performance_deadline": ""}
    )
    fails(e, "med1", cmd.DraftAgreement(bad), "G8a", reason="performance_deadline")


def drafted(**opts: Any) -> Env:
    e = Env()
    e.drive("agreement_drafted", **opts)
    return e


def test_g8b_effective_only_with_every_party_a_mediator_and_the_seal() -> None:
    e = drafted()
    e.run("p1", cmd.Sign())
    e.run("director", cmd.Sign("seal"))
    e.run("med1", cmd.Sign())
    assert e.case.state == "agreement_drafted"  # p2 has not signed
    assert e.case.signatures == {"p1", "seal", "med1"}
    event = e.run("p2", cmd.Sign("fingerprint"))
    assert event.state == "agreement_effective" and e.case.effective_at is not None


@pytest.mark.parametrize("last", ["p1", "p2", "med1", "director"])
def test_g8b_whoever_signs_last_makes_it_effective(last: str) -> None:
    e = drafted()
    order = [w for w in ("p1", "p2", "med1", "director") if w != last] + [last]
    for who in order:
        assert e.case.state == "agreement_drafted"
        e.run(who, cmd.Sign("seal" if who == "director" else "signature"))
    assert e.case.state == "agreement_effective"


def test_g8b_the_reason_names_what_is_missing() -> None:
    e = drafted()
    case = e.case

    def reason(actor: str, acted_as: str) -> str | None:
        ctx = Context(case, "sign", {}, actor, acted_as, AT, None)
        r = GUARDS["G8b"].fn(ctx)
        return None if r is None else r.en

    assert reason("p1", "applicant") == "party(ies) p2 have not signed"
    case.signatures = frozenset({"p1", "p2"})
    assert reason("p2", "respondent") == "no mediator has signed"
    assert reason("director", "director") == "no mediator has signed"
    assert reason("med1", "lead_mediator") == "the committee seal is missing"
    case.signatures = frozenset({"p1", "p2", "med1"})
    assert reason("director", "director") is None


def test_g8b_an_invitee_cannot_sign() -> None:
    e = registered()
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.consent_all("invitee", "inv1")
    e.run("med1", cmd.Invite("inv1", "legal_adviser", doc("承诺书")))
    e.run("med1", cmd.NotifyRights(("p1", "p2")))
    e.run("med1", cmd.ScheduleMeeting(EPOCH, "调解室"))
    e.run("med1", cmd.OpenSession())
    e.run("med1", cmd.DraftAgreement(content()))
    with unchanged(e), pytest.raises(NotPermitted):
        e.run("inv1", cmd.Sign())
    for who in ("p1", "p2", "director"):
        e.run(who, cmd.Sign())
    assert e.case.state == "agreement_drafted"  # still no mediator signature
    e.run("med1", cmd.Sign())
    assert e.case.state == "agreement_effective"


def test_g8b_a_co_mediator_signature_counts() -> None:
    e = Env()
    e.drive("negotiating")
    e.run("director", cmd.AssignMediator("med2"))
    e.run("med1", cmd.DraftAgreement(content()))
    for who in ("p1", "p2", "med2"):
        e.run(who, cmd.Sign())
    assert e.case.state == "agreement_drafted"
    e.run("director", cmd.Sign("seal"))
    assert e.case.state == "agreement_effective" and "med1" not in e.case.signatures


def test_g8b_a_recused_mediators_signature_no_longer_counts() -> None:
    e = Env()
    e.drive("negotiating")
    e.run("director", cmd.AssignMediator("med2"))
    e.run("med1", cmd.DraftAgreement(content()))
    for who in ("p1", "p2", "med2"):
        e.run(who, cmd.Sign())
    e.run("med2", cmd.DeclareConflict(ties(("p1", "interest"))))
    e.run("director", cmd.Sign("seal"))
    assert e.case.state == "agreement_drafted"
    e.run("med1", cmd.Sign())
    assert e.case.state == "agreement_effective"


def test_g8b_same_slot_cannot_sign_twice() -> None:
    e = drafted()
    e.run("p2", cmd.AppointAgent(party("agent2"), doc("授权委托书")))
    e.run("agent2", cmd.Sign())
    assert "p2" in e.case.signatures and "agent2" not in e.case.signatures
    fails(e, "p2", cmd.Sign(), "not_signed_yet", reason="signature of p2 is already")
    fails(e, "agent2", cmd.Sign(), "not_signed_yet")
    e.run("director", cmd.Sign("seal"))
    fails(e, "director", cmd.Sign("seal"), "not_signed_yet", reason="committee seal is already")
    e.run("med1", cmd.Sign())
    fails(e, "med1", cmd.Sign(), "not_signed_yet", reason="signature of med1 is already")
    assert e.case.state == "agreement_drafted"


def test_record_oral_agreement_needs_no_signatures() -> None:
    e = Env()
    e.drive("negotiating")
    e.run("med1", cmd.RecordOralAgreement("当场赔偿 200 元"))
    assert e.case.state == "agreement_effective" and e.case.oral_agreement


# -- ending --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state", ["registered", "meeting_scheduled", "negotiating", "agreement_drafted"]
)
def test_termination_proposed_then_g9(state: str) -> None:
    e = Env()
    e.drive(state)
    fails(
        e,
        "director",
        cmd.Terminate(parties_informed=True),
        "termination_proposed",
        reason_zh="尚未提出终止",
    )
    e.run("med1", cmd.ProposeTermination("双方分歧过大", "litigation"))
    fails(
        e,
        "director",
        cmd.Terminate(parties_informed=False),
        "G9",
        reason="informed",
        reason_zh="仲裁、行政、司法",
    )
    e.run("director", cmd.Terminate(parties_informed=True))
    assert e.case.state == "failed"


def test_g9_requires_a_reason_and_route_on_record() -> None:
    case = Case("k", state="negotiating", termination={"reason": "", "route": "litigation"})
    ctx = Context(case, "terminate", {"parties_informed": True}, "director", "director", AT)
    with pytest.raises(GuardFailed) as info:
        check("G9", ctx)
    assert_guard(
        info.value,
        "G9",
        command="terminate",
        state="negotiating",
        case="k",
        reason="reason and referral route",
    )


def test_only_the_lead_proposes_termination_and_only_the_director_terminates() -> None:
    e = Env()
    e.drive("negotiating")
    e.run("director", cmd.AssignMediator("med2"))
    with pytest.raises(NotPermitted):
        e.run("med2", cmd.ProposeTermination("x", "litigation"))
    e.run("med1", cmd.ProposeTermination("x", "litigation"))
    with pytest.raises(NotPermitted):
        e.run("med1", cmd.Terminate(parties_informed=True))


def effective(**kw: Any) -> Env:
    e = Env()
    e.drive("agreement_effective", apply_cmd(**kw) if kw else None)
    return e


JC = cmd.RecordJudicialConfirmation


def test_g11_joint_application_by_all_parties() -> None:
    e = effective()
    fails(e, "p1", JC("applied", ("p1",)), "G11", reason="joint; missing p2", reason_zh="共同申请")
    e.run("p1", JC("applied", ("p1", "p2"), court="华龙区人民法院"))
    assert e.case.judicial == "applied"
    fails(e, "p2", JC("applied", ("p1", "p2")), "G11", reason="already applied")


def test_g11_the_parties_apply_the_court_rules() -> None:
    e = effective()
    fails(e, "med1", JC("applied", ("p1", "p2")), "G11", reason="only the parties apply")
    fails(e, "director", JC("confirmed"), "G11", reason="no judicial confirmation has been applied")
    e.run("p2", JC("applied", ("p1", "p2")))
    fails(e, "p1", JC("confirmed"), "G11", reason="recorded by a mediator or the director")
    e.run("director", JC("confirmed", court="华龙区人民法院"))
    assert e.case.judicial == "confirmed"


def test_g11_reapplication_after_a_rejection() -> None:
    e = effective()
    e.run("p1", JC("applied", ("p1", "p2")))
    e.run("med1", JC("rejected"))
    e.run("p1", JC("applied", ("p1", "p2")))
    assert e.case.judicial == "applied"


def test_g11_window_is_30_days_from_effectiveness() -> None:
    # effective on 5 January (Shanghai): the 30th day is 4 February, a working day, which ends at
    # midnight in Shanghai (16:00 UTC); the window follows Policy.judicial_window_days
    last_moment = dt.datetime(2026, 2, 4, 15, 59, 59, tzinfo=dt.timezone.utc)
    e = effective()
    e.clock.now = last_moment
    e.run("p1", JC("applied", ("p1", "p2")))  # day 30: still inside
    e = effective()
    e.clock.now = last_moment + dt.timedelta(seconds=1)
    fails(
        e,
        "p1",
        JC("applied", ("p1", "p2")),
        "G11",
        reason="window for judicial confirmation closed",
        reason_zh="届满",
    )


def test_g11_counts_from_effectiveness_not_drafting() -> None:
    e = drafted()
    e.clock.advance(days=40)
    e.sign_all()
    e.clock.advance(days=10)
    e.run("p1", JC("applied", ("p1", "p2")))


def test_g11_not_for_marriage_matters_except_support() -> None:
    e = effective(category="婚姻家庭")
    fails(e, "p1", JC("applied", ("p1", "p2")), "G11", reason="marriage", reason_zh="婚姻")
    e = effective(category="婚姻家庭", subtype="赡养/抚养")
    e.run("p1", JC("applied", ("p1", "p2")))
    assert e.case.judicial == "applied"


def test_g11_agent_applies_for_its_principal() -> None:
    e = effective()
    e.run("p2", cmd.AppointAgent(party("agent2"), doc("授权委托书")))
    e.run("agent2", JC("applied", ("p1", "p2")))
    assert e.case.judicial == "applied"


def test_g12_closing_needs_performance_on_record() -> None:
    e = Env()
    e.drive("following_up", performed="partial")
    fails(e, "med1", cmd.ConfirmPerformed(), "G12", reason="performance", reason_zh="已履行")
    e.run("med1", cmd.RecordFollowUp("已全部履行", "yes"))
    e.run("med1", cmd.RecordFollowUp("又反悔", "no"))
    fails(e, "director", cmd.ConfirmPerformed(), "G12")  # the latest visit counts
    e.run("med1", cmd.RecordFollowUp("已全部履行", "yes"))
    e.run("director", cmd.ConfirmPerformed())
    assert e.case.state == "resolved"


@pytest.mark.parametrize(
    "ending", ["resolved", "failed", "withdrawn", "refused", "not_accepted", "transferred"]
)
def test_g13_archive_each_ending_with_a_complete_file(ending: str) -> None:
    e = Env()
    e.drive(ending)
    e.run("director", cmd.Archive("归档"))
    assert e.case.archived
    fails(e, "director", cmd.Archive(), "not_archived", reason="already archived")


def test_g13_resolved_without_minutes_is_incomplete() -> None:
    e = Env()
    e.drive("negotiating", minutes=False)
    e.run("med1", cmd.RecordOralAgreement("当场赔偿"))
    e.run("med1", cmd.RecordFollowUp("已履行", "yes"))
    e.run("med1", cmd.ConfirmPerformed())
    fails(e, "director", cmd.Archive(), "G13", reason="minutes", reason_zh="卷宗缺少")
    assert not e.case.archived


@pytest.mark.parametrize(
    ("case", "missing"),
    [
        (
            Case("k", state="resolved", registered_at=None, minutes=1, agreement={}, follow_ups=1),
            "registration",
        ),
        (
            Case("k", state="resolved", registered_at="x", minutes=0, agreement={}, follow_ups=1),
            "minutes",
        ),
        (
            Case("k", state="resolved", registered_at="x", minutes=1, agreement=None, follow_ups=1),
            "agreement",
        ),
        (
            Case("k", state="resolved", registered_at="x", minutes=1, agreement={}, follow_ups=0),
            "follow-up record",
        ),
        (Case("k", state="failed", registered_at="x", termination=None), "termination notice"),
        (
            Case(
                "k",
                state="failed",
                registered_at="x",
                termination={"reason": "r"},
                terminated_informed=False,
            ),
            "termination notice",
        ),
        (
            Case(
                "k",
                state="failed",
                registered_at="x",
                applicants=("a",),
                meeting={},
                termination={"r": 1},
                terminated_informed=True,
            ),
            "rights notice",
        ),
    ],
)
def test_g13_required_documents_per_ending(case: Case, missing: str) -> None:
    ctx = Context(case, "archive", {}, "director", "director", AT)
    with pytest.raises(GuardFailed) as info:
        check("G13", ctx)
    assert_guard(info.value, "G13", command="archive", state=case.state, case="k", reason=missing)


def test_archive_only_from_a_terminal_state() -> None:
    e = Env()
    e.drive("following_up")
    with pytest.raises(IllegalTransition):
        e.run("director", cmd.Archive())


# -- small guards --------------------------------------------------------------------------------


def test_all_parties_consent_to_extend_the_term() -> None:
    e = Env()
    e.drive("negotiating")
    fails(
        e,
        "med1",
        cmd.ExtendTerm(15),
        "all_parties_consent",
        reason="p1, p2 have not consented to extend_term",
    )
    e.run("p1", cmd.Consent("extend_term"))
    fails(e, "med1", cmd.ExtendTerm(15), "all_parties_consent", reason="p2")
    e.run("p2", cmd.Consent("extend_term"))
    e.run("med1", cmd.ExtendTerm(15, "需要鉴定"))
    assert e.case.extra_days == 15
    # consent is used up: a second extension needs a second round
    fails(e, "med1", cmd.ExtendTerm(5), "all_parties_consent")


def test_all_parties_consent_to_reopen() -> None:
    e = Env()
    e.drive("following_up", performed="no")
    fails(e, "med1", cmd.Reopen("对方未履行"), "all_parties_consent", reason="reopen")
    e.consent_all("extend_term")  # consent to another subject does not count
    fails(e, "med1", cmd.Reopen("对方未履行"), "all_parties_consent")
    e.consent_all("reopen")
    e.run("med1", cmd.Reopen("对方未履行"))
    c = e.case
    assert c.state == "negotiating" and c.agreement is None and c.signatures == frozenset()


def test_not_paused_and_paused() -> None:
    e = Env()
    e.drive("registered")
    fails(e, "med1", cmd.Resume(), "paused", reason="not paused")
    e.run("med1", cmd.Pause("appraisal", "等待噪声检测"))
    assert e.case.paused
    fails(e, "med1", cmd.Pause("risk_report"), "not_paused", reason="already paused")
    e.run("med1", cmd.Resume())
    assert not e.case.paused


def test_level_l0_escalation() -> None:
    e = Env(sealing=False)  # the reasons in the clear, to compare them here
    e.drive("registered", apply_cmd(level="L0"))
    assert e.case.level == "L0"
    e.run("med1", cmd.Escalate("楼栋层面无法化解"))
    assert e.case.level == "L1"
    e.run("med1", cmd.Escalate("涉及多个社区"))
    assert e.case.level == "L2"
    assert e.case.escalations == (
        ("L0", "L1", "楼栋层面无法化解"),
        ("L1", "L2", "涉及多个社区"),
    )
    fails(e, "med1", cmd.Escalate("再提级"), "level_below_L2", reason="already at level L2")


def test_recusal_pending() -> None:
    e = Env()
    e.drive("registered")
    fails(
        e,
        "director",
        cmd.DecideRecusal("med1", upheld=True),
        "recusal_pending",
        reason="no recusal request",
    )
    assert e.case.lead == "med1"


def test_withdraw_is_always_allowed_before_effect() -> None:
    for state in ("applied", "registered", "meeting_scheduled", "negotiating", "agreement_drafted"):
        e = Env()
        e.drive(state)
        e.run("p2", cmd.Withdraw())
        assert e.case.state == "withdrawn"
    e = Env()
    e.drive("agreement_effective")
    with pytest.raises(IllegalTransition):
        e.run("p1", cmd.Withdraw())
