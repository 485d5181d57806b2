"""Authorization: global roles per committee, relations derived from the case's own log.

Both parts are checked on every command; a refusal is a :class:`NotPermitted` with structured
fields, and it appends nothing.
"""

from __future__ import annotations

import pytest

from helpers import Env, apply_cmd, content, doc, full_cast, party, unchanged
from mediation import Actor, Grant, InvalidCommand, NotPermitted, Relation, Role
from mediation import commands as cmd
from mediation._authz import authorize
from mediation._workflow import WORKFLOW


def denied(e: Env, who: str | Actor, command: cmd.Command, **kw: object) -> NotPermitted:
    actor = who if isinstance(who, Actor) else e[who]
    with unchanged(e), pytest.raises(NotPermitted) as info:
        e.run(actor, command, **kw)
    err = info.value
    # the refusal names the case, the command and the actor, never the case's state: someone
    # without standing learns nothing of where the case is
    assert (err.case, err.state, err.command, err.actor) == (
        e.case_id,
        None,
        command.name,
        actor.id,
    )
    assert err.fields() == {
        "error": "NotPermitted",
        "message": err.message,
        "case": e.case_id,
        "command": command.name,
        "actor": actor.id,
    }
    assert actor.id in str(err) and command.name in str(err)
    assert WORKFLOW.command(command.name).zh in err.message_zh
    return err


# -- global roles, per committee ---------------------------------------------------------------


def test_a_director_of_another_committee_cannot_register() -> None:
    e = Env()
    e.open()
    e.run("p2", cmd.RecordConsent())
    err = denied(e, "outsider-med", cmd.Register())  # director and mediator of c2
    assert "needs director" in str(err) and "nothing here" in str(err)
    e.run("director", cmd.Register())
    assert e.case.state == "registered"


def test_a_role_in_one_committee_gives_no_right_in_another() -> None:
    both = Actor.with_roles("d", {"c2": ["director"], "c3": ["mediator"]})
    assert not both.has_role("director", "c1") and both.has_role(Role.DIRECTOR, "c2")
    assert both.committees("director") == {"c2"} and both.committees(Role.MEDIATOR) == {"c3"}
    e = Env()
    e.open()
    denied(e, both, cmd.NotAccept("不属于受理范围", "litigation"))


def test_director_of_two_committees_acts_in_both() -> None:
    e = Env()
    d = e.add_person("d2", {"c1": ["director"], "c2": ["director"]})
    e.open()
    e.run(d, cmd.NotAccept("不属于受理范围", "litigation"))
    e.case_id = "case-2"
    e.open(apply_cmd(committee="c2"))
    e.run(d, cmd.NotAccept("不属于受理范围", "litigation"))
    assert e.case.committee == "c2" and e.case.state == "not_accepted"


def test_a_mediator_records_an_oral_application_only_in_its_committee() -> None:
    e = Env()
    denied(e, "outsider-med", apply_cmd(oral=True))
    event = e.run("med1", apply_cmd(oral=True))
    assert event.acted_as == "mediator"
    # the mediator opened it, but holds no relation to it: it cannot register it
    denied(e, "med1", cmd.Register())


def test_an_applicant_opens_its_own_case_but_not_someone_elses() -> None:
    e = Env()
    denied(e, "stranger", apply_cmd())  # stranger is not among the applicants
    assert e.run("p1", apply_cmd()).acted_as == "applicant"


def test_respondent_cannot_open_as_applicant() -> None:
    e = Env()
    denied(e, "p2", apply_cmd())


@pytest.mark.parametrize("who", ["grid", "platform", "director"])
def test_report_by_grid_worker_system_or_director(who: str) -> None:
    e = Env()
    report = cmd.Report(
        committee="c1",
        category="邻里",
        description="楼道堆放杂物",
        applicants=(party("p1"),),
        respondents=(party("p2"),),
        source="early_warning" if who == "platform" else "grid",
    )
    assert e.run(who, report).acted_as == {"grid": "grid_worker", "platform": "system"}.get(
        who, who
    )


