"""The HTML report: self-contained, grouped by the six stages, the path highlighted in the diagram,
redacted for the viewer, with the verdict; and it renders in headless Chromium."""

from __future__ import annotations

import ast
import importlib.resources
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import attrs
import pytest

from mediation import WORKFLOW, Stage
from mediation._audit import Verdict
from mediation._diagrams import layout, mermaid
from mediation._html import PAGE, PARTS, render_html, template, template_text
from mediation._report import event_stages, path_of, state_svg
from mediation._views import CaseView, TimelineEntry
from mediation.commands import Command
from test_cli import build_store, run


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("report") / "cases.db")


def report(db: Path, case: str, out: Path, *extra: str) -> str:
    result = run("report", case, "--db", str(db), "--html", str(out), *extra)
    assert result.code == 0, result.text
    assert f"wrote {out}" in result.out or f"已生成报告 {out}" in result.out
    return out.read_text(encoding="utf-8")


class _Balance(HTMLParser):
    """Checks that every element is closed in order (void elements aside)."""

    VOID = frozenset(("meta", "br", "img", "input", "link", "hr", "circle", "rect", "path"))

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def svg_of(page: str) -> ET.Element:
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    return ET.fromstring(page[start:end])


NS = "{http://www.w3.org/2000/svg}"


def test_report_is_self_contained_and_well_formed(db: Path, tmp_path: Path) -> None:
    page = report(db, "case-a", tmp_path / "a.html", "--lang", "zh")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    for forbidden in ("<script", "<link", "src=", "@import", "<iframe", "<img"):
        assert forbidden not in page.lower()
    assert set(re.findall(r"https?://[^\s\"')<]+", page)) == {"http://www.w3.org/2000/svg"}
    checker = _Balance()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    svg_of(page)  # the inline SVG is well-formed XML


def test_report_groups_the_timeline_by_the_six_stages(db: Path, tmp_path: Path) -> None:
    page = report(db, "case-a", tmp_path / "a.html", "--lang", "zh")
    heads = [page.index(f'<span class="num">{i}</span>{s.zh}') for i, s in enumerate(Stage, 1)]
    assert heads == sorted(heads)
    for seq in range(1, 22):
        assert f'<td class="seq">{seq}</td>' in page
    # the 登记 stage holds events 3..8 (registration through the rights notice)
    register = page[heads[1] : heads[2]]
    assert [int(n) for n in re.findall(r'<td class="seq">(\d+)</td>', register)] == list(
        range(3, 9)
    )
    assert "验证通过" in page and "案件 case-a：验证通过，共 21 个事件" in page


def test_report_shows_who_acted_under_which_role(db: Path, tmp_path: Path) -> None:
    page = report(db, "case-a", tmp_path / "a.html", "--lang", "en")
    people = page[page.index("Who acted, under which role") :]
    assert re.search(
        r"<td>dir-li</td><td><span class=\"role\">调委会主任 · director</span></td><td>4</td>",
        people,
    )
    assert re.search(
        r"<td>med-wang</td><td><span class=\"role\">主调解员 · lead_mediator</span></td><td>11</td>",
        people,
    )
    assert re.search(
        r"<td>platform</td><td><span class=\"role\">平台（系统） · system</span></td><td>1</td>",
        people,
    )


def test_report_is_redacted_for_the_viewer(db: Path, tmp_path: Path) -> None:
    page = report(db, "case-a", tmp_path / "a.html")
    assert "陈*" in page
    for secret in ("陈女士", "13800001502", "双方陈述", "晚十点后停止装修", "刘先生晚十点后不使用"):
        assert secret not in page
    page = report(db, "case-a", tmp_path / "s.html", "--as", "supervisor")
    assert "med-wang" not in page and "dir-li" not in page and "陈*" not in page


def test_diagram_highlights_the_path_taken(db: Path, tmp_path: Path) -> None:
    page = report(db, "case-c", tmp_path / "c.html")
    svg = svg_of(page)
    on = [p for p in svg.iter(f"{NS}path") if p.get("class") == "edge on"]
    titles = sorted((p.find(f"{NS}title").text or "") for p in on)  # type: ignore[union-attr]
    # new→applied, applied→registered, registered→meeting_scheduled, →negotiating, →failed
    opened = " / ".join(c.name for c in WORKFLOW.opening)  # apply / report / receive_transfer
    assert titles == sorted([opened, "register", "schedule_meeting", "open_session", "terminate"])
    visited = {
        (g.find(f"{NS}title").text or "").split(":")[0]  # type: ignore[union-attr]
        for g in svg.iter(f"{NS}g")
        if "visited" in (g.get("class") or "")
    }
    assert visited == {"applied", "registered", "meeting_scheduled", "negotiating", "failed"}
    current = [g for g in svg.iter(f"{NS}g") if "current" in (g.get("class") or "").split()]
    assert len(current) == 1 and "failed" in (current[0].find(f"{NS}title").text or "")  # type: ignore[union-attr]
    assert "调解终止" in page and "litigation" in page  # the route, visible to the auditor


