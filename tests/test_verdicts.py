"""Issue 9, items 3, 4, 5 and 8: verdicts that never hide tampering, one strict reader, summary
rows verified, and checkpoints that sign every valid case."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediation import Fault, FaultKind, SQLiteStore, StoredEvent, Verdict, canonical_bytes, verify
from mediation._events import event_hash, parse_body
from mediation.audit import verify_store
from mediation.cli import ExitCode
from test_cli import assert_names, build_store, checkpoint, forge, reseal, rows, run


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_store(tmp_path / "cases.db")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    assert run("keygen", "--out", str(tmp_path / "signer.key")).code == 0
    return tmp_path / "signer.key", tmp_path / "signer.key.pub"


@pytest.fixture
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """The attacker's connection: past the append-only triggers."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_delete")
    yield conn
    conn.close()


def make_illegal(conn: sqlite3.Connection, case: str, seq: int) -> None:
    """Record a wrong resulting state at ``seq`` and reseal the chain from there: every byte and
    link holds, the history is illegal."""
    _, _, body = rows(conn, case)[seq - 1]
    obj = json.loads(body)
    obj["state"] = "closed" if obj["state"] != "closed" else "negotiating"
    conn.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = ? AND seq = ?",
        (canonical_bytes(obj), case, seq),
    )
    reseal(conn, case, seq)


def read(path: Path, case: str) -> list[StoredEvent]:
    with SQLiteStore(path, create=False) as store:
        return store.read(case)


# -- item 3: integrity outranks legality ----------------------------------------------------------


def test_an_intact_illegal_history_exits_3_and_every_byte_is_checked(
    db: Path, raw: sqlite3.Connection
) -> None:
    make_illegal(raw, "case-b", 5)
    verdict = verify(read(db, "case-b"))
    assert verdict.fault is not None and verdict.fault.kind is FaultKind.ILLEGAL_TRANSITION
    assert (verdict.fault.seq, verdict.events, verdict.intact) == (5, 4, 21)
    assert [f.kind for f in verdict.faults] == [FaultKind.ILLEGAL_TRANSITION]
    result = run("verify", "--db", str(db))
    assert result.code == ExitCode.ILLEGAL == 3
    assert_names(result, "case-b", 5, "illegal_transition")


@pytest.mark.parametrize(
    ("tamper", "seq", "kind"),
    [
        ("alter", 10, "altered"),
        ("delete", 12, "gap"),
        ("rehash", 14, "broken_link"),
        ("duplicate", 16, "malformed"),
    ],
)
def test_tampering_after_an_illegal_event_outranks_it(
    db: Path, raw: sqlite3.Connection, tamper: str, seq: int, kind: str
) -> None:
    """What was seen: exit 3 "illegal history" while a broken link existed at a later seq."""
    make_illegal(raw, "case-b", 5)
    at, _, body = rows(raw, "case-b")[seq - 1]
    if tamper == "alter":
        raw.execute(
            "UPDATE mediation_events SET body = ? WHERE case_id = 'case-b' AND seq = ?",
            (body.replace(b'"actor":"', b'"actor":"x'), at),
        )
    elif tamper == "delete":
        raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-b' AND seq = ?", (at,))
    else:
        if tamper == "rehash":  # a body rewritten and rehashed alone: the next link breaks
            obj = json.loads(body)
            obj["payload"] = {**obj["payload"], "note": "x"} if obj["payload"] else {"x": 1}
            new = canonical_bytes(obj)
            seq += 1
        else:  # a member named twice, correctly hashed
            new = b'{"actor":"someone-else",' + body[1:]
        raw.execute(
            "UPDATE mediation_events SET body = ?, hash = ? WHERE case_id = 'case-b' AND seq = ?",
            (new, event_hash(new), at),
        )
    verdict = verify(read(db, "case-b"))
    assert verdict.fault is not None
    assert (verdict.fault.seq, verdict.fault.kind.value) == (seq, kind)
    assert [(f.seq, f.kind.value) for f in verdict.faults] == [
        (seq, kind),
        (5, "illegal_transition"),
    ]
    assert verdict.events == 4 and verdict.intact == seq - 1
    for extra in ([], ["--jobs", "2"], ["--strict"]):
        result = run("verify", "--db", str(db), *extra)
        assert result.code == ExitCode.INTEGRITY == 1, result.text
        assert_names(result, "case-b", seq, kind)
        assert "also at seq 5: illegal_transition" in result.out
    data = json.loads(run("verify", "--db", str(db), "--json").out)
    case_b = next(c for c in data["cases"] if c["case"] == "case-b")
    assert case_b["fault"]["kind"] == kind
    assert [f["kind"] for f in case_b["faults"]] == [kind, "illegal_transition"]


