"""Early warnings (预警): ``tick`` records each newly nearly-due or overdue deadline exactly once,
also when several processes run it at the same moment (SQLite file, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pg
from helpers import EPOCH, Env, apply_cmd
from mediation import Calendar, CaseService, DeadlineWarning, Policy, SQLiteStore, Store
from mediation import commands as cmd
from mediation.cli import ExitCode

DAY = dt.timedelta(days=1)
CAL = Calendar()
SRC = str(Path(__file__).resolve().parent.parent / "src")


def keys(ws: list[DeadlineWarning]) -> list[tuple[str, str, str, str]]:
    return [w.key for w in ws]


def test_tick_records_nearly_due_then_overdue_once_each() -> None:
    e = Env()
    e.open()  # Monday 5 January: acceptance within 3 working days, by Thursday 8 January
    first = e.service.tick(EPOCH)
    assert keys(first) == [("case-1", "acceptance", "2026-01-08", "nearly_due")]
    assert first[0].committee == "c1" and first[0].at == "2026-01-05T08:00:00.000000Z"
    assert e.service.tick(EPOCH) == [] and e.service.tick(EPOCH + DAY) == []
    late = CAL.day_end(dt.date(2026, 1, 8))
    assert keys(e.service.tick(late)) == [("case-1", "acceptance", "2026-01-08", "overdue")]
    assert e.service.tick(late + DAY) == []
    assert [w.level for w in e.service.warnings("case-1")] == ["nearly_due", "overdue"]
    assert e.service.warnings() == e.service.warnings("case-1")
    # overdue never blocks a command
    e.clock.now = late + DAY
    e.run("p2", cmd.RecordConsent())
    e.run("director", cmd.Register())
    assert e.case.state == "registered"


def test_tick_defaults_to_the_clock_and_skips_paused_and_closed_cases() -> None:
    e = Env()
    e.drive("registered")
    e.run("med1", cmd.Pause("appraisal"))
    e.case_id = "case-2"
    e.drive("resolved")
    e.clock.now = EPOCH + 100 * DAY
    assert e.service.tick() == []


def test_a_changed_due_date_warns_again() -> None:
    e = Env()
    e.drive("registered")
    term = CAL.local_date(EPOCH) + 30 * DAY
    at = CAL.day_end(term)
    assert keys(e.service.tick(at)) == [("case-1", "term", term.isoformat(), "overdue")]
    e.clock.now = at
    e.consent_all("extend_term")
    e.run("med1", cmd.ExtendTerm(10))
    new = (term + 10 * DAY).isoformat()
    assert e.service.tick(at) == []  # 10 more days: not nearly due yet
    assert keys(e.service.tick(at + 7 * DAY)) == [("case-1", "term", new, "nearly_due")]


def test_the_first_follow_up_warns_from_the_case_itself() -> None:
    e = Env(policy=Policy(warn_days_before=0))
    e.drive("negotiating")
    e.run("med1", cmd.RecordOralAgreement("口头协议", dt.date(2026, 1, 10)))
    assert keys(e.service.tick(CAL.day_end(dt.date(2026, 1, 10)))) == [
        ("case-1", "first_follow_up", "2026-01-10", "overdue")
    ]


def test_judicial_window_never_warns() -> None:
    e = Env()
    e.drive("agreement_drafted")
    e.sign_all()
    assert [w.kind for w in e.service.tick(EPOCH + 100 * DAY)] == ["first_follow_up"]


# -- queries by level, category and mediator ----------------------------------------------------


def many() -> Env:
    e = Env()
    e.add_person("med2", {"c1": ["mediator"]})
    e.case_id = "a-l0"
    e.drive("registered", apply_cmd(level="L0"))
    e.case_id = "b-labour"
    e.drive("registered", apply_cmd(category="劳动争议"), lead="med2")
    e.case_id = "c-applied"
    e.open()
    return e


def ids(rows: list[tuple[Any, Any]]) -> list[tuple[str, str]]:
    return [(s.case_id, d.kind) for s, d in rows]


def test_overdue_and_upcoming_by_level_category_and_mediator() -> None:
    e = many()
    at = EPOCH + 20 * DAY
    assert ids(e.service.overdue(at)) == [
        ("a-l0", "l0_escalation"),
        ("b-labour", "labour_term"),
        ("c-applied", "acceptance"),
    ]
    assert ids(e.service.overdue(at, level="L0")) == [("a-l0", "l0_escalation")]
    assert ids(e.service.overdue(at, category="劳动争议")) == [("b-labour", "labour_term")]
    assert ids(e.service.overdue(at, mediator="med2")) == [("b-labour", "labour_term")]
    assert ids(e.service.overdue(at, mediator="med1")) == [("a-l0", "l0_escalation")]
    assert ids(e.service.overdue(at, mediator="nobody")) == []
    # upcoming: not yet due, last day within warn_days_before (3) or the given days
    assert ids(e.service.upcoming(EPOCH)) == [("c-applied", "acceptance")]
    soon = ids(e.service.upcoming(EPOCH, within_days=8))
    assert soon == [("c-applied", "acceptance"), ("a-l0", "l0_escalation")]
    assert ids(e.service.upcoming(EPOCH, within_days=8, level="L0")) == [("a-l0", "l0_escalation")]
    assert ("a-l0", "term") in ids(e.service.upcoming(EPOCH, within_days=40, mediator="med1"))


# -- exactly once across processes and services --------------------------------------------------


def populate(store: Store) -> Env:
    """Cases with deadlines of every kind, all overdue 60 days after EPOCH."""
    e = Env(store=store)
    for n in range(3):
        e.case_id = f"k{n}-applied"
        e.open(apply_cmd(level="L0"))
        e.case_id = f"k{n}-registered"
        e.drive("registered", apply_cmd(category="劳动争议" if n else "邻里"))
    e.case_id = "k9-agreed"
    e.drive("agreement_effective")
    return e


_WORKER = r"""
import datetime as dt, json, sys, time
from mediation import CaseService
from mediation.stores import PostgresStore, open as open_store
url, start, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
store = open_store(url) if url.startswith("sqlite") else PostgresStore(url)
service = CaseService(store)
base = dt.datetime(2026, 1, 5, 8, tzinfo=dt.timezone.utc)
while time.time() < start:
    time.sleep(0.001)
