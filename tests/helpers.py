"""Shared builders for the domain-rule and boundary tests.

:class:`Env` bundles a :class:`~mediation.testing.World` (the cast of one committee), a
:class:`ManualClock` and a :class:`~mediation.CaseService`; :meth:`Env.drive` moves a case to a
named state along its path (:func:`mediation.testing.path_to`) through the service (never by
writing events by hand), so every step of every test went through authorization, the machine and
the guards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from mediation import (
    WORKFLOW,
    Actor,
    CaseService,
    CaseView,
    GuardFailed,
    MemoryStore,
    Policy,
    Store,
)
from mediation import commands as cmd
from mediation._case import Case
from mediation._spec import Workflow
from mediation.testing import PathOptions, World, drive, follow, routes

C1 = "c1"
#: Monday 5 January 2026, 08:00 UTC
EPOCH = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone.utc)
NAMES = {
    "p1": "陈女士",
    "p2": "刘先生",
    "p3": "王阿姨",
    "org1": "天鹅堡物业公司",
    "agent1": "张律师",
    "agent2": "李律师",
}
ID_NUMBERS = {pid: f"41090219800101{n:04d}" for n, pid in enumerate(NAMES, start=1)}
PHONES = {pid: f"1380000{n:04d}" for n, pid in enumerate(NAMES, start=1)}


@attrs.define
class ManualClock:
    """A clock that only moves when told to (``advance``); always timezone-aware UTC."""

    now: dt.datetime = EPOCH

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def doc(title: str = "文书", media_type: str = "application/pdf") -> cmd.DocRef:
    return cmd.DocRef(hashlib.sha256(title.encode()).hexdigest(), media_type, title)


def party(pid: str, **kw: Any) -> cmd.Party:
    base: dict[str, Any] = dict(
        name=NAMES.get(pid, "某人"),
        kind="organisation" if pid.startswith("org") else "person",
        phone=PHONES.get(pid, ""),
        address="华龙区胜利路 1 号天鹅堡小区",
        id_number=ID_NUMBERS.get(pid, ""),
    )
    base.update(kw)
    return cmd.Party(pid, **base)


def apply_cmd(
    applicants: Iterable[str] = ("p1",),
    respondents: Iterable[str] = ("p2",),
    **kw: Any,
) -> cmd.Apply:
    base: dict[str, Any] = dict(
        committee=C1,
        category="邻里",
        description="楼上夜间噪声影响休息",
        applicants=tuple(party(p) for p in applicants),
        respondents=tuple(party(p) for p in respondents),
    )
    base.update(kw)
    return cmd.Apply(**base)


def content(**kw: Any) -> cmd.AgreementContent:
    base: dict[str, Any] = dict(
        facts="14 楼夜间使用跑步机",
        issues="夜间噪声",
        responsibilities="刘先生承担减噪义务",
        obligations="晚十点后不使用跑步机",
        performance_method="自行整改",
        performance_place="天鹅堡 14 楼",
        performance_deadline=dt.date(2026, 2, 1),
    )
    base.update(kw)
    return cmd.AgreementContent(**base)


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything a store holds (records and summary rows), to show a failed command wrote nothing."""
    return (tuple(store.scan()), tuple(store.cases()))


#: the states of the happy path, in order (from :func:`mediation.testing.routes`)
HAPPY_PATH = routes().states[1:]


@attrs.define
class Env:
    """One committee's cast, a manual clock, a service over a memory store."""

    world: World = attrs.field(factory=World)
    clock: ManualClock = attrs.field(factory=ManualClock)
    policy: Policy | None = None
    store: Store = attrs.field(factory=MemoryStore)
    service: CaseService = attrs.field(init=False)
    case_id: str = "case-1"
    #: the version new cases open on (the current one by default)
    workflow: Workflow = WORKFLOW
    #: personal data sealed (the default); False: stored as given (docs/privacy.md)
    sealing: bool = True

    def __attrs_post_init__(self) -> None:
        self.service = CaseService(
            self.store,
            directory=self.world.directory,
            clock=self.clock,
            policy=self.policy,
            workflow=self.workflow,
            sealing=self.sealing,
        )

    def __getitem__(self, name: str) -> Actor:
        actor: Actor = self.world[name]
        return actor

    @property
    def case(self) -> Case:
        return self.service.case(self.case_id)

    def add_person(self, name: str, roles: dict[str, list[str]] | None = None) -> Actor:
        """Add someone to the world and its directory (with roles per committee)."""
        actor: Actor = self.world.directory.add(Actor.with_roles(name, roles or {}))
        self.world.people[name] = actor
        return actor

    def run(self, who: str | Actor, command: cmd.Command, **kw: Any) -> Any:
        actor = who if isinstance(who, Actor) else self.world[who]
        return self.service.execute(actor, self.case_id, command, **kw)

    def snapshot(self) -> tuple[Any, ...]:
        return snapshot(self.store)

    # -- driving a case -----------------------------------------------------------------------

    def open(self, opening: cmd.Command | None = None, *, by: str | None = None) -> Case:
        opening = opening or apply_cmd()
        if by is None:
            assert isinstance(opening, cmd.Apply)
            by = opening.applicants[0].id
        self.run(by, opening)
        return self.case

    def consent_all(self, subject: str, person: str = "") -> None:
        for pid in self.case.party_ids:
            self.run(pid, cmd.Consent(subject, person))

    def drive(self, target: str, opening: cmd.Command | None = None, **opts: Any) -> Case:
        """Open a case and move it to ``target`` along its path, through the service.

        The path is :func:`mediation.testing.path_to` ``target``, each command issued with
        :meth:`run`; on a case opened already, the path goes on from its opening.  ``target`` is a state of the workflow (terminal ones included); ``opening``
        defaults to :func:`apply_cmd`.  Options are those of :class:`~mediation.testing.PathOptions`:
        ``lead`` (default ``med1``), ``minutes`` (minutes and a proposal while negotiating,
        default True), ``performed`` (the follow-up outcome, default ``"yes"``), ...
        """
        options = PathOptions(opening=opening or apply_cmd(), **opts)
        return drive(self.service, self.world, self.case_id, target, options, execute=self.run)

    def sign_all(self) -> None:
        """Every party, the lead mediator and the committee's seal sign the drafted agreement."""
        follow(
            self.service, self.world, self.case_id, routes().leg(cmd.Sign).steps, execute=self.run
        )


