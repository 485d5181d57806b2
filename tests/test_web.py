"""The framework-neutral web boundary, ``mediation.web``.

- Every library error maps to one HTTP status and an RFC 9457 body that carries the bilingual
  reason, the structured fields and the legal basis; foreign exceptions leak nothing.
- Commands are built from JSON with the validation replay uses, and any input gives either a
  command or ``InvalidCommand``; the JSON Schema of each command agrees with that validation.
- The JSON renderings of events, views, timelines, permissions and verdicts are JSON-native.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mediation
from helpers import EPOCH, Env, content, full_cast
from mediation import (
    WORKFLOW,
    Actor,
    CaseExists,
    CaseNotFound,
    ClockSkew,
    ConcurrencyConflict,
    GuardFailed,
    IllegalTransition,
    IntegrityViolation,
    InvalidCommand,
    MediationError,
    NotPermitted,
    OutcomeUnknown,
    RequestConflict,
    StoredEvent,
    StoreError,
    _web,
    verify,
    web,
    workflow_of,
)
from mediation import commands as cmd
from mediation._audit import Verdict
from mediation.commands import COMMAND_TYPES
from mediation.testing import command_for, driven_cases

NAMES = [spec.name for spec in WORKFLOW.commands]
#: for the properties run once per command, or over whole cases: a quarter of the profile's
#: examples (the ci profile's 600 would add a minute to the suite)
FEWER = settings(
    max_examples=max(20, settings.default.max_examples // 4),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LOG_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


def json_native(value: Any, where: str = "$") -> None:
    """``value`` holds only what ``json.loads`` produces (no tuples, sets, datetimes, enums...)."""
    if value is None or type(value) in (bool, int, str):
        return
    if type(value) is float:
        assert value == value and abs(value) != float("inf"), where
        return
    if type(value) is list:
        for i, item in enumerate(value):
            json_native(item, f"{where}[{i}]")
        return
    assert type(value) is dict, f"{where}: {type(value).__name__}"
    for key, item in value.items():
        assert type(key) is str, f"{where}: key {key!r}"
        json_native(item, f"{where}.{key}")


def dumps(value: Any) -> str:
    json_native(value)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    assert json.loads(text) == value
    return text


# -- errors -> problems ----------------------------------------------------------------------------

#: every error class of the library and the status it must map to; a new error class fails
#: test_every_error_class_has_a_status until it is given a row here (and in web.PROBLEM_TYPES)
EXPECTED_STATUS: dict[str, int] = {
    "MediationError": 500,
    "InvalidCommand": 422,
    "NotPermitted": 403,
    "CaseNotFound": 404,
    "IllegalTransition": 409,
    "GuardFailed": 409,
    "ConcurrencyConflict": 409,
    "CaseExists": 409,
    "RequestConflict": 409,
    "StoreError": 503,
    "OutcomeUnknown": 503,
    "ClockSkew": 503,
    "CalendarNotCovered": 500,  # the holiday data lacks a year: the host's configuration
    "IntegrityViolation": 500,
    "KeyDestroyed": 409,  # new personal data for a person (or case) whose data was erased
    "SealBroken": 500,  # a sealed value does not authenticate: integrity
    "CheckpointError": 500,  # mediation.audit: keys and checkpoint files, not a request's fault
    "CheckpointRefused": 500,  # mediation.audit: the signer refuses (a CheckpointError)
    "WitnessRefused": 500,  # mediation.audit: a witness refuses (a CheckpointRefused)
    "SignerStateError": 500,  # mediation.audit: the signer's state file (a CheckpointError)
    "ExportError": 500,  # mediation.audit: export files
    "DocsError": 500,  # mediation.docs
    "InvalidStoreURL": 500,  # mediation.stores.open: the host's configuration
    "NotADatabase": 503,  # mediation.stores.open: a StoreError
    "MalformedRecord": 503,  # a stored row of the wrong types: a StoreError
}


def _error_classes() -> list[type[MediationError]]:
    """Every subclass of MediationError defined in the mediation package (all modules imported)."""
    for info in pkgutil.walk_packages(mediation.__path__, "mediation."):
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
    out: list[type[MediationError]] = []
    todo: list[type[MediationError]] = [MediationError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("mediation") and cls not in out:
            out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


_SAMPLE_ARGS: dict[str, Any] = {
    "guard": "G6",
    "basis": "R2002 30",
    "expected_seq": 7,
    "request_id": "req-42",
    "clock": "2026-03-02T08:00:00.000000Z",
    "last": "2026-03-02T09:00:00.000000Z",
    "tolerance": 300.0,
    "verdict": None,
    "field": "days",
    "reason": "log_missing",
    "store_id": "store-1",
    "witness": "street-office",
    "day": "2027-01-04",
    "year": 2027,
    "covered": (2004, 2026),
}


def make_error(cls: type[MediationError], **kw: Any) -> MediationError:
    """An instance of ``cls``, its required keyword arguments filled with sample values."""
    params = inspect.signature(cls).parameters
    args = {
        name: _SAMPLE_ARGS[name]
        for name, p in params.items()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }
    base = dict(message_zh="中文说明", case="case-1", state="registered", actor="med1")
    return cls(f"{cls.__name__} happened", **{**base, **args, **kw})


def test_every_error_class_has_a_status() -> None:
    found = {cls.__name__ for cls in _error_classes()}
    assert found == set(EXPECTED_STATUS), (
        f"new error classes {sorted(found - set(EXPECTED_STATUS))}: give them a status in "
        f"mediation.web.PROBLEM_TYPES and in EXPECTED_STATUS; gone: "
        f"{sorted(set(EXPECTED_STATUS) - found)}"
    )


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_each_error_class_maps_to_its_status(cls: type[MediationError]) -> None:
    err = make_error(cls)
    p = web.problem(err)
    status = EXPECTED_STATUS[cls.__name__]
    assert p.status == status and p.body["status"] == status
    assert p.content_type == "application/problem+json"
    assert p.body["type"].startswith(web.PROBLEM_BASE)
    assert p.body["detail"] == f"{cls.__name__} happened"
    assert p.body["detail_zh"] == "中文说明"
    assert p.body["error"] == cls.__name__
    assert (p.body["case"], p.body["state"], p.body["actor"]) == ("case-1", "registered", "med1")
    for key, value in err.fields().items():
        if key != "message":
            assert p.body[key] == value, key
    dumps(p.body)


def test_the_library_errors_have_their_own_rows() -> None:
    """The errors of mediation.__all__ and _errors are named in the table, not inherited."""
    from mediation import _errors

    for name in _errors.__all__:
        cls = getattr(_errors, name)
        assert cls in web.PROBLEM_TYPES, name
        assert web.PROBLEM_TYPES[cls].status == EXPECTED_STATUS[name]
    slugs = [kind.slug for kind in web.PROBLEM_TYPES.values()]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", s) for s in slugs)


def test_a_subclass_takes_its_nearest_entry() -> None:
    class SlowStore(OutcomeUnknown):
        pass

    class LocalGuard(GuardFailed):
        pass

    class MyStoreError(StoreError):
        pass

    class MyError(MediationError):
        pass

    assert web.problem(make_error(SlowStore)).body["type"].endswith("/outcome-unknown")
    assert web.problem(make_error(LocalGuard)).status == 409
    assert web.problem(make_error(LocalGuard)).body["type"].endswith("/guard-failed")
    assert web.problem(make_error(MyStoreError)).status == 503
    assert web.problem(make_error(MyError)).status == 500


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("password=hunter2 in /etc/mediation/secret.conf"),
        KeyError("password=hunter2"),
        ValueError("SELECT * FROM events -- password=hunter2"),
        TypeError("/home/deploy/app.py line 3 password=hunter2"),
        Exception(),
        KeyboardInterrupt("password=hunter2"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_foreign_exception_leaks_nothing(exc: BaseException) -> None:
    p = web.problem(exc)
    assert p.status == 500
    assert set(p.body) == {"type", "title", "title_zh", "status", "detail", "detail_zh"}
    assert p.body["type"] == web.PROBLEM_BASE + "internal-error"
    text = dumps(p.body)
    for secret in ("hunter2", "password", "etc", "SELECT", "deploy", type(exc).__name__):
        assert secret not in text


def test_a_foreign_exception_gives_the_same_body_whatever_it_says() -> None:
    assert web.problem(RuntimeError("a")) == web.problem(OSError(2, "b", "/x"))


# real errors, raised by the service


@pytest.fixture
def registered() -> Env:
    e = Env()
    e.drive("registered")
    return e


def test_a_failed_guard_is_409_with_the_guard_its_basis_and_both_languages(
    registered: Env,
) -> None:
    meeting = cmd.ScheduleMeeting(EPOCH + dt.timedelta(days=3), "调解室")
    with pytest.raises(GuardFailed) as info:
        registered.run("med1", meeting)
    p = web.problem(info.value, instance="/cases/case-1/commands/schedule_meeting")
    b = p.body
    assert p.status == 409 and b["type"] == web.PROBLEM_BASE + "guard-failed"
    assert b["guard"] == "G6" and b["basis"] == WORKFLOW.guard("G6").basis == "R2002 30"
    assert (b["case"], b["state"], b["command"], b["actor"]) == (
        "case-1",
        "registered",
        "schedule_meeting",
        "med1",
    )
    assert b["detail"] == str(info.value) and "G6" in b["detail"]
    assert b["detail_zh"] == info.value.message_zh != b["detail"]
    assert WORKFLOW.guard("G6").zh in b["detail_zh"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in b["title_zh"])
    assert b["instance"] == "/cases/case-1/commands/schedule_meeting"
    dumps(b)


def test_a_denied_command_is_403_with_the_command_basis(registered: Env) -> None:
    with pytest.raises(NotPermitted) as info:
        registered.run("med1", cmd.Transfer("police", "派出所", "涉嫌治安案件"))  # director only
    p = web.problem(info.value)
    assert p.status == 403 and p.body["type"].endswith("/not-permitted")
    assert p.body["command"] == "transfer"
    assert p.body["basis"] == WORKFLOW.command("transfer").basis == "PML25, 34"
    assert p.body["detail"] == str(info.value)
    assert p.body["detail_zh"] == info.value.message_zh != p.body["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in p.body["detail_zh"])


def test_a_stranger_is_denied_with_403(registered: Env) -> None:
    with pytest.raises(NotPermitted) as info:
        registered.run("stranger", cmd.Register())
    p = web.problem(info.value)
    assert p.status == 403
    assert p.body["command"] == "register"
    assert p.body["basis"] == WORKFLOW.command("register").basis
    assert p.body["actor"] == "stranger"


def test_a_recused_mediator_is_denied_with_403() -> None:
    e = Env()
    e.drive("registered")
    e.run("director", cmd.AssignMediator("med2"))
    e.run("med2", cmd.NotifyRights(("p1",)))  # a co-mediator may, before the recusal
    e.run("p1", cmd.RequestRecusal("med2", "调解员系对方亲属"))
    e.run("director", cmd.DecideRecusal("med2", upheld=True))
    with pytest.raises(NotPermitted) as info:
        e.run("med2", cmd.NotifyRights(("p2",)))
    p = web.problem(info.value)
    assert p.status == 403 and p.body["actor"] == "med2"
    assert p.body["basis"] == WORKFLOW.command("notify_rights").basis


def test_an_illegal_transition_is_409_with_the_command_basis(registered: Env) -> None:
    with pytest.raises(IllegalTransition) as info:
        registered.run("med1", cmd.OpenSession())
    p = web.problem(info.value)
    assert p.status == 409 and p.body["type"].endswith("/illegal-transition")
    assert p.body["command"] == "open_session" and p.body["state"] == "registered"
    assert p.body["basis"] == WORKFLOW.command("open_session").basis == "PML27"
    assert p.body["detail_zh"] == info.value.message_zh != p.body["detail"]


def test_an_unknown_case_is_404() -> None:
    e = Env()
    with pytest.raises(CaseNotFound) as info:
        e.service.case("no-such-case")
    p = web.problem(info.value)
    assert p.status == 404 and p.body["case"] == "no-such-case"


def test_an_existing_case_is_409(registered: Env) -> None:
    with pytest.raises(CaseExists) as info:
        registered.open()
    assert web.problem(info.value).status == 409


def test_bad_input_is_422_naming_the_field_in_both_languages() -> None:
    with pytest.raises(InvalidCommand) as info:
        web.command_from_json("extend_term", {"days": 0})
    p = web.problem(info.value)
    assert p.status == 422 and p.body["field"] == "days"
    assert p.body["detail"] == str(info.value)
    assert p.body["detail_zh"].startswith("命令无效") and str(info.value) in p.body["detail_zh"]


def test_structured_fields_of_store_and_request_errors() -> None:
    conflict = web.problem(ConcurrencyConflict("raced", expected_seq=4, case="c"))
    assert (conflict.status, conflict.body["expected_seq"]) == (409, 4)
    assert conflict.body["type"].endswith("/concurrency-conflict")
    reused = web.problem(RequestConflict("reused", request_id="req-9", case="c", seq=3))
    assert (reused.status, reused.body["request_id"], reused.body["seq"]) == (409, "req-9", 3)
    unknown = web.problem(OutcomeUnknown("lost", case="c"))
    assert unknown.status == 503 and "same request id" in unknown.body["title"]
    skew = web.problem(
        ClockSkew("behind", clock="2026-01-01T00:00:00.000000Z", last="L", tolerance=1.5)
    )
    assert skew.status == 503
    assert (skew.body["clock"], skew.body["last"], skew.body["tolerance"]) == (
        "2026-01-01T00:00:00.000000Z",
        "L",
        1.5,
    )
    broken = web.problem(IntegrityViolation("altered at seq 2", verdict=object(), case="c"))
    assert broken.status == 500 and "verdict" not in broken.body
    dumps(broken.body)


def test_problem_is_frozen() -> None:
    p = web.problem(RuntimeError())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        p.status = 200  # type: ignore[misc]


# -- command_from_json: bad input ------------------------------------------------------------------


def _deep(depth: int, leaf: Any = "x", wrap: Callable[[Any], Any] = lambda v: [v]) -> Any:
    value = leaf
    for _ in range(depth):
        value = wrap(value)
    return value


@pytest.mark.parametrize("name", ["", "nope", "Apply", "__class__", "name", "apply ", None, 3, []])
def test_an_unknown_command_name_is_invalid(name: Any) -> None:
    with pytest.raises(InvalidCommand) as info:
        web.command_from_json(name, {})
    assert info.value.field == "command"
    with pytest.raises(InvalidCommand):
        web.command_schema(name)


_DEEP_LIST = _deep(100_000)
_DEEP_OBJECT = _deep(100_000, wrap=lambda v: {"a": v})


@pytest.mark.parametrize(
    ("name", "data", "field"),
    [
        ("sign", None, None),
        ("sign", [], None),
        ("sign", "seal", None),
        ("sign", 3, None),
        ("sign", {1: "seal"}, None),
        ("sign", {"method": "seal", "by": "p1"}, None),
        ("sign", {"method": ["seal"]}, "method"),
        ("sign", {"method": {"seal": 1}}, "method"),
        ("sign", {"method": 1}, "method"),
        ("sign", {"method": None}, "method"),
        ("sign", {"name": "sign"}, None),  # a class attribute, not a field
        ("record_minutes", {"text": 5}, "text"),
        ("record_minutes", {"text": "  \n\t "}, "text"),
        ("record_minutes", {"text": "a\x00b"}, "text"),
        ("record_minutes", {"text": "a\rb"}, "text"),
        ("record_minutes", {"text": "\ud800"}, "text"),
        ("record_minutes", {"text": "x" * 4001}, "text"),
        ("record_minutes", {"text": "x" * 10_000_000}, "text"),
        ("record_minutes", {"text": _DEEP_LIST}, "text"),
        ("record_minutes", {"text": _DEEP_OBJECT}, "text"),
        ("record_minutes", {"text": "x", "document": "a.pdf"}, "document"),
        ("record_minutes", {"text": "x", "document": _DEEP_OBJECT}, None),
        ("record_minutes", {}, "text"),
        ("extend_term", {"days": True}, "days"),
        ("extend_term", {"days": 3.0}, "days"),
        ("extend_term", {"days": "3"}, "days"),
        ("extend_term", {"days": 0}, "days"),
        ("extend_term", {"days": 91}, "days"),
        ("extend_term", {"days": 10**400}, "days"),
        ("extend_term", {"days": float("nan")}, "days"),
        ("extend_term", {"days": float("inf")}, "days"),
        ("notify_rights", {"parties": "p1"}, "parties"),
        ("notify_rights", {"parties": [1, 2]}, "parties"),
        ("notify_rights", {"parties": [["p1"]]}, "parties"),
        ("notify_rights", {"parties": []}, "parties"),
        ("notify_rights", {"parties": ["p1"] * 51}, "parties"),
        ("notify_rights", {"parties": ["p1"] * 1_000_000}, "parties"),
        ("notify_rights", {"parties": _DEEP_LIST}, "parties"),
        ("notify_rights", {"parties": ["p 1"]}, "parties"),
        ("notify_rights", {"parties": ["p1\n"]}, "parties"),
        ("register", {"scope": None}, "scope"),
        ("register", {"scope": "civil"}, "scope"),
        ("register", {"scope": [True]}, "scope"),
        ("register", {"scope": {"civil": 1}}, "civil"),
        ("register", {"scope": {"civil": True, "planet": "mars"}}, None),
        ("register", {"scope": _DEEP_OBJECT}, None),
        ("consent", {"subject": "invitee"}, "person"),
        ("consent", {"subject": "reopen", "person": "p1"}, "person"),
        ("consent", {"subject": {"invitee": 1}}, "subject"),
        ("consent", {"subject": ["invitee"]}, "subject"),
        ("declare_conflict", {"ties": []}, "ties"),
        ("declare_conflict", {"ties": [{"person": "p1"}]}, "kind"),
        ("declare_conflict", {"ties": [["p1", "spouse"]]}, "ties"),
        ("declare_conflict", {"ties": [{"person": "p1", "kind": "cousin"}]}, "kind"),
        ("schedule_meeting", {"at": "2026-03-05T19:00:00", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05T19:00Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05 19:00:00Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "20260305T190000Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-02-30T19:00:00Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05T24:00:00Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05T19:00:60Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05T19:00:00+24:00", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "2026-03-05T19:00:00+0800", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "0001-01-01T00:00:00+08:00", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "9999-12-31T23:00:00-05:00", "place": "x"}, "at"),
        ("schedule_meeting", {"at": "２０２６-03-05T19:00:00Z", "place": "x"}, "at"),
        ("schedule_meeting", {"at": 1767866400, "place": "x"}, "at"),
        ("schedule_meeting", {"at": None, "place": "x"}, "at"),
        (
            "record_oral_agreement",
            {"summary": "x", "performance_deadline": "20260301"},
            "performance_deadline",
        ),
        (
            "record_oral_agreement",
            {"summary": "x", "performance_deadline": "2026-W09-1"},
            "performance_deadline",
        ),
        (
            "record_oral_agreement",
            {"summary": "x", "performance_deadline": "2026-02-30"},
            "performance_deadline",
        ),
        (
            "record_oral_agreement",
            {"summary": "x", "performance_deadline": "2026-3-1"},
            "performance_deadline",
        ),
        (
            "record_oral_agreement",
            {"summary": "x", "performance_deadline": "2026-03-01T00:00:00Z"},
            "performance_deadline",
        ),
        (
            "record_oral_agreement",
            {"summary": "x", "performance_deadline": 20260301},
            "performance_deadline",
        ),
        ("apply", {"committee": "c1"}, None),
        ("apply", _DEEP_OBJECT, None),
        ("apply", {str(i): i for i in range(100_000)}, None),
    ],
)
def test_bad_json_is_invalid_command(name: str, data: Any, field: str | None) -> None:
    with pytest.raises(InvalidCommand) as info:
        web.command_from_json(name, data)
    if field is not None:
        assert info.value.field == field, str(info.value)
    assert len(str(info.value)) < 1000  # the message never echoes a huge input
    dumps(web.problem(info.value).body)


def test_a_naive_datetime_is_refused_by_name() -> None:
    with pytest.raises(InvalidCommand) as info:
        web.command_from_json("schedule_meeting", {"at": "2026-03-05T19:00:00", "place": "x"})
    assert "naive" in str(info.value) and info.value.field == "at"


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-03-05T19:00:00+08:00", dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc)),
        ("2026-03-05T11:00:00Z", dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc)),
        ("2026-03-05t11:00:00z", dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc)),
        ("2026-03-05T06:30:00-04:30", dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc)),
        ("2026-03-05T11:00:00-00:00", dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc)),
        (
            "2026-03-05T11:00:00.5Z",
            dt.datetime(2026, 3, 5, 11, 0, 0, 500_000, tzinfo=dt.timezone.utc),
        ),
        (
            "2026-03-05T11:00:00.123456789Z",
            dt.datetime(2026, 3, 5, 11, 0, 0, 123_456, tzinfo=dt.timezone.utc),
        ),
        (
            "2026-03-05T11:00:00.000000Z",  # the log's own format
            dt.datetime(2026, 3, 5, 11, tzinfo=dt.timezone.utc),
        ),
    ],
)
def test_rfc3339_datetimes_are_accepted(text: str, utc: dt.datetime) -> None:
    command = web.command_from_json("schedule_meeting", {"at": text, "place": "调解室"})
    assert isinstance(command, cmd.ScheduleMeeting)
    assert command.at == utc and command.at.utcoffset() is not None
    assert _validator("schedule_meeting").is_valid({"at": text, "place": "调解室"})


def test_a_datetime_is_not_a_date() -> None:
    """A deadline given as a datetime would be written to the log and refused on replay."""
    with pytest.raises(InvalidCommand):
        cmd.RecordOralAgreement("x", dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))  # type: ignore[arg-type]


def test_years_before_1000_round_trip() -> None:
    early = cmd.ScheduleMeeting(dt.datetime(999, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "x")
    payload = cmd.to_payload(early)
    assert payload["at"] == "0999-01-02T03:04:05.000000Z"
    assert web.command_from_json("schedule_meeting", payload) == early


_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(NAMES),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(name=st.sampled_from(NAMES) | _ANY_JSON, data=_ANY_JSON)
def test_anything_gives_a_command_or_invalid_command(name: Any, data: Any) -> None:
    try:
        command = web.command_from_json(name, data)
    except InvalidCommand as exc:
        dumps(web.problem(exc).body)
    else:
        assert command.name == name
        assert _validator(name).is_valid(data)


# -- schemas ---------------------------------------------------------------------------------------


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` with ECMA-262's ``$`` (the end of the text; Python's also allows a final
    newline before it), as a JSON Schema validator in another language would read it."""
    if validator.is_type(instance, "string"):
        assert pattern.endswith("$")
        if not re.search(pattern[:-1] + r"\Z", instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)


