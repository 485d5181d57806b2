"""Exports: byte-exact round trips (SQLite → file → SQLite or PostgreSQL), verification from the file
alone, and bad input: each refused with a message naming the line (and the seq), writing nothing."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import pg
from mediation import SQLiteStore, StoredEvent, canonical_bytes, event_hash
from mediation._export import ExportError, ExportReader, write_export
from mediation.cli import ExitCode
from test_cli import build_store, run


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_store(tmp_path / "source.db")


@pytest.fixture
def export(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "cases.jsonl"
    result = run("export", "--db", str(db), "-o", str(out))
    assert result.code == 0, result.text
    assert "exported 4 case(s), 62 event(s)" in result.out
    return out


def all_records(path: Path) -> list[tuple[str, int, str, bytes]]:
    conn = sqlite3.connect(path)
    try:
        return [
            (c, s, h, bytes(b))
            for c, s, h, b in conn.execute(
                "SELECT case_id, seq, hash, body FROM mediation_events ORDER BY case_id, seq"
            )
        ]
    finally:
        conn.close()


def case_count(path: Path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM mediation_events").fetchone()[0])
    finally:
        conn.close()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, items: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in items), encoding="utf-8")
    return path


# -- the format and round trips ------------------------------------------------------------------


def test_format(export: Path) -> None:
    items = [json.loads(line) for line in lines(export)]
    assert items[0]["format"] == "mediation-export" and items[0]["version"] == 1
    assert items[-1] == {"end": {"cases": 4, "events": 62, "checkpoints": 0}}
    events = items[1:-1]
    assert [e["case"] for e in events] == sorted(e["case"] for e in events)
    first = events[0]
    assert set(first) == {"case", "seq", "hash", "body"}
    assert event_hash(first["body"].encode("utf-8")) == first["hash"]
    text = export.read_text(encoding="utf-8")
    assert "邻里" in text  # UTF-8 text, not \\u escapes
    assert "陈女士" not in text and '\\"sealed\\":' in text  # personal data sealed, as stored
    assert items[0]["personal_data"] == "encrypted"


def test_export_verifies_with_nothing_but_the_file(export: Path, db: Path) -> None:
    db.unlink()
    result = run("verify", str(export))
    assert result.code == 0, result.text
    assert "4 case(s): 4 valid" in result.out


def test_round_trip_sqlite(db: Path, export: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    result = run("import", str(export), "--db", str(target))
    assert result.code == 0, result.text
    assert "imported 4 case(s), 62 event(s)" in result.out
    assert all_records(target) == all_records(db)  # identical bytes and hashes
    with SQLiteStore(db) as a, SQLiteStore(target) as b:
        assert a.cases() == b.cases()  # the summary rows too
    again = tmp_path / "again.jsonl"
    assert run("export", "--db", str(target), "-o", str(again)).code == 0
    assert again.read_bytes() == export.read_bytes()


def test_export_to_stdout_and_import_from_stdin(db: Path, tmp_path: Path) -> None:
    result = run("export", "--db", str(db), "--case", "case-c")
    assert result.code == 0
    assert result.out.splitlines()[-1] == '{"end":{"cases":1,"events":13,"checkpoints":0}}'
    target = tmp_path / "one.db"
    stdin = io.TextIOWrapper(io.BytesIO(result.out.encode("utf-8")), encoding="utf-8")
    imported = run("import", "-", "--db", str(target), stdin=stdin)
    assert imported.code == 0, imported.text
    assert all_records(target) == [r for r in all_records(db) if r[0] == "case-c"]


def test_export_of_an_unknown_case(db: Path) -> None:
    result = run("export", "--db", str(db), "--case", "case-z")
    assert result.code == ExitCode.INPUT and "case-z" in result.err


def test_checkpoints_travel_with_the_export(db: Path, tmp_path: Path) -> None:
    assert run("keygen", "--out", str(tmp_path / "k")).code == 0
    assert run("checkpoint", "--db", str(db), "--key", str(tmp_path / "k")).code == 0
    out = tmp_path / "signed.jsonl"
    assert run("export", "--db", str(db), "-o", str(out)).code == 0
    assert json.loads(lines(out)[-1])["end"]["checkpoints"] == 5  # four cases and the store
    result = run("verify", str(out), "--key", str(tmp_path / "k.pub"))
    assert result.code == 0, result.text
    assert "5 signed checkpoint(s) checked" in result.out

    target = tmp_path / "copy.db"
    result = run("import", str(out), "--db", str(target), "--key", str(tmp_path / "k.pub"))
    assert result.code == 0, result.text
    assert run("verify", "--db", str(target), "--key", str(tmp_path / "k.pub")).code == 0

    # an export whose last case was cut off (and the end line fixed up) fails with the key only
    items = lines(out)
    kept = [line for line in items if '"case":"case-d"' not in line or '"kind"' in line]
    end = json.loads(kept[-1])
    end["end"]["cases"], end["end"]["events"] = 3, 55
    cut = write_lines(tmp_path / "cut.jsonl", [*kept[:-1], json.dumps(end)])
    assert run("verify", str(cut)).code == 0
    result = run("verify", str(cut), "--key", str(tmp_path / "k.pub"))
    assert result.code == 1 and "case case-d: INVALID at seq 1: truncated" in result.out


def test_non_utf8_bytes_travel_as_base64() -> None:
    rec = StoredEvent("c1", 1, "0" * 64, b'{"bad":"\xff"}')
    buf = io.StringIO()
    write_export([rec], buf)
    text = buf.getvalue()
    assert '"body_b64"' in text
    reader = ExportReader(io.BytesIO(text.encode()), "mem")
    (case,) = list(reader)
    assert case.records == (rec,)


# -- bad input: a clear message, a non-zero exit, nothing written --------------------------------


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    """An import target that already holds one case: a refused import must leave it as it was."""
    path = tmp_path / "target.db"
    with SQLiteStore(path) as store:
        from mediation.demo import leak_dispute, new_service

        leak_dispute(new_service(store, new_id=lambda: "existing"))
    before = all_records(path)
    yield path
    assert all_records(path) == before


def refused(file: Path, target: Path, code: ExitCode, *needles: str) -> None:
    result = run("import", str(file), "--db", str(target))
    assert result.code == code, result.text
    for needle in needles:
        assert needle in result.err, result.err


def test_truncated_mid_line(export: Path, target: Path) -> None:
    data = export.read_bytes()
    cut = export.with_name("cut.jsonl")
    cut.write_bytes(data[: len(data) // 2])
    n = cut.read_bytes().count(b"\n") + 1
    refused(cut, target, ExitCode.INPUT, f"line {n}", "truncated")
    assert run("verify", str(cut)).code == ExitCode.INPUT


def test_truncated_at_a_line_boundary(export: Path, target: Path) -> None:
    cut = write_lines(export.with_name("cut.jsonl"), lines(export)[:30])
    refused(cut, target, ExitCode.INPUT, "without its end line", "truncated")


def test_invalid_json(export: Path, target: Path) -> None:
    items = lines(export)
    items[9] = items[9][:-1]  # the closing brace is gone
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(bad, target, ExitCode.INPUT, "line 10", "not JSON")


def test_not_an_export(tmp_path: Path, target: Path) -> None:
    bad = write_lines(tmp_path / "other.jsonl", ['{"hello": "world"}'])
    refused(bad, target, ExitCode.INPUT, "line 1", "not a mediation export")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    refused(empty, target, ExitCode.INPUT, "empty")
    v2 = write_lines(tmp_path / "v2.jsonl", ['{"format":"mediation-export","version":2}'])
    refused(v2, target, ExitCode.INPUT, "version 2")


def test_unknown_event_type(export: Path, target: Path) -> None:
    items = lines(export)
    # the last event of case-d, rewritten by hand to a type the workflow does not know, hashed
    # correctly: the bytes are intact, the history is illegal
    index = max(i for i, line in enumerate(items) if '"case":"case-d"' in line)
    event = json.loads(items[index])
    body = json.loads(event["body"])
    body["type"] = "bribe"
    raw = canonical_bytes(body)
    event["body"], event["hash"] = raw.decode(), event_hash(raw)
    items[index] = json.dumps(event, ensure_ascii=False)
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(
        bad, target, ExitCode.ILLEGAL, f"line {index + 1}", "case-d", "seq 7", "unknown_event_type"
    )


def test_altered_event(export: Path, target: Path) -> None:
    items = lines(export)
    assert "cadre-zhao" in items[5]
    items[5] = items[5].replace("cadre-zhao", "cadre-zhou", 1)
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(bad, target, ExitCode.INTEGRITY, "line 6", "case-a", "seq 5", "altered")
    result = run("verify", str(bad))
    assert result.code == 1
    assert "case case-a: INVALID at seq 5: altered" in result.out and "[line 6]" in result.out


def test_events_out_of_order_within_a_case(export: Path, target: Path) -> None:
    items = lines(export)
    items[3], items[4] = items[4], items[3]
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(bad, target, ExitCode.INTEGRITY, "line 4", "case-a", "seq 3", "gap")


def test_two_cases_interleaved(export: Path, target: Path) -> None:
    items = lines(export)
    first_b = next(i for i, line in enumerate(items) if '"case":"case-b"' in line)
    # move one event of case-b in among the events of case-a
    moved = items.pop(first_b)
    items.insert(5, moved)
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(
        bad,
        target,
        ExitCode.INPUT,
        "line 7",
        "case case-a resumes after case case-b",
        "interleaved",
    )


def test_end_line_counts_must_match(export: Path, target: Path) -> None:
    items = lines(export)
    del items[10]
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(bad, target, ExitCode.INPUT, "end line counts")


def test_a_line_that_is_no_event(export: Path, target: Path) -> None:
    items = lines(export)
    items.insert(3, '{"case":"case-a","seq":3}')
    bad = write_lines(export.with_name("bad.jsonl"), items)
    refused(bad, target, ExitCode.INPUT, "line 4", "neither an event")


def test_import_is_atomic(db: Path, export: Path, tmp_path: Path) -> None:
    """Three good cases and one bad one: none is written (and no database is created)."""
    items = lines(export)
    index = max(i for i, line in enumerate(items) if '"case":"case-d"' in line)
    items[index] = items[index].replace("med-wang", "med-wan9", 1)
    bad = write_lines(tmp_path / "bad.jsonl", items)
    fresh = tmp_path / "fresh.db"
    result = run("import", str(bad), "--db", str(fresh))
    assert result.code == 1 and "case-d" in result.err
    assert case_count(fresh) == 0


def test_import_refuses_an_existing_case(export: Path, target: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    assert run("import", str(export), "--db", str(copy)).code == 0
    before = all_records(copy)
    result = run("import", str(export), "--db", str(copy))
    assert result.code == ExitCode.INPUT and "already exists" in result.err
    assert all_records(copy) == before


def test_reader_errors_carry_the_line() -> None:
    data = b'{"format":"mediation-export","version":1}\n[1,2]\n'
    with pytest.raises(ExportError) as info:
        list(ExportReader(io.BytesIO(data), "mem"))
    assert info.value.line == 2 and "not a JSON object" in info.value.message


# -- PostgreSQL ----------------------------------------------------------------------------------


def pg_url(conninfo: str) -> str:
    """``--db`` takes postgresql:// URLs: the test server's URL with the fresh schema's path."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    options = str(conninfo_to_dict(conninfo)["options"])
    base = pg.dsn()
    return base + ("&" if "?" in base else "?") + "options=" + quote(options)


