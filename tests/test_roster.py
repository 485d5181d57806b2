"""Grants as evidence (issue 9, item 1): the roster (人员名录) in the store, and every role claim
checked against it with no outside directory."""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event as hypothesis_event
from hypothesis import given, settings
from hypothesis import strategies as st

import pg
from helpers import ManualClock
from mediation import Actor, CaseService, FaultKind, InvalidCommand, NotPermitted, demo, verify
from mediation import commands as cmd
from mediation._events import (
    GENESIS,
    StoredEvent,
    canonical_bytes,
    encode_body,
    event_hash,
    format_time,
    make_body,
    parse_time,
)
from mediation._export import ExportReader, export_store, import_export
from mediation._roster import GRACE, roster_id, rosters_of
from mediation._verify_store import verify_store
from mediation._workflow import WORKFLOW
from mediation.cli import main
from mediation.stores import MemoryStore, SQLiteStore
from mediation.testing import Driven, driven_cases
from test_one_decision import FRESH, REFUSALS, injections

C = demo.COMMITTEE
REG = demo.REGISTRAR
HOLDERS = {"platform": ["system"], "dir-li": ["director"], "med-wang": ["mediator"]}
BASIS = "居民会议推选（人民调解法第九条）"
UPSTAIRS, DOWNSTAIRS = Actor("res-1502"), Actor("res-1402")


def _service(store: Any = None, clock: Any = None) -> CaseService:
    return demo.new_service(store if store is not None else MemoryStore(), clock=clock)


def _recorded_case(store: Any = None) -> tuple[CaseService, str]:
    service = _service(store)
    demo.record_roster(service)
    return service, demo.noise_dispute(service)


def _bodies(records: list[StoredEvent]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in records]


def _rechain(bodies: list[dict[str, Any]]) -> list[StoredEvent]:
    """Re-number, re-link and re-hash ``bodies``, as a forger with database access would."""
    out, prev = [], GENESIS
    for seq, body in enumerate(bodies, start=1):
        body = {**body, "seq": seq, "prev": prev}
        data = canonical_bytes(body, checked=False)
        out.append(StoredEvent(body["case"], seq, event_hash(data), data))
        prev = out[-1].hash
    return out


def _find(bodies: list[dict[str, Any]], type_: str) -> int:
    return next(i for i, b in enumerate(bodies) if b["type"] == type_)


# -- the evidence: recorded claims verify, forged ones do not -----------------------------------------


def test_a_recorded_history_verifies_every_claim_and_names_the_roster_seq() -> None:
    service, cid = _recorded_case()
    records = service.store.read(cid)
    verdict = verify(records, rosters=rosters_of(service.store), strict=True)
    assert verdict.ok and verdict.unchecked == ()
    assert {b.get("roster") for b in _bodies(records)} == {4}  # open + three grants
    assert service.verify(cid).ok and service.verify(cid).unchecked == ()


@pytest.mark.parametrize(
    ("type_", "actor"),
    # (not a party: a party claiming the role on its own case is refused by guard impartial)
    [("register", "res-1302"), ("register", "med-wang"), ("archive", "nobody")],
)
def test_a_forged_role_claim_fails_without_any_directory(type_: str, actor: str) -> None:
    service, cid = _recorded_case()
    bodies = _bodies(service.store.read(cid))
    i = _find(bodies, type_)
    bodies[i]["actor"] = actor  # someone who never held the director's role acts as director
    forged = _rechain(bodies)
    rosters = rosters_of(service.store)
    verdict = verify(forged, rosters=rosters)
    assert verdict.fault is not None
    assert (verdict.fault.seq, verdict.fault.kind) == (i + 1, FaultKind.UNAUTHORIZED)
    # without the roster the claim is the host's word: accepted, and said to be unchecked
    trusted = verify(forged)
    assert trusted.ok and i + 1 in trusted.unchecked
    assert "not checked" in trusted.describe() and "无法核对" in trusted.describe("zh")