won = []
for i in range(rounds):
    won += [w.key for w in service.tick(base + dt.timedelta(days=i % 70))]
store.close()
print(json.dumps(won))
"""


def run_processes(url: str, n: int = 3, rounds: int = 70) -> list[tuple[str, ...]]:
    import time

    start = time.time() + 3.0  # every process starts ticking at the same moment
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, str(start), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(n)
    ]
    won: list[tuple[str, ...]] = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        won += [tuple(k) for k in json.loads(out)]
    return won


def check_once(store: Store, won: list[tuple[str, ...]]) -> None:
    recorded = [w.key for w in store.warnings()]
    assert len(won) == len(set(won)), "a warning was recorded twice"
    assert sorted(won) == sorted(recorded)
    kinds = {(k[1], k[3]) for k in recorded}
    assert {("acceptance", "overdue"), ("term", "overdue"), ("labour_term", "overdue")} <= kinds
    assert ("first_follow_up", "overdue") in kinds and ("l0_escalation", "nearly_due") in kinds


def threads_tick(services: list[CaseService], rounds: int = 70) -> list[tuple[str, ...]]:
    won: list[tuple[str, ...]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(services))

    def worker(service: CaseService) -> None:
        barrier.wait()
        for i in range(rounds):
            got = [w.key for w in service.tick(EPOCH + (i % 70) * DAY)]
            with lock:
                won.extend(got)

    threads = [threading.Thread(target=worker, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return won


def test_processes_tick_a_sqlite_file_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = SQLiteStore(str(path))
    populate(store)
    won = run_processes(f"sqlite:///{path}")
    check_once(store, won)
    store.close()


def test_services_in_threads_tick_a_sqlite_file_exactly_once(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    store = SQLiteStore(path)
    populate(store)
    stores = [SQLiteStore(path) for _ in range(3)]
    check_once(store, threads_tick([CaseService(s) for s in stores]))
    for s in (store, *stores):
        s.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema("w") as url:
        yield url


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Callable[[], Store]]:
    from mediation.stores import PostgresStore

    opened: list[Store] = []

    def make() -> Store:
        s: Store = PostgresStore(pg_url)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def test_processes_tick_postgres_exactly_once(pg_url: str, pg_store: Callable[[], Store]) -> None:
    store = pg_store()
    populate(store)
    check_once(store, run_processes(pg_url))


def test_services_in_threads_tick_postgres_exactly_once(pg_store: Callable[[], Store]) -> None:
    store = pg_store()
    populate(store)
    check_once(store, threads_tick([CaseService(pg_store()) for _ in range(3)]))


# -- the command line ----------------------------------------------------------------------------


def test_cli_deadlines_lists_filters_and_ticks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_cli import run

    monkeypatch.setenv("MEDIATION_LANG", "en")
    path = tmp_path / "m.db"
    store = SQLiteStore(str(path))
    e = Env(store=store)
    e.add_person("med2", {"c1": ["mediator"]})
    e.case_id = "a-l0"
    e.drive("registered", apply_cmd(level="L0"))
    e.case_id = "b-labour"
    e.drive("registered", apply_cmd(category="劳动争议"), lead="med2")
    store.close()
    db = str(path)
    late = "2026-01-25T08:00:00Z"
    r = run("deadlines", "--db", db, "--overdue", "--now", late, "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [(d["case"], d["kind"]) for d in doc["deadlines"]] == [
        ("a-l0", "l0_escalation"),
        ("b-labour", "labour_term"),
    ]
    assert doc["deadlines"][0]["due_date"] == "2026-01-12" and doc["deadlines"][0]["overdue"]
    r = run("deadlines", "--db", db, "--overdue", "--now", late, "--mediator", "med2")
    assert r.code == 0 and "b-labour" in r.out and "a-l0" not in r.out and "overdue" in r.out
    r = run(
        "deadlines", "--db", db, "--now", "2026-01-05T09:00:00Z", "--within", "8", "--level", "L0"
    )
    assert r.code == 0 and "l0_escalation" in r.out and "1 deadline(s)" in r.out
    assert run("deadlines", "--db", db, "--now", "2026-01-05T09:00:00").code == ExitCode.USAGE
    first = run("deadlines", "--db", db, "--tick", "--now", late, "--json")
    assert first.code == 0, first.err
    recorded = [(w["case"], w["kind"], w["level"]) for w in json.loads(first.out)["recorded"]]
    assert recorded == [
        ("a-l0", "l0_escalation", "overdue"),
        ("b-labour", "labour_term", "overdue"),
    ]
    again = run("deadlines", "--db", db, "--tick", "--now", late, "--json")
    assert json.loads(again.out)["recorded"] == []


def _across_the_last_covered_year(e: Env) -> dt.datetime:
    """Open ``a-late`` on 30 December of the calendar's last year (its acceptance deadline falls
    in the next, uncovered one) and ``b-early`` on 1 December; return a time just after both."""
    last = CAL.covered[1]
    for case_id, day in (("a-late", 30), ("b-early", 1)):
        e.case_id = case_id
        e.clock.now = dt.datetime(last, 12, day, 2, tzinfo=dt.timezone.utc)
        e.open()
    return dt.datetime(last, 12, 30, 3, tzinfo=dt.timezone.utc)


def test_tick_warns_every_other_case_before_raising_for_an_uncovered_year() -> None:
    from mediation import CalendarNotCovered

    last = CAL.covered[1]
    e = Env()
    now = _across_the_last_covered_year(e)
    with pytest.raises(CalendarNotCovered) as caught:
        e.service.tick(now)
    assert caught.value.case == "a-late" and caught.value.year == last + 1
    assert [w.case_id for w in e.service.warnings()] == ["b-early"]


def test_listing_names_the_cases_of_an_uncovered_year_and_lists_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One case whose deadline reaches a year without holiday data does not hide the others:
    given ``uncovered``, ``overdue`` and ``upcoming`` leave it out and name it; the command line
    lists the rest, names it on standard error and exits 5."""
    from mediation import CalendarNotCovered
    from test_cli import run

    monkeypatch.setenv("MEDIATION_LANG", "en")
    last = CAL.covered[1]
    path = tmp_path / "m.db"
    e = Env(store=SQLiteStore(str(path)))
    now = _across_the_last_covered_year(e)
    for listing in (e.service.overdue, e.service.upcoming):
        with pytest.raises(CalendarNotCovered) as caught:  # the default: raise
            listing(now)
        assert caught.value.case == "a-late"
        uncovered: list[CalendarNotCovered] = []
        rows = listing(now, uncovered=uncovered)
        assert [exc.case for exc in uncovered] == ["a-late"] and uncovered[0].year == last + 1
        assert "a-late" not in {s.case_id for s, _ in rows}
    assert [(s.case_id, d.kind) for s, d in e.service.overdue(now, uncovered=[])] == [
        ("b-early", "acceptance")
    ]
    e.store.close()
    at = now.isoformat()
    r = run("deadlines", "--db", str(path), "--overdue", "--now", at)
    assert r.code == ExitCode.INPUT and "b-early" in r.out and "a-late" not in r.out
    assert "1 case(s) not listed" in r.out and "Traceback" not in r.err
    assert f"case a-late: no holiday data for {last + 1}-" in r.err
    r = run("deadlines", "--db", str(path), "--overdue", "--now", at, "--json")
    doc = json.loads(r.out)
    assert r.code == ExitCode.INPUT and doc["exit"] == ExitCode.INPUT
    assert [d["case"] for d in doc["deadlines"]] == ["b-early"]
    assert [(u["case"], u["year"]) for u in doc["uncovered"]] == [("a-late", last + 1)]
