"""The library under ``mediation verify``: :func:`mediation.audit.verify_store` (one process or
several, the verdicts of :func:`mediation.verify` case by case, in case-id order) and
:func:`mediation.stores.open` (every URL form, bad URLs, and no password in any message)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mediation.stores
import pg
from mediation import (
    FaultKind,
    Grant,
    InvalidCommand,
    MediationError,
    MemoryStore,
    SQLiteStore,
    Store,
    StoreError,
    Verdict,
    verify,
)
from mediation.audit import (
    CheckpointLog,
    StoreVerification,
    checkpointed_seqs,
    generate_key,
    issue_checkpoint,
    load_private_key,
    verify_store,
)
from mediation.demo import new_service, noise_dispute
from mediation.stores import InvalidStoreURL, NotADatabase
from mediation.stores._open import mask_password
from test_cli import build_store, rows


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_store(tmp_path / "cases.db")


@pytest.fixture
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """The attacker's connection: past the append-only triggers."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_delete")
    yield conn
    conn.close()


def one_by_one(store: Store, *, strict: bool = False) -> tuple[Verdict, ...]:
    """What ``verify`` says of every case, read one at a time."""
    return tuple(
        verify(store.read(case_id), case_id, strict=strict).without_case()
        for case_id in store.case_ids()
    )


# -- verify_store ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_one_and_two_processes_give_the_verdicts_of_verify(db: Path, strict: bool) -> None:
    with SQLiteStore(db, create=False) as store:
        expected = one_by_one(store, strict=strict)
        one = verify_store(store, jobs=1, strict=strict)
        two = verify_store(store, jobs=2, strict=strict)
    assert [v.case_id for v in expected] == ["case-a", "case-b", "case-c", "case-d"]
    assert one.verdicts == expected == two.verdicts
    assert (one.processes, two.processes) == (1, 2)
    assert one.ok and two.ok and not two.invalid and len(two) == 4
    assert list(two) == list(expected)
    assert all(v.case is None for v in two)  # small: no rebuilt cases kept


def test_a_tampered_case_is_reported_at_its_seq(db: Path, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq = 10")
    seq, _, body = rows(raw, "case-c")[4]
    raw.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = 'case-c' AND seq = ?",
        (body.replace(b"negotiat", b"Negotiat", 1) if b"negotiat" in body else body + b" ", seq),
    )
    with SQLiteStore(db, create=False) as store:
        expected = one_by_one(store)
        for jobs in (1, 2, 3):
            result = verify_store(store, jobs=jobs)
            assert result.verdicts == expected
            assert not result.ok
            faults = {v.case_id: v.fault for v in result.invalid}
            assert sorted(faults) == ["case-a", "case-c"]
            assert faults["case-a"] is not None and faults["case-a"].seq == 10
            assert faults["case-a"].kind.value == "gap"
            assert faults["case-c"] is not None and faults["case-c"].seq == 5
            assert faults["case-c"].kind.value == "altered"
            assert result.verdicts[0].events == 9  # the verified prefix


def test_every_event_is_read_whatever_the_summary_rows_say(
    db: Path, raw: sqlite3.Connection
) -> None:
    raw.execute("DELETE FROM mediation_cases WHERE case_id IN ('case-a', 'case-c')")
    raw.execute("UPDATE mediation_cases SET seq = 'many' WHERE case_id = 'case-d'")
    with SQLiteStore(db, create=False) as store:
        result = verify_store(store, jobs=2)
    assert [v.case_id for v in result] == ["case-a", "case-b", "case-c", "case-d"]
    assert result.processes == 2
    # every event is read and verified; the rows gone or edited are summary faults (integrity)
    assert all(v.events == v.head_seq > 0 for v in result)
    faults = {v.case_id: v.fault for v in result.invalid}
    assert sorted(faults) == ["case-a", "case-c", "case-d"]
    assert all(
        f is not None and f.kind is FaultKind.SUMMARY and f.kind.integrity for f in faults.values()
    )
    assert "no summary row" in str(faults["case-a"]) and "seq 'many' (replayed: 7)" in str(
        faults["case-d"]
    )
    with SQLiteStore(db, create=False) as store:
        assert verify_store(store, jobs=2, summaries=False).ok  # the events alone hold


def test_the_default_is_one_process_for_a_small_store(db: Path) -> None:
    with SQLiteStore(db, create=False) as store:
        result = verify_store(store)
    assert result.processes == 1 and len(result) == 4