def test_assigning_someone_the_roster_never_made_a_mediator_fails_g3() -> None:
    service, cid = _recorded_case()
    bodies = _bodies(service.store.read(cid))
    i = _find(bodies, "assign_mediator")
    bodies[i]["payload"]["mediator"] = "res-1402"
    forged = _rechain(bodies[: i + 1])
    verdict = verify(forged, rosters=rosters_of(service.store))
    assert verdict.fault is not None and verdict.fault.seq == i + 1
    assert verdict.fault.kind is FaultKind.ILLEGAL_TRANSITION
    assert "G3" in verdict.fault.message or "mediator" in verdict.fault.message


def test_an_event_that_drops_its_roster_seq_is_refused_once_a_roster_is_kept() -> None:
    service, cid = _recorded_case()
    bodies = _bodies(service.store.read(cid))
    i = _find(bodies, "register")
    del bodies[i]["roster"]
    verdict = verify(_rechain(bodies), rosters=rosters_of(service.store))
    assert verdict.fault is not None and verdict.fault.kind is FaultKind.UNAUTHORIZED
    assert verdict.fault.seq == i + 1 and "names none" in verdict.fault.message


@pytest.mark.parametrize("seq", [5, 0, True, "4"])
def test_a_roster_seq_the_roster_does_not_hold_is_refused(seq: object) -> None:
    service, cid = _recorded_case()
    bodies = _bodies(service.store.read(cid))
    i = _find(bodies, "register")
    bodies[i]["roster"] = seq
    verdict = verify(_rechain(bodies), rosters=rosters_of(service.store))
    assert verdict.fault is not None and verdict.fault.seq == i + 1
    assert verdict.fault.kind in (FaultKind.UNAUTHORIZED, FaultKind.MALFORMED)


def _opened_and_consented(clock: ManualClock) -> tuple[CaseService, str]:
    service = _service(clock=clock)
    service.sync_roster(REG, C, HOLDERS, basis=BASIS)  # roster seq 4
    clock.advance(hours=1)
    case = service.open(
        UPSTAIRS,
        cmd.Apply(
            committee=C,
            category="邻里",
            subtype="噪声",
            description="楼上噪声",
            applicants=(cmd.Party("res-1502", "陈女士"),),
            respondents=(cmd.Party("res-1402", "刘先生"),),
        ),
    )
    clock.advance(hours=1)
    service.execute(DOWNSTAIRS, case.id, cmd.RecordConsent())
    return service, case.id


def _forged_register(service: CaseService, cid: str, at: dt.datetime, roster: int | None) -> Any:
    case = service.case(cid)
    raw = encode_body(
        case_id=cid,
        seq=case.seq + 1,
        type="register",
        at=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        actor="dir-li",
        acted_as="director",
        state=WORKFLOW.command("register").target or "",
        payload=cmd.to_payload(cmd.Register(cmd.Scope(civil=True))),
        prev=case.head,
        workflow=WORKFLOW.version,
        roster=roster,
    )
    forged = [*service.store.read(cid), StoredEvent(cid, case.seq + 1, event_hash(raw), raw)]
    return verify(forged, rosters=rosters_of(service.store))


def test_a_revoked_role_is_refused_live_and_a_forgery_on_the_stale_roster_fails() -> None:
    clock = ManualClock()
    service, cid = _opened_and_consented(clock)
    clock.advance(hours=1)
    service.revoke_role(REG, C, "dir-li", "director", basis="任期届满")  # roster seq 5
    clock.advance(hours=1)
    with pytest.raises(NotPermitted):
        service.execute(demo.DIRECTOR, cid, cmd.Register(cmd.Scope(civil=True)))
    assert service.store.read(cid)[-1].seq == 2  # nothing written
    now = clock()
    stale = _forged_register(service, cid, now, 4)
    assert stale.fault is not None and stale.fault.kind is FaultKind.UNAUTHORIZED
    assert "superseded" in stale.fault.message
    current = _forged_register(service, cid, now, 5)
    assert current.fault is not None and current.fault.kind is FaultKind.UNAUTHORIZED
    # within the grace a decision on the roster before the revocation is a race, not a forgery
    racing = _forged_register(service, cid, now - dt.timedelta(hours=1) + GRACE / 2, 4)
    assert racing.ok, racing.describe()