@functools.cache
def _validator(name: str) -> Any:
    schema = web.command_schema(name)
    return _Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_every_command_has_a_valid_schema() -> None:
    schemas = web.command_schemas()
    assert list(schemas) == NAMES
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        cls = COMMAND_TYPES[name]
        assert schema["$schema"] == web.JSON_SCHEMA_DIALECT
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        fields = attrs.fields(cls)
        assert list(schema["properties"]) == [f.name for f in fields]
        assert schema.get("required", []) == [f.name for f in fields if f.default is attrs.NOTHING]
        assert name in schema["title"] and cls.__name__ in schema["title"]
        assert WORKFLOW.command(name).basis in schema["description"]
        for sub in schema.get("$defs", {}).values():
            assert sub["additionalProperties"] is False and sub["description"]
        assert schema == web.command_schema(name)
        schema["title"] = "changed"  # a copy: the next caller is not affected
        schema.get("$defs", {}).clear()
        assert web.command_schema(name) == web.command_schemas()[name] != schema


@pytest.mark.parametrize("name", NAMES)
def test_the_example_is_valid_and_builds_the_command(name: str) -> None:
    (example,) = web.command_schema(name)["examples"]
    assert _validator(name).is_valid(example)
    command = web.command_from_json(name, copy.deepcopy(example))
    assert isinstance(command, COMMAND_TYPES[name])
    full = cmd.to_payload(command)
    assert _validator(name).is_valid(full)
    assert web.command_from_json(name, json.loads(json.dumps(full))) == command


