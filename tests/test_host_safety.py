"""The library inside a real host: one service shared by threads, several services (standing for
worker processes and servers) on one store, clocks that differ or step back, idempotent requests,
a cache of any size.  Every test ends by verifying the stored history from the store's bytes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import pg
from helpers import EPOCH, Env, ManualClock, apply_cmd, content
from mediation import (
    CaseService,
    ClockSkew,
    ConcurrencyConflict,
    IllegalTransition,
    InvalidCommand,
    MemoryStore,
    NotPermitted,
    RequestConflict,
    SQLiteStore,
    Store,
    verify,
)
from mediation import commands as cmd
from mediation._events import parse_body

THREADS = 8
PER_THREAD = 25

# -- stores ----------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of stores on one shared database: each call is another handle, as another worker
    process or server would open it (the memory store can only be shared as one object)."""
    opened: list[Store] = []
    if request.param == "memory":
        shared = MemoryStore()

        def make() -> Store:
            return shared

        yield make
        return
    if request.param == "sqlite":
        path = tmp_path / "cases.db"

        def make() -> Store:
            store = SQLiteStore(path)
            opened.append(store)
            return store

        yield make
    else:
        from mediation.stores.postgres import PostgresStore

        with pg.fresh_schema("host") as conninfo:

            def make() -> Store:
                store = PostgresStore(conninfo, pool_size=THREADS)
                opened.append(store)
                return store

            yield make
            for store in opened:
                store.close()
            opened.clear()
    for store in opened:
        store.close()


def negotiating(env: Env) -> str:
    env.drive("negotiating")
    return env.case_id


def strict_ok(store: Store, case_id: str) -> Any:
    verdict = verify(store.read(case_id), case_id, strict=True)
    assert verdict.ok, verdict.describe()
    return verdict


# -- one service, many threads ----------------------------------------------------------------------


