"""Statistics with written definitions (docs/evaluation.md): the store's projection of the events
(SQL on SQLite and PostgreSQL, nothing replayed) gives what replaying the cases gives, as of any
moment; and the CLI shows them."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg
from mediation import StoredEvent
from mediation._audit import replay
from mediation._events import parse_body, parse_time
from mediation._stats import (
    evaluation,
    projected_facts,
    replayed_facts,
    verified_evaluation,
)
from mediation.stores import SQLiteStore, Store
from mediation.testing import histories

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def _load(store: Store, records: list[StoredEvent]) -> None:
    summary = replay(records).summary()
    store.append(summary, records, 0)


def _check(store: Store, records: list[StoredEvent], data: st.DataObject) -> None:
    _load(store, records)
    ats = [parse_body(r.body)["at"] for r in records]
    # the facts as of just after each event (and before the first), projected and replayed
    for k in range(len(records) + 1):
        before = None if k == len(records) else ats[k]
        if before is not None and k and ats[k - 1] == before:
            continue  # two events at one moment: no moment between them
        projected = list(store.stat_events(before))
        kept = records[:k]
        if not kept:
            assert projected == []
            continue
        assert projected_facts(projected) == replayed_facts(kept)
    # and the figures of a random period, as of a random moment
    first = parse_time(ats[0]).astimezone(SHANGHAI).date()
    start = first + dt.timedelta(days=data.draw(st.integers(-2, 1)))
    end = start + dt.timedelta(days=data.draw(st.integers(0, 3)))
    as_of = parse_time(ats[0]) + dt.timedelta(minutes=data.draw(st.integers(0, 7 * 60)))
    definition = data.draw(st.sampled_from(["registered", "decided", "ended"]))
    for kw in (
        {"as_of": as_of},
        {"start": start, "end": end},
        {"start": start, "as_of": as_of},
        {"now": as_of + dt.timedelta(days=40)},
    ):
        fast = evaluation(store, definition=definition, **kw)  # type: ignore[arg-type]
        slow, unverified = verified_evaluation(store, definition=definition, **kw)  # type: ignore[arg-type]
        assert unverified == ()
        assert fast == slow
        assert fast.to_json() == slow.to_json()


_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(histories().filter(bool), st.data())
def test_sqlite_projection_equals_replay(
    tmp_path_factory: pytest.TempPathFactory, records: list[StoredEvent], data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("ev") / "m.db"
    with SQLiteStore(str(path)) as store:
        _check(store, records, data)


@pytest.fixture(scope="module")
def pg_ready() -> None:
    pg.dsn()  # skips (fails under CI) without a server


@pytest.mark.postgres
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories().filter(bool), st.data())
def test_postgres_projection_equals_replay(
    pg_ready: None, records: list[StoredEvent], data: st.DataObject
) -> None:
    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("ev") as url, PostgresStore(url) as store:
        _check(store, records, data)