def test_an_outcome_stays_in_the_stage_reached(db: Path, tmp_path: Path) -> None:
    """failed belongs to no stage: the termination is shown where the case was, 协商."""
    page = report(db, "case-c", tmp_path / "c.html", "--lang", "zh")
    negotiate = page[
        page.index('<span class="num">4</span>协商') : page.index('<span class="num">5</span>')
    ]
    assert "终止调解" in negotiate and "归档" in negotiate
    assert "本案未经过此阶段" in page[page.index('<span class="num">5</span>') :]


def test_state_svg_and_path_of() -> None:
    def entry(seq: int, state: str) -> TimelineEntry:
        return TimelineEntry(
            seq, "2026-01-01T00:00:00Z", "x", "x", "x", "a", "r", state, {}, "0" * 64
        )

    entries = [entry(1, "applied"), entry(2, "applied"), entry(3, "registered"), entry(4, "failed")]
    assert path_of(entries) == [
        ("new", "applied"),
        ("applied", "registered"),
        ("registered", "failed"),
    ]
    assert event_stages(entries) == [Stage.APPLY, Stage.APPLY, Stage.REGISTER, Stage.REGISTER]
    svg = ET.fromstring(state_svg(path_of(entries), "failed", {"applied": 2}))
    counts = [
        t.text for g in svg.iter(f"{NS}g") if g.get("class") == "count" for t in g.iter(f"{NS}text")
    ]
    assert counts == ["2"]


def test_the_layout_is_derived_from_the_declaration() -> None:
    """The grid the hand-placed layout had: the way forward on the main row, stage by stage; the
    branches of 登记 below it; the three outcomes spread in a band of their own."""
    grid = layout()
    assert grid.cells == {
        "applied": (0, 0),
        "registered": (1, 0),
        "not_accepted": (1, 1),
        "refused": (1, 2),
        "meeting_scheduled": (2, 0),
        "negotiating": (3, 0),
        "agreement_drafted": (4, 0),
        "agreement_effective": (5, 0),
        "following_up": (6, 0),
        "resolved": (7, 0),
        "withdrawn": (2, 3),
        "transferred": (3.5, 3),
        "failed": (5, 3),
    }
    assert list(grid.stage_columns.values()) == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 5), (6, 7)]
    assert grid.columns == 8 and grid.row_y == (0, 80, 138, 236)
    # every state has a cell of its own
    assert len(set(grid.cells.values())) == len(grid.cells) == len(WORKFLOW.states)


def _named(name: str) -> type:
    """A payload class for a command added in a test's copy of the workflow."""
    return type(name.title(), (Command,), {"name": name})


def test_the_layout_follows_a_changed_declaration() -> None:
    """A terminal state reached from within its stage extends the main row; one reached only from
    an earlier stage is stacked below; the drawing grows to fit."""
    spec = WORKFLOW.state("agreement_effective")
    lapsed = attrs.evolve(WORKFLOW.state("refused"), name="lapsed", stage=spec.stage)
    declined = attrs.evolve(lapsed, name="declined")
    lapse = attrs.evolve(
        WORKFLOW.command("sign"), name="lapse", target="lapsed", payload=_named("lapse")
    )
    decline = attrs.evolve(
        WORKFLOW.command("sign"),
        name="decline",
        sources=("negotiating",),
        target="declined",
        payload=_named("decline"),
    )
    workflow = attrs.evolve(
        WORKFLOW,
        states=(*WORKFLOW.states, lapsed, declined),
        commands=(*WORKFLOW.commands, lapse, decline),
    )
    grid = layout(workflow)
    assert grid.cells["lapsed"] == (6, 0) and grid.cells["declined"] == (4, 1)
    assert grid.cells["following_up"] == (7, 0) and grid.columns == 9
    assert grid.stage_columns[Stage.AGREE] == (4, 6)
    svg = ET.fromstring(state_svg([("new", "applied")], "applied", workflow=workflow))
    assert svg.get("viewBox") == f"0 0 {46 + 9 * 142 + 16} {92 + 236 + 46 + 56}"


def test_no_state_or_command_is_named_in_the_renderers() -> None:
    """The renderers read every name from the declaration."""
    names = {s.name for s in WORKFLOW.states} | {c.name for c in WORKFLOW.commands}
    src = Path(__file__).resolve().parents[1] / "src" / "mediation"
    for module in ("_report", "_timeline", "_diagrams", "_html"):
        tree = ast.parse((src / f"{module}.py").read_text(encoding="utf-8"))
        literals = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not literals & names, f"{module}.py names {sorted(literals & names)}"