def assert_guard(
    exc: GuardFailed,
    guard: str,
    *,
    command: str,
    state: str,
    case: str = "case-1",
    reason: str = "",
    reason_zh: str = "",
) -> None:
    """A GuardFailed names the guard, its legal basis, the case, state and command, with reasons."""
    spec = WORKFLOW.guard(guard)
    assert exc.guard == guard
    assert exc.basis == spec.basis and exc.basis
    assert (exc.case, exc.state, exc.command) == (case, state, command)
    assert exc.actor
    assert guard in str(exc) and spec.en in str(exc)
    assert guard in exc.message_zh and spec.zh in exc.message_zh
    assert exc.message_zh != exc.message
    assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.message_zh)
    # the human reason follows the guard's own description
    assert str(exc).split("failed: ", 1)[1].strip()
    assert exc.message_zh.split("未满足：", 1)[1].strip()
    if reason:
        assert reason in str(exc), str(exc)
    if reason_zh:
        assert reason_zh in exc.message_zh, exc.message_zh
    fields = exc.fields()
    assert fields["guard"] == guard and fields["basis"] == spec.basis
    assert fields["case"] == case and fields["state"] == state and fields["command"] == command


@contextmanager
def unchanged(e: Env) -> Iterator[None]:
    """Assert the block leaves the store (records and summaries) and the cached case untouched."""
    before = e.snapshot()
    seq = e.service.case(e.case_id).seq if e.store.summary(e.case_id) is not None else 0
    yield
    assert e.snapshot() == before
    if seq:
        assert e.service.case(e.case_id).seq == seq


def ties(*pairs: tuple[str, str]) -> tuple[cmd.Tie, ...]:
    return tuple(cmd.Tie(p, k) for p, k in pairs)


def full_cast() -> Env:
    """p1 v p2 with an agent for p2, lead med1, co med2, invitee inv1; negotiating."""
    e = Env()
    e.open()
    e.run("p2", cmd.AppointAgent(party("agent2"), doc("授权委托书")))
    e.run("agent2", cmd.RecordConsent())
    e.run("director", cmd.Register())
    e.run("director", cmd.AssignMediator("med1", lead=True))
    e.run("director", cmd.AssignMediator("med2"))
    e.consent_all("invitee", "inv1")
    e.run("med1", cmd.Invite("inv1", "street_cadre", doc("保密承诺书")))
    e.run("med2", cmd.NotifyRights(("p1", "p2")))
    e.run("med1", cmd.ScheduleMeeting(e.clock.now, "调解室"))
    e.run("med1", cmd.OpenSession())
    return e


def case_fields(case: Case) -> dict[str, Any]:
    """Every field of ``case``, for comparing a live case with its replay: the workflow by its
    version (its declaration is the same object on both sides, and expensive to copy)."""
    out = attrs.asdict(case, recurse=True, filter=lambda a, _: a.name != "workflow")
    out["workflow"] = case.workflow.version
    return out


# -- personal data: where it shows ------------------------------------------------------------------


def files(directory: Path) -> list[Path]:
    """Every file under ``directory`` (the store's, the key store's, what the CLI wrote)."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


def holding(directory: Path, needles: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """(file, needle) for every needle some file under ``directory`` holds: a byte scan."""
    out = []
    for path in files(directory):
        data = path.read_bytes()
        out += [(path.name, name) for name, needle in needles.items() if needle in data]
    return out


def view_text(view: CaseView) -> str:
    """Everything a view shows, as one string to search."""
    return json.dumps(
        {
            "parties": [dict(p) for p in view.parties],
            "description": view.description,
            "agreement": view.agreement,
            "timeline": [t.payload for t in view.timeline],
        },
        ensure_ascii=False,
        default=str,
    )