def test_a_checkpoint_mismatch_outranks_an_illegal_event(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection
) -> None:
    """What was seen: exit 3 while a checkpoint mismatch existed at a later seq."""
    private, public = keys
    checkpoint(db, private)
    make_illegal(raw, "case-b", 5)  # the chain from seq 5 on is recomputed
    assert run("verify", "--db", str(db)).code == 3  # without the key: an illegal history
    for extra in ([], ["--jobs", "2"], ["--case", "case-b"]):
        result = run("verify", "--db", str(db), "--key", str(public), *extra)
        assert result.code == ExitCode.INTEGRITY, result.text
        assert_names(result, "case-b", 21, "checkpoint")
        assert "also at seq 5: illegal_transition" in result.out
    # cut back too: the attested seq is beyond the intact events
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-b' AND seq > 19")
    result = run("verify", "--db", str(db), "--key", str(public))
    assert result.code == 1
    assert_names(result, "case-b", 20, "truncated")


def test_faults_are_ranked_and_keep_the_first_seq_of_each_kind() -> None:
    illegal = Fault(3, FaultKind.ILLEGAL_TRANSITION, "i")
    verdict = Verdict("c", 2, 2, "h", "s", illegal)
    assert verdict.faults == (illegal,) and verdict.intact == 2
    later = verdict.with_faults(
        Fault(9, FaultKind.SUMMARY, "s"),
        Fault(8, FaultKind.CHECKPOINT, "c8"),
        Fault(7, FaultKind.CHECKPOINT, "c7"),
        Fault(9, FaultKind.TRUNCATED, "t"),
    )
    assert [(f.seq, f.kind.value) for f in later.faults] == [
        (7, "checkpoint"),
        (9, "truncated"),
        (9, "summary"),
        (3, "illegal_transition"),
    ]
    assert later.fault == later.faults[0] and not later.ok
    assert later.without_case() == later
    assert verdict.with_faults() is verdict


# -- item 4: duplicate member names ----------------------------------------------------------------


def test_parse_body_refuses_duplicate_members_at_any_depth() -> None:
    with pytest.raises(ValueError, match="duplicate member name 'seq'"):
        parse_body(b'{"seq":1,"seq":2}')
    with pytest.raises(ValueError, match="duplicate member name 'a'"):
        parse_body(b'{"payload":{"x":[{"a":1,"a":1}]}}')


@pytest.mark.parametrize("strict", [False, True])
def test_a_body_with_a_member_named_twice_is_malformed(
    db: Path, raw: sqlite3.Connection, strict: bool
) -> None:
    seq, _, body = rows(raw, "case-d")[-1]
    forged = b'{"actor":"res-2101",' + body[1:]  # the reader keeping the last one sees no change
    raw.execute(
        "UPDATE mediation_events SET body = ?, hash = ? WHERE case_id = 'case-d' AND seq = ?",
        (forged, event_hash(forged), seq),
    )
    verdict = verify(read(db, "case-d"), strict=strict)
    assert verdict.fault is not None and verdict.fault.kind is FaultKind.MALFORMED
    assert verdict.fault.seq == seq and "duplicate member name 'actor'" in verdict.fault.message
    result = run("verify", "--db", str(db), *(["--strict"] if strict else []))
    assert result.code == 1
    assert_names(result, "case-d", seq, "malformed")


