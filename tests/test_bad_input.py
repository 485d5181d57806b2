"""Bad input at the boundary: every kind is refused with a clear error naming the field, and the
store is left exactly as it was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from helpers import EPOCH, Env, ManualClock, apply_cmd, content, doc, party, ties, unchanged
from mediation import (
    Actor,
    CaseExists,
    CaseNotFound,
    InvalidCommand,
    MediationError,
    MemoryStore,
    Policy,
    SQLiteStore,
)
from mediation import commands as cmd
from mediation._validators import MAX_TEXT


def invalid(field: str | None, build: Callable[[], object]) -> InvalidCommand:
    with pytest.raises(InvalidCommand) as info:
        build()
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, MediationError)
    if field is not None:
        assert err.field == field, (err.field, str(err))
        assert field in str(err)
    return err


# -- payload classes validate when built ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "build"),
    [
        # a tuple of str where Party objects are expected
        (
            "applicants",
            lambda: apply_cmd().__class__(
                **{**attrs.asdict(apply_cmd(), recurse=False), "applicants": ("p1",)}
            ),
        ),
        (
            "respondents",
            lambda: attrs.evolve(apply_cmd(), respondents=({"id": "p2", "name": "x"},)),  # type: ignore[arg-type]
        ),
        ("applicants", lambda: attrs.evolve(apply_cmd(), applicants=())),
        ("applicants", lambda: attrs.evolve(apply_cmd(), applicants=party("p1"))),  # type: ignore[arg-type]
        # int where str
        ("id", lambda: cmd.Party(5, "陈女士")),  # type: ignore[arg-type]
        ("name", lambda: cmd.Party("p1", 5)),  # type: ignore[arg-type]
        ("text", lambda: cmd.RecordMinutes(5)),  # type: ignore[arg-type]
        ("description", lambda: attrs.evolve(apply_cmd(), description=123)),  # type: ignore[arg-type]
        ("committee", lambda: attrs.evolve(apply_cmd(), committee=1)),  # type: ignore[arg-type]
        # str or float where int, bool where int
        ("days", lambda: cmd.ExtendTerm("3")),  # type: ignore[arg-type]
        ("days", lambda: cmd.ExtendTerm(1.5)),  # type: ignore[arg-type]
        ("days", lambda: cmd.ExtendTerm(True)),
        ("days", lambda: cmd.ExtendTerm(0)),
        ("days", lambda: cmd.ExtendTerm(91)),
        ("proposal", lambda: cmd.ReviseProposal("1", "x")),  # type: ignore[arg-type]
        ("satisfaction", lambda: cmd.RecordFollowUp("x", "yes", 6)),
        # str where bool
        ("civil", lambda: cmd.Scope(civil="yes")),  # type: ignore[arg-type]
        ("lead", lambda: cmd.AssignMediator("med1", lead=1)),  # type: ignore[arg-type]
        ("parties_informed", lambda: cmd.Terminate("true")),  # type: ignore[arg-type]
        # value objects of the wrong class
        ("undertaking", lambda: cmd.Invite("inv1", "police", "保密承诺书")),  # type: ignore[arg-type]
        ("scope", lambda: cmd.Register({"civil": True})),  # type: ignore[arg-type]
        ("content", lambda: cmd.DraftAgreement(attrs.asdict(content()))),  # type: ignore[arg-type]
        ("ties", lambda: cmd.AssignMediator("med1", ties=(("p1", "spouse"),))),
        ("document", lambda: cmd.RecordMinutes("x", document="a.pdf")),  # type: ignore[arg-type]
        ("performance_deadline", lambda: content(performance_deadline="2026-02-01")),
        ("performance_deadline", lambda: content(performance_deadline=EPOCH)),
        ("at", lambda: cmd.ScheduleMeeting("2026-01-08T10:00:00+08:00", "调解室")),  # type: ignore[arg-type]
        # vocabularies
        ("category", lambda: attrs.evolve(apply_cmd(), category="刑事")),
        ("category", lambda: attrs.evolve(apply_cmd(), category="neighbours")),
        ("subtype", lambda: attrs.evolve(apply_cmd(), subtype="斗殴")),
        (
            "level",
            lambda: attrs.evolve(apply_cmd(), level="L2"),
        ),  # a case never opens at street level
        ("profile", lambda: attrs.evolve(apply_cmd(), profile="lenient")),
        ("kind", lambda: cmd.Tie("p1", "cousin")),
        ("kind", lambda: cmd.Invite("inv1", "judge", doc())),
        ("kind", lambda: cmd.Party("p1", "x", kind="company")),
        ("route", lambda: cmd.NotAccept("x", "prayer")),
        ("subject", lambda: cmd.Consent("everything")),
        ("method", lambda: cmd.Sign("stamp")),
        (
            "source",
            lambda: cmd.Report(
                **{
                    **attrs.asdict(
                        apply_cmd(), recurse=False, filter=lambda a, v: a.name != "oral"
                    ),
                    "source": "rumour",
                }
            ),
        ),
        ("to", lambda: cmd.Transfer("nowhere", "x", "y")),
        ("reason", lambda: cmd.Pause("tired")),
        ("status", lambda: cmd.RecordJudicialConfirmation("maybe")),
        ("performed", lambda: cmd.RecordFollowUp("x", "perhaps")),
        # consent subjects that name a person, and those that do not
        ("person", lambda: cmd.Consent("invitee")),
        ("person", lambda: cmd.Consent("waive_recusal")),
        ("person", lambda: cmd.Consent("extend_term", "p1")),
        # required text
        ("grounds", lambda: cmd.RequestRecusal("med1", "  ")),
        ("text", lambda: cmd.RecordMinutes("")),
        ("place", lambda: cmd.ScheduleMeeting(EPOCH, " ")),
        ("ties", lambda: cmd.DeclareConflict(())),
        # documents
        ("sha256", lambda: cmd.DocRef("abc", "application/pdf")),
        ("sha256", lambda: cmd.DocRef("A" * 64, "application/pdf")),
        ("media_type", lambda: cmd.DocRef("a" * 64, "pdf")),
        # too many items
        ("parties", lambda: cmd.NotifyRights(tuple(f"p{i}" for i in range(51)))),
        ("parties", lambda: cmd.NotifyRights(())),
    ],
)
def test_wrong_payload_types_and_values(field: str, build: Callable[[], object]) -> None:
    invalid(field, build)


def test_a_party_appearing_twice_is_refused() -> None:
    err = invalid("respondents", lambda: apply_cmd(applicants=("p1",), respondents=("p1",)))
    assert "twice" in str(err)


def test_lists_are_accepted_as_tuples() -> None:
    c = cmd.NotifyRights(["p1", "p2"])
    assert c.parties == ("p1", "p2")


# -- text ------------------------------------------------------------------------------------


def test_max_text_is_4000() -> None:
    assert MAX_TEXT == 4000
    cmd.RecordMinutes("调" * 4000)
    err = invalid("text", lambda: cmd.RecordMinutes("调" * 4001))
    assert "4000" in str(err)
    invalid("description", lambda: attrs.evolve(apply_cmd(), description="x" * 4001))
    invalid("name", lambda: cmd.Party("p1", "名" * 201))
    invalid("phone", lambda: cmd.Party("p1", "名", phone="1" * 41))


@pytest.mark.parametrize("bad", ["\x00", "a\x1bb", "\x07", "line\rbreak", "\x1f"])
def test_control_characters_are_refused(bad: str) -> None:
    err = invalid("text", lambda: cmd.RecordMinutes(bad))
    assert "control characters" in str(err)
    invalid("name", lambda: cmd.Party("p1", bad))


def test_newlines_and_tabs_are_text() -> None:
    assert cmd.RecordMinutes("第一段\n\t第二段").text == "第一段\n\t第二段"


def test_unpaired_surrogates_are_refused() -> None:
    invalid("text", lambda: cmd.RecordMinutes("bad \ud800 text"))


# -- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["", " p1", "p 1", "-lead", "_x", "x" * 65, "张三", "p1\n", "a/b", 7, None]
)
def test_invalid_ids(bad: object) -> None:
    invalid("id", lambda: cmd.Party(bad, "陈女士"))  # type: ignore[arg-type]
    invalid("mediator", lambda: cmd.AssignMediator(bad))  # type: ignore[arg-type]
    invalid("id", lambda: Actor(bad))  # type: ignore[arg-type]
    invalid("committee", lambda: attrs.evolve(apply_cmd(), committee=bad))  # type: ignore[arg-type]


def test_valid_ids() -> None:
    for good in ("p1", "P-1", "user@host", "a:b.c_d", "x" * 64, "0"):
        assert cmd.Party(good, "名").id == good


# -- the service boundary --------------------------------------------------------------------


class NotACommand:
    name = "register"


@attrs.frozen
class FakeRegister(cmd.Register):
    pass


@pytest.mark.parametrize(
    "command",
    [object(), "register", {"name": "register"}, NotACommand(), FakeRegister(), None, cmd.Scope()],
    ids=["object", "str", "dict", "duck", "subclass", "none", "value-object"],
)
def test_unknown_command_objects(command: Any) -> None:
    e = Env()
    e.drive("applied")
    e.run("p2", cmd.RecordConsent())
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.run("director", command)
    assert "not a command" in str(info.value)


@pytest.mark.parametrize("actor", ["director", {"id": "director"}, None, 42])
def test_an_actor_that_is_not_an_actor(actor: Any) -> None:
    e = Env()
    e.drive("applied")
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.service.execute(actor, "case-1", cmd.RecordConsent())
    assert "actor must be an Actor" in str(info.value)


def test_open_with_a_command_that_does_not_open() -> None:
    e = Env()
    with unchanged(e), pytest.raises(InvalidCommand):
        e.service.open(e["director"], cmd.Register())


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (cmd.NotifyRights(("p1", "p9")), "parties"),
        (cmd.NotifyRights(("med1",)), "parties"),
        (cmd.AssignMediator("med2", ties=ties(("p9", "spouse"))), "ties"),
        (cmd.AssignMediator("med2", ties=ties(("med1", "spouse"))), "ties"),
        (cmd.RequestRecusal("med9", "没有这个人"), "person"),
        (cmd.RequestRecusal("p2", "对方当事人不是调解员"), "person"),
        (cmd.DeclareConflict(ties(("p9", "interest"))), "ties"),
        (cmd.AppointAgent(party("p2"), doc()), "agent"),
    ],
)
def test_people_named_in_a_payload_must_belong_to_the_case(
    command: cmd.Command, field: str
) -> None:
    e = Env()
    e.drive("registered")
    who = {"appoint_agent": "p1", "request_recusal": "p1"}.get(command.name, "med1")
    if command.name == "assign_mediator":
        who = "director"
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.run(who, command)
    err = info.value
    assert err.field == field
    assert (err.case, err.command, err.state) == ("case-1", command.name, "registered")
    assert "p9" in str(err) or "med" in str(err) or "p2" in str(err)


def test_joint_applicants_must_be_parties_of_the_case() -> None:
    e = Env()
    e.drive("agreement_effective")
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.run("p1", cmd.RecordJudicialConfirmation("applied", ("p1", "p2", "p9")))
    assert info.value.field == "joint_applicants" and "p9" in str(info.value)


def test_invite_ties_must_point_at_the_case() -> None:
    e = Env()
    e.drive("registered")
    e.consent_all("invitee", "inv1")
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.run("med1", cmd.Invite("inv1", "police", doc(), ties=ties(("stranger", "other"))))
    assert info.value.field == "ties"


# -- time ------------------------------------------------------------------------------------


def test_naive_meeting_time() -> None:
    err = invalid("at", lambda: cmd.ScheduleMeeting(dt.datetime(2026, 1, 8, 19), "调解室"))
    assert "naive" in str(err)
    cmd.ScheduleMeeting(dt.datetime(2026, 1, 8, 19, tzinfo=dt.timezone(dt.timedelta(hours=8))), "x")


class NaiveClock(ManualClock):
    def __call__(self) -> dt.datetime:
        return self.now.replace(tzinfo=None)


def test_a_clock_returning_naive_time_is_refused() -> None:
    e = Env(clock=NaiveClock())
    with unchanged(e), pytest.raises(InvalidCommand) as info:
        e.open()
    assert "naive" in str(info.value)
    assert e.store.summary("case-1") is None
    with pytest.raises(CaseNotFound):
        e.service.case("case-1")


def test_a_naive_clock_refuses_on_an_existing_case_too() -> None:
    e = Env()
    e.drive("applied")
    e.service.clock = lambda: EPOCH.replace(tzinfo=None)
    with unchanged(e), pytest.raises(InvalidCommand):
        e.run("p2", cmd.RecordConsent())
    assert e.case.consents == {}


def test_a_non_utc_clock_is_normalised() -> None:
    e = Env()
    e.service.clock = lambda: EPOCH.astimezone(dt.timezone(dt.timedelta(hours=8)))
    e.open()
    event = e.service.history("case-1")[0]
    assert event.at == EPOCH and event.stored.body.count(b'"at":"2026-01-05T08:00:00.000000Z"') == 1


# -- case ids --------------------------------------------------------------------------------


def test_opening_an_existing_case_id() -> None:
    e = Env()
    e.drive("registered")
    with unchanged(e), pytest.raises(CaseExists) as info:
        e.open(apply_cmd(applicants=("p3",), respondents=("p1",)), by="p3")
    assert info.value.case == "case-1"
    # not from the cache only: a fresh service over the same store refuses too
    e.service.forget()
    with unchanged(e), pytest.raises(CaseExists):
        e.service.open(e["p1"], apply_cmd(), case_id="case-1")
    assert e.case.state == "registered"


def test_open_assigns_fresh_ids() -> None:
    e = Env()
    a = e.service.open(e["p1"], apply_cmd())
    b = e.service.open(e["p1"], apply_cmd())
    assert a.id != b.id and len(e.store.cases()) == 2


def test_executing_on_a_missing_case() -> None:
    e = Env()
    e.drive("applied")
    with unchanged(e), pytest.raises(CaseNotFound) as info:
        e.service.execute(e["p2"], "case-404", cmd.RecordConsent())
    assert info.value.case == "case-404" and isinstance(info.value, LookupError)
    assert "案件" in info.value.message_zh
    for read in (e.service.case, e.service.history, e.service.deadlines):
        with pytest.raises(CaseNotFound):
            read("case-404")
    with pytest.raises(CaseNotFound):
        e.service.view(e["director"], "case-404")
    with pytest.raises(CaseNotFound):
        e.service.allowed(e["director"], "case-404")


@pytest.mark.parametrize("bad", ["", "x" * 65, "case 1", "案件1", "a/b", "\x00", None, 7])
def test_an_invalid_case_id_never_reaches_the_store(bad: Any) -> None:
    e = Env(store=SQLiteStore(":memory:"))
    with pytest.raises(InvalidCommand) as info:
        e.service.execute(e["p1"], bad, apply_cmd())
    assert info.value.field == "case_id"
    assert e.store.case_ids() == [] and e.store.cases() == []


# -- from_payload ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        (cmd.Register, {"scope": {}, "note": "", "extra": 1}, None),
        (cmd.Sign, {"method": "signature", "by": "p1"}, None),
        (cmd.Party, {"id": "p1", "name": "x", "ssn": "1"}, None),
        (cmd.Register, {"scope": {"civil": True, "planet": "mars"}}, None),
        (cmd.Sign, ["signature"], None),
        (cmd.Sign, "signature", None),
        (cmd.Sign, None, None),
        (cmd.ExtendTerm, {"days": "3"}, "days"),
        (cmd.ExtendTerm, {}, None),  # a required field is missing
        (cmd.RecordMinutes, {"text": ["x"]}, "text"),
        (cmd.NotifyRights, {"parties": "p1"}, "parties"),
        (cmd.NotifyRights, {"parties": [1, 2]}, "parties"),
        (cmd.Apply, {**cmd.to_payload(apply_cmd()), "applicants": ["p1"]}, None),
        (cmd.Apply, {**cmd.to_payload(apply_cmd()), "applicants": [{"id": "p1"}]}, None),
        (cmd.Apply, {**cmd.to_payload(apply_cmd()), "category": "刑事"}, "category"),
        (cmd.ScheduleMeeting, {"at": "2026-01-08T19:00:00", "place": "x"}, "at"),
        (cmd.ScheduleMeeting, {"at": "next tuesday", "place": "x"}, "at"),
        (cmd.ScheduleMeeting, {"at": 1767866400, "place": "x"}, "at"),
        (
            cmd.DraftAgreement,
            {"content": {**cmd.to_payload(content()), "performance_deadline": "soon"}},
            "performance_deadline",
        ),
        (
            cmd.DraftAgreement,
            {"content": {**cmd.to_payload(content()), "performance_deadline": 20260201}},
            "performance_deadline",
        ),
        (cmd.Register, {"scope": None}, None),
        (cmd.Register, {"scope": "civil"}, None),
        (cmd.RecordMinutes, {"text": "x", "document": "a.pdf"}, None),
        (cmd.Terminate, {"parties_informed": "yes"}, "parties_informed"),
    ],
)
def test_from_payload_refuses_unknown_fields_and_wrong_types(
    cls: type[Any], data: Any, field: str | None
) -> None:
    with pytest.raises(InvalidCommand) as info:
        cmd.from_payload(cls, data)
    if field is not None:
        assert info.value.field == field
    if isinstance(data, dict) and "extra" in data:
        assert "extra" in str(info.value)


def test_from_payload_names_unknown_fields() -> None:
    with pytest.raises(InvalidCommand) as info:
        cmd.from_payload(cmd.Sign, {"method": "seal", "zz": 1, "aa": 2})
    assert "unknown field(s) aa, zz" in str(info.value)


@pytest.mark.parametrize(
    "command",
    [
        apply_cmd(subtype="噪声", level="L0", involves_privacy=True, evidence=(doc("录音"),)),
        cmd.Register(cmd.Scope(civil=True)),
        cmd.AssignMediator("med1", True, ties(("p1", "other"))),
        cmd.ScheduleMeeting(EPOCH, "调解室", public=True),
        cmd.DraftAgreement(content(), document=doc()),
        cmd.RecordOralAgreement("x", dt.date(2026, 2, 1)),
        cmd.RecordJudicialConfirmation("applied", ("p1", "p2")),
        cmd.Invite("inv1", "police", doc(), employer="公安", ties=ties(("p1", "interest"))),
    ],
)
def test_from_payload_round_trips(command: cmd.Command) -> None:
    assert cmd.from_payload(type(command), cmd.to_payload(command)) == command


def test_policy_is_validated() -> None:
    invalid("term_days", lambda: Policy(term_days=0))
    invalid("recusal", lambda: Policy(recusal="lenient"))
    invalid("acceptance_working_days", lambda: Policy(acceptance_working_days="3"))  # type: ignore[arg-type]


def test_the_store_of_a_fresh_service_is_untouched_by_bad_input() -> None:
    store = MemoryStore()
    e = Env(store=store)
    with pytest.raises(InvalidCommand):
        e.service.execute("p1", "k", apply_cmd())  # type: ignore[arg-type]
    with pytest.raises(InvalidCommand):
        e.service.execute(e["p1"], "k", object())  # type: ignore[arg-type]
    assert store.cases() == [] and list(store.scan()) == []