@pytest.mark.postgres
def test_round_trip_postgres(db: Path, export: Path, tmp_path: Path) -> None:
    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("export") as conninfo:
        url = pg_url(conninfo)
        result = run("import", str(export), "--db", url)
        assert result.code == 0, result.text
        store = PostgresStore(url, create=False)
        try:
            got = [(r.case_id, r.seq, r.hash, r.body) for r in store.scan()]
        finally:
            store.close()
        assert got == all_records(db)
        assert run("verify", "--db", url).code == 0
        back = tmp_path / "back.jsonl"
        assert run("export", "--db", url, "-o", str(back)).code == 0
        assert back.read_bytes() == export.read_bytes()
        # atomic there too: a refused import leaves the schema as it was
        items = lines(export)
        items[5] = items[5].replace("cadre-zhao", "cadre-zhou", 1)
        bad = write_lines(tmp_path / "bad.jsonl", items)
        assert run("import", str(bad), "--db", url).code == 1
        assert run("import", str(export), "--db", url).code == ExitCode.INPUT  # all exist


def test_import_with_a_wrong_key_writes_nothing(db: Path, tmp_path: Path, target: Path) -> None:
    assert run("keygen", "--out", str(tmp_path / "k")).code == 0
    assert run("keygen", "--out", str(tmp_path / "other")).code == 0
    assert run("checkpoint", "--db", str(db), "--key", str(tmp_path / "k")).code == 0
    signed = tmp_path / "signed.jsonl"
    assert run("export", "--db", str(db), "-o", str(signed)).code == 0
    result = run("import", str(signed), "--db", str(target), "--key", str(tmp_path / "other.pub"))
    assert result.code == ExitCode.INTEGRITY and "no checkpoint signed by key" in result.err