def test_a_grant_after_the_event_does_not_back_it() -> None:
    clock = ManualClock()
    service, cid = _opened_and_consented(clock)
    before = clock()
    clock.advance(hours=1)
    service.grant_role(REG, C, "dir-zhao", "director", basis="补选")  # seq 5, after ``before``
    verdict = _forged_register(service, cid, before, 5)
    assert verdict.fault is not None and "recorded after it" in verdict.fault.message


def test_the_host_can_narrow_the_roster_but_never_widen_it() -> None:
    clock = ManualClock()
    service, cid = _opened_and_consented(clock)
    clock.advance(hours=1)
    # the host asserts director for someone the roster does not record: refused
    with pytest.raises(NotPermitted):
        service.execute(
            Actor.with_roles("res-1502", {C: ["director"]}), cid, cmd.Register(cmd.Scope())
        )
    # the roster records dir-li as director, but the host's session asserts no role: refused
    with pytest.raises(NotPermitted):
        service.execute(Actor("dir-li"), cid, cmd.Register(cmd.Scope(civil=True)))
    service.execute(demo.DIRECTOR, cid, cmd.Register(cmd.Scope(civil=True)))
    assert service.verify(cid).ok


def test_a_grant_is_seen_at_once_by_another_service_on_the_same_store() -> None:
    clock = ManualClock()
    service, cid = _opened_and_consented(clock)
    other = _service(service.store, clock=clock)
    zhao = Actor.with_roles("dir-zhao", {C: ["director"]})
    with pytest.raises(NotPermitted):
        other.execute(zhao, cid, cmd.Register(cmd.Scope(civil=True)))
    service.grant_role(REG, C, "dir-zhao", "director", basis="补选")
    # ``other`` read the roster a moment ago; a refusal reads it again before it stands
    other.execute(zhao, cid, cmd.Register(cmd.Scope(civil=True)))
    assert other.verify(cid).ok


# -- keeping the roster ----------------------------------------------------------------------------


def test_sync_grants_and_revokes_to_match_the_directory_and_is_idempotent() -> None:
    service = _service()
    first = service.sync_roster(REG, C, HOLDERS, basis=BASIS)
    assert [e.command.name for e in first] == ["open_roster", *["grant_role"] * 3]
    assert service.sync_roster(REG, C, HOLDERS, basis=BASIS) == ()
    changed = service.sync_roster(
        REG, C, {"dir-li": ["director", "mediator"], "med-zhou": ["mediator"]}, basis="换届"
    )
    names = [(e.command.name, e.command.person, e.command.role) for e in changed]  # type: ignore[union-attr]
    assert names == [
        ("grant_role", "dir-li", "mediator"),
        ("revoke_role", "med-wang", "mediator"),
        ("grant_role", "med-zhou", "mediator"),
        ("revoke_role", "platform", "system"),
    ]
    roster = service.roster(C)
    assert roster is not None
    assert roster.holders() == {
        "dir-li": frozenset({"director", "mediator"}),
        "hr-sync": frozenset({"registrar"}),
        "med-zhou": frozenset({"mediator"}),
    }
    assert roster.roles("med-wang", 4) == {"mediator"} and roster.roles("med-wang") == set()
    # every entry says who, when and on what basis
    assert all(e.actor == REG.id and e.at for e in roster.entries)
    assert roster.entries[-1].command.basis == "换届"  # type: ignore[union-attr]


def test_only_a_registrar_keeps_the_roster_and_the_last_one_stays() -> None:
    service = _service()
    service.sync_roster(REG, C, HOLDERS, basis=BASIS)
    before = list(service.store.scan())
    with pytest.raises(NotPermitted):
        service.grant_role(demo.DIRECTOR, C, "x", "mediator", basis="自行任命")
    with pytest.raises(InvalidCommand):
        service.revoke_role(REG, C, REG.id, "registrar", basis="离职")
    with pytest.raises(InvalidCommand):
        service.grant_role(REG, C, "med-wang", "mediator", basis="重复")
    with pytest.raises(InvalidCommand):
        service.revoke_role(REG, C, "med-zhou", "mediator", basis="未曾任命")
    for bad in ({"role": "chief"}, {"basis": " "}, {"person": "bad id!"}):
        kw = {"person": "x", "role": "mediator", "basis": "b", **bad}
        with pytest.raises(InvalidCommand):
            service.grant_role(REG, C, kw["person"], kw["role"], basis=kw["basis"])
    with pytest.raises(InvalidCommand):
        service.sync_roster(REG, C, {"x": "mediator"}, basis=BASIS)
    assert list(service.store.scan()) == before  # nothing written by any refusal
    service.grant_role(REG, C, "hr-2", "registrar", basis="增设")
    service.revoke_role(Actor("hr-2"), C, REG.id, "registrar", basis="离职")