def test_threads_sharing_one_service_lose_nothing_and_write_nothing_twice(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    env = Env(store=store)
    case_id = negotiating(env)
    before = len(store.read(case_id))
    # the real clock: the threads' events carry the times the host really gave them
    service = CaseService(store, directory=env.world.directory)
    mediator = env["med1"]
    barrier = threading.Barrier(THREADS)
    acknowledged: list[tuple[int, str]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            try:
                event = service.execute(mediator, case_id, cmd.RecordMinutes(f"线程 {n} 第 {i} 条"))
            except BaseException as exc:
                with lock:
                    failures.append(exc)
            else:
                with lock:
                    acknowledged.append((event.seq, event.hash))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    # a conflict that outlasted the service's attempts is a refusal, not a loss; none is expected
    assert not failures, failures[:3]
    records = store.read(case_id)
    assert len(acknowledged) == THREADS * PER_THREAD
    assert len(records) == before + len(acknowledged)
    # each acknowledged event is stored exactly once, at the seq and with the hash it was given
    stored = {(r.seq, r.hash) for r in records}
    assert set(acknowledged) <= stored and len(set(acknowledged)) == len(acknowledged)
    assert strict_ok(store, case_id).case.minutes == 1 + THREADS * PER_THREAD
    # the shared service's cache and a fresh service agree with the store
    assert service.case(case_id).seq == len(records)
    assert CaseService(store).case(case_id).head == records[-1].hash


def test_threads_opening_cases_and_driving_them_to_the_end(tmp_path: Path) -> None:
    """Every thread drives its own cases through all six stages on one shared SQLite service."""
    store = SQLiteStore(tmp_path / "cases.db")
    envs = [Env(store=store, case_id=f"t{n}") for n in range(THREADS)]
    shared = CaseService(store, directory=envs[0].world.directory, clock=envs[0].clock)
    errors: list[BaseException] = []

    def drive(env: Env) -> None:
        env.service = shared
        try:
            env.drive("resolved")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(e,)) for e in envs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    for env in envs:
        assert strict_ok(store, env.case_id).state == "resolved"
    store.close()


def test_per_thread_sqlite_connections_are_closed_with_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "cases.db")
    seen: list[Any] = []

    def touch() -> None:
        seen.append(store.connection)
        store.read("nothing")

    threads = [threading.Thread(target=touch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 4  # one connection per thread
    store.close()
    for conn in seen:
        with pytest.raises(Exception, match="closed"):
            conn.execute("SELECT 1")


# -- several services on one store: stale caches ------------------------------------------------------


def test_a_stale_cache_decides_again_instead_of_refusing(make_store: Callable[[], Store]) -> None:
    """Two workers: each party's `sign` reaches a different one, whose cache is behind."""
    env = Env(store=make_store())
    env.drive("negotiating")
    worker_a = CaseService(make_store(), directory=env.world.directory, clock=env.clock)
    worker_b = CaseService(make_store(), directory=env.world.directory, clock=env.clock)
    for w in (worker_a, worker_b):
        assert w.case(env.case_id).state == "negotiating"  # both caches hold the case
    env.run("med1", cmd.DraftAgreement(content()))  # through a third service
    worker_a.execute(env["p1"], env.case_id, cmd.Sign())
    worker_b.execute(env["p2"], env.case_id, cmd.Sign())
    worker_a.execute(env["med1"], env.case_id, cmd.Sign())
    event = worker_b.execute(env["director"], env.case_id, cmd.Sign("seal"))
    assert event.state == "agreement_effective"
    assert strict_ok(env.store, env.case_id).state == "agreement_effective"


def test_reads_answer_on_what_the_store_holds(make_store: Callable[[], Store]) -> None:
    env = Env(store=make_store())
    env.drive("negotiating")
    other = CaseService(make_store(), directory=env.world.directory, clock=env.clock)
    assert other.case(env.case_id).state == "negotiating"
    assert not _may(other, env, "p1", "sign")
    env.run("med1", cmd.DraftAgreement(content()))
    # another process appended: the case, the view, the permissions and deadlines all see it
    assert other.case(env.case_id).state == "agreement_drafted"
    assert other.view(env["p1"], env.case_id).state == "agreement_drafted"
    assert _may(other, env, "p1", "sign")
    assert other.deadlines(env.case_id) == env.service.deadlines(env.case_id)


def _may(service: CaseService, env: Env, who: str, command: str) -> bool:
    return next(p for p in service.allowed(env[who], env.case_id) if p.command == command).allowed


def test_a_refusal_that_the_store_confirms_stands(make_store: Callable[[], Store]) -> None:
    env = Env(store=make_store())
    env.drive("negotiating")
    other = CaseService(make_store(), directory=env.world.directory, clock=env.clock)
    before = env.snapshot()
    with pytest.raises(IllegalTransition):
        other.execute(env["p1"], env.case_id, cmd.Sign())
    assert env.snapshot() == before


@pytest.mark.parametrize("cache_size", [0, 1])
def test_any_cache_size_works(cache_size: int) -> None:
    env = Env()
    env.service = CaseService(
        env.store, directory=env.world.directory, clock=env.clock, cache_size=cache_size
    )
    case = env.service.open(env["p1"], apply_cmd(), case_id="a")
    assert (case.id, case.seq, case.state) == ("a", 1, "applied")
    env.service.open(env["p1"], apply_cmd(), case_id="b")
    event = env.service.execute(env["p2"], "a", cmd.RecordConsent())
    assert event.seq == 2 and env.service.case("a").seq == 2
    assert len(env.service._cache) == cache_size
    env.drive("resolved")
    assert strict_ok(env.store, env.case_id).state == "resolved"


def test_a_cache_ahead_of_the_store_is_dropped_not_trusted() -> None:
    """After a host's rollback the cache may hold events the store does not: the next command
    finds the store behind, reloads, and decides on what the store holds."""
    env = Env()
    env.drive("negotiating")
    hidden = MemoryStore()
    for rec in env.store.read(env.case_id)[:-1]:  # the store lost the last event
        hidden.append(env.store.summary(env.case_id), (rec,), rec.seq - 1)  # type: ignore[arg-type]
    env.service.store = hidden
    event = env.run("med1", cmd.RecordMinutes("回滚之后"))
    assert event.seq == len(env.store.read(env.case_id))
    assert strict_ok(hidden, env.case_id).case.seq == event.seq


# -- idempotent requests -----------------------------------------------------------------------------


def test_a_retried_request_returns_the_original_event(make_store: Callable[[], Store]) -> None:
    env = Env(store=make_store())
    env.drive("negotiating")
    first = env.run("med1", cmd.RecordMinutes("第一次提交"), request_id="req-1")
    assert first.request_id == "req-1"
    before = env.snapshot()
    # a retry through another service (another worker) with a cold cache
    other = CaseService(make_store(), directory=env.world.directory, clock=env.clock)
    again = other.execute(
        env["med1"], env.case_id, cmd.RecordMinutes("第一次提交"), request_id="req-1"
    )
    assert (again.seq, again.hash, again.request_id) == (first.seq, first.hash, "req-1")
    assert env.snapshot() == before
    assert parse_body(env.store.read(env.case_id)[first.seq - 1].body)["request"] == "req-1"
    strict_ok(env.store, env.case_id)


def test_a_retried_request_returns_its_event_even_when_the_case_moved_on() -> None:
    env = Env()
    env.drive("agreement_drafted")
    first = env.run("p1", cmd.Sign(), request_id="sign-p1")
    env.sign_all()  # the signatures still missing
    assert env.case.state == "agreement_effective"  # signing is no longer legal
    again = env.run("p1", cmd.Sign(), request_id="sign-p1")
    assert again.hash == first.hash


def test_concurrent_double_submits_write_once(make_store: Callable[[], Store]) -> None:
    env = Env(store=make_store())
    env.drive("negotiating")
    services = [
        CaseService(make_store(), directory=env.world.directory, clock=env.clock)
        for _ in range(THREADS)
    ]
    barrier = threading.Barrier(THREADS)
    results: list[Any] = []

    def submit(service: CaseService) -> None:
        barrier.wait()
        try:
            results.append(
                service.execute(
                    env["med1"], env.case_id, cmd.ShareProposal("方案"), request_id="dbl"
                )
            )
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=submit, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert len({(r.seq, r.hash) for r in results}) == 1
    holders = [r for r in env.store.read(env.case_id) if r.request_id == "dbl"]
    assert len(holders) == 1
    strict_ok(env.store, env.case_id)


def test_a_request_id_reused_for_another_command_is_refused() -> None:
    env = Env()
    env.drive("negotiating")
    env.run("director", cmd.AssignMediator("med2"))
    env.run("med1", cmd.RecordMinutes("甲"), request_id="k1")
    before = env.snapshot()
    for command, acting_as in (
        (cmd.RecordMinutes("乙"), None),  # same command, another payload
        (cmd.ShareProposal("甲"), None),  # another command
        (cmd.RecordMinutes("甲"), "co_mediator"),  # under another relation than recorded
    ):
        with pytest.raises(RequestConflict) as info:
            env.run("med1", command, request_id="k1", acting_as=acting_as)
        assert info.value.request_id == "k1" and info.value.seq == len(before[0])
    # another actor who may issue the command learns only that the id is taken
    with pytest.raises(RequestConflict) as info:
        env.run("med2", cmd.RecordMinutes("甲"), request_id="k1")
    assert info.value.seq is None and "med1" not in str(info.value)
    assert "record_minutes" not in info.value.message.split("taken")[0]
    # someone with no standing in the case learns nothing: refused as for any other id
    env.add_person("stranger")
    with pytest.raises(NotPermitted):
        env.run("stranger", cmd.RecordMinutes("甲"), request_id="k1")
    assert env.snapshot() == before
    # the same request id on another case is another request
    other = Env(store=env.store, world=env.world, clock=env.clock, case_id="case-2")
    other.drive("negotiating")
    assert other.run("med1", cmd.RecordMinutes("甲"), request_id="k1").case_id == "case-2"


def test_with_sealed_personal_data_a_reused_request_id_is_compared_in_plaintext() -> None:
    from mediation import AESGCMVault

    env = Env()
    env.service = CaseService(
        env.store, directory=env.world.directory, clock=env.clock, vault=AESGCMVault()
    )
    first = env.service.open(env["p1"], apply_cmd(), request_id="form-1")
    assert env.service.open(env["p1"], apply_cmd(), request_id="form-1").id == first.id
    with pytest.raises(RequestConflict):
        env.service.open(env["p1"], apply_cmd(("p1",), ("p3",)), request_id="form-1")
    with pytest.raises(RequestConflict):  # another phone number: personal data differs too
        env.service.open(env["p1"], _with_phone(apply_cmd(), "13900000000"), request_id="form-1")
    assert len(env.store.cases()) == 1


def _with_phone(command: cmd.Apply, phone: str) -> cmd.Apply:
    first = attrs.evolve(command.applicants[0], phone=phone)
    return attrs.evolve(command, applicants=(first, *command.applicants[1:]))


def test_a_retried_open_returns_the_case_it_opened(make_store: Callable[[], Store]) -> None:
    env = Env(store=make_store())
    first = env.service.open(env["p1"], apply_cmd(), request_id="open-1")
    other = CaseService(make_store(), directory=env.world.directory, clock=env.clock)
    again = other.open(env["p1"], apply_cmd(), request_id="open-1")
    assert again.id == first.id == CaseService.request_case_id("p1", "open-1")
    assert [s.case_id for s in env.store.cases()] == [first.id]
    # another applicant with the same request id opens another case
    assert env.service.open(env["p3"], apply_cmd(("p3",)), request_id="open-1").id != first.id


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, 7, "换行\n"])
def test_a_malformed_request_id_is_bad_input(bad: Any) -> None:
    env = Env()
    env.drive("negotiating")
    before = env.snapshot()
    with pytest.raises(InvalidCommand) as info:
        env.run("med1", cmd.RecordMinutes("甲"), request_id=bad)
    assert info.value.field == "request_id"
    assert env.snapshot() == before