@pytest.mark.parametrize("who", ["p1", "med1", "supervisor", "auditor", "stranger", "outsider-med"])
def test_report_by_anyone_else_is_denied(who: str) -> None:
    e = Env()
    report = cmd.Report(
        committee="c1",
        category="邻里",
        description="楼道堆放杂物",
        applicants=(party("p1"),),
        respondents=(party("p2"),),
    )
    denied(e, who, report)


def test_grid_worker_reports_but_does_not_register() -> None:
    e = Env()
    e.run(
        "grid",
        cmd.Report(
            committee="c1",
            category="邻里",
            description="x",
            applicants=(party("p1"),),
            respondents=(party("p2"),),
        ),
    )
    e.run("p2", cmd.RecordConsent())
    denied(e, "grid", cmd.Register())


def test_supervisor_of_several_committees_reads_but_never_acts() -> None:
    sup = Actor.with_roles("sup", {"c1": ["supervisor"], "c2": ["supervisor"]})
    assert sup.committees(Role.SUPERVISOR) == {"c1", "c2"}
    e = Env()
    e.open()
    e.case_id = "case-2"
    e.open(apply_cmd(committee="c2"))
    for case_id in ("case-1", "case-2"):
        e.case_id = case_id
        assert e.service.view(sup, case_id).standing == "supervisor"
        denied(e, sup, cmd.NotAccept("x", "litigation"))
        denied(e, sup, cmd.Withdraw())
    other = Actor.with_roles("sup3", {"c3": ["supervisor"]})
    with pytest.raises(NotPermitted):
        e.service.view(other, "case-1")


@pytest.mark.parametrize("who", ["auditor", "supervisor", "grid", "platform", "stranger"])
def test_read_only_and_unrelated_actors_cannot_move_a_case(who: str) -> None:
    e = Env()
    e.drive("negotiating")
    for command in (cmd.RecordMinutes("x"), cmd.Withdraw(), cmd.ExtendTerm(3), cmd.Pause("other")):
        denied(e, who, command)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(InvalidCommand) as info:
        Actor.with_roles("x", {"c1": ["judge"]})
    assert info.value.field == "role"
    with pytest.raises(InvalidCommand):
        Actor("x", frozenset({"director"}))  # type: ignore[arg-type]
    assert Grant("director", "c1").role is Role.DIRECTOR


# -- relations, from the log -------------------------------------------------------------------


def test_relations_are_derived_from_the_log() -> None:
    e = full_cast()
    c = e.case
    expected = {
        "p1": {"applicant"},
        "p2": {"respondent"},
        "agent2": {"agent"},
        "med1": {"lead_mediator"},
        "med2": {"co_mediator"},
        "inv1": {"invitee"},
        "director": set(),
        "med3": set(),
        "stranger": set(),
    }
    for who, rels in expected.items():
        assert c.relations_of(who) == rels, who
    # the same relations come back when the case is rebuilt from the stored log
    e.service.forget()
    rebuilt = e.case
    assert rebuilt is not c
    for who, rels in expected.items():
        assert rebuilt.relations_of(who) == rels, who


def test_each_event_records_the_relation_or_role_it_was_issued_under() -> None:
    e = full_cast()
    acted = [(ev.type, ev.actor, ev.acted_as) for ev in e.service.history("case-1")]
    assert acted[:5] == [
        ("apply", "p1", "applicant"),
        ("appoint_agent", "p2", "respondent"),
        ("record_consent", "agent2", "agent"),
        ("register", "director", "director"),
        ("assign_mediator", "director", "director"),
    ]
    assert ("invite", "med1", "lead_mediator") in acted
    assert ("notify_rights", "med2", "co_mediator") in acted