def test_the_mermaid_diagram_is_the_one_in_the_workflow_document() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "workflow.md").read_text("utf-8")
    assert f"```mermaid\n{mermaid()}```" in text


def test_the_templates_are_package_resources() -> None:
    for name in (PAGE, PARTS):
        resource = importlib.resources.files("mediation") / "templates" / name
        assert resource.is_file(), name
        assert resource.read_text(encoding="utf-8") == template_text(name)
    assert template("page").template.startswith("<!DOCTYPE html>")
    assert "$rows" in template("stage").template
    # and the build ships them (setuptools package-data)
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8")
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^mediation\s*=\s*\[[^\]]*"templates/\*\.html"', section, re.MULTILINE)


def test_every_value_in_the_page_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    entry = TimelineEntry(
        1, "2026-01-01T00:00:00Z", evil, evil, evil, evil, evil, "applied", {"k": evil}, "0" * 64
    )
    view = CaseView(
        evil, evil, evil, "applied", evil, evil, evil, evil, evil, (), (), None, (entry,)
    )
    verdict = Verdict(evil, 1, 1, evil, "applied")
    for lang in ("zh", "en"):
        page = render_html(
            view, verdict, lang=lang, source=evil, checkpoint_note=evil, generated_by=evil,
            subtype=evil,
        )  # fmt: skip
        assert "<script" not in page and "&lt;script&gt;" in page
        assert "&quot;x&quot;" in page and "&amp;" in page
        checker = _Balance()
        checker.feed(page)
        checker.close()
        assert checker.errors == [] and checker.stack == []


def test_report_of_a_tampered_case(db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute("DROP TRIGGER mediation_events_no_delete")
    conn.execute("DELETE FROM mediation_events WHERE case_id = 'case-b' AND seq = 12")
    conn.close()
    out = tmp_path / "b.html"
    result = run("report", "case-b", "--db", str(copy), "--html", str(out))
    assert result.code == 1
    page = out.read_text(encoding="utf-8")
    assert "INVALID" in page and "case case-b: INVALID at seq 12: gap" in page
    assert '<td class="seq">11</td>' in page and '<td class="seq">13</td>' not in page


def test_report_from_an_export_and_with_checkpoints(db: Path, tmp_path: Path) -> None:
    work = tmp_path / "w.db"
    shutil.copy(db, work)
    assert run("keygen", "--out", str(tmp_path / "k")).code == 0
    assert run("checkpoint", "--db", str(work), "--key", str(tmp_path / "k")).code == 0
    export = tmp_path / "e.jsonl"
    assert run("export", "--db", str(work), "-o", str(export)).code == 0
    out = tmp_path / "d.html"
    result = run(
        "report", "case-d", str(export), "--html", str(out), "--key", str(tmp_path / "k.pub")
    )
    assert result.code == 0, result.text
    page = out.read_text(encoding="utf-8")
    assert "signed checkpoint(s)" in page and "not reached" in page


def test_report_refuses_to_write_where_it_cannot(db: Path, tmp_path: Path) -> None:
    result = run(
        "report", "case-a", "--db", str(db), "--html", str(tmp_path / "no" / "such" / "x.html")
    )
    assert result.code == 4


# -- rendering in a real browser ------------------------------------------------------------------


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _pixels(png: bytes, rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first ``rows`` rows (RGB(A) bytes) of an 8-bit, non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out: list[bytes] = []
    prev = bytearray(stride)
    for y in range(min(rows, height)):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif kind == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif kind == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (cur[i] + pred) & 0xFF
        out.append(bytes(cur) if bpp == 3 else bytes(v for j, v in enumerate(cur) if j % 4 != 3))
        prev = cur
    return width, height, out


def test_report_renders_in_headless_chromium(db: Path, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        message = (
            "no Chromium found: install Debian's chromium (apt-get install chromium) to run it"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(message + " (CI is set, so it is required)", pytrace=False)
        pytest.skip(message)
    page = tmp_path / "report.html"
    report(db, "case-a", page, "--lang", "zh")
    shot = tmp_path / "report.png"
    width, height = 1100, 900
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
            f"--screenshot={shot}", f"--window-size={width},{height}", page.as_uri(),
        ],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    data = shot.read_bytes()
    assert len(data) > 30_000  # a blank page compresses to a few kilobytes
    w, h, rows = _pixels(data, 700)
    assert (w, h) == (width, height)
    colours = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert len(colours) > 200  # anti-aliased text in several colours, not a blank page
    assert bytes((0x15, 0x80, 0x3D)) in colours  # the green verdict badge (CSS applied)
    assert bytes((0xC2, 0x41, 0x0C)) in colours  # the path taken, in the inline SVG