def test_rosters_are_not_cases() -> None:
    service, cid = _recorded_case()
    assert [s.case_id for s in service.store.cases()] == [cid]
    assert roster_id(C) in service.store.case_ids()
    assert service.store.summary(roster_id(C)) is not None
    with pytest.raises(InvalidCommand):
        service.execute(demo.DIRECTOR, roster_id(C), cmd.Archive())


# -- the roster as evidence: tampering, stores, exports -----------------------------------------------


def test_a_tampered_roster_is_reported_and_backs_nothing_after_the_fault(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "m.db"))
    _, cid = _recorded_case(store)
    result = verify_store(store, jobs=1)
    assert all(v.ok for v in result.verdicts) and len(result.verdicts) == 2
    with sqlite3.connect(tmp_path / "m.db") as raw:  # a database administrator's edit
        raw.execute("DROP TRIGGER mediation_events_no_update")
        raw.execute(
            "UPDATE mediation_events SET body = replace(body, 'med-wang', 'res-1402') "
            "WHERE case_id = ? AND seq = 3",
            (roster_id(C),),
        )
    verdicts = {v.case_id: v for v in verify_store(store, jobs=1).verdicts}
    assert verdicts[roster_id(C)].fault is not None
    assert verdicts[roster_id(C)].fault.kind is FaultKind.ALTERED  # type: ignore[union-attr]
    # the case's claims past the roster's first fault are not backed by anything
    assert verdicts[cid].fault is not None
    assert verdicts[cid].fault.kind is FaultKind.UNAUTHORIZED  # type: ignore[union-attr]
    store.close()


def test_an_export_carries_the_roster_first_and_verifies_on_its_own(tmp_path: Path) -> None:
    service, cid = _recorded_case()
    buf = io.StringIO()
    export_store(service.store, out=buf, case_ids=[cid])
    lines = buf.getvalue().splitlines()
    assert json.loads(lines[1])["case"] == roster_id(C)
    cases = list(ExportReader(io.BytesIO(buf.getvalue().encode()), "x"))
    target = MemoryStore()
    import_export(cases, target)
    assert verify_store(target, jobs=1).verdicts and all(
        v.ok for v in verify_store(target).verdicts
    )
    # a later export of the same committee (its roster grown) goes into the same archive
    service.grant_role(REG, C, "med-zhou", "mediator", basis="聘任")
    later = io.StringIO()
    export_store(service.store, out=later, case_ids=[cid])
    cases = list(ExportReader(io.BytesIO(later.getvalue().encode()), "x"))
    with pytest.raises(Exception, match="already exists"):
        import_export(cases, target)  # the case itself is there already
    assert len(target.read(roster_id(C))) == 4  # and nothing was written


# -- the command line ---------------------------------------------------------------------------------