def test_a_new_lead_demotes_the_old_one_to_co_mediator() -> None:
    e = full_cast()
    e.run("director", cmd.AssignMediator("med3", lead=True))
    c = e.case
    assert c.lead == "med3" and set(c.co_mediators) == {"med1", "med2"}
    assert c.relations_of("med1") == {"co_mediator"}
    denied(e, "med1", cmd.DraftAgreement(content()))  # lead only
    e.run("med1", cmd.RecordMinutes("仍可记录笔录"))


@pytest.mark.parametrize(
    ("who", "command"),
    [
        ("med2", cmd.ProposeTermination("x", "litigation")),  # co-mediator: lead only
        ("med2", cmd.DraftAgreement(content())),
        ("med2", cmd.Pause("appraisal")),
        ("inv1", cmd.RecordMinutes("x")),  # an invitee attends and advises, never records
        ("inv1", cmd.ShareProposal("x")),
        ("p1", cmd.RecordMinutes("x")),
        ("agent2", cmd.ShareProposal("x")),
        ("director", cmd.RecordMinutes("x")),  # the director is not a mediator of the case
        ("med3", cmd.RecordMinutes("x")),  # a mediator of the committee, not of the case
        ("inv1", cmd.AssignMediator("med3")),
        ("med1", cmd.AssignMediator("med3")),  # the director assigns, or the parties choose
    ],
)
def test_relation_decides_who_may_do_what(who: str, command: cmd.Command) -> None:
    e = full_cast()
    denied(e, who, command)


def test_parties_may_choose_a_mediator() -> None:
    e = full_cast()
    assert e.run("p1", cmd.AssignMediator("med3")).acted_as == "applicant"
    # an agent chooses for its principal (PML19)
    assert e.run("agent2", cmd.AssignMediator("med2")).acted_as == "agent"
    denied(e, "inv1", cmd.AssignMediator("med3"))


def test_only_the_lead_invites() -> None:
    e = full_cast()
    e.consent_all("invitee", "inv2")
    invite = cmd.Invite("inv2", "police", doc("承诺书"))
    denied(e, "med2", invite)
    denied(e, "director", invite)
    e.run("med1", invite)


def test_respondent_side_consents_and_refuses() -> None:
    e = Env()
    e.open()
    denied(e, "p1", cmd.Refuse())
    denied(e, "director", cmd.RecordConsent())
    e.run("p2", cmd.Refuse("不同意"))
    assert e.case.state == "refused"


# -- agents ------------------------------------------------------------------------------------


def test_an_agent_consents_for_its_principal() -> None:
    e = Env()
    e.open()
    e.run("p2", cmd.AppointAgent(party("agent2"), doc("授权委托书")))
    e.run("agent2", cmd.RecordConsent())
    assert e.case.consents["mediation"] == {"p2"}
    e.run("director", cmd.Register())
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("p1", cmd.Consent("invitee", "inv1"))
    e.run("agent2", cmd.Consent("invitee", "inv1"))
    assert e.case.consents["invitee:inv1"] == {"p1", "p2"}
    e.run("med1", cmd.Invite("inv1", "police", doc("承诺书")))


def test_an_agent_signs_for_its_principal() -> None:
    e = Env()
    e.drive("agreement_drafted")
    e.run("p1", cmd.AppointAgent(party("agent1"), doc("授权委托书")))
    e.run("agent1", cmd.Sign())
    e.run("p2", cmd.Sign())
    e.run("med1", cmd.Sign())
    assert e.case.signatures == {"p1", "p2", "med1"}
    e.run("director", cmd.Sign("seal"))
    assert e.case.state == "agreement_effective"


def test_an_agent_withdraws_for_its_principal() -> None:
    e = Env()
    e.drive("registered")
    e.run("p1", cmd.AppointAgent(party("agent1"), doc("授权委托书")))
    assert e.run("agent1", cmd.Withdraw("当事人委托撤回")).acted_as == "agent"
    assert e.case.state == "withdrawn"


