"""Deadlines (时限): defaults of DOMAIN.md counted on the committee's local dates (Asia/Shanghai),
paused time excluded, overdue cases as early warnings."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import EPOCH, Env, ManualClock, apply_cmd
from mediation import (
    WORKFLOW,
    Calendar,
    CaseService,
    CaseSummary,
    Deadline,
    GuardFailed,
    MediationError,
    MemoryStore,
    Policy,
    StoredEvent,
    replay,
)
from mediation import commands as cmd
from mediation._deadlines import add_working_days, deadlines, summary_deadlines
from mediation._events import format_time, parse_time
from mediation._guards import GUARDS, Context

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
UTC = dt.timezone.utc
CAL = Calendar()


def local(t: dt.datetime) -> dt.date:
    return CAL.local_date(t)


def end(day: dt.date) -> dt.datetime:
    """The instant the local ``day`` ends (Shanghai midnight), in UTC."""
    return CAL.day_end(day)


def kinds(e: Env, now: dt.datetime) -> dict[str, Deadline]:
    out = {d.kind: d for d in e.service.deadlines(e.case_id, now)}
    assert len(out) == len(e.service.deadlines(e.case_id, now))
    return out


def registered_on_day(days: float, **opening: Any) -> Env:
    """Applied at EPOCH, registered ``days`` later, med1 leads."""
    e = Env()
    e.open(apply_cmd(**opening))
    e.clock.advance(days=days)
    e.drive("registered")  # the rest of the path: the case is open already
    return e


# -- the mediation term --------------------------------------------------------------------------


def test_term_is_30_days_from_registration() -> None:
    e = registered_on_day(2)
    reg = EPOCH + 2 * DAY  # 7 January, 16:00 in Shanghai: the term's last day is 6 February
    term = kinds(e, reg)["term"]
    assert term.due_date == dt.date(2026, 2, 6) == local(reg) + 30 * DAY
    assert term.due == end(term.due_date) == dt.datetime(2026, 2, 6, 16, tzinfo=dt.timezone.utc)
    assert not term.overdue and "R2002 33" in term.basis
    assert not kinds(e, term.due - SECOND)["term"].overdue
    assert kinds(e, term.due)["term"].overdue


@pytest.mark.parametrize(
    "state", ["registered", "meeting_scheduled", "negotiating", "agreement_drafted"]
)
def test_term_runs_until_the_agreement(state: str) -> None:
    e = Env()
    e.drive(state)
    assert kinds(e, EPOCH)["term"].due_date == local(EPOCH) + 30 * DAY


@pytest.mark.parametrize(
    "state", ["agreement_effective", "following_up", "resolved", "failed", "withdrawn", "refused"]
)
def test_no_term_once_agreed_or_ended(state: str) -> None:
    e = Env()
    e.drive(state)
    assert "term" not in kinds(e, EPOCH + 100 * DAY)
    assert "acceptance" not in kinds(e, EPOCH + 100 * DAY)


def test_extend_term_with_every_partys_consent() -> None:
    e = registered_on_day(0)
    e.consent_all("extend_term")
    e.run("med1", cmd.ExtendTerm(15, "需要现场勘验"))
    assert kinds(e, EPOCH)["term"].due_date == local(EPOCH) + 45 * DAY
    e.consent_all("extend_term")
    e.run("med1", cmd.ExtendTerm(5))
    assert kinds(e, EPOCH)["term"].due_date == local(EPOCH) + 50 * DAY
    assert not kinds(e, end(local(EPOCH) + 50 * DAY) - SECOND)["term"].overdue
    assert kinds(e, end(local(EPOCH) + 50 * DAY))["term"].overdue


def test_paused_time_is_excluded() -> None:
    e = registered_on_day(0)
    e.clock.advance(days=5)
    e.run("med1", cmd.Pause("appraisal", "噪声检测"))
    # while paused the clock is stopped: no deadline runs, nothing is overdue
    assert kinds(e, EPOCH + 300 * DAY) == {}
    assert e.service.overdue(EPOCH + 300 * DAY) == []
    e.clock.advance(days=10)
    e.run("med1", cmd.Resume("检测完成"))
    assert e.case.paused_seconds == 10 * 86400
    term = kinds(e, e.clock.now)["term"]
    assert term.due_date == local(EPOCH) + 40 * DAY
    assert not kinds(e, term.due - SECOND)["term"].overdue
    assert kinds(e, term.due)["term"].overdue


def test_several_pauses_add_up() -> None:
    e = registered_on_day(0)
    for days in (3, 4):
        e.run("med1", cmd.Pause("risk_report"))
        e.clock.advance(days=days)
        e.run("med1", cmd.Resume())
        e.clock.advance(days=1)
    assert kinds(e, e.clock.now)["term"].due_date == local(EPOCH) + 37 * DAY


def test_a_pause_open_when_the_case_ends_still_counts() -> None:
    e = registered_on_day(0)
    e.run("med1", cmd.Pause("other"))
    e.clock.advance(days=4)
    e.run("p1", cmd.Withdraw())
    assert e.case.paused_seconds == 4 * 86400 and not e.case.paused


# -- labour disputes ---------------------------------------------------------------------------


def test_labour_disputes_15_days_from_application() -> None:
    e = registered_on_day(3, category="劳动争议")
    d = kinds(e, EPOCH)
    assert "term" not in d
    labour = d["labour_term"]
    assert labour.due_date == local(EPOCH) + 15 * DAY and labour.basis == "LDL14"
    assert not kinds(e, labour.due - SECOND)["labour_term"].overdue
    assert kinds(e, labour.due)["labour_term"].overdue


def test_labour_term_runs_from_application_before_registration() -> None:
    e = Env()
    e.open(apply_cmd(category="劳动争议"))
    d = kinds(e, EPOCH)
    assert d["labour_term"].due_date == local(EPOCH) + 15 * DAY and "acceptance" in d


# -- acceptance, 3 working days ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        (dt.datetime(2026, 1, 5, 8), dt.date(2026, 1, 8)),  # Monday -> Thursday
        (dt.datetime(2026, 1, 8, 8), dt.date(2026, 1, 13)),  # Thursday -> Tuesday
        (dt.datetime(2026, 1, 9, 8), dt.date(2026, 1, 14)),  # Friday -> Wednesday
        (dt.datetime(2026, 1, 10, 8), dt.date(2026, 1, 14)),  # Saturday -> Wednesday
        (dt.datetime(2026, 1, 11, 8), dt.date(2026, 1, 14)),  # Sunday -> Wednesday
        # 16:30 UTC on Thursday is 00:30 on Friday in Shanghai: counted from Friday
        (dt.datetime(2026, 1, 8, 16, 30), dt.date(2026, 1, 14)),
    ],
)
def test_acceptance_within_3_working_days(opened: dt.datetime, due: dt.date) -> None:
    opened = opened.replace(tzinfo=dt.timezone.utc)
    e = Env()
    e.clock.now = opened
    e.open()
    d = kinds(e, opened)["acceptance"]
    assert d.due_date == due and d.due == end(due) and not d.overdue
    assert not kinds(e, end(due) - SECOND)["acceptance"].overdue
    assert kinds(e, end(due))["acceptance"].overdue
    assert add_working_days(opened, 3) == due


def test_acceptance_deadline_ends_with_the_decision() -> None:
    e = Env()
    e.open()
    assert "acceptance" in kinds(e, EPOCH)
    e.run("p2", cmd.RecordConsent())
    e.run("director", cmd.Register())
    assert "acceptance" not in kinds(e, EPOCH + 10 * DAY)


# -- L0 ------------------------------------------------------------------------------------------


def test_l0_escalation_after_7_days() -> None:
    e = Env()
    e.drive("registered", apply_cmd(level="L0"))
    d = kinds(e, EPOCH)["l0_escalation"]
    assert d.due_date == local(EPOCH) + 7 * DAY and not d.overdue and "NB12" in d.basis
    assert kinds(e, d.due)["l0_escalation"].overdue
    e.run("med1", cmd.Escalate("楼栋层面无法化解"))
    assert "l0_escalation" not in kinds(e, EPOCH + 8 * DAY)


def test_l0_applies_already_when_applied() -> None:
    e = Env()
    e.open(apply_cmd(level="L0"))
    assert kinds(e, EPOCH + 8 * DAY)["l0_escalation"].overdue


def test_no_l0_deadline_at_l1() -> None:
    e = Env()
    e.drive("registered")
    assert "l0_escalation" not in kinds(e, EPOCH)


# -- judicial confirmation window ----------------------------------------------------------------


def test_judicial_window_30_days_from_effectiveness() -> None:
    e = Env()
    e.drive("agreement_drafted")
    e.clock.advance(days=3)
    e.sign_all()
    d = kinds(e, e.clock.now)
    assert set(d) == {"judicial_window", "first_follow_up"}
    window = d["judicial_window"]
    # 30 days from 8 January end on Saturday 7 February: the period ends on the next working day
    assert window.due_date == dt.date(2026, 2, 9) and "PML33" in window.basis  # CC203
    assert not window.warns and not kinds(e, window.due + DAY)["judicial_window"].overdue
    e.run("p1", cmd.RecordJudicialConfirmation("applied", ("p1", "p2")))
    assert "judicial_window" not in kinds(e, e.clock.now)


# -- policy --------------------------------------------------------------------------------------


def test_policy_changes_the_defaults() -> None:
    policy = Policy(term_days=10, labour_term_days=5, acceptance_working_days=1, l0_days=2)
    e = Env(policy=policy)
    e.open(apply_cmd(level="L0"))
    d = kinds(e, EPOCH)
    today = local(EPOCH)
    assert d["acceptance"].due_date == today + DAY
    assert d["l0_escalation"].due_date == today + 2 * DAY
    e.run("p2", cmd.RecordConsent())
    e.run("director", cmd.Register())
    assert kinds(e, EPOCH)["term"].due_date == today + 10 * DAY
    e = Env(policy=policy)
    e.open(apply_cmd(category="劳动争议"))
    assert kinds(e, EPOCH)["labour_term"].due_date == today + 5 * DAY


def test_defaults() -> None:
    p = Policy()
    assert (p.term_days, p.labour_term_days, p.acceptance_working_days) == (None, None, None)
    assert (p.judicial_window_days, p.l0_days, p.recusal) == (None, None, "default")
    days = {d.kind: p.days(d) for d in WORKFLOW.deadlines}
    assert days == {
        "acceptance": 3,
        "labour_term": 15,
        "term": 30,
        "l0_escalation": 7,
        "judicial_window": 30,
        "first_follow_up": 30,
    }
    assert (p.follow_up_days, p.warn_days_before, p.calendar) == (None, 3, Calendar())
    assert Policy(term_days=45).days(next(d for d in WORKFLOW.deadlines if d.kind == "term")) == 45


def test_deadlines_default_to_the_service_clock() -> None:
    e = registered_on_day(0)
    e.clock.advance(days=31)
    assert kinds(e, e.clock.now)["term"].overdue
    assert {d.kind for d in e.service.deadlines(e.case_id) if d.overdue} == {"term"}


# -- overdue(): early warnings from summary rows -------------------------------------------------


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, case_id: str, after_seq: int = 0) -> list[StoredEvent]:
        self.reads += 1
        return super().read(case_id, after_seq)


def many_cases() -> Env:
    e = Env(store=CountingStore())
    e.case_id = "a-applied"  # acceptance overdue after 3 working days
    e.open()
    e.case_id = "b-term"  # term overdue after 30 days
    e.drive("registered")
    e.case_id = "c-paused"  # stopped clock: never overdue
    e.drive("registered")
    e.run("med1", cmd.Pause("appraisal"))
    e.case_id = "d-resolved"  # closed: no deadline
    e.drive("resolved")
    e.case_id = "e-other"  # committee c2
    e.add_person("d2", {"c2": ["director"]})
    e.open(apply_cmd(committee="c2"))
    e.case_id = "f-fresh"  # opened later: nothing overdue yet
    e.clock.advance(days=25)
    e.drive("registered")
    return e


def ids(rows: Sequence[tuple[CaseSummary, Deadline]]) -> list[tuple[str, str]]:
    return [(s.case_id, d.kind) for s, d in rows]


def test_overdue_lists_open_cases_past_a_deadline() -> None:
    e = many_cases()
    assert ids(e.service.overdue(EPOCH + DAY)) == []
    assert ids(e.service.overdue(EPOCH + 4 * DAY)) == [
        ("a-applied", "acceptance"),
        ("e-other", "acceptance"),
    ]
    assert ids(e.service.overdue(EPOCH + 31 * DAY, committee="c1")) == [
        ("a-applied", "acceptance"),
        ("b-term", "term"),
    ]
    assert ids(e.service.overdue(EPOCH + 31 * DAY, committee="c2")) == [("e-other", "acceptance")]
    assert ids(e.service.overdue(EPOCH + 56 * DAY, committee="c1"))[-1] == ("f-fresh", "term")


def test_overdue_reads_summaries_not_events() -> None:
    e = many_cases()
    store = e.store
    assert isinstance(store, CountingStore)
    fresh = Env(store=store, clock=e.clock).service  # nothing cached
    store.reads = 0
    rows = fresh.overdue(EPOCH + 31 * DAY)
    assert store.reads == 0 and ids(rows)[:2] == [("a-applied", "acceptance"), ("b-term", "term")]
    for summary, deadline in rows:
        assert deadline.overdue and isinstance(summary, CaseSummary)


def test_overdue_defaults_to_the_service_clock() -> None:
    e = many_cases()
    e.clock.now = EPOCH + 31 * DAY
    assert ("b-term", "term") in ids(e.service.overdue())


# -- the judicial-confirmation window follows the policy (G11) ----------------------------------


def effective_at_epoch(policy: Policy | None = None) -> Env:
    e = Env(policy=policy)
    e.drive("agreement_drafted")
    e.sign_all()
    assert e.case.state == "agreement_effective" and e.case.effective_at is not None
    return e


def apply_for_confirmation(e: Env, **kw: Any) -> Any:
    return e.run("p1", cmd.RecordJudicialConfirmation("applied", ("p1", "p2"), **kw))


def test_g11_and_deadlines_agree_on_a_longer_policy_window() -> None:
    e = effective_at_epoch(Policy(judicial_window_days=45))
    window = kinds(e, EPOCH)["judicial_window"]
    # 45 days from 5 January end on 19 February, in the Spring Festival: 24 February (CC203)
    assert window.due_date == dt.date(2026, 2, 24)
    e.clock.advance(days=35)
    apply_for_confirmation(e)
    assert e.case.judicial == "applied"
    (applied,) = (
        ev for ev in e.service.history(e.case_id) if ev.type == "record_judicial_confirmation"
    )
    assert applied.payload["window_ends"] == format_time(window.due)
    assert e.service.verify(e.case_id).ok  # replay decides as the live path did


def test_g11_refuses_after_the_policy_window_and_deadlines_say_so() -> None:
    e = effective_at_epoch(Policy(judicial_window_days=10))
    window = kinds(e, EPOCH)["judicial_window"]
    assert window.due_date == local(EPOCH) + 10 * DAY
    e.clock.now = window.due - SECOND
    snapshot = e.snapshot()
    e.clock.now = window.due
    with pytest.raises(GuardFailed) as caught:
        apply_for_confirmation(e)
    assert caught.value.guard == "G11" and e.snapshot() == snapshot
    e.clock.now = window.due - SECOND
    apply_for_confirmation(e)


def test_g11_default_window_is_30_days_and_a_callers_window_is_ignored() -> None:
    e = effective_at_epoch()
    e.clock.advance(days=35)
    with pytest.raises(GuardFailed):
        apply_for_confirmation(e, window_ends="2099-01-01T00:00:00.000000Z")


def test_g11_on_an_application_recorded_without_a_window_keeps_the_fixed_30_days() -> None:
    """Events of mediation-workflow/1 recorded before the window was: replayed as they were
    decided, 30 days from effectiveness to the second."""
    e = effective_at_epoch()
    case = e.case
    effective = parse_time(case.effective_at or "")

    def g11(at: dt.datetime) -> object:
        payload = {"status": "applied", "joint_applicants": ["p1", "p2"], "court": ""}
        ctx = Context(
            case, "record_judicial_confirmation", payload, "p1", "applicant", format_time(at)
        )
        return GUARDS["G11"].fn(ctx)

    assert g11(effective + 30 * DAY) is None
    assert g11(effective + 30 * DAY + SECOND) is not None
    # a recorded window that is not a time (a forged log) is refused, not a crash
    payload = {"status": "applied", "joint_applicants": ["p1", "p2"], "window_ends": "junk"}
    ctx = Context(
        case, "record_judicial_confirmation", payload, "p1", "applicant", format_time(effective)
    )
    assert GUARDS["G11"].fn(ctx) is not None


# -- the first follow-up -------------------------------------------------------------------------


def test_first_follow_up_by_the_performance_deadline() -> None:
    e = effective_at_epoch()
    agreement = e.case.agreement or {}
    stated = dt.date.fromisoformat(agreement["content"]["performance_deadline"])
    d = kinds(e, EPOCH)["first_follow_up"]
    assert d.due_date == stated and "PML31" in d.basis and d.warns
    e.run("med1", cmd.RecordFollowUp("已电话回访", "yes"))
    assert "first_follow_up" not in kinds(e, EPOCH)


def test_first_follow_up_by_policy_when_no_deadline_is_stated() -> None:
    e = Env(policy=Policy(follow_up_days=10))
    e.drive("negotiating")
    e.run("med1", cmd.RecordOralAgreement("口头协议：赔偿500元"))
    assert kinds(e, EPOCH)["first_follow_up"].due_date == local(EPOCH) + 10 * DAY
    e = Env()
    e.drive("negotiating")
    e.run("med1", cmd.RecordOralAgreement("口头协议", dt.date(2026, 1, 20)))
    assert kinds(e, EPOCH)["first_follow_up"].due_date == dt.date(2026, 1, 20)


def test_nearly_due_from_warn_days_before() -> None:
    e = registered_on_day(0, category="劳动争议")
    labour = kinds(e, EPOCH)["labour_term"]
    early = end(labour.due_date - 4 * DAY) - SECOND
    assert not kinds(e, early)["labour_term"].nearly_due
    assert kinds(e, early + SECOND)["labour_term"].nearly_due
    assert not kinds(e, labour.due)["labour_term"].nearly_due  # overdue now
    e = Env(policy=Policy(warn_days_before=0))
    e.open(apply_cmd(category="劳动争议"))
    assert not kinds(e, end(labour.due_date - DAY) - SECOND)["labour_term"].nearly_due


# -- replay reproduces every due date ------------------------------------------------------------


@attrs.define
class SteppingClock(ManualClock):
    """A manual clock that also moves by ``step`` at every reading."""

    step: dt.timedelta = dt.timedelta(minutes=7)

    def __call__(self) -> dt.datetime:
        self.now += self.step
        return self.now


@st.composite
def walked_cases(draw: st.DrawFn) -> tuple[CaseService, str, Policy, dt.datetime]:
    """A case driven through a live service to a random state, under a random policy, its clock
    starting on a random moment of the covered years and moving at every reading and between
    steps; then paused and resumed, extended, escalated or applied for judicial confirmation
    (steps a guard refuses are left out)."""
    start = draw(
        st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2026, 6, 30), timezones=st.just(UTC))
    )
    days = st.none() | st.integers(1, 60)
    policy = Policy(
        term_days=draw(days),
        labour_term_days=draw(days),
        acceptance_working_days=draw(st.none() | st.integers(1, 10)),
        judicial_window_days=draw(days),
        l0_days=draw(days),
        follow_up_days=draw(days),
        warn_days_before=draw(st.integers(0, 10)),
    )
    clock = SteppingClock(start, draw(st.sampled_from([dt.timedelta(minutes=7), DAY / 3])))
    e = Env(policy=policy, clock=clock)
    opening = apply_cmd(
        level=draw(st.sampled_from(["L0", "L1"])),
        category=draw(st.sampled_from(["邻里", "劳动争议"])),
    )
    target = draw(
        st.sampled_from(
            ["applied", "registered", "negotiating", "agreement_drafted", "agreement_effective"]
        )
    )
    e.drive(target, opening)
    steps = st.sampled_from(["wait", "pause", "resume", "extend", "escalate", "judicial", "visit"])
    for action in draw(st.lists(steps, max_size=10)):
        with contextlib.suppress(MediationError):
            if action == "wait":
                clock.now += draw(st.integers(1, 20 * 24)) * dt.timedelta(hours=1)
            elif action == "pause":
                e.run("med1", cmd.Pause("appraisal"))
            elif action == "resume":
                e.run("med1", cmd.Resume())
            elif action == "extend":
                e.consent_all("extend_term")
                e.run("med1", cmd.ExtendTerm(draw(st.integers(1, 30))))
            elif action == "escalate":
                e.run("med1", cmd.Escalate("楼栋层面无法化解"))
            elif action == "judicial":
                apply_for_confirmation(e)
            else:
                e.run("med1", cmd.RecordFollowUp("回访", "partial"))
    return e.service, e.case_id, policy, clock.now


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walked_cases(), st.integers(0, 90))
def test_replay_reproduces_every_due_date(
    walked: tuple[CaseService, str, Policy, dt.datetime], later: int
) -> None:
    service, case_id, policy, now = walked
    live = service.case(case_id)
    replayed = replay(service.store.read(case_id), case_id)  # also re-decides every guard (G11)
    for at in (now, now + later * DAY):
        assert deadlines(live, at, policy) == deadlines(replayed, at, policy)
        summary = service.store.summary(case_id)
        assert summary is not None
        from_row = summary_deadlines(summary, at, policy)
        assert set(from_row) <= set(deadlines(live, at, policy))
