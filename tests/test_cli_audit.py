"""The CLI as an auditor uses it (issue 9, items 6, 7 and 9): global options on either side of the
sub-command, ``--as mediator``, ``verify -``, ``--json``, ``mediation cases``, Chinese labels and
time zones; untrusted text escaped on every print path; and bad input (fuzzed export files,
checkpoint logs, directory files, deep nesting, wrongly typed SQLite rows) ending in exit 5 or an
integrity code with one line on stderr, never a traceback."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediation import Actor, SQLiteStore
from mediation import commands as cmd
from mediation._text import json_printable, printable
from mediation.cli import ExitCode
from mediation.demo import new_service
from test_cli import Run, build_store, run

#: what a crafted case id would like the terminal to show on a line of its own
FORGED = "1 case(s): 1 valid, 0 invalid (exit 0)"
BIDI = "\u202e\u2066\u200f\u061c"
HOSTILE = f"evil\n{FORGED}\r\x1b[2K\x85{BIDI}"
_FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("audit") / "cases.db")


@pytest.fixture
def db(store_file: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cases.db"
    copy.write_bytes(store_file.read_bytes())
    return copy


@pytest.fixture
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_delete")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def export_text(store_file: Path) -> str:
    result = run("export", "--db", str(store_file))
    assert result.code == 0, result.text
    return result.out


def clean(result: Run, *codes: int) -> None:
    """Ended with one of ``codes``, at most one line on stderr, and no traceback."""
    assert result.code in codes, result.text
    assert "Traceback" not in result.text
    assert result.err.count("\n") <= 1, result.err


def no_unsafe(text: str) -> None:
    assert not any(ch in text for ch in BIDI + "\x1b\x85\r"), repr(text)


# -- item 9: global options before or after the sub-command -------------------------------------


def test_lang_before_or_after_the_command(db: Path) -> None:
    before = run("--lang", "zh", "verify", "--db", str(db))
    after = run("verify", "--db", str(db), "--lang", "zh")
    assert before.code == after.code == 0
    assert before.out == after.out and "个案件" in before.out
    assert "case(s)" in run("--lang", "zh", "verify", "--db", str(db), "--lang", "en").out


def test_tz_before_or_after_and_a_bad_zone(db: Path) -> None:
    shanghai = run("timeline", "case-a", "--db", str(db))
    assert "Asia/Shanghai (UTC+08:00)" in shanghai.out
    assert "2026-03-02 17:00" in shanghai.out  # the first event, 09:00 UTC
    for args in (("--tz", "UTC", "timeline", "case-a"), ("timeline", "case-a", "--tz", "UTC")):
        utc = run(*args, "--db", str(db))
        assert utc.code == 0 and "times: UTC" in utc.out and "2026-03-02 09:00" in utc.out
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "Asia/Shanghai\n" + FORGED):
        result = run("cases", "--db", str(db), "--tz", bad)
        clean(result, ExitCode.USAGE)
        assert "--tz" in result.err and result.out == ""


# -- item 9: --as mediator -----------------------------------------------------------------------


def test_as_mediator_views_the_case_as_its_lead_mediator(db: Path) -> None:
    result = run("timeline", "case-a", "--db", str(db), "--as", "mediator")
    assert result.code == 0, result.text
    assert "viewed as: mediator" in result.out
    assert run("timeline", "case-a", "--db", str(db), "--as", "mediator", "--lang", "zh").code == 0


def test_as_mediator_before_one_is_assigned_says_so(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with SQLiteStore(path) as store:
        new_service(store, new_id=lambda: "fresh").open(
            Actor("res-1"),
            cmd.Apply(
                committee="rongyue",
                category="邻里",
                description="噪声",
                applicants=(cmd.Party("res-1", "赵先生"),),
                respondents=(cmd.Party("res-2", "钱女士"),),
            ),
        )
    result = run("timeline", "fresh", "--db", str(path), "--as", "mediator")
    clean(result, ExitCode.INPUT)
    assert "no mediator assigned" in result.err and "cli-" not in result.err
    assert run("timeline", "fresh", "--db", str(path), "--as", "director").code == 0


# -- item 9: verify - ----------------------------------------------------------------------------


def test_verify_reads_an_export_from_stdin(export_text: str) -> None:
    result = run("verify", "-", stdin=io.StringIO(export_text))
    assert result.code == 0 and "4 case(s): 4 valid" in result.out, result.text
    binary = io.TextIOWrapper(io.BytesIO(export_text.encode()), encoding="utf-8")
    assert run("verify", "-", "--case", "case-c", stdin=binary).code == 0
    lines = export_text.splitlines()
    del lines[3]  # an event of the first case
    result = run("verify", "-", stdin=io.StringIO("\n".join(lines) + "\n"))
    assert result.code == ExitCode.INPUT and "stdin, line" in result.err, result.text
    assert run("timeline", "case-b", "-", stdin=io.StringIO(export_text)).code == 0


# -- item 9: --json; mediation cases -------------------------------------------------------------


def test_timeline_json(db: Path) -> None:
    result = run("timeline", "case-c", "--db", str(db), "--json", "--tz", "UTC")
    assert result.code == 0, result.text
    doc = json.loads(result.out)
    assert doc["case"] == "case-c" and doc["tz"] == "UTC" and doc["exit"] == 0
    assert doc["verdict"]["ok"] is True and doc["view"]["state"] == "failed"
    first = doc["view"]["events"][0]
    assert first["seq"] == 1 and first["at"].endswith("Z") and first["local"].endswith("+00:00")
    shanghai = json.loads(run("timeline", "case-c", "--db", str(db), "--json").out)
    assert shanghai["view"]["events"][0]["local"].endswith("+08:00")


def test_cases_lists_and_filters(db: Path) -> None:
    result = run("cases", "--db", str(db))
    assert result.code == 0 and "4 case(s)" in result.out, result.text
    assert all(f"case-{c}" in result.out for c in "abcd")
    doc = json.loads(run("cases", "--db", str(db), "--json").out)
    assert doc["count"] == 4 and doc["tz"] == "Asia/Shanghai"
    assert [c["case"] for c in doc["cases"]] == ["case-a", "case-b", "case-c", "case-d"]
    assert {c["state"] for c in doc["cases"]} == {"resolved", "failed", "negotiating"}
    resolved = json.loads(run("cases", "--db", str(db), "--state", "resolved", "--json").out)
    assert [c["case"] for c in resolved["cases"]] == ["case-a", "case-b"]
    for option, value, count in (
        ("--committee", "rongyue", 4),
        ("--committee", "nobody", 0),
        ("--level", "L1", None),
        ("--category", "邻里", None),
    ):
        got = json.loads(run("cases", "--db", str(db), option, value, "--json").out)
        assert got["count"] == (count if count is not None else got["count"])
    zh = run("--lang", "zh", "cases", "--db", str(db), "--state", "negotiating")
    assert "协商中" in zh.out and "共 1 个案件" in zh.out
    clean(run("cases", "--db", str(db.parent / "missing.db")), ExitCode.IO)


def test_chinese_timeline_uses_the_declaration_labels(db: Path) -> None:
    out = run("--lang", "zh", "timeline", "case-a", "--db", str(db), "--as", "director").out
    assert "(调委会主任)" in out and "(被申请人)" in out and "(主调解员)" in out  # roles
    assert "→ applied（已申请）" in out  # states
    assert "【申请】" in out and "受理登记" in out  # stages, commands
    assert "时间：Asia/Shanghai" in out


# -- item 6: safe output -------------------------------------------------------------------------


def test_printable_escapes_every_control_and_bidi_character() -> None:
    for cp in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F]:
        assert chr(cp) not in printable(f"a{chr(cp)}b")
    for cp in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]:
        assert printable(chr(cp)) == f"\\u{cp:04x}"
    assert printable("a\nb") == "a\\nb" and printable("调解 ok") == "调解 ok"
    assert json.loads(json_printable(json.dumps(HOSTILE, ensure_ascii=False))) == HOSTILE


def _rename(raw: sqlite3.Connection, old: str, new: str) -> None:
    raw.execute("UPDATE mediation_events SET case_id = ? WHERE case_id = ?", (new, old))
    raw.execute("UPDATE mediation_cases SET case_id = ? WHERE case_id = ?", (new, old))


def test_a_hostile_case_id_cannot_forge_a_line(db: Path, raw: sqlite3.Connection) -> None:
    _rename(raw, "case-d", HOSTILE)
    for args in (
        ("verify", "--db", str(db)),
        ("verify", "--db", str(db), "-q"),
        ("verify", "--db", str(db), "--case", HOSTILE),
        ("cases", "--db", str(db)),
        ("timeline", HOSTILE, "--db", str(db)),
        ("verify", "--db", str(db), "--case", HOSTILE + "x"),
        ("timeline", HOSTILE + "x", "--db", str(db)),
    ):
        result = run(*args)
        assert result.code != 0 or args[0] == "cases", result.text
        lines = result.text.splitlines()
        assert not any(line.startswith(FORGED) for line in lines), result.text
        no_unsafe(result.text)
        assert "\\n" in result.text
    for args in (("verify", "--db", str(db), "--json"), ("cases", "--db", str(db), "--json")):
        result = run(*args)
        no_unsafe(result.out)
        assert HOSTILE in {c["case"] for c in json.loads(result.out)["cases"]}


def test_hostile_text_in_a_payload_stays_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "texts.db"
    with SQLiteStore(path) as store:
        new_service(store, new_id=lambda: "k1").open(
            Actor("res-1"),
            cmd.Apply(
                committee="rongyue",
                category="邻里",
                description=f"噪声\n    2  2026-03-02 10:00  register  dir-li  {BIDI}\x85",
                applicants=(cmd.Party("res-1", "赵先生"),),
                respondents=(cmd.Party("res-2", "钱女士"),),
            ),
        )
    for lang in ("en", "zh"):
        result = run("timeline", "k1", "--db", str(path), "--as", "director", "--lang", lang)
        assert result.code == 0, result.text
        assert not any(line.lstrip().startswith("2  2026") for line in result.out.splitlines())
        no_unsafe(result.out)
    report = tmp_path / "k1.html"
    assert (
        run("report", "k1", "--db", str(path), "--html", str(report), "--as", "director").code == 0
    )
    no_unsafe(report.read_text(encoding="utf-8"))


def test_no_password_in_cases_messages() -> None:
    pytest.importorskip("psycopg")
    result = run("cases", "--db", "postgresql://auditor:s3cretpw@127.0.0.1:1/x?connect_timeout=2")
    clean(result, ExitCode.IO)
    assert "s3cretpw" not in result.text


# -- item 7: bad input ends with exit 5 (or an integrity code), one line, no traceback -----------


@pytest.mark.parametrize(
    ("column", "value"),
    [("case_id", "CAST(case_id AS BLOB)"), ("hash", "CAST(hash AS BLOB)"), ("seq", "'x3'")],
)
def test_wrongly_typed_sqlite_rows(
    db: Path, raw: sqlite3.Connection, column: str, value: str
) -> None:
    raw.execute(
        f"UPDATE mediation_events SET {column} = {value} WHERE case_id = 'case-b' AND seq = 3"
    )
    for args in (
        ("verify", "--db", str(db)),
        ("verify", "--db", str(db), "--json"),
        ("verify", "--db", str(db), "--jobs", "2"),
        ("export", "--db", str(db), "-o", str(db.parent / "out.jsonl")),
        ("timeline", "case-b", "--db", str(db)),
    ):
        result = run(*args)
        clean(result, ExitCode.INPUT, ExitCode.INTEGRITY)
        if result.code == ExitCode.INPUT:
            assert "malformed event row" in result.err, result.err


def test_a_blob_request_id_and_summary_row_types(db: Path, raw: sqlite3.Connection) -> None:
    raw.execute(
        "UPDATE mediation_events SET request_id = X'00ff' WHERE case_id = 'case-a' AND seq = 2"
    )
    clean(run("verify", "--db", str(db)), ExitCode.INPUT)
    raw.execute(
        "UPDATE mediation_cases SET case_id = X'01', opened_at = 7 WHERE case_id = 'case-c'"
    )
    clean(run("cases", "--db", str(db)), 0)
    clean(run("cases", "--db", str(db), "--json"), 0)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_everywhere(db: Path, tmp_path: Path, export_text: str) -> None:
    deep = _nested(200_000)
    header, *rest = export_text.splitlines()
    keygen = run("keygen", "--out", str(tmp_path / "k"))
    assert keygen.code == 0
    public = str(tmp_path / "k.pub")
    bad = tmp_path / "bad.jsonl"
    for text in (deep, header + "\n" + deep, "\n".join([header, *rest[:2], deep])):
        bad.write_text(text + "\n", encoding="utf-8")
        clean(run("verify", str(bad)), ExitCode.INPUT)
        clean(run("import", str(bad), "--db", str(tmp_path / "new.db")), ExitCode.INPUT)
        clean(run("verify", "-", stdin=io.StringIO(text)), ExitCode.INPUT)
    cps = tmp_path / "cps.jsonl"
    cps.write_text(deep + "\n", encoding="utf-8")
    clean(
        run("verify", "--db", str(db), "--key", public, "--checkpoints", str(cps)), ExitCode.INPUT
    )
    directory = tmp_path / "dir.json"
    directory.write_text(deep, encoding="utf-8")
    clean(run("verify", "--db", str(db), "--directory", str(directory)), ExitCode.INPUT)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@_FUZZ
@given(data=st.data())
def test_fuzzed_export_files(export_text: str, tmp_path: Path, data: st.DataObject) -> None:
    lines = export_text.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["json", "bytes", "cut", "member"]))
    if how == "json":
        lines[i] = json.dumps(data.draw(_JSONISH))
    elif how == "bytes":
        lines[i] = data.draw(st.binary(max_size=30)).decode("latin-1")
    elif how == "cut":
        lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    else:
        obj = json.loads(lines[i])
        key = data.draw(st.sampled_from(sorted(obj)))
        obj[key] = data.draw(_JSONISH)
        lines[i] = json.dumps(obj, ensure_ascii=False)
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    codes = (0, ExitCode.INTEGRITY, ExitCode.ILLEGAL, ExitCode.INPUT)
    clean(run("verify", str(path)), *codes)
    clean(run("verify", str(path), "--json"), *codes)
    target = tmp_path / "import.db"
    clean(run("import", str(path), "--db", str(target)), *codes)
    target.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, store_file: Path) -> tuple[Path, Path, str]:
    where = tmp_path_factory.mktemp("signed")
    db = where / "cases.db"
    db.write_bytes(store_file.read_bytes())
    assert run("keygen", "--out", str(where / "k")).code == 0
    assert run("checkpoint", "--db", str(db), "--key", str(where / "k")).code == 0
    text = Path(str(db) + ".checkpoints.jsonl").read_text(encoding="utf-8")
    return db, where / "k.pub", text


@_FUZZ
@given(data=st.data())
def test_fuzzed_checkpoint_logs(
    signed: tuple[Path, Path, str], tmp_path: Path, data: st.DataObject
) -> None:
    db, public, text = signed
    lines = text.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[i])
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(obj)))
        obj[key] = data.draw(_JSONISH)
        lines[i] = json.dumps(obj)
    else:
        lines[i] = json.dumps(data.draw(_JSONISH))
    cps = tmp_path / "cps.jsonl"
    cps.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("verify", "--db", str(db), "--key", str(public), "--checkpoints", str(cps))
    clean(result, 0, ExitCode.INTEGRITY, ExitCode.INPUT)


@_FUZZ
@given(doc=_JSONISH)
def test_fuzzed_directory_files(store_file: Path, tmp_path: Path, doc: object) -> None:
    directory = tmp_path / "dir.json"
    directory.write_text(json.dumps(doc), encoding="utf-8")
    result = run("verify", "--db", str(store_file), "--directory", str(directory))
    clean(result, 0, ExitCode.ILLEGAL, ExitCode.INPUT)