def test_a_memory_store_is_verified_in_this_process() -> None:
    store = MemoryStore()
    ids = iter(["m-1", "m-2"])
    service = new_service(store, new_id=lambda: next(ids))
    noise_dispute(service)
    noise_dispute(service)
    result = verify_store(store, jobs=4)  # no URL to reopen it by: one process
    assert result.processes == 1
    assert result.verdicts == one_by_one(store)
    assert [(v.case_id, v.events, v.state) for v in result] == [
        ("m-1", 21, "resolved"),
        ("m-2", 21, "resolved"),
    ]
    assert isinstance(result, StoreVerification) and verify_store(MemoryStore()).verdicts == ()


def test_hashes_at_the_seqs_asked_for(db: Path, tmp_path: Path) -> None:
    private, _ = generate_key()
    with SQLiteStore(db, create=False) as store:
        checkpoint = issue_checkpoint(store, load_private_key(private))
        log = CheckpointLog((), str(tmp_path / "cp.jsonl"))
        log.append_to(str(tmp_path / "cp.jsonl"), checkpoint)
        seqs = checkpointed_seqs(CheckpointLog.parse(checkpoint_lines(tmp_path / "cp.jsonl")))
        assert seqs["case-a"] == (21,) and seqs["case-d"] == (7,)
        wanted = {**seqs, "case-b": (1, 2, 99), "case-z": (1,)}
        for jobs in (1, 2):
            result = verify_store(store, jobs=jobs, hashes_at=wanted)
            assert result.hashes["case-a"] == {21: store.read("case-a")[20].hash}
            assert result.hashes["case-b"] == {s: store.read("case-b")[s - 1].hash for s in (1, 2)}
            assert "case-z" not in result.hashes  # no such case
        assert verify_store(store, jobs=2).hashes == {}


def checkpoint_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    import json

    lines = path.read_text("utf-8").splitlines()
    return [(n, json.loads(line)) for n, line in enumerate(lines, start=1)]


def test_a_directory_catches_forged_role_claims_in_every_process(db: Path) -> None:
    from mediation import StaticDirectory

    empty = StaticDirectory()  # nobody holds any role: every role claim is refused
    with SQLiteStore(db, create=False) as store:
        one = verify_store(store, jobs=1, directory=empty)
        two = verify_store(store, jobs=2, directory=empty)
    assert one.verdicts == two.verdicts and two.processes == 2
    assert not two.ok and {v.fault.kind.value for v in two.invalid if v.fault} == {"unauthorized"}