def test_every_class_has_a_bilingual_docstring_with_its_basis() -> None:
    for spec in WORKFLOW.commands:
        doc = COMMAND_TYPES[spec.name].__doc__ or ""
        assert doc.startswith(spec.zh + " — "), spec.name
        assert f"({spec.basis})" in " ".join(doc.split()), spec.name
    for cls in (cmd.Party, cmd.DocRef, cmd.Tie, cmd.Scope, cmd.AgreementContent, cmd.Command):
        doc = cls.__doc__ or ""
        assert " — " in doc and any("\u4e00" <= ch <= "\u9fff" for ch in doc), cls.__name__


def test_the_whitespace_of_the_required_text_pattern_is_str_isspace() -> None:
    """The schema's idea of blank text is ``str.strip``'s, spelled out (ECMA-262's ``\\s`` is not
    Python's)."""
    from mediation import _validators

    pattern = re.compile(_validators.REQUIRED_TEXT_PATTERN)
    for code in range(0x3100):  # every white space character lies below U+3100
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        control = code < 32 and ch not in "\n\t"
        assert bool(pattern.search("x" + ch)) is not control, hex(code)
        assert bool(pattern.search(ch)) is not (ch.isspace() or control), hex(code)


# agreement of the schema with validation


@st.composite
def _valid_commands(draw: st.DrawFn) -> tuple[str, cmd.Command]:
    driven = draw(driven_cases(max_steps=12))
    case = driven.service.case(driven.case_id)
    name = draw(st.sampled_from(NAMES))
    return name, draw(command_for(driven.world, case, name))