# -- clocks ------------------------------------------------------------------------------------------


@attrs.define
class TakingTurns(Env):
    """Two servers take turns on the same case, each with its own clock."""

    servers: list[CaseService] = attrs.field(factory=list)
    ahead: ManualClock = attrs.field(factory=ManualClock)
    turn: int = 0

    def run(self, who: str | Any, command: cmd.Command, **kw: Any) -> Any:
        self.clock.advance(milliseconds=1)
        self.ahead.advance(milliseconds=1)
        self.turn += 1
        actor = self[who] if isinstance(who, str) else who
        return self.servers[self.turn % 2].execute(actor, self.case_id, command, **kw)


@pytest.mark.parametrize("skew", [dt.timedelta(milliseconds=10), dt.timedelta(seconds=1)])
def test_servers_whose_clocks_differ_keep_every_case_valid(
    make_store: Callable[[], Store], skew: dt.timedelta
) -> None:
    ahead = ManualClock(EPOCH + skew)
    env = TakingTurns(store=make_store())
    env.servers = [
        CaseService(make_store(), directory=env.world.directory, clock=env.clock),
        CaseService(make_store(), directory=env.world.directory, clock=ahead),
    ]
    env.ahead = ahead
    env.drive("resolved")
    verdict = strict_ok(env.store, env.case_id)
    assert verdict.state == "resolved"
    events = CaseService(make_store()).history(env.case_id)
    held = [e for e in events if e.clock is not None]
    assert held, "the server behind must have had its events held at the last event's time"
    for e in held:
        assert e.clock < e.at and e.at - e.clock <= skew
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))


