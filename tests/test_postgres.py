"""The PostgreSQL store: the conformance suite, schema management, errors, scans, locking.

Needs ``MEDIATION_PG_DSN`` (see tests/pg.py); each test works in a fresh schema.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import pg
from mediation import ConcurrencyConflict, StoreError
from mediation.stores import Store
from mediation.testing import StoreConformance, synthetic_records, synthetic_summary

pytestmark = pytest.mark.postgres


def _cls() -> Any:
    from mediation.stores.postgres import PostgresStore

    return PostgresStore


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema() as url:
        yield url


@pytest.fixture
def open_store(pg_url: str) -> Iterator[Callable[..., Any]]:
    """``open_store(**kw)``: a PostgresStore on the test's schema, closed after the test."""
    opened: list[Any] = []

    def open_(**kw: Any) -> Any:
        store = _cls()(pg_url, **kw)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def _raw(url: str, **kw: Any) -> Any:
    import psycopg

    return psycopg.connect(url, **kw)


def _with_options(url: str, extra: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    options = conninfo_to_dict(url).get("options", "")
    return make_conninfo(url, options=f"{options} {extra}".strip())


class TestPostgresStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _schema(self, pg_url: str) -> Iterator[None]:
        self.url = pg_url
        self.opened: list[Store] = []
        yield
        for store in self.opened:
            store.close()

    def make_store(self) -> Store:
        store: Store = _cls()(self.url)
        self.opened.append(store)
        return store

    def reopen(self, store: Store) -> Store:
        return self.make_store()

    def drop_summary(self, store: Store, case_id: str) -> bool:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DELETE FROM mediation_cases WHERE case_id = %s", (case_id,))
        return True


# -- schema ----------------------------------------------------------------------------------------


def test_schema_is_idempotent_and_records_its_version(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    from mediation.stores.postgres import SCHEMA_VERSION

    store = open_store()
    store.create_schema()
    again = open_store()
    again.create_schema()
    assert store.schema_version() == SCHEMA_VERSION == 3
    with _raw(pg_url) as conn:
        rows = conn.execute("SELECT key, value FROM mediation_meta").fetchall()
    assert rows == [("schema_version", "3")]
    assert open_store(create=False).schema_version() == 3


def test_create_false_on_an_empty_schema_is_refused(pg_url: str) -> None:
    with pytest.raises(StoreError, match="create_schema"):
        _cls()(pg_url, create=False)
    with _raw(pg_url) as conn:  # and nothing was created
        assert conn.execute("SELECT to_regclass('mediation_events')").fetchone() == (None,)


def test_schema_sql_is_a_complete_idempotent_migration(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    ddl = _cls().schema_sql()
    assert "mediation_events" in ddl and "mediation_meta" in ddl
    with _raw(pg_url, autocommit=True) as conn:
        conn.execute(ddl)
        conn.execute(ddl)
    store = open_store(create=False)
    recs = synthetic_records("k1", 2)
    store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
    assert store.read("k1") == recs


def test_a_schema_of_another_version_is_refused(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    open_store()
    with _raw(pg_url) as conn:
        conn.execute("UPDATE mediation_meta SET value = '99' WHERE key = 'schema_version'")
    for create in (True, False):
        with pytest.raises(StoreError, match="99"):
            _cls()(pg_url, create=create)


def _downgrade(url: str, version: int) -> None:
    """Turn the test's schema back into one of ``version`` 1 (no request ids, no workflow in the
    summary rows) or 2 (no workflow in the summary rows)."""
    with _raw(url, autocommit=True) as admin:
        admin.execute("ALTER TABLE mediation_cases DROP COLUMN workflow")
        if version == 1:
            admin.execute("DROP INDEX mediation_events_request")
            admin.execute("ALTER TABLE mediation_events DROP COLUMN request_id")
        admin.execute("UPDATE mediation_meta SET value = %s", (str(version),))


@pytest.mark.parametrize("how", ["create_schema", "schema_sql"])
@pytest.mark.parametrize("version", [1, 2])
def test_an_earlier_schema_is_read_as_it_is_then_migrated(
    pg_url: str, open_store: Callable[..., Any], version: int, how: str
) -> None:
    import attrs

    from mediation.stores._base import DEFAULT_WORKFLOW

    store = open_store()
    first = attrs.evolve(synthetic_records("k1", 1)[0], request_id="req-1")
    store.append(synthetic_summary("k1", 1, head=first.hash), [first], 0)
    _downgrade(pg_url, version)
    legacy = open_store(create=False)
    assert legacy.schema_version() == version
    kept = first if version == 2 else attrs.evolve(first, request_id=None)
    assert legacy.read("k1") == [kept] == list(legacy.scan("k1", "k2"))
    assert legacy.find_request("k1", "req-1") == (kept if version == 2 else None)
    summary = legacy.summary("k1")
    assert summary is not None and summary.workflow == DEFAULT_WORKFLOW
    assert legacy.cases() == [summary]
    second = synthetic_records("k1", 1, 2, first.hash)
    with pytest.raises(StoreError, match=f"version is {version}"):
        legacy.append(synthetic_summary("k1", 2, head=second[0].hash), second, 1)
    if how == "schema_sql":  # the host's own migration, run twice
        with _raw(pg_url, autocommit=True) as admin:
            admin.execute(_cls().schema_sql())
            admin.execute(_cls().schema_sql())
        migrated = open_store(create=False)
    else:
        migrated = open_store()
    assert migrated.schema_version() == 3
    assert migrated.summary("k1") == summary and migrated.read("k1") == [kept]
    later = synthetic_summary("k1", 2, head=second[0].hash, workflow="mediation-workflow/2")
    migrated.append(later, second, 1)
    assert open_store(create=False).summary("k1") == later
    with _raw(pg_url) as conn:
        rows = conn.execute("SELECT key, value FROM mediation_meta").fetchall()
    assert rows == [("schema_version", "3")]


def test_many_processes_may_create_the_schema_at_once(pg_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Any] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        try:
            barrier.wait(30)
            stores.append(_cls()(pg_url, pool_size=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for store in stores:
        store.close()
    assert not errors, errors
    assert len(stores) == 4


def test_the_projection_table_is_indexed_for_the_list_queries(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    open_store()
    with _raw(pg_url) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'mediation_cases' "
            "AND schemaname = current_schema()"
        ).fetchall()
    leading = {d.split("(", 1)[1].split(",")[0].split(")")[0].strip() for (d,) in rows}
    assert {"case_id", "state", "committee", "level", "category"} <= leading


# -- construction and errors -----------------------------------------------------------------------


def test_exactly_one_source_of_connections(pg_url: str) -> None:
    with pytest.raises(StoreError):
        _cls()()
    with _raw(pg_url) as conn, pytest.raises(StoreError):
        _cls()(pg_url, connection=conn)


def test_a_bad_password_is_a_store_error_that_does_not_leak_it(pg_url: str) -> None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    bad = make_conninfo(pg_url, password="not-the-password-8d1f")
    with pytest.raises(StoreError) as info:
        _cls()(bad, timeout=5)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert "not-the-password-8d1f" not in str(info.value)


def test_a_closed_store_raises_store_error(open_store: Callable[..., Any]) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StoreError):
        store.read("k1")


def test_a_database_refusal_is_a_store_error_not_a_conflict(
    open_store: Callable[..., Any],
) -> None:
    import psycopg

    store = open_store()
    rec = synthetic_records("k1", 1)[0]
    bad = type(rec)(rec.case_id, rec.seq, rec.hash.upper(), rec.body)  # not lowercase hex
    with pytest.raises(StoreError) as info:
        store.append(synthetic_summary("k1", 1), [bad], 0)
    assert not isinstance(info.value, ConcurrencyConflict)
    assert isinstance(info.value.__cause__, psycopg.errors.CheckViolation)
    assert store.read("k1") == [] and store.summary("k1") is None


def test_the_users_pool_is_used_and_left_open(pg_url: str) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(pg_url, min_size=1, max_size=2, open=True) as pool:  # not autocommit
        store = _cls()(pool=pool)
        recs = synthetic_records("k1", 3)
        store.append(synthetic_summary("k1", 3, head=recs[-1].hash), recs, 0)
        store.close()
        assert not pool.closed
        assert _cls()(pool=pool).read("k1") == recs
        assert [r.case_id for r in _cls()(pool=pool).scan()] == ["k1"] * 3


# -- ordering and scanning -------------------------------------------------------------------------


def test_case_ids_are_ordered_by_code_point_like_the_other_stores(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    store = open_store()
    with _raw(pg_url) as conn:  # whatever the database's default collation is
        collations = conn.execute(
            "SELECT table_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_name = 'case_id' ORDER BY 1"
        ).fetchall()
    assert collations == [
        ("mediation_cases", "C"),
        ("mediation_events", "C"),
        ("mediation_warnings", "C"),
    ]
    ids = ["b", "B", "a-2", "a_1", "é", "Z", "调解-1", "ä"]
    for cid in ids:
        store.append(synthetic_summary(cid, 1), synthetic_records(cid, 1), 0)
    assert store.case_ids() == sorted(ids)
    assert [s.case_id for s in store.cases()] == sorted(ids)
    assert [r.case_id for r in store.scan()] == sorted(ids)


def test_scan_streams_through_a_server_side_cursor(pg_url: str) -> None:
    from psycopg import pq

    with _raw(pg_url, autocommit=True) as conn:
        store = _cls()(connection=conn, scan_batch=3)
        expected = []
        for cid in ("c", "a", "b"):
            recs = synthetic_records(cid, 4)
            store.append(synthetic_summary(cid, 4, head=recs[-1].hash), recs, 0)
            expected.extend(recs)
        expected.sort(key=lambda r: (r.case_id, r.seq))
        rows = store.scan()
        first = next(rows)
        cursors = conn.execute("SELECT name FROM pg_cursors").fetchall()
        assert [name for (name,) in cursors if name.startswith("mediation_scan_")], cursors
        assert [first, *rows] == expected
        assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)
        assert list(store.scan("b", "c")) == [r for r in expected if r.case_id == "b"]
        assert list(store.scan("b")) == [r for r in expected if r.case_id >= "b"]
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        # an abandoned scan releases its cursor and transaction too
        partial = store.scan()
        next(partial)
        partial.close()
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE


# -- locking: per case, decided by the primary key ----------------------------------------------


def _open_append(conn: Any, store: Any, case_id: str, seq: int) -> None:
    """Begin a host transaction on ``conn`` and append seq ``seq`` of ``case_id`` in it."""
    head = store.read(case_id)[-1].hash if seq > 1 else "0" * 64
    recs = synthetic_records(case_id, 1, start=seq, prev=head)
    conn.execute("BEGIN")
    store.append(synthetic_summary(case_id, seq, head=recs[-1].hash), recs, seq - 1)


def _wait_until_blocked(url: str, deadline: float = 30.0) -> None:
    """Wait until some session of this database waits for a lock (fail after ``deadline``)."""
    with _raw(url, autocommit=True) as watcher:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first")


def test_writers_on_different_cases_do_not_wait_for_each_other(pg_url: str) -> None:
    # lock_timeout turns an unexpected wait into an error instead of a hang
    impatient = _with_options(pg_url, "-c lock_timeout=5s")
    with _raw(pg_url, autocommit=True) as host:
        first = _cls()(connection=host)
        first.append(synthetic_summary("a", 1), synthetic_records("a", 1), 0)
        second = _cls()(impatient, pool_size=1)
        try:
            _open_append(host, first, "a", 2)  # uncommitted, holds its row locks
            recs = synthetic_records("b", 2)
            second.append(synthetic_summary("b", 2, head=recs[-1].hash), recs, 0)
            assert second.read("b") == recs
            assert [r.seq for r in second.read("a")] == [1]  # not committed yet
            host.execute("COMMIT")
            assert [r.seq for r in second.read("a")] == [1, 2]
        finally:
            second.close()


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_racing_writer_on_the_same_case_loses_only_if_the_first_commits(
    pg_url: str, outcome: str
) -> None:
    import psycopg

    with _raw(pg_url, autocommit=True) as host:
        first = _cls()(connection=host)
        first.append(synthetic_summary("a", 1), synthetic_records("a", 1), 0)
        second = _cls()(pg_url, pool_size=1)
        result: list[BaseException | None] = []
        try:
            _open_append(host, first, "a", 2)
            head = first.read("a")[0].hash

            def race() -> None:
                recs = synthetic_records("a", 1, start=2, prev=head)
                try:
                    second.append(synthetic_summary("a", 2, state="failed"), recs, 1)
                    result.append(None)
                except BaseException as exc:
                    result.append(exc)

            racer = threading.Thread(target=race)
            racer.start()
            _wait_until_blocked(pg_url)  # it passed the seq check and waits on the key
            assert not result
            host.execute(outcome.upper())
            racer.join(30)
            assert len(result) == 1
            summary = second.summary("a")
            assert summary is not None
            if outcome == "commit":
                exc = result[0]
                assert isinstance(exc, ConcurrencyConflict), exc
                assert isinstance(exc.__cause__, psycopg.errors.UniqueViolation)
                assert exc.case == "a" and exc.expected_seq == 1
                assert summary.state == "applied"
            else:
                assert result == [None]
                assert summary.state == "failed"
            assert [r.seq for r in second.read("a")] == [1, 2]
        finally:
            second.close()


# -- transactions ----------------------------------------------------------------------------------


def test_a_transaction_runs_on_one_pooled_connection(open_store: Callable[..., Any]) -> None:
    store = open_store(pool_size=1, timeout=3)  # a second connection would time out
    first = synthetic_records("k1", 2)
    with store.transaction():
        store.append(synthetic_summary("k1", 2, head=first[-1].hash), first, 0)
        assert store.read("k1") == first and list(store.scan()) == first
        assert [s.case_id for s in store.cases()] == ["k1"] and store.case_ids() == ["k1"]
        more = synthetic_records("k1", 1, 3, first[-1].hash)
        with store.transaction():
            store.append(synthetic_summary("k1", 3, head=more[0].hash), more, 2)
    assert store.read("k1") == first + more


def test_writers_of_other_threads_do_not_wait_for_a_transaction(pg_url: str) -> None:
    impatient = _cls()(_with_options(pg_url, "-c lock_timeout=5s"), pool_size=2)
    done: list[Any] = []

    def other() -> None:
        try:
            done.append(impatient.read("k1"))
            recs = synthetic_records("k2", 1)
            impatient.append(synthetic_summary("k2", 1, head=recs[0].hash), recs, 0)
            done.append(impatient.read("k2"))
        except BaseException as exc:  # pragma: no cover - reported below
            done.append(exc)

    with pytest.raises(ZeroDivisionError), impatient.transaction():
        impatient.append(synthetic_summary("k1", 1), synthetic_records("k1", 1), 0)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30)  # it finishes while the block is open
        assert done == [[], synthetic_records("k2", 1)]
        1 / 0  # noqa: B018
    assert impatient.case_ids() == ["k2"]
    impatient.close()


def _lose_connection(url: str, *, at_commit: bool) -> None:
    """Make the server end the session that inserts an event of case ``doomed``: while inserting
    it, or at COMMIT (a deferred constraint trigger)."""
    with _raw(url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION lose_connection() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.case_id = 'doomed' THEN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF; "
            "RETURN NEW; END $$"
        )
        if at_commit:
            admin.execute(
                "CREATE CONSTRAINT TRIGGER lose_connection AFTER INSERT ON mediation_events "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lose_connection()"
            )
        else:
            admin.execute(
                "CREATE TRIGGER lose_connection BEFORE INSERT ON mediation_events "
                "FOR EACH ROW EXECUTE FUNCTION lose_connection()"
            )


def test_a_connection_lost_at_the_commit_of_a_transaction_is_an_unknown_outcome(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    import psycopg

    from mediation import OutcomeUnknown

    store = open_store()
    _lose_connection(pg_url, at_commit=True)
    doomed = synthetic_records("doomed", 1)
    with pytest.raises(OutcomeUnknown) as info, store.transaction():
        store.append(synthetic_summary("k1", 1), synthetic_records("k1", 1), 0)
        store.append(synthetic_summary("doomed", 1, head=doomed[0].hash), doomed, 0)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    # the server ended the session before it committed; the store goes on on another connection
    assert store.case_ids() == [] and store.read("doomed") == []
    store.append(synthetic_summary("k2", 1), synthetic_records("k2", 1), 0)
    assert store.case_ids() == ["k2"]


def test_a_connection_lost_inside_a_transaction_is_a_store_error_not_an_unknown_outcome(
    pg_url: str, open_store: Callable[..., Any]
) -> None:
    """Nothing was committed yet: the server rolls back the session it ended, so the outcome is
    known."""
    import psycopg

    from mediation import OutcomeUnknown

    store = open_store()
    _lose_connection(pg_url, at_commit=False)
    with pytest.raises(StoreError) as info, store.transaction():
        store.append(synthetic_summary("k1", 1), synthetic_records("k1", 1), 0)
        store.append(synthetic_summary("doomed", 1), synthetic_records("doomed", 1), 0)
    assert not isinstance(info.value, OutcomeUnknown)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert store.case_ids() == []
    store.append(synthetic_summary("k2", 1), synthetic_records("k2", 1), 0)
    assert store.case_ids() == ["k2"]


def test_a_transaction_inside_the_hosts_is_a_savepoint(pg_url: str) -> None:
    import psycopg

    with _raw(pg_url, autocommit=True) as host:
        store = _cls()(connection=host)
        first = synthetic_records("k1", 1)
        with host.transaction():
            with store.transaction():
                store.append(synthetic_summary("k1", 1, head=first[0].hash), first, 0)
            with pytest.raises(ZeroDivisionError), store.transaction():
                store.append(synthetic_summary("k2", 1), synthetic_records("k2", 1), 0)
                1 / 0  # noqa: B018
            assert store.read("k1") == first and store.read("k2") == []
            with _raw(pg_url) as other:  # nothing is committed behind the host's back
                assert other.execute("SELECT count(*) FROM mediation_events").fetchone() == (0,)
            raise psycopg.Rollback
        assert store.case_ids() == []


def test_a_transaction_on_an_idle_classic_connection_commits_and_leaves_it_idle(
    pg_url: str,
) -> None:
    from psycopg import pq

    with _raw(pg_url) as classic:  # not autocommit
        store = _cls()(connection=classic)
        classic.commit()
        recs = synthetic_records("k1", 2)
        with store.transaction():
            store.append(synthetic_summary("k1", 2, head=recs[-1].hash), recs, 0)
        assert classic.info.transaction_status == pq.TransactionStatus.IDLE
        with _raw(pg_url) as other:
            assert other.execute("SELECT count(*) FROM mediation_events").fetchone() == (2,)