@FEWER
@given(_valid_commands())
def test_valid_commands_validate_against_their_schema(drawn: tuple[str, cmd.Command]) -> None:
    name, command = drawn
    body = json.loads(json.dumps(cmd.to_payload(command)))
    errors = list(_validator(name).iter_errors(body))
    assert not errors, [e.message for e in errors]
    assert web.command_from_json(name, body) == command


@FEWER
@given(driven_cases(max_steps=30))
def test_every_recorded_payload_validates_against_its_schema(driven: Any) -> None:
    from mediation._privacy import standins

    for event in driven.service.history(driven.case_id):
        payload = json.loads(event.stored.body)["payload"]
        # a sealed value stands for text the schema checked before it was sealed
        spec = workflow_of(event.workflow).command(event.type)
        payload = standins(workflow_of(event.workflow), spec, payload)
        errors = list(_validator(event.type).iter_errors(payload))
        assert not errors, (event.type, [e.message for e in errors])


_IDS = ["p1", "res-1502", "a" * 64, "a" * 65, "a b", "p1\n", "-p1", "med.wang@c1:x", "", "案件1"]
_TEXTS = [
    "",
    " ",
    "\u3000",
    "\n\t",
    "\r",
    "\x00",
    "a\x1fb",
    "a\x7fb",
    "\u0085",
    "\ufeff",
    "\ud800",
    "调解",
    " 调解 ",
    "a\nb",
]
_TIMES = [
    "2026-03-05T11:00:00Z",
    "2026-03-05T11:00:00",
    "2026-03-05T19:00:00+08:00",
    "2026-03-05 11:00:00Z",
    "2026-03-05T11:00Z",
    "2026-03-05T11:00:00.123Z",
    "2026-03-05T11:00:00.1234567891Z",
    "2026-03-05T24:00:00Z",
    "2026-03-05T11:00:00+24:00",
    "2026-02-29T11:00:00Z",
    "2028-02-29T11:00:00Z",
    "2026-03-01",
    "2026-02-30",
    "2026-13-01",
    "20260301",
    "2026-3-1",
    "2026-03-01\n",
]
_VOCABULARY = sorted(
    {
        *cmd.CATEGORIES,
        *cmd.ROUTES,
        *cmd.TIE_KINDS,
        *cmd.CONSENT_SUBJECTS,
        *cmd.INVITEE_KINDS,
        "L0",
        "L1",
        "L2",
        "噪声",
        "person",
        "organisation",
        "signature",
        "seal",
        "applied",
        "confirmed",
        "court",
        "street_committee",
        "appraisal",
        "yes",
        "no",
        "partial",
        "sz",
        "default",
        "application/pdf",
        "Application/PDF",
        "pdf",
        "a" * 64,
        "0" * 64,
        "A" * 64,
    }
)
_SIZES = [0, 1, 39, 40, 41, 63, 64, 65, 199, 200, 201, 3999, 4000, 4001]
_strings = st.one_of(
    st.sampled_from(_IDS + _TEXTS + _TIMES + _VOCABULARY),
    st.text(max_size=6),
    st.builds(lambda n, ch: ch * n, st.sampled_from(_SIZES), st.sampled_from("a字 \n")),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([-1, 0, 1, 5, 6, 15, 50, 90, 91, 10_000, 10_001, 2**53]),
    st.integers(),
    st.sampled_from([0.0, 1.0, 3.0, 0.5, -2.5]),
    _strings,
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["id", "name", "kind", "zz", "person"]), inner),
        st.builds(lambda n: [f"p{i}" for i in range(n)], st.integers(0, 52)),
    ),
    max_leaves=5,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


