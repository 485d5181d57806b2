"""The generated data set (mediation.testing._dataset: 120 cases, ten blocks of twelve kinds, every
event at 00:30 Shanghai time, i.e. the day before in UTC) against expectations worked out by hand
from the generator's parameters (its docstring), not by calling the code under test.

Block first days F_b: Sep 1, 8, 15, 22, 29, Oct 9, 13, 20, 27, Nov 3 (2025); e_b = b % 3.
Outcome day (from F_b): written agreement 7+e (kinds 0-4), oral 6+e (5), failed 6+e (6), withdrawn
after registration 5 (7), before registration 1 (8), refused 1 / not accepted 2 (9, even / odd
blocks), transferred 2 (10); kind 11 stays negotiating.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediation import SQLiteStore
from mediation._stats import Durations, Evaluation, evaluation, verified_evaluation
from mediation.cli import main
from mediation.testing._dataset import BLOCK_DAYS, HOLIDAYS, generate_dataset

LATER = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("dataset") / "set.db"
    with SQLiteStore(str(path)) as s:
        generate_dataset(s)
    return path


@pytest.fixture(scope="module")
def store(db: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(str(db)) as s:
        yield s


def _d(n: int, median: float | None, p90: float | None) -> Durations:
    return Durations(n, median, p90)


def test_the_generator_is_what_its_docstring_says(store: SQLiteStore) -> None:
    rows = store.cases()
    assert len(rows) == 120
    assert BLOCK_DAYS[4] == dt.date(2025, 9, 29) and dt.date(2025, 10, 1) in HOLIDAYS
    # every event at 00:30 local: 16:30 UTC the day before
    assert {e.at[11:16] for e in store.stat_events()} == {"16:30"}


def test_whole_history(store: SQLiteStore) -> None:
    e = evaluation(store, now=LATER)
    o = e.outcomes
    # 10 blocks x (kinds 0-5 agreed; 6 failed; 7 withdrawn; 8 withdrawn early; 9; 10 transferred)
    assert dict(o.counts) == {
        "agreed": 60,
        "failed": 10,
        "withdrawn": 10,
        "withdrawn_unregistered": 10,
        "refused": 5,
        "not_accepted": 5,
        "transferred": 10,
    }
    assert (o.ended, o.written, o.oral) == (110, 50, 10)
    assert (o.success, o.base, o.rate) == (60, 80, 0.75)
    assert (o.not_registered, o.transferred) == (20, 10)
    assert e.cases == 120
    assert dict(e.by_state) == {
        "agreement_effective": 40,
        "failed": 10,
        "following_up": 10,
        "negotiating": 10,
        "not_accepted": 5,
        "refused": 5,
        "resolved": 10,
        "transferred": 10,
        "withdrawn": 20,
    }
    # the other definitions, by name
    decided = evaluation(store, now=LATER, definition="decided").outcomes
    assert (decided.success, decided.base) == (60, 70)
    ended = evaluation(store, now=LATER, definition="all_ended").outcomes
    assert (ended.success, ended.base) == (60, 110)
    # groupings: (ended, success, denominator)
    g = {k: {v: (x.ended, x.success, x.base) for v, x in d.items()} for k, d in e.groups.items()}
    assert g["category"] == {"合同": (40, 20, 30), "损害赔偿": (30, 20, 20), "邻里": (40, 20, 30)}
    assert g["subtype"] == {"-": (30, 20, 20), "噪声": (40, 20, 30), "租赁": (40, 20, 30)}
    assert g["level"] == {"L0": (2, 0, 0), "L1": (108, 60, 80)}
    assert g["escalated"] == {"no": (101, 54, 72), "yes": (9, 6, 8)}
    assert g["mediator"] == {
        "-": (20, 0, 0),
        "med1": (36, 24, 32),
        "med2": (27, 18, 24),
        "med3": (27, 18, 24),
    }
    # days to the outcome: 1 x15, 2 x15, 5 x10, 6 x8, 7 x26, 8 x21, 9 x15
    assert e.days_to_outcome["all"] == _d(110, 7.0, 9.0)
    # agreements: 6 x4, 7 x23, 8 x18, 9 x15
    assert e.days_to_outcome["agreed"] == _d(60, 8.0, 9.0)
    assert e.days_to_outcome["withdrawn"] == _d(10, 5.0, 5.0)
    assert dict(e.stage_days) == {
        "apply": _d(120, 1.0, 1.0),  # 115 x1 day, 5 x2 (not accepted on day 2)
        "register": _d(100, 2.0, 2.0),  # 90 x2, 10 x1 (transferred on day 2)
        "meeting": _d(90, 1.0, 1.0),
        "negotiate": _d(80, 3.0, 4.0),  # 1 x10, 2 x28, 3 x21, 4 x21
        "agree": _d(20, 8.0, 8.0),  # kinds 0 and 1: drafted 6+e, followed up 14+e
        "follow_up": _d(10, 6.0, 6.0),  # kind 0: 14+e to 20+e
    }
    assert dict(e.satisfaction) == {0: 0, 1: 0, 2: 0, 3: 10, 4: 0, 5: 10}
    # the ten negotiating cases are past their 30-day term; block 9's never left the building
    assert (e.overdue, dict(e.overdue_by_kind)) == (10, {"l0_escalation": 1, "term": 10})


OCTOBER = {"start": dt.date(2025, 10, 1), "end": dt.date(2025, 10, 31)}


def _october(store: SQLiteStore, **kw: object) -> Evaluation:
    return evaluation(store, **OCTOBER, **kw)  # type: ignore[arg-type]


def test_october_in_local_dates(store: SQLiteStore) -> None:
    e = _october(store)
    o = e.outcomes
    # block 4 (from Sep 29): agreements Oct 6-7, failed Oct 6, withdrawn Oct 4, transferred Oct 1
    # (00:30 local, Sep 30 in UTC); its kinds 8 and 9 ended Sep 30.  Blocks 5-7 end in October.
    # Block 8 (from Oct 27): only kinds 8, 9 (refused) and 10 end by Oct 31 (kind 7: Nov 1 local,
    # Oct 31 in UTC).
    assert dict(o.counts) == {
        "agreed": 24,
        "failed": 4,
        "withdrawn": 4,
        "withdrawn_unregistered": 4,
        "refused": 2,
        "not_accepted": 2,
        "transferred": 5,
    }
    assert (o.ended, o.written, o.oral, o.success, o.base) == (45, 20, 4, 24, 32)
    assert (o.not_registered, o.transferred) == (8, 5)
    assert o.rate == 0.75
    assert _october(store, definition="decided").outcomes.base == 28
    g = {k: {v: (x.ended, x.success, x.base) for v, x in d.items()} for k, d in e.groups.items()}
    assert g["category"] == {"合同": (17, 8, 12), "损害赔偿": (12, 8, 8), "邻里": (16, 8, 12)}
    assert g["mediator"] == {
        "-": (8, 0, 0),
        "med1": (9, 6, 8),
        "med2": (18, 12, 16),
        "med3": (10, 6, 8),
    }
    # 1 x6, 2 x7, 5 x4, 6 x2, 7 x9, 8 x12, 9 x5
    assert e.days_to_outcome["all"] == _d(45, 7.0, 9.0)
    assert e.stage_days["apply"] == _d(48, 1.0, 1.0)
    assert e.stage_days["negotiate"] == _d(32, 3.0, 4.0)  # 1 x4, 2 x7, 3 x14, 4 x7
    # follow-ups of blocks 2-6 (block 2's on Oct 1 local, Sep 30 in UTC)
    assert dict(e.satisfaction) == {0: 0, 1: 0, 2: 0, 3: 5, 4: 0, 5: 5}


def test_as_of_the_end_of_october(store: SQLiteStore) -> None:
    """The October figures are those known on 31 October, not the cases' final states."""
    e = _october(store)
    assert e.as_of == dt.datetime(2025, 10, 31, 16, 0, tzinfo=dt.timezone.utc)
    assert e.cases == 108  # block 9 opens in November
    assert dict(e.by_state) == {
        "agreement_effective": 34,
        "failed": 8,
        "following_up": 8,
        "negotiating": 17,
        "not_accepted": 4,
        "refused": 5,
        "resolved": 6,
        "transferred": 9,
        "withdrawn": 17,
    }
    # kind 11 of blocks 0-4 registered by Sep 30: past the 30-day term on Oct 31
    assert (e.overdue, dict(e.overdue_by_kind)) == (5, {"term": 5})
    # asked later, the same period: the same outcomes (none changed since), the final states
    later = _october(store, as_of=LATER)
    assert later.outcomes == e.outcomes
    assert later.by_state != e.by_state and later.cases == 120
    # as of a date: the events up to the end of that local day
    early = evaluation(store, as_of=dt.date(2025, 9, 30))
    assert early.cases == 60 and early.outcomes.transferred == 4  # block 4's: Oct 1 local