def test_a_clock_that_steps_back_an_hour_is_refused_and_bricks_nothing(
    make_store: Callable[[], Store],
) -> None:
    env = Env(store=make_store())
    env.drive("negotiating")
    before = env.snapshot()
    env.clock.advance(hours=-1)  # an NTP step back
    with pytest.raises(ClockSkew) as info:
        env.run("med1", cmd.RecordMinutes("时钟回拨"))
    err = info.value
    assert err.clock < err.last and err.tolerance == 300
    assert err.last == parse_body(before[0][-1].body)["at"]
    assert env.snapshot() == before
    # the case still loads and verifies everywhere, and goes on once the clock is right again
    assert CaseService(make_store()).case(env.case_id).state == "negotiating"
    strict_ok(env.store, env.case_id)
    env.clock.advance(hours=1, seconds=1)
    env.run("med1", cmd.RecordMinutes("时钟恢复"))
    strict_ok(env.store, env.case_id)


def test_a_service_without_tolerance_holds_any_step_back() -> None:
    env = Env()
    env.service = CaseService(
        env.store, directory=env.world.directory, clock=env.clock, clock_tolerance=None
    )
    env.drive("negotiating")
    last = env.service.history(env.case_id)[-1].at
    env.clock.advance(hours=-1)
    event = env.run("med1", cmd.RecordMinutes("时钟回拨"))
    assert event.at == last and event.clock == env.clock.now
    strict_ok(env.store, env.case_id)