def _cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_sync_show_and_verify_with_no_directory(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    directory = {p: {C: roles} for p, roles in HOLDERS.items()}
    code, out, _ = _cli(
        "roster", "sync", "--db", db, "--actor", "hr-sync", "--basis", BASIS, "-",
        stdin=json.dumps(directory),
    )  # fmt: skip
    assert code == 0 and "grant_role med-wang mediator" in out
    code, out, _ = _cli("--lang", "zh", "roster", "show", "--db", db, "--committee", C, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["holders"]["dir-li"] == ["director"] and shown["seq"] == 4
    store = SQLiteStore(db)
    # the roster was recorded now, on the real clock: the case follows it
    cid = demo.noise_dispute(_service(store, demo.StepClock(dt.datetime.now(dt.timezone.utc))))
    store.close()
    code, out, _ = _cli("verify", "--db", db, "--json")
    assert code == 0 and all(v["unchecked"] == [] for v in json.loads(out)["cases"])
    code, _, err = _cli("roster", "show", "--db", db, "--committee", "nowhere")
    assert code == 5 and "nowhere" in err
    code, _, err = _cli(
        "roster", "grant", "--db", db, "--actor", "dir-li", "--committee", C,
        "--person", "x", "--role", "mediator", "--basis", "b",
    )  # fmt: skip
    assert code == 5 and "registrar" in err and "Traceback" not in err
    assert cid


def test_cli_verify_says_which_claims_it_could_not_check(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    store = SQLiteStore(db)
    cid = demo.noise_dispute(_service(store))  # no roster kept
    store.close()
    code, out, _ = _cli("verify", "--db", db)
    assert code == 0 and "not checked" in out
    code, out, _ = _cli("verify", "--db", db, "--json")
    verdict = json.loads(out)["cases"][0]
    assert verdict["case"] == cid and len(verdict["unchecked"]) >= 5


# -- concurrency: what the service accepts while the roster changes, the verifier accepts ------------


@pytest.mark.parametrize("backend", ["sqlite", "memory", "postgres"])
def test_commands_racing_roster_changes_all_verify(tmp_path: Path, backend: str) -> None:
    if backend == "postgres":
        with pg.fresh_schema("roster") as conninfo:
            from mediation.stores.postgres import PostgresStore

            _race(PostgresStore(conninfo, pool_size=4))
        return
    _race(SQLiteStore(str(tmp_path / "m.db")) if backend == "sqlite" else MemoryStore())


def _race(store: Any) -> None:
    """Three services (as three processes would) open cases and register them as a director
    whose role a fourth keeps revoking and granting again: every case the director registered
    verifies, and none is left unchecked."""
    keeper = CaseService(store)
    keeper.sync_roster(REG, C, {**HOLDERS, "dir-zhao": ["director"]}, basis=BASIS)
    workers = [CaseService(store) for _ in range(3)]
    zhao = Actor.with_roles("dir-zhao", {C: ["director"]})
    stop = threading.Event()
    accepted: list[str] = []
    errors: list[BaseException] = []

    def toggle() -> None:
        held = True
        while not stop.is_set():
            if held:
                keeper.revoke_role(REG, C, "dir-zhao", "director", basis="暂停")
            else:
                keeper.grant_role(REG, C, "dir-zhao", "director", basis="恢复")
            held = not held
            stop.wait(0.002)  # each state lasts a moment: commands meet both

    def work(service: CaseService, n: int) -> None:
        try:
            for i in range(12):
                case = service.open(
                    UPSTAIRS,
                    cmd.Apply(
                        committee=C,
                        category="邻里",
                        description=f"案 {n}-{i}",
                        applicants=(cmd.Party("res-1502", "陈女士"),),
                        respondents=(cmd.Party("res-1402", "刘先生"),),
                    ),
                )
                service.execute(DOWNSTAIRS, case.id, cmd.RecordConsent())
                try:
                    service.execute(zhao, case.id, cmd.Register(cmd.Scope(civil=True)))
                    accepted.append(case.id)
                except NotPermitted:
                    pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    toggler = threading.Thread(target=toggle)
    threads = [threading.Thread(target=work, args=(s, n)) for n, s in enumerate(workers)]
    toggler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    toggler.join()
    assert not errors
    result = verify_store(store, jobs=1)
    bad = [v.describe() for v in result.verdicts if not v.ok]
    assert not bad
    assert all(not v.unchecked for v in result.verdicts)
    assert len(result.verdicts) == 1 + 36 and accepted  # the roster and every case
    store.close()


# -- one decision, with a roster: what the live path decides on the roster, replay decides alike ---


@pytest.mark.parametrize("fresh", [False, True], ids=["on a case", "opening"])
@settings(max_examples=60)
@given(d=driven_cases(max_steps=25), data=st.data())
def test_replay_on_the_roster_decides_as_the_live_path(
    fresh: bool, d: Driven, data: st.DataObject
) -> None:
    """The committee's roster records some of the roles the host asserts (a random subset: the
    rest were revoked, or never synced); an injected command is decided live on the roster and
    replayed on it: accepted live → the same bytes verify strictly, with every claim checked;
    refused live → replay refuses it with the same error."""
    case_id = FRESH if fresh else d.case_id
    records = [] if fresh else d.service.store.read(case_id)
    actor, command, claim = data.draw(injections(d, case_id), label="injected")
    case = d.service.case(case_id) if records else None
    last = parse_time(case.updated_at) if case else dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    now = last + dt.timedelta(days=1)
    world = d.world.committee
    granted = sorted(
        (a.id, g.role.value)
        for a in d.world.people.values()
        for g in a.grants
        if g.committee == world
    )
    kept = (
        data.draw(st.lists(st.sampled_from(granted), unique=True), label="recorded")
        if granted
        else []
    )
    store = MemoryStore()
    if records:
        store.append(d.service.case(case_id).summary(), records, 0)
    # the copy is sealed under the keys of the service that wrote it
    live = CaseService(store, directory=d.world.directory, clock=lambda: now, vault=d.service.vault)
    holders: dict[str, list[str]] = {}
    for person, role in kept:
        holders.setdefault(person, []).append(role)
    live.sync_roster(REG, world, holders, basis=BASIS)
    payload = cmd.to_payload(command)
    if command.name in {c.name for c in WORKFLOW.opening} and not payload["profile"]:
        payload["profile"] = live.policy.recusal
    link = WORKFLOW.command(command.name).link
    if link and payload.get("to") == "street_committee" and not payload[link[1]]:
        # the service names the case a transfer opens before deciding: so does the forger
        payload[link[1]] = CaseService.transfer_case_id(case_id, len(records) + 1)
    try:
        event = live.execute(actor, case_id, command, acting_as=claim)
    except REFUSALS as exc:
        error: Exception | None = exc
        hypothesis_event(f"refused: {type(exc).__name__}")
    else:
        error = None
        hypothesis_event("accepted")
        payload = dict(event.payload)  # as recorded: sealed, and what the service filled in
    rosters = rosters_of(store)
    roster = rosters[world]
    state = (
        event.state
        if error is None
        else (WORKFLOW.command(command.name).target or (case.state if case else "new"))
    )
    body = canonical_bytes(
        make_body(
            case_id=case_id,
            seq=len(records) + 1,
            type=command.name,
            at=format_time(now),
            actor=actor.id,
            acted_as=claim,
            state=state,
            payload=payload,
            prev=records[-1].hash if records else GENESIS,
            workflow=WORKFLOW.version,
            roster=roster.seq,
        )
    )
    forged = StoredEvent(case_id, len(records) + 1, event_hash(body), body)
    verdict = verify([*records, forged], case_id, rosters=rosters, strict=True)
    if error is None:
        assert forged.body == store.read(case_id)[-1].body
        assert verdict.ok, verdict.describe()
        assert len(records) + 1 not in verdict.unchecked
        return
    assert verdict.fault is not None, f"replay accepted what the live path refused: {error}"
    assert verdict.fault.seq == len(records) + 1
    assert type(verdict.fault.error) is type(error)
    assert str(verdict.fault.error) == str(error)


def test_timeline_and_report_check_claims_against_the_roster(tmp_path: Path) -> None:
    kept, bare = str(tmp_path / "kept.db"), str(tmp_path / "bare.db")
    with SQLiteStore(kept) as store:
        _, with_roster = _recorded_case(store)
    with SQLiteStore(bare) as store:
        without = demo.noise_dispute(_service(store))
    export = str(tmp_path / "kept.jsonl")
    assert _cli("export", "--db", kept, "-o", export)[0] == 0
    for source in (["--db", kept], [export]):
        code, out, _ = _cli("timeline", with_roster, *source)
        assert code == 0 and "valid" in out and "not checked" not in out
    code, out, _ = _cli("timeline", without, "--db", bare)
    assert code == 0 and "not checked" in out


def test_timeline_of_a_roster_lists_its_entries_and_report_points_there(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    with SQLiteStore(db) as store:
        _recorded_case(store)
    stream = roster_id(C)
    export = str(tmp_path / "m.jsonl")
    assert _cli("export", "--db", db, "-o", export)[0] == 0
    for source in (["--db", db], [export]):
        code, out, err = _cli("--lang", "en", "timeline", stream, *source)
        lines = out.splitlines()
        assert code == 0 and err == "", err
        assert lines[0].startswith("times: Asia/Shanghai")
        assert [line.split()[0] for line in lines[1:4]] == ["#1", "#2", "#3"]
        assert "grant_role med-wang mediator" in out and "人民调解法第九条" in out
        assert lines[-1] == f"roster of committee {C}: valid, 4 entries"
    code, out, _ = _cli("--lang", "zh", "timeline", stream, "--db", db)
    assert code == 0 and out.splitlines()[-1] == f"调委会 {C} 的人员名录：验证通过，共 4 条记录"
    code, out, _ = _cli("timeline", stream, "--db", db, "--json")
    document = json.loads(out)
    assert code == 0 and document["roster"] == C and document["exit"] == 0
    assert [e["type"] for e in document["entries"]] == ["open_roster"] + ["grant_role"] * 3
    assert document["holders"]["med-wang"] == ["mediator"] and document["verdict"]["ok"]
    # verify names it as a roster, not a case
    code, out, _ = _cli("--lang", "en", "verify", "--db", db)
    assert code == 0 and f"roster of committee {C}: valid, 4 entries" in out
    assert f"case {stream}" not in out
    # there is no report of a roster: exit 5, one line saying where to read it, no file
    html = tmp_path / "r.html"
    code, out, err = _cli("--lang", "en", "report", stream, "--db", db, "--html", str(html))
    assert code == 5 and out == "" and not html.exists()
    assert "not a case" in err and f"timeline {stream}" in err and "Traceback" not in err
    assert "roster show --db URL" in err
    code, _, err = _cli("--lang", "en", "report", stream, export, "--html", str(html))
    assert code == 5 and "not a case" in err and "roster show" not in err  # it reads --db only
    code, _, err = _cli("--lang", "en", "report", stream, "--html", str(html))
    assert code == 2 and "--db URL" in err  # no source: a usage error, as for a case
    code, _, err = _cli("--lang", "en", "timeline", "@roster:nowhere", "--db", db)
    assert code == 5 and "no roster @roster:nowhere" in err and "Traceback" not in err
    # a tampered roster: the entries before the fault, the fault, the integrity exit code
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TRIGGER mediation_events_no_update")
        raw.execute(
            "UPDATE mediation_events SET body = replace(body, 'med-wang', 'res-1402') "
            "WHERE case_id = ? AND seq = 3",
            (stream,),
        )
    code, out, _ = _cli("--lang", "en", "timeline", stream, "--db", db)
    assert code == 1 and "#3" not in out and "#2" in out
    assert out.splitlines()[-1].startswith(f"roster of committee {C}: INVALID at seq 3: altered")
    code, out, _ = _cli("timeline", stream, "--db", db, "--json")
    assert code == 1 and json.loads(out)["verdict"]["fault"]["seq"] == 3


def test_export_of_a_roster_named_on_its_own(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    with SQLiteStore(db) as store:
        _, cid = _recorded_case(store)
    out = str(tmp_path / "roster.jsonl")
    code, _, err = _cli("export", "--db", db, "--case", roster_id(C), "-o", out)
    assert code == 0, err
    lines = Path(out).read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["case"] for line in lines[1:-1]} == {roster_id(C)}
    assert len(lines) == 1 + 4 + 1  # the header, the entries, the end
    code, out_text, _ = _cli("--lang", "en", "verify", out)
    assert code == 0 and f"roster of committee {C}: valid, 4 entries" in out_text
    # with a case of its committee, the roster is written once, first
    both = str(tmp_path / "both.jsonl")
    code, _, err = _cli("export", "--db", db, "--case", roster_id(C), "--case", cid, "-o", both)
    assert code == 0, err
    cases = [json.loads(line)["case"] for line in Path(both).read_text().splitlines()[1:-1]]
    assert cases[:4] == [roster_id(C)] * 4 and set(cases[4:]) == {cid}
    code, _, err = _cli("--lang", "en", "export", "--db", db, "--case", "@roster:nowhere")
    assert code == 5 and "no roster @roster:nowhere" in err and "Traceback" not in err