class _LocalDirectory:
    """A directory that does not pickle (it holds a lock): verified in this process."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()

    def grants_of(self, actor_id: str) -> frozenset[Grant]:
        return frozenset()


def test_a_directory_that_does_not_pickle_stays_in_this_process(db: Path) -> None:
    with SQLiteStore(db, create=False) as store:
        result = verify_store(store, jobs=2, directory=_LocalDirectory())
    assert result.processes == 1 and not result.ok


def _die(*setup: Any) -> None:
    """A worker initializer that kills its process (imported by name in the worker)."""
    os._exit(70)


def test_dead_workers_fall_back_to_this_process(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mediation._verify_store as verifier

    monkeypatch.setattr(verifier, "_init_worker", _die)
    failures: list[BaseException] = []
    with SQLiteStore(db, create=False) as store:
        expected = one_by_one(store)
        result = verify_store(store, jobs=2, on_fallback=failures.append)
        assert result.verdicts == expected and result.processes == 1
        assert len(failures) == 1
        with pytest.warns(RuntimeWarning, match="verifying in one process"):
            assert verify_store(store, jobs=2).verdicts == expected


def test_a_worker_that_cannot_open_the_store_raises(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mediation._verify_store as verifier

    claim = verifier._claim
    # this process takes no range: the worker (where this patch does not apply) takes them all
    monkeypatch.setattr(
        verifier, "_claim", lambda claims, front: claim(claims, front) if front else None
    )
    gone = tmp_path / "gone.db"
    with SQLiteStore(db, create=False) as store, pytest.raises(StoreError) as info:
        verify_store(store, jobs=2, url=str(gone))
    assert str(info.value) == f"no such database file: {gone}"
    assert info.value.message_zh == f"找不到数据库文件 {gone}"


def test_bad_arguments(db: Path) -> None:
    with SQLiteStore(db, create=False) as store:
        with pytest.raises(InvalidStoreURL):
            verify_store(store, jobs=2, url="mysql://x/y")
        with pytest.raises(ValueError, match="at least 1"):
            verify_store(store, jobs=0)


# -- stores.open -------------------------------------------------------------------------------------


def test_open_every_sqlite_form(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spaced = tmp_path / "my cases.db"
    spaced.write_bytes(db.read_bytes())
    forms = [
        str(db),
        db,  # a PathLike
        "cases.db",
        "sqlite:///cases.db",
        f"sqlite:///{db}",  # sqlite:////absolute/path
        "sqlite:///my%20cases.db",
    ]
    for url in forms:
        with mediation.stores.open(url) as store:
            assert isinstance(store, SQLiteStore)
            assert store.case_ids() == ["case-a", "case-b", "case-c", "case-d"], url
        with mediation.stores.open(url, read_only=True) as store:
            assert len(store.cases()) == 4
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                store.connection.execute("CREATE TABLE t (x)")  # type: ignore[attr-defined]


def test_open_creates_only_when_asked(tmp_path: Path) -> None:
    new = tmp_path / "new.db"
    with pytest.raises(StoreError, match="no such database file") as info:
        mediation.stores.open(str(new))
    assert not isinstance(info.value, NotADatabase)
    with pytest.raises(StoreError, match="no such database file"):
        mediation.stores.open(f"sqlite:///{new}", read_only=True)
    assert not new.exists()
    with mediation.stores.open(f"sqlite:///{new}", create=True) as store:
        assert store.case_ids() == []
    assert new.exists()
    with mediation.stores.open("sqlite:///:memory:", create=True) as store:
        assert isinstance(store, SQLiteStore) and store.case_ids() == []
    with pytest.raises(ValueError, match="exclude"):
        mediation.stores.open(str(new), create=True, read_only=True)


def test_open_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for create in (False, True):
        with pytest.raises(NotADatabase, match="not a SQLite database"):
            mediation.stores.open(str(text), create=create)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="schema"):
        mediation.stores.open(str(empty))


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:hunter2@x/y",
        "http://example.org/cases.db",
        "host=localhost password=hunter2 dbname=x",
        "dbname=x",
        "sqlite:relative.db",
        "sqlite://host/cases.db",
        "sqlite://u:hunter2@host/cases.db",
        "sqlite:///",
        "sqlite:///cases.db?mode=ro",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidStoreURL) as info:
        mediation.stores.open(url)
    exc = info.value
    assert isinstance(exc, MediationError) and isinstance(exc, ValueError)
    assert not isinstance(exc, InvalidCommand)
    assert "hunter2" not in exc.message and "hunter2" not in exc.message_zh
    assert ("sqlite:///" in exc.message) and exc.message_zh


def test_masking() -> None:
    assert mask_password("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_password("postgresql://u@h/db") == "postgresql://u@h/db"
    assert mask_password("postgresql://h/db?user=u&password=pw&x=1") == (
        "postgresql://h/db?user=u&password=***&x=1"
    )
    assert mask_password("host=h password='p w' dbname=d") == "host=h password=*** dbname=d"
    assert mask_password("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://mediation:s3cretpw@127.0.0.1:1/nodb?connect_timeout=2",  # refused
        "postgresql://mediation:s3cretpw@127.0.0.1:badport/nodb",
        "postgresql://mediation:s3c%zzretpw@127.0.0.1/nodb",  # the driver quotes the token
        "postgres://mediation:s3cretpw@[::1/nodb",  # ... and the whole URL
        "postgresql://mediation@127.0.0.1:1/nodb?password=s3cretpw&connect_timeout=2",
    ],
)
def test_no_password_in_postgres_errors(url: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError) as info:
        mediation.stores.open(url, timeout=2)
    exc = info.value
    texts = [exc.message, exc.message_zh, str(exc), repr(exc.__cause__), repr(exc.__context__)]
    assert not any("s3cretpw" in t or "s3c%zzretpw" in t for t in texts), texts


@pytest.mark.postgres
def test_postgres_open_and_verify_store(db: Path) -> None:
    from mediation.stores.postgres import PostgresStore
    from test_export import pg_url

    with pg.fresh_schema("vstore") as conninfo:
        url = pg_url(conninfo)
        with pytest.raises(StoreError, match="schema"):
            mediation.stores.open(url)  # create=False: the fresh schema is empty
        with mediation.stores.open(url, create=True) as target, SQLiteStore(db) as source:
            assert isinstance(target, PostgresStore)
            for summary in source.cases():
                target.append(summary, source.read(summary.case_id), 0)
            expected = one_by_one(source)
        with mediation.stores.open(url, read_only=True) as store:
            two = verify_store(store, jobs=2, url=url)
            assert two.verdicts == expected and two.processes == 2  # workers reopen it by URL
            assert verify_store(store, jobs=1).verdicts == expected
