"""The one exception tree: everything is a MediationError with structured fields, and foreign
errors (sqlite3, transitions) surface as ours with the original as ``__cause__``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sqlite3
from pathlib import Path

import attrs
import pytest
from transitions import MachineError

import mediation
from helpers import EPOCH, Env, apply_cmd
from mediation import (
    CaseExists,
    CaseNotFound,
    ClockSkew,
    ConcurrencyConflict,
    GuardFailed,
    IllegalTransition,
    IntegrityViolation,
    InvalidCommand,
    KeyDestroyed,
    MediationError,
    NotPermitted,
    OutcomeUnknown,
    RequestConflict,
    SealBroken,
    SQLiteStore,
    StoredEvent,
    StoreError,
)
from mediation import commands as cmd
from mediation.testing import synthetic_records, synthetic_summary

PUBLIC_ERRORS = (
    CaseExists,
    CaseNotFound,
    ClockSkew,
    ConcurrencyConflict,
    GuardFailed,
    IllegalTransition,
    IntegrityViolation,
    InvalidCommand,
    KeyDestroyed,
    NotPermitted,
    OutcomeUnknown,
    RequestConflict,
    SealBroken,
    StoreError,
)


def all_modules() -> list[str]:
    names = ["mediation"]
    for info in pkgutil.walk_packages(mediation.__path__, "mediation."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_exception_in_the_tree_derives_from_mediation_error() -> None:
    found: set[type[BaseException]] = set()
    for name in all_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == name:
                found.add(obj)
    public = {e for e in found if not e.__name__.startswith("_")}
    assert set(PUBLIC_ERRORS) <= public
    for exc in public:
        assert issubclass(exc, MediationError), f"{exc.__module__}.{exc.__qualname__}"
    # the core tree (mediation._errors) is exported as a whole
    core = {e for e in public if e.__module__ == "mediation._errors"}
    assert core == {MediationError, *PUBLIC_ERRORS}
    for exc in core:
        assert getattr(mediation, exc.__name__) is exc


def test_python_categories_are_kept() -> None:
    assert issubclass(InvalidCommand, ValueError)
    assert issubclass(CaseNotFound, LookupError)
    assert issubclass(ConcurrencyConflict, StoreError)


def test_fields_carry_the_structured_fields() -> None:
    base = dict(case="k", state="registered", command="register", actor="d", seq=3)
    expected = {"case": "k", "state": "registered", "command": "register", "actor": "d", "seq": 3}
    for cls in (
        MediationError,
        CaseExists,
        CaseNotFound,
        IllegalTransition,
        NotPermitted,
        StoreError,
    ):
        err = cls("boom", message_zh="出错", **base)  # type: ignore[arg-type]
        assert err.fields() == {"error": cls.__name__, "message": "boom", **expected}
        assert (str(err), err.message, err.message_zh) == ("boom", "boom", "出错")
    g = GuardFailed("g", guard="G1", basis="PML17", **base)  # type: ignore[arg-type]
    assert g.fields() == {
        "error": "GuardFailed",
        "message": "g",
        **expected,
        "guard": "G1",
        "basis": "PML17",
    }
    i = InvalidCommand("bad", field="text", **base)
    assert i.fields() == {"error": "InvalidCommand", "message": "bad", **expected, "field": "text"}
    c = ConcurrencyConflict("late", expected_seq=2, **base)
    assert c.fields() == {
        "error": "ConcurrencyConflict",
        "message": "late",
        **expected,
        "expected_seq": 2,
    }
    v = IntegrityViolation("bad log", verdict="v", **base)
    assert v.verdict == "v" and v.fields()["seq"] == 3


def test_fields_leave_out_what_is_unknown() -> None:
    assert MediationError("x").fields() == {"error": "MediationError", "message": "x"}
    assert MediationError("x").message_zh == "x"
    assert InvalidCommand("x").fields() == {"error": "InvalidCommand", "message": "x"}


def test_errors_from_the_service_carry_fields() -> None:
    e = Env()
    e.open()
    with pytest.raises(InvalidCommand) as info:
        e.run("med1", cmd.RecordMinutes("x" * 5000))
    assert info.value.fields()["field"] == "text"


# -- transitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "who", "command"),
    [
        ("registered", "director", cmd.Register()),
        ("registered", "p2", cmd.Refuse()),  # refusing is over once registered
        ("resolved", "p1", cmd.Withdraw()),
        ("negotiating", "med1", cmd.ScheduleMeeting(EPOCH, "调解室")),
    ],
)
def test_machine_error_surfaces_as_illegal_transition(
    state: str, who: str, command: cmd.Command
) -> None:
    e = Env()
    e.drive(state)
    before = e.snapshot()
    with pytest.raises(IllegalTransition) as info:
        e.run(who, command)
    err = info.value
    assert isinstance(err.__cause__, MachineError)
    assert (err.case, err.state, err.command, err.actor) == ("case-1", state, command.name, who)
    assert f"not allowed from state {state}" in str(err) and "当前状态下不能" in err.message_zh
    assert e.snapshot() == before


def test_illegal_on_a_new_case() -> None:
    e = Env()
    with pytest.raises(CaseNotFound):
        e.run("p2", cmd.RecordConsent())


# -- sqlite3 -----------------------------------------------------------------------------------


def populated(path: Path) -> None:
    e = Env(store=SQLiteStore(path))
    e.drive("applied")
    e.store.close()


def test_a_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database " * 512)
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert "corrupt.db" in str(info.value)


def test_a_corrupted_page_is_a_store_error_on_read(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    populated(path)
    store = SQLiteStore(path)
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    for i in range(page, len(raw)):  # leave the header page, scramble the rest
        raw[i] = (raw[i] * 7 + 13) % 256
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert "malformed" in str(info.value)


def read_only(path: Path) -> SQLiteStore:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    return SQLiteStore(connection=conn, create=False)


def test_a_read_only_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    populated(path)
    store = read_only(path)
    rec = synthetic_records("k", 1)
    with pytest.raises(StoreError) as info:
        store.append(synthetic_summary("k", 1, head=rec[0].hash), rec, 0)
    err = info.value
    assert type(err) is StoreError and err.case == "k"
    assert isinstance(err.__cause__, sqlite3.OperationalError)
    assert "readonly" in str(err)
    assert [r.seq for r in store.read("case-1")] == [1]


def test_the_service_on_a_read_only_store_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    populated(path)
    e = Env(store=read_only(path))
    assert e.case.state == "applied"
    with pytest.raises(StoreError) as info:
        e.run("p2", cmd.RecordConsent())
    assert isinstance(info.value.__cause__, sqlite3.Error)
    # the cached case is put back to what the store holds
    assert e.case.seq == 1 and e.case.consents == {}
    with pytest.raises(StoreError):
        e.service.open(e["p1"], apply_cmd(), case_id="case-2")
    with pytest.raises(CaseNotFound):
        e.service.case("case-2")


def test_a_unique_violation_is_a_concurrency_conflict() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    store = SQLiteStore(connection=conn)
    conn.execute(
        "CREATE TRIGGER race BEFORE INSERT ON mediation_events BEGIN "
        "INSERT OR IGNORE INTO mediation_events VALUES (NEW.case_id, NEW.seq, NEW.hash, NEW.body, NULL);"
        " END"
    )
    rec = synthetic_records("k", 1)
    with pytest.raises(ConcurrencyConflict) as info:
        store.append(synthetic_summary("k", 1, head=rec[0].hash), rec, 0)
    err = info.value
    assert isinstance(err.__cause__, sqlite3.IntegrityError)
    assert "UNIQUE" in str(err.__cause__)
    assert err.expected_seq == 0 and err.case == "k"
    assert store.read("k") == [] and store.summary("k") is None  # rolled back


def test_the_service_turns_a_unique_violation_on_opening_into_case_exists() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    e = Env(store=SQLiteStore(connection=conn))
    conn.execute(
        "CREATE TRIGGER race BEFORE INSERT ON mediation_events BEGIN "
        "INSERT OR IGNORE INTO mediation_events VALUES (NEW.case_id, NEW.seq, NEW.hash, NEW.body, NULL);"
        " END"
    )
    with pytest.raises(CaseExists):
        e.open()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s, r: (s, [StoredEvent(r.case_id, r.seq, "abc", r.body)]),  # CHECK length(hash)
        lambda s, r: (attrs.evolve(s, committee=None), [r]),  # NOT NULL
    ],
    ids=["check", "not-null"],
)
def test_other_integrity_errors_are_store_errors_not_conflicts(mangle: object) -> None:
    store = SQLiteStore(":memory:")
    rec = synthetic_records("k", 1)[0]
    summary, records = mangle(synthetic_summary("k", 1, head=rec.hash), rec)  # type: ignore[operator]
    with pytest.raises(StoreError) as info:
        store.append(summary, records, 0)
    assert not isinstance(info.value, ConcurrencyConflict)
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert store.read("k") == []


def test_a_closed_connection_is_a_store_error() -> None:
    store = SQLiteStore(":memory:")
    store.close()
    for call in (lambda: store.read("k"), store.cases, store.case_ids, lambda: store.summary("k")):
        with pytest.raises(StoreError) as info:
            call()
        assert isinstance(info.value.__cause__, sqlite3.Error)


def test_a_stale_schema_is_a_store_error() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(StoreError) as info:
        SQLiteStore(connection=conn, create=False)
    assert "create_schema" in str(info.value)
    with pytest.raises(StoreError):
        SQLiteStore()  # neither a path nor a connection


# -- integrity ---------------------------------------------------------------------------------


def test_a_tampered_log_is_an_integrity_violation() -> None:
    e = Env()
    e.drive("registered")
    log = e.store._events["case-1"]  # type: ignore[attr-defined]
    rec = log[1]
    log[1] = StoredEvent(
        rec.case_id, rec.seq, rec.hash, rec.body.replace(b"record_consent", b"refuse_consent")
    )
    e.service.forget()
    with pytest.raises(IntegrityViolation) as info:
        e.service.case("case-1")
    err = info.value
    assert err.seq == 2 and err.case == "case-1"
    assert not err.verdict.ok  # type: ignore[attr-defined]
    assert "altered" in str(err) and "篡改" in err.message_zh