def test_an_export_line_with_a_member_named_twice_is_refused(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    assert run("export", "--db", str(db), "-o", str(out)).code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert run("verify", str(out)).code == 0
    # one file, two histories: a reader keeping the first "body" sees another event
    lines[3] = lines[3].replace('{"case":', '{"body":"{}","case":', 1)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("verify", str(out))
    assert result.code == ExitCode.INPUT == 5
    assert "line 4" in result.err and "duplicate member name 'body'" in result.err
    assert run("import", str(out), "--db", str(tmp_path / "copy.db")).code == 5


def test_a_checkpoint_line_with_a_member_named_twice_is_refused(
    db: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    checkpoint(db, private)
    cp_file = Path(str(db) + ".checkpoints.jsonl")
    lines = cp_file.read_text().splitlines()
    assert '"key":' in lines[0]
    lines[0] = lines[0].replace('{"', '{"key":"00","', 1)  # "key" named twice
    cp_file.write_text("\n".join(lines) + "\n")
    result = run("verify", "--db", str(db), "--key", str(public))
    assert result.code == ExitCode.INPUT
    assert "duplicate member name" in result.err
    assert run("checkpoint", "--db", str(db), "--key", str(private)).code == ExitCode.INPUT


# -- item 5: summary rows --------------------------------------------------------------------------


def test_a_summary_row_edited_is_an_integrity_fault(db: Path, raw: sqlite3.Connection) -> None:
    """What was seen: failed cases edited to resolved left verify at exit 0 (and moved the
    success rate)."""
    raw.execute("UPDATE mediation_cases SET state = 'resolved' WHERE state = 'failed'")
    for extra in ([], ["--jobs", "2"], ["--strict"]):
        result = run("verify", "--db", str(db), *extra)
        assert result.code == ExitCode.INTEGRITY, result.text
        assert_names(result, "case-c", 13, "summary")
        assert "state 'resolved' (replayed: 'failed')" in result.out
        assert "4 case(s): 3 valid, 1 invalid" in result.out
    with SQLiteStore(db, create=False) as store:
        (bad,) = verify_store(store, jobs=1).invalid
        assert bad.fault is not None and bad.fault.kind.integrity
        assert verify_store(store, jobs=1, summaries=False).ok


def test_rows_without_events_and_events_without_rows(db: Path, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-d'")
    raw.execute("DELETE FROM mediation_cases WHERE case_id = 'case-a'")
    for extra in ([], ["--jobs", "2"]):
        result = run("verify", "--db", str(db), *extra)
        assert result.code == 1, result.text
        assert_names(result, "case-a", 21, "summary")
        assert "no summary row" in result.out
        assert_names(result, "case-d", 1, "summary")
        assert "a summary row without events" in result.out
        assert "4 case(s): 2 valid, 2 invalid" in result.out


# -- item 8: checkpoint blast radius ---------------------------------------------------------------


def test_checkpoint_signs_the_valid_cases_of_an_illegal_store(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection
) -> None:
    private, public = keys
    seq = forge(
        raw, "case-b", "reopen", {"reason": "再谈"}, "med-wang", "lead_mediator", "negotiating"
    )
    result = run("checkpoint", "--db", str(db), "--key", str(private))
    assert result.code == ExitCode.ILLEGAL, result.text
    assert f"not signed: case case-b: INVALID at seq {seq}: illegal_transition" in result.err
    assert "checkpoint issued: 3 case(s)" in result.out
    verified = run("verify", "--db", str(db), "--key", str(public))
    assert verified.code == ExitCode.ILLEGAL  # the signed cases hold; case-b is illegal
    assert "covering 3 case(s)" in verified.out
