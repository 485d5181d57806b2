"""The ``mediation`` command, run in-process on generated stores: valid histories, every kind of
tampering (with the attacker dropping the append-only triggers first), illegal histories, signed
checkpoints on both sides (what passes without a key and fails with one), and bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from mediation import (
    WORKFLOW,
    Role,
    SQLiteStore,
    StoredEvent,
    canonical_bytes,
    event_hash,
    verify,
)
from mediation import commands as cmd
from mediation.cli import ExitCode, main
from mediation.demo import (
    DIRECTOR,
    MEDIATOR,
    leak_dispute,
    new_service,
    noise_dispute,
)
from mediation.stores._base import SUMMARY_COLUMNS


@attrs.frozen
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run(*args: str, stdin: Any = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdin=stdin, stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


def negotiating_case(service: Any, case_id: str) -> None:
    """A case left open in ``negotiating`` (so that forged events have somewhere legal to go)."""
    from mediation import Actor

    service.open(
        Actor("res-2101"),
        cmd.Apply(
            committee="rongyue",
            category="邻里",
            subtype="停车",
            description="车位被长期占用",
            applicants=(cmd.Party("res-2101", "赵先生"),),
            respondents=(cmd.Party("res-2201", "钱女士"),),
        ),
        case_id=case_id,
    )
    service.execute(Actor("res-2201"), case_id, cmd.RecordConsent())
    service.execute(DIRECTOR, case_id, cmd.Register())
    service.execute(DIRECTOR, case_id, cmd.AssignMediator("med-wang", lead=True))
    service.execute(MEDIATOR, case_id, cmd.NotifyRights(("res-2101", "res-2201")))
    service.execute(
        MEDIATOR,
        case_id,
        cmd.ScheduleMeeting(dt.datetime(2026, 3, 9, 2, tzinfo=dt.timezone.utc), "荣悦调解室"),
    )
    service.execute(MEDIATOR, case_id, cmd.OpenSession())


def build_store(path: Path) -> Path:
    """case-a: the noise dispute (21 events, resolved); case-b: the same again; case-c: the leak
    dispute (13 events, failed); case-d: a parking dispute left negotiating (7 events)."""
    ids = iter(["case-a", "case-b", "case-c"])
    with SQLiteStore(path) as store:
        service = new_service(store, new_id=lambda: next(ids))
        noise_dispute(service)
        noise_dispute(service)
        leak_dispute(service)
        negotiating_case(service, "case-d")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_store(tmp_path / "cases.db")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    result = run("keygen", "--out", str(tmp_path / "signer.key"))
    assert result.code == 0, result.text
    return tmp_path / "signer.key", tmp_path / "signer.key.pub"


# -- the attacker's tools: raw SQL past the append-only triggers --------------------------------


@pytest.fixture
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_delete")
    yield conn
    conn.close()


def rows(conn: sqlite3.Connection, case: str) -> list[tuple[int, str, bytes]]:
    return [
        (seq, h, bytes(body))
        for seq, h, body in conn.execute(
            "SELECT seq, hash, body FROM mediation_events WHERE case_id = ? ORDER BY seq", (case,)
        )
    ]


def set_seq(conn: sqlite3.Connection, case: str, old: int, new: int) -> None:
    conn.execute(
        "UPDATE mediation_events SET seq = ? WHERE case_id = ? AND seq = ?", (new, case, old)
    )


def reseal(conn: sqlite3.Connection, case: str, from_seq: int) -> None:
    """Recompute every hash and prev link from ``from_seq`` on, as a careful attacker would, and
    fix the summary row: the chain then verifies on its own."""
    prev = None
    for seq, h, body in rows(conn, case):
        if seq < from_seq:
            prev = h
            continue
        obj = json.loads(body)
        obj["prev"] = prev
        new_body = canonical_bytes(obj)
        new_hash = event_hash(new_body)
        conn.execute(
            "UPDATE mediation_events SET hash = ?, body = ? WHERE case_id = ? AND seq = ?",
            (new_hash, new_body, case, seq),
        )
        prev = new_hash
    fix_summary(conn, case)


def fix_summary(conn: sqlite3.Connection, case: str) -> None:
    """Rewrite the summary row to match the events, as a careful attacker would (every column
    when the events replay, else seq and head): verify compares the row with the replayed case."""
    records = [StoredEvent(case, seq, h, body) for seq, h, body in rows(conn, case)]
    verdict = verify(records, case)
    if verdict.case is None or not verdict.ok:
        last = records[-1]
        conn.execute(
            "UPDATE mediation_cases SET seq = ?, head = ? WHERE case_id = ?",
            (last.seq, last.hash, case),
        )
        return
    summary = verdict.case.summary()
    columns = [c for c in SUMMARY_COLUMNS if c != "case_id"]
    conn.execute(
        f"UPDATE mediation_cases SET {', '.join(c + ' = ?' for c in columns)} WHERE case_id = ?",
        (*(getattr(summary, c) for c in columns), case),
    )


def forge(
    conn: sqlite3.Connection,
    case: str,
    type_: str,
    payload: dict[str, Any],
    actor: str,
    acted_as: str,
    state: str,
) -> int:
    """Append a correctly encoded and hashed event, chained to the head; returns its seq."""
    seq, head, _ = rows(conn, case)[-1]
    body = canonical_bytes(
        {
            "actor": actor,
            "as": acted_as,
            "at": "2026-03-10T00:00:00.000000Z",
            "case": case,
            "payload": payload,
            "prev": head,
            "schema": 1,
            "seq": seq + 1,
            "state": state,
            "type": type_,
            "workflow": WORKFLOW.version,
        }
    )
    conn.execute(
        "INSERT INTO mediation_events (case_id, seq, hash, body) VALUES (?, ?, ?, ?)",
        (case, seq + 1, event_hash(body), body),
    )
    fix_summary(conn, case)
    return seq + 1


def assert_names(result: Run, case: str, seq: int, kind: str) -> None:
    assert f"case {case}: INVALID at seq {seq}: {kind}" in result.out, result.text


# -- valid histories ----------------------------------------------------------------------------


def test_valid_store_exits_0_one_verdict_per_case(db: Path) -> None:
    result = run("verify", "--db", str(db))
    assert result.code == ExitCode.OK == 0, result.text
    for case, n, state in (
        ("case-a", 21, "resolved"),
        ("case-b", 21, "resolved"),
        ("case-c", 13, "failed"),
        ("case-d", 7, "negotiating"),
    ):
        assert f"case {case}: valid, {n} events, state {state}" in result.out
    assert "4 case(s): 4 valid, 0 invalid (exit 0)" in result.out


def test_db_accepts_sqlite_urls_and_a_sqlite_file_given_as_file(db: Path) -> None:
    assert run("verify", "--db", f"sqlite:///{db}").code == 0  # absolute: sqlite:////tmp/...
    assert run("verify", str(db), "--case", "case-c").code == 0
    only = run("verify", "--db", str(db), "--case", "case-b")
    assert only.code == 0 and "case-a" not in only.out and "case case-b: valid" in only.out


def test_json_output(db: Path) -> None:
    result = run("verify", "--db", str(db), "--json")
    doc = json.loads(result.out)
    assert doc["ok"] is True and doc["exit"] == 0
    assert [c["case"] for c in doc["cases"]] == ["case-a", "case-b", "case-c", "case-d"]
    assert all(len(c["head_hash"]) == 64 for c in doc["cases"])


def test_chinese_output(db: Path) -> None:
    result = run("verify", "--db", str(db), "--lang", "zh")
    assert "案件 case-a：验证通过，共 21 个事件，当前状态 已履行结案" in result.out
    assert "共 4 个案件：4 个通过，0 个未通过" in result.out


def test_verify_does_not_write_to_the_database(db: Path) -> None:
    before = db.read_bytes()
    db.chmod(0o444)
    try:
        assert run("verify", "--db", str(db)).code == 0
    finally:
        db.chmod(0o644)
    assert db.read_bytes() == before


# -- tampering caught by the chain alone ---------------------------------------------------------


def test_altered_byte(db: Path, raw: sqlite3.Connection) -> None:
    seq, _, body = rows(raw, "case-b")[4]
    altered = body.replace(b"res-1502", b"res-1503", 1)
    assert altered != body
    raw.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = 'case-b' AND seq = ?", (altered, seq)
    )
    result = run("verify", "--db", str(db))
    assert result.code == ExitCode.INTEGRITY == 1
    assert_names(result, "case-b", 5, "altered")
    assert "case case-a: valid" in result.out and "case case-c: valid" in result.out


def test_deleted_event(db: Path, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-c' AND seq = 7")
    result = run("verify", "--db", str(db))
    assert result.code == 1
    assert_names(result, "case-c", 7, "gap")


def test_inserted_event(db: Path, raw: sqlite3.Connection) -> None:
    # make room at seq 4 (two steps: seqs must stay unique and >= 1), then slip in a copy of
    # event 4 with another time, correctly hashed and chained to event 3
    n = len(rows(raw, "case-a"))
    for seq in range(n, 3, -1):
        set_seq(raw, "case-a", seq, seq + 1)
    original = json.loads(rows(raw, "case-a")[3][2])  # the old event 4, now at seq 5
    original["at"] = "2026-03-02T12:30:00.000000Z"
    body = canonical_bytes(original)
    raw.execute(
        "INSERT INTO mediation_events (case_id, seq, hash, body) VALUES ('case-a', 4, ?, ?)",
        (event_hash(body), body),
    )
    result = run("verify", "--db", str(db))
    assert result.code == 1
    assert_names(result, "case-a", 5, "malformed")  # the old event 4 now sits at seq 5


def test_reordered_events(db: Path, raw: sqlite3.Connection) -> None:
    set_seq(raw, "case-b", 8, 100)
    set_seq(raw, "case-b", 9, 8)
    set_seq(raw, "case-b", 100, 9)
    result = run("verify", "--db", str(db))
    assert result.code == 1
    assert_names(result, "case-b", 8, "malformed")


def test_broken_link_when_a_body_is_rewritten_and_rehashed_alone(
    db: Path, raw: sqlite3.Connection
) -> None:
    seq, _, body = rows(raw, "case-a")[10]
    obj = json.loads(body)
    obj["payload"]["text"] = "改写的笔录"
    new = canonical_bytes(obj)
    raw.execute(
        "UPDATE mediation_events SET hash = ?, body = ? WHERE case_id = 'case-a' AND seq = ?",
        (event_hash(new), new, seq),
    )
    result = run("verify", "--db", str(db))
    assert result.code == 1
    assert_names(result, "case-a", 12, "broken_link")


# -- illegal but intact histories: exit 3 --------------------------------------------------------


def test_illegal_transition(db: Path, raw: sqlite3.Connection) -> None:
    seq = forge(
        raw, "case-b", "reopen", {"reason": "再谈"}, "med-wang", "lead_mediator", "negotiating"
    )
    result = run("verify", "--db", str(db))
    assert result.code == ExitCode.ILLEGAL == 3
    assert_names(result, "case-b", seq, "illegal_transition")


def test_unauthorized_event(db: Path, raw: sqlite3.Connection) -> None:
    seq = forge(
        raw,
        "case-d",
        "record_minutes",
        {"text": "当事人自己写的笔录", "document": None},
        "res-2101",
        "applicant",
        "negotiating",
    )
    result = run("verify", "--db", str(db))
    assert result.code == 3
    assert_names(result, "case-d", seq, "unauthorized")


def test_unknown_event_type(db: Path, raw: sqlite3.Connection) -> None:
    seq = forge(raw, "case-d", "bribe", {"amount": 500}, "med-wang", "lead_mediator", "negotiating")
    result = run("verify", "--db", str(db))
    assert result.code == 3
    assert_names(result, "case-d", seq, "unknown_event_type")


def test_integrity_outranks_illegal(db: Path, raw: sqlite3.Connection) -> None:
    forge(raw, "case-d", "bribe", {}, "med-wang", "lead_mediator", "negotiating")
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq = 2")
    assert run("verify", "--db", str(db)).code == 1


# -- what only a signed checkpoint catches: both sides ------------------------------------------


def checkpoint(db: Path, key: Path) -> None:
    result = run("checkpoint", "--db", str(db), "--key", str(key))
    assert result.code == 0, result.text


def test_truncated_tail(db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection) -> None:
    private, public = keys
    checkpoint(db, private)
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq > 18")
    fix_summary(raw, "case-a")

    without = run("verify", "--db", str(db))
    assert without.code == 0, without.text  # a shorter chain is still a valid chain

    with_key = run("verify", "--db", str(db), "--key", str(public))
    assert with_key.code == 1
    assert_names(with_key, "case-a", 19, "truncated")
    assert "attests 21" in with_key.out


def test_whole_chain_recomputed(db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection) -> None:
    private, public = keys
    checkpoint(db, private)
    seq, _, body = rows(raw, "case-b")[18]  # the follow-up record: performance "yes"
    obj = json.loads(body)
    obj["payload"]["note"] = "减震垫未安装"
    raw.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = 'case-b' AND seq = ?",
        (canonical_bytes(obj), seq),
    )
    reseal(raw, "case-b", seq)

    without = run("verify", "--db", str(db))
    assert without.code == 0, without.text

    with_key = run("verify", "--db", str(db), "--key", str(public))
    assert with_key.code == 1
    assert_names(with_key, "case-b", 21, "checkpoint")  # the checkpoint attests seq 21
    assert "chain was rewritten" in with_key.out


def test_whole_case_deleted(db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection) -> None:
    private, public = keys
    checkpoint(db, private)
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-c'")
    raw.execute("DELETE FROM mediation_cases WHERE case_id = 'case-c'")

    without = run("verify", "--db", str(db))
    assert without.code == 0 and "case-c" not in without.out

    with_key = run("verify", "--db", str(db), "--key", str(public))
    assert with_key.code == 1
    assert_names(with_key, "case-c", 1, "truncated")
    assert "whole case is missing" in with_key.out
    only = run("verify", "--db", str(db), "--key", str(public), "--case", "case-c")
    assert only.code == 1 and "whole case is missing" in only.out


def test_hiding_a_deleted_case_in_the_checkpoint_file_breaks_the_merkle_root(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection
) -> None:
    private, public = keys
    checkpoint(db, private)
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-c'")
    cp_file = Path(str(db) + ".checkpoints.jsonl")
    lines = []
    for line in cp_file.read_text().splitlines():
        obj = json.loads(line)
        if obj["kind"] == "case" and obj["case"] == "case-c":
            continue  # a case checkpoint carries its own signature: drop it
        if obj["kind"] == "store":
            # the size and root are signed: only the (unsigned) list of leaves can be edited
            obj["leaves"] = [leaf for leaf in obj["leaves"] if leaf[0] != "case-c"]
        lines.append(json.dumps(obj))
    cp_file.write_text("\n".join(lines) + "\n")
    result = run("verify", "--db", str(db), "--key", str(public))
    assert result.code == 1
    assert "do not hash to the signed Merkle root" in result.out


def test_checkpoint_chain_and_signature_tampering(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection
) -> None:
    private, public = keys
    checkpoint(db, private)
    forge(raw, "case-d", "record_minutes", {"text": "第二次", "document": None}, "med-wang",
          "lead_mediator", "negotiating")  # fmt: skip
    fix_summary(raw, "case-d")
    checkpoint(db, private)  # a legal append, signed: case-d gets a second checkpoint
    cp_file = Path(str(db) + ".checkpoints.jsonl")
    lines = cp_file.read_text().splitlines()
    assert run("verify", "--db", str(db), "--key", str(public)).code == 0

    # drop the first checkpoint of case-d: its second one no longer chains
    first_d = next(i for i, line in enumerate(lines) if '"case":"case-d"' in line)
    cp_file.write_text("\n".join(lines[:first_d] + lines[first_d + 1 :]) + "\n")
    result = run("verify", "--db", str(db), "--key", str(public))
    assert result.code == 1 and "checkpoint chain broken" in result.out

    # alter a signed field: the signature no longer verifies
    obj = json.loads(lines[first_d])
    obj["seq"] = 3
    cp_file.write_text("\n".join([*lines[:first_d], json.dumps(obj), *lines[first_d + 1 :]]) + "\n")
    result = run("verify", "--db", str(db), "--key", str(public))
    assert result.code == 1 and "signature does not verify" in result.out


def test_checkpoint_refuses_to_sign_a_shortened_store(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection
) -> None:
    private, _ = keys
    checkpoint(db, private)
    cp_file = Path(str(db) + ".checkpoints.jsonl")
    before = cp_file.read_bytes()
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq = 21")
    fix_summary(raw, "case-a")
    result = run("checkpoint", "--db", str(db), "--key", str(private))
    assert result.code == 1
    assert "not signed: case case-a: INVALID at seq 21: truncated" in result.err
    assert "no longer extends its checkpoint at seq 21" in result.err
    assert (
        "checkpoint issued: 3 case(s)" in result.out
        and "1 invalid case(s) not signed" in result.out
    )
    added = cp_file.read_bytes()[len(before) :].decode()
    assert '"case":"case-a"' not in added  # the others are signed; case-a is not
    assert added.count('"case":"case-') == 0 and added.count("\n") == 1  # one store checkpoint


def test_checkpoint_refuses_to_sign_a_tampered_store(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection
) -> None:
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-b' AND seq = 5")
    result = run("checkpoint", "--db", str(db), "--key", str(keys[0]))
    assert result.code == 1
    assert "not signed: case case-b: INVALID at seq 5: gap" in result.err
    written = Path(str(db) + ".checkpoints.jsonl").read_text()
    signed = [json.loads(line) for line in written.splitlines()]
    assert sorted(r["case"] for r in signed if "case" in r) == ["case-a", "case-c", "case-d"]
    store_cp = next(r for r in signed if "root" in r)
    assert [leaf[0] if isinstance(leaf, list) else leaf["case"] for leaf in store_cp["leaves"]] == [
        "case-a",
        "case-c",
        "case-d",
    ]


def test_receipt_for_a_party(db: Path, keys: tuple[Path, Path]) -> None:
    from mediation._checkpoints import Leaf, verify_inclusion

    result = run("checkpoint", "--db", str(db), "--key", str(keys[0]), "--receipt", "case-c")
    receipt = json.loads(result.out)  # the receipt alone: a file to hand the parties
    assert "checkpoint issued" in result.err
    leaf = Leaf(receipt["case"], receipt["seq"], receipt["head"]).data()
    proof = [bytes.fromhex(h) for h in receipt["inclusion_proof"]]
    store = receipt["store"]
    assert verify_inclusion(
        leaf, receipt["leaf_index"], store["size"], proof, bytes.fromhex(store["root"])
    )
    assert receipt["case_checkpoint"]["case"] == "case-c"


# -- keys ----------------------------------------------------------------------------------------


def test_wrong_public_key(db: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint(db, keys[0])
    other = run("keygen", "--out", str(tmp_path / "other.key"))
    assert other.code == 0
    result = run("verify", "--db", str(db), "--key", str(tmp_path / "other.key.pub"))
    assert result.code == 1
    assert "no checkpoint signed by key" in result.out and "wrong key" in result.out


def test_key_is_required_to_mean_something(db: Path, keys: tuple[Path, Path]) -> None:
    """--key with no checkpoints at all fails: an auditor who asked for checkpoints gets none."""
    result = run("verify", "--db", str(db), "--key", str(keys[1]))
    assert result.code == 1 and "no checkpoint signed by key" in result.out


def test_bad_key_files(db: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("not a key\n")
    result = run("verify", "--db", str(db), "--key", str(garbage))
    assert result.code == ExitCode.INPUT and "not an Ed25519 public key" in result.err
    result = run("verify", "--db", str(db), "--key", str(keys[0]))  # the private key by mistake
    assert result.code == ExitCode.INPUT and "private key" in result.err
    result = run("verify", "--db", str(db), "--key", str(tmp_path / "missing.pub"))
    assert result.code == ExitCode.IO and "missing.pub" in result.err
    assert run("keygen", "--out", str(keys[0])).code == ExitCode.IO  # refuses to overwrite


def test_public_key_as_raw_hex(db: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization as ser

    from mediation._checkpoints import load_public_key

    checkpoint(db, keys[0])
    raw_key = load_public_key(keys[1].read_bytes()).public_bytes(
        ser.Encoding.Raw, ser.PublicFormat.Raw
    )
    hex_key = tmp_path / "hex.pub"
    hex_key.write_text(raw_key.hex() + "\n")
    assert run("verify", "--db", str(db), "--key", str(hex_key)).code == 0


# -- usage and I/O errors ------------------------------------------------------------------------


def test_usage_errors_exit_2() -> None:
    assert run().code == ExitCode.USAGE == 2
    assert run("frobnicate").code == 2
    result = run("verify")
    assert result.code == 2 and "--db" in result.err
    assert run("verify", "--db", "x.db", "y.jsonl").code == 2
    assert run("diagram", "--format", "png").code == 2
    assert run("verify", "--db", "sqlite:relative.db").code == 2


def test_help_and_version_exit_0() -> None:
    result = run("--help")
    assert result.code == 0 and "exit codes" in result.out
    assert run("--version").code == 0


def test_io_errors_exit_4(tmp_path: Path) -> None:
    result = run("verify", "--db", str(tmp_path / "nope.db"))
    assert result.code == ExitCode.IO == 4 and "nope.db" in result.err
    assert not (tmp_path / "nope.db").exists()  # verify never creates a database
    assert run("verify", str(tmp_path / "nope.jsonl")).code == 4
    assert run("timeline", "x", "--db", str(tmp_path / "nope.db")).code == 4


def test_not_a_database(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = run("verify", "--db", str(text))
    assert result.code == ExitCode.INPUT and "not a SQLite database" in result.err
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    result = run("verify", "--db", str(empty))
    assert result.code == ExitCode.IO and "schema" in result.err


def test_unknown_case(db: Path) -> None:
    result = run("verify", "--db", str(db), "--case", "case-z")
    assert result.code == ExitCode.INPUT and "case-z" in result.err
    assert run("timeline", "case-z", "--db", str(db)).code == ExitCode.INPUT


# -- timeline, diagram, demo ---------------------------------------------------------------------


def test_timeline_as_auditor_is_redacted(db: Path) -> None:
    result = run("timeline", "case-a", "--db", str(db))
    assert result.code == 0
    out = result.out
    stages = [
        out.index(f"[{s}]")
        for s in ("apply", "register", "meeting", "negotiate", "agree", "follow_up")
    ]
    assert stages == sorted(stages)
    assert "陈*" in out and "陈女士" not in out and "13800001502" not in out
    assert "双方陈述" not in out and "confidential to the case's mediators" in out
    assert "→ resolved" in out and "dir-li" in out and "(director)" in out
    assert "case case-a: valid, 21 events, state resolved" in out


def test_timeline_as_supervisor_hides_actors_and_payloads(db: Path) -> None:
    result = run("timeline", "case-c", "--db", str(db), "--as", "supervisor", "--lang", "zh")
    assert result.code == 0
    assert "med-wang" not in result.out and "（已隐去）" in result.out
    assert "诉讼" not in result.out and "litigation" not in result.out
    assert "【协商】" in result.out and "→ failed" in result.out


def test_timeline_of_a_tampered_case_stops_at_the_fault(db: Path, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq = 10")
    result = run("timeline", "case-a", "--db", str(db))
    assert result.code == 1
    assert re.search(r"^\s+9\s", result.out, re.M) and not re.search(r"^\s+11\s", result.out, re.M)
    assert_names(result, "case-a", 10, "gap")


def test_diagram_mermaid_and_dot() -> None:
    mer = run("diagram")
    assert mer.code == 0 and mer.out.startswith("stateDiagram-v2\n")
    dot = run("diagram", "--format", "dot").out
    assert dot.startswith("digraph mediation {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for state in WORKFLOW.states:
        assert f'"{state.name}" [label=' in dot
        assert f"{state.name}: {state.name}" in mer.out
    edges = {(s, c.target) for c in WORKFLOW.commands if c.target for s in c.sources}
    for src, dst in edges:
        assert f'"{"[*]" if src == "new" else src}" -> "{dst}"' in dot
    assert "subgraph cluster_follow_up" in dot and "peripheries=2" in dot


def test_demo_creates_then_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = run("demo")
    assert first.code == 0, first.text
    assert (tmp_path / "mediation-demo.db").exists()
    assert re.search(r"case \w+: valid, 21 events, state resolved", first.out)
    assert "[follow_up]" in first.out
    second = run("demo", "--scenario", "leak", "--lang", "zh")
    assert second.code == 0 and "当前状态 调解终止" in second.out
    verified = run("verify", "--db", "mediation-demo.db")
    assert "2 case(s): 2 valid" in verified.out


def test_python_dash_m(db: Path) -> None:
    """``python -m mediation.cli``, with worker processes: they re-import its main module."""
    import os
    import subprocess
    import sys

    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "mediation.cli", "verify", "--db", str(db), "--jobs", "2"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "4 case(s): 4 valid, 0 invalid (exit 0)" in done.stdout and not done.stderr


def test_conninfo_is_not_a_path() -> None:
    result = run("import", "x.jsonl", "--db", "host=localhost dbname=x")
    assert result.code == 2 and "postgresql://" in result.err
    assert run("verify", "--db", "mysql://x/y").code == 2


def test_no_password_in_any_message() -> None:
    result = run("verify", "--db", "mysql://auditor:s3cretpw@db.example/cases")
    assert result.code == ExitCode.USAGE and "s3cretpw" not in result.text
    assert "'mysql://auditor:***@db.example/cases'" in result.err
    result = run("import", "x.jsonl", "--db", "host=db password=s3cretpw dbname=x")
    assert result.code == ExitCode.USAGE and "s3cretpw" not in result.text
    pytest.importorskip("psycopg")
    for url in (
        "postgresql://auditor:s3cretpw@127.0.0.1:1/cases?connect_timeout=2",
        "postgresql://auditor:s3c%zzretpw@127.0.0.1/cases",
    ):
        result = run("verify", "--db", url)
        assert result.code == ExitCode.IO and "s3c" not in result.text, result.text


def test_a_damaged_checkpoints_file(db: Path, keys: tuple[Path, Path]) -> None:
    checkpoint(db, keys[0])
    cp_file = Path(str(db) + ".checkpoints.jsonl")
    cp_file.write_text(cp_file.read_text()[:-20])  # cut inside the last line
    result = run("verify", "--db", str(db), "--key", str(keys[1]))
    assert result.code == ExitCode.INPUT and "truncated" in result.err
    assert run("checkpoint", "--db", str(db), "--key", str(keys[0])).code == ExitCode.INPUT
    missing = run("verify", "--db", str(db), "--key", str(keys[1]), "--checkpoints", "nope.jsonl")
    assert missing.code == ExitCode.IO


# -- verify --jobs: the same verdicts from several processes; --strict ---------------------------


def same_with_jobs(*args: str) -> Run:
    """Run ``verify ARGS`` in one process and with ``--jobs 2``; both must print the same."""
    one = run("verify", *args, "--jobs", "1")
    two = run("verify", *args, "--jobs", "2")
    assert (two.code, two.out, two.err) == (one.code, one.out, one.err)
    return two


@attrs.define
class Ranges:
    """The ranges of case ids --jobs cut the store into, and those this process verified itself
    (the others went to the worker process)."""

    cut: list[Any] = attrs.Factory(list)
    here: list[Any] = attrs.Factory(list)


@pytest.fixture
def ranges(monkeypatch: pytest.MonkeyPatch) -> Ranges:
    import mediation._verify_store as verifier

    seen = Ranges()
    run_chunks, verify_chunk = verifier._run_chunks, verifier._verify_chunk

    def spy_run(store: Any, setup: Any, *args: Any) -> Any:
        seen.cut.extend(setup.ranges)
        return run_chunks(store, setup, *args)

    def spy_chunk(store: Any, bounds: Any, setup: Any, **kw: Any) -> Any:
        if not kw.get("whole"):
            seen.here.append(bounds)
        return verify_chunk(store, bounds, setup, **kw)

    monkeypatch.setattr(verifier, "_run_chunks", spy_run)
    monkeypatch.setattr(verifier, "_verify_chunk", spy_chunk)
    return seen


def test_jobs_give_the_one_process_output(db: Path, ranges: Ranges) -> None:
    result = same_with_jobs("--db", str(db))
    assert result.code == 0 and "4 case(s): 4 valid, 0 invalid (exit 0)" in result.out
    # four cases, four ranges: the worker takes them from the front, this process from the back
    assert ranges.cut == [
        (None, "case-b"), ("case-b", "case-c"), ("case-c", "case-d"), ("case-d", None),
    ]  # fmt: skip
    assert ranges.here == [] or ranges.here[0] == ("case-d", None)
    for flags in (["--json"], ["-q", "--lang", "zh"], ["--strict"], ["--case", "case-c"]):
        assert same_with_jobs("--db", str(db), *flags).code == 0
    assert json.loads(same_with_jobs("--db", str(db), "--json").out)["ok"] is True


def test_jobs_default_is_one_process_for_a_small_store(db: Path, ranges: Ranges) -> None:
    assert run("verify", "--db", str(db)).code == 0
    assert ranges.cut == []  # fewer events than are worth a worker: verified in one process
    assert run("verify", "--db", str(db), "--jobs", "2", "--case", "case-a").code == 0
    assert ranges.cut == []  # one case: one process
    result = run("verify", "--db", str(db), "--jobs", "0")
    assert result.code == ExitCode.USAGE and "at least 1" in result.err


def test_jobs_on_a_tampered_store(db: Path, raw: sqlite3.Connection, ranges: Ranges) -> None:
    seq, _, body = rows(raw, "case-b")[4]
    raw.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = 'case-b' AND seq = ?",
        (body.replace(b"res-1502", b"res-1503", 1), seq),
    )
    forge(raw, "case-d", "bribe", {"amount": 500}, "med-wang", "lead_mediator", "negotiating")
    for flags in ([], ["--json"], ["-q"]):
        result = same_with_jobs("--db", str(db), *flags)
        assert result.code == ExitCode.INTEGRITY
    assert_names(result, "case-b", 5, "altered")
    assert_names(result, "case-d", 8, "unknown_event_type")
    assert "case-a" not in result.out  # -q
    assert len(ranges.cut) == 4 * 3


def test_jobs_read_every_event_whatever_the_summary_rows_say(
    db: Path, raw: sqlite3.Connection, ranges: Ranges
) -> None:
    """The ranges are cut at summary rows, but cover every id: cases whose summary row is gone
    (or lies) are still read and verified."""
    raw.execute("DELETE FROM mediation_cases WHERE case_id IN ('case-b', 'case-c')")
    raw.execute("UPDATE mediation_cases SET seq = 1000 WHERE case_id = 'case-a'")
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-c' AND seq = 4")
    result = same_with_jobs("--db", str(db))
    assert result.code == 1 and "4 case(s): 1 valid, 3 invalid" in result.out
    assert_names(result, "case-c", 4, "gap")  # the gap outranks the missing row
    assert "also at seq 3: summary: the case has events but no summary row" in result.out
    assert_names(result, "case-b", 21, "summary")
    assert "seq 1000 (replayed: 21)" in result.out
    assert ranges.cut == [(None, "case-d"), ("case-d", None)]  # two summary rows left


def test_jobs_with_checkpoints(
    db: Path, keys: tuple[Path, Path], raw: sqlite3.Connection, ranges: Ranges
) -> None:
    private, public = keys
    checkpoint(db, private)
    assert same_with_jobs("--db", str(db), "--key", str(public)).code == 0
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-a' AND seq > 18")
    fix_summary(raw, "case-a")
    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-c'")  # a whole case
    raw.execute("DELETE FROM mediation_cases WHERE case_id = 'case-c'")  # and its summary row
    seq, _, body = rows(raw, "case-b")[18]
    obj = json.loads(body)
    obj["payload"]["note"] = "减震垫未安装"
    raw.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = 'case-b' AND seq = ?",
        (canonical_bytes(obj), seq),
    )
    reseal(raw, "case-b", seq)  # the whole chain recomputed
    assert same_with_jobs("--db", str(db)).code == 0  # the chain alone sees nothing
    for flags in ([], ["--json"], ["-q", "--lang", "zh"], ["--strict"]):
        result = same_with_jobs("--db", str(db), "--key", str(public), *flags)
        assert result.code == ExitCode.INTEGRITY
    result = same_with_jobs("--db", str(db), "--key", str(public))
    assert_names(result, "case-a", 19, "truncated")
    assert_names(result, "case-b", 21, "checkpoint")
    assert_names(result, "case-c", 1, "truncated") and "whole case is missing" in result.out
    assert "case case-d: valid" in result.out
    assert ranges.cut


def _die(*setup: Any) -> None:
    """A worker initializer that kills its process (imported by name in the worker)."""
    import os

    os._exit(70)


def test_a_dead_worker_falls_back_to_one_process(
    db: Path, raw: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mediation._verify_store as verifier

    raw.execute("DELETE FROM mediation_events WHERE case_id = 'case-c' AND seq = 7")
    one = run("verify", "--db", str(db), "--jobs", "1")
    monkeypatch.setattr(verifier, "_init_worker", _die)
    two = run("verify", "--db", str(db), "--jobs", "2")
    assert (two.code, two.out) == (one.code, one.out) and two.code == 1
    assert "worker processes failed" in two.err and "verifying in one process" in two.err


def test_a_worker_that_cannot_open_the_store_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    import mediation._verify_store as verifier
    from mediation import StoreError

    monkeypatch.setattr(verifier.signal, "signal", lambda *args: None)  # not in this process
    monkeypatch.setattr(verifier, "_worker", None)
    setup = verifier._Setup(
        str(tmp_path / "gone.db"), False, None, None, ((None, "b"), ("b", None))
    )
    claims = multiprocessing.get_context("spawn").Array("q", [0, 2])
    verifier._init_worker(setup, claims)
    index, error = verifier._verify_next() or (None, None)
    assert index == 0 and isinstance(error, StoreError)
    assert str(error) == f"no such database file: {tmp_path / 'gone.db'}"
    assert verifier._claim(claims, front=False) == 1  # the command takes the last range
    assert verifier._verify_next() is None  # none left


def test_strict_also_validates_payloads_and_canonical_form(
    db: Path, raw: sqlite3.Connection
) -> None:
    """A correctly hashed and chained event whose payload has a field no command has, and one
    whose body is not in canonical form: the transition, permission and guards all hold, so plain
    verify accepts both; --strict refuses them as malformed (exit 1)."""
    seq = forge(
        raw,
        "case-d",
        "record_minutes",
        {"text": "笔录", "document": None, "bribe": 500},
        "med-wang",
        "lead_mediator",
        "negotiating",
    )
    plain = run("verify", "--db", str(db))
    assert plain.code == 0 and "case case-d: valid, 8 events" in plain.out
    strict = run("verify", "--db", str(db), "--strict")
    assert strict.code == ExitCode.INTEGRITY == 1
    assert_names(strict, "case-d", seq, "malformed")
    assert "unknown field(s) bribe" in strict.out
    assert same_with_jobs("--db", str(db), "--strict").code == 1

    # case-c's last event, re-encoded with a space after each separator and resealed
    last, _, body = rows(raw, "case-c")[-1]
    spaced = json.dumps(json.loads(body), ensure_ascii=False, sort_keys=True).encode()
    raw.execute(
        "UPDATE mediation_events SET hash = ?, body = ? WHERE case_id = 'case-c' AND seq = ?",
        (event_hash(spaced), spaced, last),
    )
    assert run("verify", "--db", str(db), "--case", "case-c").code == 0
    strict = run("verify", "--db", str(db), "--case", "case-c", "--strict")
    assert strict.code == 1 and "the body is not in canonical form" in strict.out
    # timeline, report and import keep checking strictly
    assert run("timeline", "case-c", "--db", str(db)).code == 1


# -- role claims against the host's directory ---------------------------------------------------


def _directory_file(db: Path, path: Path) -> Path:
    """The host's grants as they really are: every role the genuine histories claim, and the
    mediator role of everyone assigned as a mediator (G3)."""
    grants: dict[str, dict[str, list[str]]] = {}

    def grant(actor: str, role: str) -> None:
        roles = grants.setdefault(actor, {}).setdefault("rongyue", [])
        if role not in roles:
            roles.append(role)

    with SQLiteStore(db, create=False) as store:  # create=True would restore the triggers
        for record in store.scan():
            body = json.loads(record.body)
            if body["as"] in {r.value for r in Role}:
                grant(body["actor"], body["as"])
            if body["type"] == "assign_mediator":
                grant(body["payload"]["mediator"], "mediator")
    path.write_text(json.dumps(grants), encoding="utf-8")
    return path


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_forged_role_claim_is_caught_only_with_the_directory(
    db: Path, raw: sqlite3.Connection, tmp_path: Path, jobs: str
) -> None:
    directory = _directory_file(db, tmp_path / "directory.json")
    assert run("verify", "--db", str(db), "--directory", str(directory), "--jobs", jobs).code == 0
    # a neighbour who is no party "registers" the case as director, and the chain is resealed (a
    # party claiming it on his own case is refused even without a directory: guard impartial)
    (seq,) = [s for s, _, body in rows(raw, "case-c") if json.loads(body)["type"] == "register"]
    body = json.loads(rows(raw, "case-c")[seq - 1][2])
    body["actor"] = "res-0909"
    raw.execute(
        "UPDATE mediation_events SET body = ? WHERE case_id = 'case-c' AND seq = ?",
        (canonical_bytes(body), seq),
    )
    reseal(raw, "case-c", seq)
    assert run("verify", "--db", str(db), "--jobs", jobs).code == ExitCode.OK  # roles trusted
    result = run("verify", "--db", str(db), "--directory", str(directory), "--jobs", jobs)
    assert result.code == ExitCode.ILLEGAL
    assert_names(result, "case-c", seq, "unauthorized")


def test_a_bad_directory_file_is_refused(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for text, code in (("[1, 2]", ExitCode.INPUT), ("{not json", ExitCode.INPUT)):
        bad.write_text(text, encoding="utf-8")
        result = run("verify", "--db", str(db), "--directory", str(bad))
        assert result.code == code and "bad.json" in result.text, result.text
    result = run("verify", "--db", str(db), "--directory", str(tmp_path / "missing.json"))
    assert result.code == ExitCode.IO