def test_the_projection_equals_the_replay_on_the_data_set(store: SQLiteStore) -> None:
    for kw in ({"now": LATER}, OCTOBER, {"as_of": dt.date(2025, 10, 5)}):
        fast = evaluation(store, **kw)  # type: ignore[arg-type]
        slow, unverified = verified_evaluation(store, **kw)  # type: ignore[arg-type]
        assert unverified == () and fast == slow


# -- mediation stats --------------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_the_command_json(db: Path) -> None:
    code, out, _ = _cli(
        "--lang", "en", "stats", "--db", str(db), "--from", "2025-10-01", "--to", "2025-10-31",
        "--by", "mediator", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)["evaluation"]
    assert doc["definition"]["name"] == "standard"
    assert (doc["from"], doc["to"], doc["as_of"]) == (
        "2025-10-01", "2025-10-31", "2025-10-31T16:00:00.000000Z",
    )  # fmt: skip
    assert (doc["ended"], doc["success"], doc["denominator"], doc["success_rate"]) == (
        45, 24, 32, 0.75,
    )  # fmt: skip
    assert (doc["not_registered"], doc["transferred"]) == (8, 5)
    assert list(doc["groups"]) == ["mediator"]
    assert doc["groups"]["mediator"]["med2"]["denominator"] == 16
    assert doc["days_to_outcome"]["all"] == {"n": 45, "median": 7.0, "p90": 9.0}
    assert doc["satisfaction"] == {"0": 0, "1": 0, "2": 0, "3": 5, "4": 0, "5": 5}
    assert doc["overdue"] == 5
    # another definition, and as of a date
    code, out, _ = _cli(
        "stats", "--db", str(db), "--definition", "decided", "--as-of", "2025-12-31", "--json"
    )
    doc = json.loads(out)["evaluation"]
    assert (doc["success"], doc["denominator"], doc["success_rate"]) == (60, 70, 0.8571)
    assert set(doc["groups"]) == {"category", "subtype", "level", "mediator", "escalated"}
    # the same from the replayed events
    code, out, _ = _cli(
        "stats", "--db", str(db), "--definition", "decided", "--as-of", "2025-12-31", "--json",
        "--verified",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["evaluation"] == doc


def test_the_command_table(db: Path) -> None:
    code, out, _ = _cli(
        "--lang", "en", "stats", "--db", str(db), "--from", "2025-10-01", "--to", "2025-10-31",
        "--by", "escalated",
    )  # fmt: skip
    assert code == 0
    assert "definition: standard — success rate = agreements that took effect" in out
    assert "period: 2025-10-01 to 2025-10-31 (Asia/Shanghai), as of the end of 2025-10-31" in out
    assert "ended in the period: 45" in out
    assert "  agreement took effect: 24 (written 20, oral 4)" in out
    assert "success rate: 75.00% (24 of 32)" in out
    assert "reported apart: not registered 8, transferred 5" in out
    assert "by escalated:" in out and "  no         45     24       32           75.00%" in out
    assert "  negotiate: median 3.0 d, p90 4.0 d (n=32)" in out
    assert "overdue cases: 5 (term 5)" in out
    code, out, _ = _cli(
        "--lang", "zh", "stats", "--db", str(db), "--from", "2025-10-01", "--to", "2025-10-31"
    )
    assert code == 0
    assert "统计口径：standard — 调解成功率＝达成协议" in out
    assert "统计期间：2025-10-01 至 2025-10-31（Asia/Shanghai），截至 2025-10-31 日终" in out
    assert "本期办结：45" in out
    assert "  达成协议：24（书面 20，口头 4）" in out
    assert "调解成功率：75.00%（32 件中成功 24 件）" in out
    assert "另列：未受理 8 件，移交 5 件" in out
    assert "按类别：" in out and "按层级：" in out
    assert "  协商：中位数 3.0 天，P90 4.0 天（32 件）" in out
    assert "回访满意度（次）：未询问：0、1：0、2：0、3：5、4：0、5：5" in out


@pytest.mark.parametrize(
    "args",
    [
        ("--from", "2025-13-01"),
        ("--as-of", "yesterday"),
        ("--definition", "mine"),
        ("--by", "party"),
    ],
)
def test_the_command_refuses_bad_options(db: Path, args: tuple[str, str]) -> None:
    code, _, err = _cli("stats", "--db", str(db), *args)
    assert code == 2, err