def test_only_a_party_appoints_an_agent() -> None:
    e = Env()
    e.drive("registered")
    denied(e, "med1", cmd.AppointAgent(party("agent1"), doc("授权委托书")))
    denied(e, "agent1", cmd.AppointAgent(party("agent2"), doc("授权委托书")))


def test_a_mediator_cannot_become_a_partys_agent() -> None:
    e = Env()
    e.drive("registered")
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.run("p1", cmd.AppointAgent(party("med1", name="王调解员"), doc("授权委托书")))
    assert info.value.field == "agent"
    assert e.case.relations_of("med1") == {"lead_mediator"}


# -- acting_as ---------------------------------------------------------------------------------


def director_who_mediates() -> Env:
    e = Env()
    e.add_person("dm", {"c1": ["director", "mediator"]})
    e.drive("agreement_drafted", lead="dm")
    return e


def test_relations_come_before_roles_and_acting_as_picks_one() -> None:
    e = director_who_mediates()
    assert e.run("dm", cmd.Sign()).acted_as == "lead_mediator"
    assert e.case.signatures == {"dm"}
    event = e.run("dm", cmd.Sign("seal"), acting_as="director")
    assert event.acted_as == "director" and e.case.signatures == {"dm", "seal"}
    for pid in ("p1", "p2"):
        e.run(pid, cmd.Sign())
    assert e.case.state == "agreement_effective"


def test_acting_as_something_not_held_is_denied() -> None:
    e = director_who_mediates()
    err = denied(e, "dm", cmd.Sign(), acting_as="applicant")
    assert "needs applicant" in str(err)
    denied(e, "dm", cmd.Sign(), acting_as="auditor")  # not a grant of sign at all
    denied(e, "p1", cmd.Sign(), acting_as="director")


def test_authorize_returns_the_grant_used() -> None:
    e = full_cast()
    spec = WORKFLOW.command("record_minutes")
    med1, med2 = e["med1"], e["med2"]
    assert authorize(spec, e.case, med1.id, {}, None, med1.grants) == Relation.LEAD_MEDIATOR.value
    assert authorize(spec, e.case, med2.id, {}, None, med2.grants) == Relation.CO_MEDIATOR.value
    with pytest.raises(NotPermitted):
        authorize(spec, e.case, med1.id, {}, "co_mediator", med1.grants)


def test_allowed_answers_per_actor() -> None:
    e = full_cast()
    by_cmd = {p.command: p for p in e.service.allowed(e["med2"], "case-1")}
    assert by_cmd["record_minutes"].allowed and by_cmd["record_minutes"].acted_as == "co_mediator"
    assert not by_cmd["draft_agreement"].allowed
    assert not by_cmd["register"].allowed
    stranger = {p.command: p for p in e.service.allowed(e["stranger"], "case-1")}
    assert not any(p.allowed for p in stranger.values())
    assert e.case.seq == len(e.service.history("case-1"))  # asking changes nothing


def test_a_recused_person_acts_under_no_role_either() -> None:
    """R2002 25: a director who is recused from a case (as its mediator) loses the director's
    powers on that case too, and nobody decides on a request for their own recusal."""
    from mediation import GuardFailed

    e = Env()
    e.add_person("boss", {"c1": ["director", "mediator"]})
    e.drive("registered", lead="boss")
    e.run("p1", cmd.RequestRecusal("boss", "与被申请人是同学"))
    with pytest.raises(GuardFailed) as info:
        e.run("boss", cmd.DecideRecusal("boss", upheld=False))
    assert info.value.guard == "recusal_pending"
    e.run("director", cmd.DecideRecusal("boss", upheld=True))
    with unchanged(e):
        for command in (
            cmd.Escalate("改由社区调解"),
            cmd.Transfer("police", "派出所", "涉嫌治安案件"),
            cmd.Archive(),
        ):
            with pytest.raises(NotPermitted):
                e.run("boss", command)