def test_a_small_step_back_is_held_at_the_last_events_time() -> None:
    env = Env()
    env.drive("negotiating")
    last = env.service.history(env.case_id)[-1].at
    env.clock.advance(seconds=-2)
    event = env.run("med1", cmd.RecordMinutes("慢两秒"))
    assert (event.at, event.clock) == (last, env.clock.now)
    body = parse_body(event.stored.body)
    assert body["clock"] < body["at"] == parse_body(env.store.read(env.case_id)[-2].body)["at"]
    strict_ok(env.store, env.case_id)


# -- the conflict bound ------------------------------------------------------------------------------


def test_a_conflict_that_outlasts_the_attempts_is_raised_and_writes_nothing() -> None:
    class AlwaysLate(MemoryStore):
        def append(self, summary: Any, records: Any, expected_seq: int) -> None:
            raise ConcurrencyConflict("always late", expected_seq=expected_seq)

    env = Env()
    env.drive("negotiating")
    late = AlwaysLate()
    for rec in env.store.read(env.case_id):
        MemoryStore.append(late, env.store.summary(env.case_id), (rec,), rec.seq - 1)  # type: ignore[arg-type]
    service = CaseService(late, directory=env.world.directory, clock=env.clock, attempts=3)
    with pytest.raises(ConcurrencyConflict):
        service.execute(env["med1"], env.case_id, cmd.RecordMinutes("甲"))
    assert len(late.read(env.case_id)) == len(env.store.read(env.case_id))
    with pytest.raises(InvalidCommand):
        CaseService(late, attempts=0)
    for bad in (dt.timedelta(seconds=-1), 300):
        with pytest.raises(InvalidCommand):
            CaseService(late, clock_tolerance=bad)  # type: ignore[arg-type]


# -- a connection lost mid-append ----------------------------------------------------------------------


@pytest.mark.postgres
def test_a_connection_lost_mid_append_is_an_unknown_outcome_that_a_retry_settles() -> None:
    import psycopg

    from mediation import OutcomeUnknown
    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("lost") as conninfo:
        store = PostgresStore(conninfo)
        env = Env(store=store)
        env.drive("negotiating")
        before = len(store.read(env.case_id))
        # the server ends the writing session while the append's statement runs
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(
                "CREATE FUNCTION lose_connection() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF NEW.request_id = 'doomed' THEN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF; "
                "RETURN NEW; END $$"
            )
            admin.execute(
                "CREATE TRIGGER lose_connection BEFORE INSERT ON mediation_events "
                "FOR EACH ROW EXECUTE FUNCTION lose_connection()"
            )
        with pytest.raises(OutcomeUnknown) as info:
            env.run("med1", cmd.RecordMinutes("连接中断"), request_id="doomed")
        assert info.value.case == env.case_id and info.value.seq == before + 1
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute("DROP TRIGGER lose_connection ON mediation_events")
        # the host retries with the same request id: written once, whatever the first attempt did
        event = env.run("med1", cmd.RecordMinutes("连接中断"), request_id="doomed")
        again = env.run("med1", cmd.RecordMinutes("连接中断"), request_id="doomed")
        assert event.hash == again.hash and event.seq == before + 1
        assert [r.request_id for r in store.read(env.case_id)].count("doomed") == 1
        strict_ok(store, env.case_id)
        store.close()