@st.composite
def _mutated(draw: st.DrawFn, name: str) -> Any:
    """A body of ``name``: the example (all members, or only the non-default ones) with one or
    two edits: a value replaced, a member removed or added, an item duplicated."""
    (minimal,) = web.command_schema(name)["examples"]
    full = cmd.to_payload(web.command_from_json(name, minimal))
    doc = copy.deepcopy(draw(st.sampled_from([minimal, json.loads(json.dumps(full))])))
    for _ in range(draw(st.integers(1, 2))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        target = doc
        for key in path:
            target = target[key]
        how = draw(st.sampled_from(["alike", "alike", "alike", "replace", "remove", "add", "copy"]))
        if how == "alike" and isinstance(target, (str, int)):  # a value of the same JSON type
            alike = _strings if isinstance(target, str) else st.booleans()
            if type(target) is int:
                alike = st.sampled_from([-1, 0, 1, 5, 6, 15, 50, 90, 91, 10_000, 10_001])
            doc = _set(doc, path, draw(alike))
        elif how == "remove" and path:
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        elif how == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(["zz", "name", "id", "person", "note"]))] = draw(_values)
        elif how == "copy" and isinstance(target, list) and target:
            target.append(copy.deepcopy(target[0]))
        else:
            doc = _set(doc, path, draw(_values))
    return doc