@pytest.mark.postgres
def test_a_version_1_postgres_schema_is_migrated() -> None:
    import psycopg

    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("v1") as conninfo:
        store = PostgresStore(conninfo)
        env = Env(store=store)
        env.drive("registered")
        records = store.read(env.case_id)
        store.close()
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute("DROP INDEX mediation_events_request")
            admin.execute("ALTER TABLE mediation_events DROP COLUMN request_id")
            admin.execute("ALTER TABLE mediation_cases DROP COLUMN workflow")
            admin.execute("UPDATE mediation_meta SET value = '1'")
        from mediation import StoreError

        legacy = PostgresStore(conninfo, create=False)  # read-only use of the old schema
        assert legacy.read(env.case_id) == records == list(legacy.scan())
        assert legacy.find_request(env.case_id, "m1") is None
        with pytest.raises(StoreError, match="version is 1"):
            legacy.append(legacy.summary(env.case_id), records[:1], 0)  # type: ignore[arg-type]
        legacy.close()
        migrated = PostgresStore(conninfo)
        assert migrated.schema_version() == 3
        assert migrated.read(env.case_id) == records
        env.service = CaseService(migrated, directory=env.world.directory, clock=env.clock)
        event = env.run("director", cmd.AssignMediator("med1", lead=True), request_id="m1")
        assert migrated.find_request(env.case_id, "m1") == event.stored
        strict_ok(migrated, env.case_id)
        migrated.close()


class _LateLookup(SQLiteStore):
    """A store whose next ``find_request`` lets another worker record the same request right after
    looking: the double submit that reaches two processes at the same moment."""

    meanwhile: Callable[[], object] | None = None

    def find_request(self, case_id: str, request_id: str) -> Any:
        found = super().find_request(case_id, request_id)
        meanwhile, _LateLookup.meanwhile = _LateLookup.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return found


@pytest.mark.parametrize("command", ["register", "record_minutes"])
def test_a_double_submit_on_two_workers_at_once_gets_the_first_event(
    tmp_path: Path, command: str
) -> None:
    """The second copy looked for its request before the first wrote it; then its decision is
    refused (register: no longer legal) or would write twice (minutes): it must answer with the
    first copy's event instead, and write nothing."""
    env = Env(store=SQLiteStore(tmp_path / "cases.db"))
    env.drive("applied" if command == "register" else "negotiating")
    if command == "register":
        env.run("p2", cmd.RecordConsent())
    who, issued = (
        ("director", cmd.Register()) if command == "register" else ("med1", cmd.RecordMinutes("甲"))
    )
    worker_b = CaseService(
        _LateLookup(tmp_path / "cases.db"), directory=env.world.directory, clock=env.clock
    )
    first: list[Any] = []
    _LateLookup.meanwhile = lambda: first.append(env.run(who, issued, request_id="k1"))
    second = worker_b.execute(env[who], env.case_id, issued, request_id="k1")
    assert second.hash == first[0].hash
    assert [r.request_id for r in env.store.read(env.case_id)].count("k1") == 1
    strict_ok(env.store, env.case_id)


def test_a_double_submitted_opening_on_two_workers_at_once_opens_one_case(tmp_path: Path) -> None:
    env = Env(store=SQLiteStore(tmp_path / "cases.db"))
    worker_b = CaseService(
        _LateLookup(tmp_path / "cases.db"), directory=env.world.directory, clock=env.clock
    )
    opened: list[Any] = []
    _LateLookup.meanwhile = lambda: opened.append(
        env.service.open(env["p1"], apply_cmd(), request_id="form-1")
    )
    again = worker_b.open(env["p1"], apply_cmd(), request_id="form-1")
    assert again.id == opened[0].id
    assert [s.case_id for s in env.store.cases()] == [again.id]


def test_a_clock_outside_the_calendar_in_utc_is_bad_input_not_a_crash() -> None:
    env = Env()
    env.clock.now = dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(InvalidCommand, match="outside the years"):
        env.open()
    assert env.snapshot() == ((), ())


class _LostAnswer(MemoryStore):
    """A store whose next append ends in OutcomeUnknown: after writing (``written``), or after
    another writer took the seq (``taken``), or with nothing there (``nothing``)."""

    def __init__(self, outcome: str) -> None:
        super().__init__()
        self.outcome: str | None = outcome
        self.other: Any = None

    def append(self, summary: Any, records: Any, expected_seq: int) -> None:
        outcome, self.outcome = self.outcome, None
        if outcome == "written":
            super().append(summary, records, expected_seq)
        elif outcome == "taken":
            self.other()  # another worker's command lands on this seq
        if outcome is not None:
            from mediation import OutcomeUnknown

            raise OutcomeUnknown("the connection broke after COMMIT was sent")
        super().append(summary, records, expected_seq)


@pytest.mark.parametrize("outcome", ["written", "taken", "nothing"])
def test_an_unknown_outcome_is_settled_by_reading_the_seq(outcome: str) -> None:
    from mediation import OutcomeUnknown

    env = Env()
    env.drive("negotiating")
    store = _LostAnswer("")
    for rec in env.store.read(env.case_id):
        MemoryStore.append(store, env.store.summary(env.case_id), (rec,), rec.seq - 1)  # type: ignore[arg-type]
    service = CaseService(store, directory=env.world.directory, clock=env.clock)
    seq = len(store.read(env.case_id)) + 1
    other = CaseService(store, directory=env.world.directory, clock=env.clock)
    store.other = lambda: other.execute(env["med1"], env.case_id, cmd.ShareProposal("另一位"))
    store.outcome = outcome
    if outcome == "nothing":
        with pytest.raises(OutcomeUnknown):
            service.execute(env["med1"], env.case_id, cmd.RecordMinutes("甲"))
        assert len(store.read(env.case_id)) == seq - 1
        return
    event = service.execute(env["med1"], env.case_id, cmd.RecordMinutes("甲"))
    records = store.read(env.case_id)
    # written: the event is the one at its seq; taken: decided again after the other one
    assert event.seq == (seq if outcome == "written" else seq + 1)
    assert records[event.seq - 1] == event.stored and len(records) == event.seq
    assert strict_ok(store, env.case_id).case.minutes == 2


def test_a_request_recorded_by_the_last_lost_race_is_returned_not_refused() -> None:
    """The last attempt loses its race to another attempt of the same request: the answer is that
    attempt's event, not ConcurrencyConflict."""

    class Racing(MemoryStore):
        other: Any = None

        def append(self, summary: Any, records: Any, expected_seq: int) -> None:
            other, Racing.other = Racing.other, None
            if other is not None:
                other()
            super().append(summary, records, expected_seq)

    env = Env(store=Racing())
    env.drive("negotiating")
    worker_b = CaseService(env.store, directory=env.world.directory, clock=env.clock, attempts=1)
    first: list[Any] = []
    Racing.other = lambda: first.append(env.run("med1", cmd.RecordMinutes("甲"), request_id="k9"))
    again = worker_b.execute(env["med1"], env.case_id, cmd.RecordMinutes("甲"), request_id="k9")
    assert again.hash == first[0].hash


@pytest.mark.postgres
def test_a_pooled_connection_the_server_ended_is_replaced_not_an_unknown_outcome() -> None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from mediation.stores.postgres import PostgresStore

    with pg.fresh_schema("stale") as conninfo:
        name = f"mediation-stale-{uuid.uuid4().hex[:8]}"  # only this store's connections end
        store = PostgresStore(make_conninfo(conninfo, application_name=name), pool_size=1)
        env = Env(store=store)
        env.drive("negotiating")
        with psycopg.connect(conninfo, autocommit=True) as admin:  # a restart, an idle timeout
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        event = env.run("med1", cmd.RecordMinutes("重连之后"))
        assert store.read(env.case_id)[-1] == event.stored
        store.close()