def _imprecise(name: str, doc: Any) -> str | None:
    """Why the schema may accept ``doc`` though validation refuses it, if it may (the rules a
    JSON Schema cannot state, or states only as a ``format`` annotation)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, float):
            found.append("a number with a fraction part of zero is an integer to JSON Schema")
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                found.append("lone surrogates are strings to JSON Schema")
            m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T.*", value)
            if m:
                try:
                    dt.date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    found.append("the date-time pattern does not know the calendar")
                if m[1] in ("0001", "9999"):
                    found.append("the offset may take it outside the years 1-9999 in UTC")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc)
    if name in ("apply", "report", "receive_transfer") and isinstance(doc, dict):
        ids = [
            p.get("id")
            for key in ("applicants", "respondents")
            for p in (doc.get(key) if isinstance(doc.get(key), list) else [])
            if isinstance(p, dict)
        ]
        if len(ids) != len(set(map(str, ids))):
            found.append("party ids are distinct across applicants and respondents")
    return found[0] if found else None


@pytest.mark.parametrize("name", NAMES)
@FEWER
@given(data=st.data())
def test_the_schema_and_validation_agree(name: str, data: st.DataObject) -> None:
    """Accepted bodies validate; bodies the schema refuses are refused; bodies the schema accepts
    are accepted, except for the few rules a JSON Schema cannot state."""
    doc = data.draw(_mutated(name))
    valid = _validator(name).is_valid(doc)
    try:
        command = web.command_from_json(name, copy.deepcopy(doc))
    except InvalidCommand as exc:
        accepted = False
        why = str(exc)
    else:
        accepted = True
        assert isinstance(command, COMMAND_TYPES[name])
    if accepted:
        errors = [e.message for e in _validator(name).iter_errors(doc)]
        assert valid, f"accepted but the schema refuses it: {errors}"
    if not valid:
        assert not accepted
    if valid and not accepted:
        reason = _imprecise(name, doc)
        assert reason is not None, f"the schema accepts a body validation refuses: {why}"


# -- JSON renderings -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def followed_up() -> Env:
    e = full_cast()
    e.run("med2", cmd.RecordMinutes("双方陈述"))
    e.run("med1", cmd.ShareProposal("晚十点后停止"))
    e.run("med1", cmd.DraftAgreement(content()))
    e.sign_all()
    e.run("med1", cmd.RecordFollowUp("已履行", "yes", 5))
    return e


def test_event_json_is_the_recorded_event(followed_up: Env) -> None:
    history = followed_up.service.history(followed_up.case_id)
    assert len(history) > 15
    for event in history:
        out = web.event_json(event)
        dumps(out)
        body = json.loads(event.stored.body)
        assert out["case"] == body["case"] == followed_up.case_id
        for key in ("seq", "type", "at", "actor", "state", "payload", "prev", "workflow"):
            assert out[key] == body[key], key
        assert out["acted_as"] == body["as"] and out["schema"] == body["schema"]
        assert out["hash"] == event.hash == event.stored.hash
        assert LOG_TIME.match(out["at"])
        if hasattr(event, "request_id"):
            assert out["request_id"] == body.get("request")


def test_event_json_carries_the_optional_envelope_attributes() -> None:
    @attrs.frozen
    class LaterEvent:
        case_id: str = "c"
        seq: int = 1
        type: str = "sign"
        at: dt.datetime = EPOCH
        actor: str = "p1"
        acted_as: str = "applicant"
        state: str = "agreement_drafted"
        payload: dict[str, Any] = attrs.field(factory=lambda: {"method": "seal"})
        prev: str = "0" * 64
        hash: str = "1" * 64
        workflow: str = "mediation-workflow/1"
        schema: int = 1
        request_id: str | None = "req-1"
        clock: dt.datetime | None = EPOCH - dt.timedelta(seconds=3)

    out = web.event_json(LaterEvent())  # type: ignore[arg-type]
    assert out["request_id"] == "req-1"
    assert out["clock"] == "2026-01-05T07:59:57.000000Z"
    dumps(out)


@pytest.mark.parametrize(
    "who", ["p1", "p2", "agent2", "med1", "med2", "director", "inv1", "auditor", "supervisor"]
)
def test_views_and_timelines_are_json(followed_up: Env, who: str) -> None:
    view = followed_up.service.view(followed_up[who], followed_up.case_id)
    out = web.view_json(view)
    dumps(out)
    assert set(out) == {f.name for f in attrs.fields(type(view))}
    assert out["state"] == view.state == "following_up"
    assert out["standing"] == view.standing
    assert out["mediators"] == list(view.mediators)
    assert out["timeline"] == web.timeline_json(view) == web.timeline_json(view.timeline)
    assert [row["seq"] for row in out["timeline"]] == [e.seq for e in view.timeline]
    for row, entry in zip(out["timeline"], view.timeline, strict=True):
        assert set(row) == {f.name for f in attrs.fields(type(entry))}
        assert row["hash"] == entry.hash and row["label_zh"] == entry.label_zh
        assert row["payload"] == (
            None if entry.payload is None else json.loads(json.dumps(entry.payload))
        )
    if who == "supervisor":
        assert out["parties"] == [] and all(r["payload"] is None for r in out["timeline"])


@pytest.mark.parametrize("who", ["p1", "med1", "director", "stranger", "auditor"])
def test_permissions_are_json(followed_up: Env, who: str) -> None:
    permissions = followed_up.service.allowed(followed_up[who], followed_up.case_id)
    out = web.permissions_json(permissions)
    dumps(out)
    assert [p["command"] for p in out] == [p.command for p in permissions]
    for row, p in zip(out, permissions, strict=True):
        assert row["allowed"] is p.allowed and row["acted_as"] == p.acted_as
        assert [(r["en"], r["zh"]) for r in row["reasons"]] == [(r.en, r.zh) for r in p.reasons]
        assert row["pending_guards"] == list(p.pending_guards)
    if who == "stranger":
        assert not any(row["allowed"] for row in out)
        assert all(row["reasons"] for row in out)


def test_verdicts_are_json(followed_up: Env) -> None:
    records = followed_up.store.read(followed_up.case_id)
    ok = web.verdict_json(verify(records))
    dumps(ok)
    assert ok["ok"] is True and ok["head_seq"] == len(records) and "fault" not in ok
    rec = records[2]
    bad_records = [
        *records[:2],
        StoredEvent(rec.case_id, rec.seq, rec.hash, rec.body.replace(b'"seq":3', b'"seq": 3')),
    ]
    bad = verify(bad_records)
    out = web.verdict_json(bad)
    dumps(out)
    assert out["ok"] is False and out["fault"]["seq"] == 3
    assert bad.fault is not None and out["fault"]["message_zh"] == bad.fault.message_zh
    assert isinstance(bad, Verdict)


def test_sets_tuples_enums_and_times_become_json() -> None:
    out = _web._jsonable(
        {
            "s": frozenset({"b", "a", "c"}),
            "t": ("x", ("y",)),
            "role": mediation.Role.DIRECTOR,
            "at": dt.datetime(2026, 3, 5, 19, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            "day": dt.date(2026, 3, 5),
            "actor": Actor.with_roles("a", {"c1": ["mediator"]}),
        }
    )
    assert out["s"] == ["a", "b", "c"] and out["t"] == ["x", ["y"]]
    assert out["role"] == "director" and type(out["role"]) is str
    assert out["at"] == "2026-03-05T11:00:00.000000Z" and out["day"] == "2026-03-05"
    dumps(out)


@FEWER
@given(driven_cases(max_steps=25))
def test_renderings_of_any_reachable_case_are_json(driven: Any) -> None:
    service, case_id, world = driven.service, driven.case_id, driven.world
    for event in service.history(case_id):
        dumps(web.event_json(event))
    for who in ("director", "med1", "p1", "auditor", "supervisor"):
        try:
            view = service.view(world[who], case_id)
        except NotPermitted:
            continue
        dumps(web.view_json(view))
        dumps(web.permissions_json(service.allowed(world[who], case_id)))
    dumps(web.verdict_json(service.verify(case_id)))
