"""Erasure (PIPL 47) on generated histories, on a SQLite file store.

Each example opens a case through the service with distinctive personal data (8 or more random CJK
characters, or digits of a phone, ID number or bank account), walks it with the guided steps of
:mod:`mediation.testing` (free text they write is replaced by distinctive text too), then the
director erases one random person of the case or the whole case.  Afterwards:

- the log verifies (strictly, with and without the vault) and the records before the erasure are
  byte for byte the records it had;
- a replay gives the same case as before the erasure (but for the erasure's own bookkeeping), and
  the deadlines, due dates and statistics are the same;
- every view shows each erased value as ``[erased]``, never its plaintext;
- no file in the store's directory holds the plaintext of an erased value (nor of any other: it is
  all sealed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import attrs
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from helpers import case_fields, holding, view_text
from mediation import (
    WORKFLOW,
    Actor,
    CaseService,
    MediationError,
    NotPermitted,
    SQLiteStore,
    replay,
    verify,
)
from mediation import commands as cmd
from mediation._case import Case
from mediation._privacy import ERASED
from mediation.testing import (
    PathOptions,
    TickClock,
    World,
    actor_for,
    command_for,
    commands_from,
    drive,
    opening_step,
    progress_steps,
)
from mediation.testing._world import party as cast_party

CID = "case-e"
ERASE = "erase_personal_data"
#: the states a walk may be driven to first
STATES = tuple(s.name for s in WORKFLOW.states)
#: how many steps a walk takes at most (kept small: each example writes a SQLite file)
MAX_STEPS = 12
#: each example writes and scans a SQLite file, its key file and its log, and opens every view:
#: a quarter of the profile's examples (150 under ``ci``) keeps the file well under a minute
EXAMPLES = settings(max_examples=max(10, min(150, settings.default.max_examples // 4)))

_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)


def _cjk(size: int = 8) -> st.SearchStrategy[str]:
    """Distinctive text: ``size`` to ``size + 4`` random CJK characters."""
    return st.text(_CJK, min_size=size, max_size=size + 4)


def _digits(n: int) -> st.SearchStrategy[str]:
    """``n`` (at least 10) random digits, the first ten all different (so that no run of the log's
    own digits, in a time or a number, can stand for them)."""
    ten = st.permutations("0123456789").map("".join)
    rest = st.text("0123456789", min_size=n - 10, max_size=n - 10)
    return st.tuples(ten, rest).map("".join)


@st.composite
def _personal(draw: st.DrawFn, party: cmd.Party) -> cmd.Party:
    """``party`` with every personal member set to a distinctive value (an organisation's name,
    which is not personal data, is kept)."""
    natural = party.kind == "person"
    return attrs.evolve(
        party,
        name=draw(_cjk()) if natural else party.name,
        phone="1" + draw(_digits(10)),
        id_number=draw(_digits(17)) + draw(st.sampled_from("0123456789X")),
        address=draw(_cjk()) + "路" + draw(_digits(10)) + "号楼" + draw(_digits(10)) + "室",
        employer=draw(_cjk()),
        health=draw(_cjk()),
        minor=draw(_cjk()),
        bank_account=draw(_digits(draw(st.integers(16, 19)))),
    )


#: the personal members of a party (mediation._workflow.PERSONAL)
_PERSONAL = ("name", "phone", "id_number", "address", "employer", "health", "minor", "bank_account")


def _values(party: cmd.Party) -> list[str]:
    """The personal values of ``party`` that the service seals (its name only for a person)."""
    members = [m for m in _PERSONAL if m != "name" or party.kind == "person"]
    return [getattr(party, m) for m in members if getattr(party, m)]


#: the free-text members the service seals under the case's key, by command class
_FREE_TEXT: dict[type[cmd.Command], str] = {
    cmd.RecordMinutes: "text",
    cmd.ShareProposal: "text",
    cmd.ReviseProposal: "text",
    cmd.RecordOralAgreement: "summary",
    cmd.RecordFollowUp: "note",
    cmd.RequestRecusal: "grounds",
}
_AGREEMENT_TEXT = (
    "facts",
    "issues",
    "responsibilities",
    "obligations",
    "performance_method",
    "performance_place",
)


@attrs.define
class Walk:
    """A case walked through a live service on a SQLite file, with the plaintexts it was given:
    by subject (a person's id; ``""`` for the case's free text)."""

    directory: Path
    world: World
    store: SQLiteStore
    service: CaseService
    clock: TickClock
    plaintexts: dict[str, set[str]] = attrs.field(factory=dict)

    def add(self, subject: str, values: list[str]) -> None:
        self.plaintexts.setdefault(subject, set()).update(v for v in values if v)


def _distinctive(draw: st.DrawFn, walk: Walk, command: cmd.Command) -> cmd.Command:
    """``command`` with the personal data and free text it carries replaced by distinctive
    values (remembered on ``walk``)."""
    if isinstance(command, cmd.AppointAgent):
        agent = draw(_personal(command.agent))
        walk.add(agent.id, _values(agent))
        return attrs.evolve(command, agent=agent)
    member = _FREE_TEXT.get(type(command))
    if member is not None:
        text = draw(_cjk())
        walk.add("", [text])
        return attrs.evolve(command, **{member: text})
    if isinstance(command, cmd.DraftAgreement):
        texts = {m: draw(_cjk()) for m in _AGREEMENT_TEXT}
        walk.add("", list(texts.values()))
        return attrs.evolve(command, content=attrs.evolve(command.content, **texts))
    return command


def _open(draw: st.DrawFn, walk: Walk) -> None:
    for _ in range(10):
        actor, opening = draw(opening_step(walk.world, CID))
        assert isinstance(opening, cmd.Apply | cmd.Report)
        applicants = tuple(draw(_personal(p)) for p in opening.applicants)
        respondents = tuple(draw(_personal(p)) for p in opening.respondents)
        description = draw(_cjk())
        opening = attrs.evolve(
            opening, applicants=applicants, respondents=respondents, description=description
        )
        try:
            walk.service.execute(actor, CID, opening)
        except MediationError:
            continue
        for party in (*applicants, *respondents):
            walk.add(party.id, _values(party))
        walk.add("", [description])
        return
    assume(False)


@st.composite
def _step(draw: st.DrawFn, world: World, case: Case, weight: int) -> tuple[Actor, cmd.Command]:
    """What :func:`mediation.testing.guided_step` draws: a step of
    :func:`~mediation.testing.progress_steps` ``weight`` times in ten, else a random command legal
    from the case's state, by someone usually allowed to (:func:`~mediation.testing.actor_for`,
    :func:`~mediation.testing.command_for`), but never an erasure: the test erases, at the end."""
    progress = progress_steps(world, case)
    if progress and draw(st.integers(0, 9)) < weight:
        return draw(st.sampled_from(progress))
    specs = [s for s in commands_from(case.state) if s.name != ERASE]
    spec = draw(st.sampled_from(specs))
    return draw(actor_for(world, case, spec)), draw(command_for(world, case, spec.name))


def _drive(data: st.DataObject, walk: Walk) -> None:
    """Open the case with distinctive personal data and drive it along the path to a random
    state of the workflow (:func:`mediation.testing.drive`), with or without an agent and an
    invitee; the paths write their own minutes and agreement (not looked for: not distinctive)."""
    parties = {
        pid: data.draw(_personal(cast_party(pid)), label=pid) for pid in ("p1", "p2", "p3", "org1")
    }
    respondents = data.draw(st.sampled_from((("p2",), ("p2", "org1"), ("org1", "p3"))))
    description = data.draw(_cjk(), label="description")
    opening = cmd.Apply(
        committee=walk.world.committee,
        category=cmd.Category.NEIGHBOURHOOD,
        description=description,
        applicants=(parties["p1"],),
        respondents=tuple(parties[p] for p in respondents),
    )
    options = PathOptions(
        opening=opening,
        agent=data.draw(st.sampled_from((None, "agent1")), label="agent"),
        invitee=data.draw(st.sampled_from((None, "inv1")), label="invitee"),
    )
    target = data.draw(st.sampled_from(STATES), label="driven to")
    drive(walk.service, walk.world, CID, target, options)
    for pid in ("p1", *respondents):
        walk.add(pid, _values(parties[pid]))
    walk.add("", [description])


def _walk(data: st.DataObject, directory: Path) -> Walk:
    """A case on a SQLite file in ``directory``, opened by a random opening and walked by random
    guided steps, or driven to a random state and walked on by a few."""
    world = World()
    clock = TickClock()
    store = SQLiteStore(directory / "cases.db")
    walk = Walk(directory, world, store, world.service(store, clock=clock), clock)
    try:
        driven = data.draw(st.booleans(), label="driven")
        if driven:
            _drive(data, walk)
        else:
            _open(data.draw, walk)
        weight = data.draw(st.sampled_from((6, 8, 9)), label="progress in ten")
        steps = data.draw(st.integers(0, 4 if driven else MAX_STEPS), label="steps")
        for _ in range(steps):
            case = walk.service.case(CID)
            if case.terminal and case.archived:
                break
            actor, command = data.draw(_step(world, case, weight))
            command = _distinctive(data.draw, walk, command)
            with contextlib.suppress(MediationError):
                walk.service.execute(actor, CID, command)
    except BaseException:
        store.close()
        raise
    return walk


def _needles(values: set[str]) -> dict[str, bytes]:
    return {v: v.encode() for v in values}


#: what the erasure event itself changes in a case: its position in the log and the time of its
#: last event, and the list of erased subjects
_BOOKKEEPING = frozenset(("seq", "head", "updated_at", "erased"))


def _state(case: Any) -> dict[str, Any]:
    return {k: v for k, v in case_fields(case).items() if k not in _BOOKKEEPING}


@EXAMPLES
@given(st.data())
def test_erasure_keeps_the_log_the_case_and_the_figures_and_leaves_no_plaintext(
    data: st.DataObject,
) -> None:
    # a directory per example (hypothesis does not mix with function-scoped fixtures)
    with tempfile.TemporaryDirectory(prefix="erasure-") as directory:
        walk = _walk(data, Path(directory))
        try:
            _check(walk, data)
        finally:
            walk.store.close()


def _check(walk: Walk, data: st.DataObject) -> None:
    service, store, world = walk.service, walk.store, walk.world
    # from here on, time stands still: the figures before and after are taken at the same moment
    now = walk.clock.now + dt.timedelta(minutes=7)
    service.clock = lambda: now
    before = store.read(CID)
    case = service.case(CID)
    deadlines = service.deadlines(CID, now)
    stats = service.statistics(world["supervisor"])
    people = sorted({*case.parties, *case.agents})
    person = data.draw(st.sampled_from(["", *people]), label="erase (empty: the whole case)")
    note(f"{len(before)} events, state {case.state}; erasing {person or 'the whole case'}")
    event(f"{case.state}; erasing {'a person' if person else 'the case'}")

    erasure = service.erase(
        world["director"], CID, basis="PIPL 47(1)3: 当事人撤回同意", person=person
    )

    erased_subjects = set(walk.plaintexts) if not person else {person}
    kept = {v for s, vs in walk.plaintexts.items() if s not in erased_subjects for v in vs}
    # a value that is part of one that is kept (hypothesis may draw the same text twice) cannot
    # be looked for
    erased = {
        v
        for s in erased_subjects
        for v in walk.plaintexts.get(s, ())
        if not any(v in k for k in kept)
    }
    note(f"erased values: {sorted(erased)}")

    # the log: the records before the erasure unchanged, one event more, valid strictly
    after = store.read(CID)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert (erasure.seq, erasure.type) == (len(after), ERASE)
    assert (erasure.actor, erasure.payload["person"]) == ("director", person)
    for vault in (None, service.vault):
        verdict = verify(after, CID, strict=True, vault=vault)
        assert verdict.ok, verdict.describe()

    # the case: replay gives the case as it was, and the same deadlines and figures
    replayed = replay(after, CID)
    assert _state(replayed) == _state(case)
    assert replayed.erased == frozenset({person or "*"})
    assert _state(service.case(CID)) == _state(case)
    fresh = world.service(store, clock=lambda: now)
    assert case_fields(fresh.case(CID)) == case_fields(replayed)
    assert service.deadlines(CID, now) == deadlines
    assert fresh.deadlines(CID, now) == deadlines
    assert service.statistics(world["supervisor"]) == stats

    # every view: the erased values as [erased], never their plaintext
    viewers = 0
    for actor in world.people.values():
        try:
            view = service.view(actor, CID)
        except NotPermitted:
            continue
        viewers += 1
        shown = view_text(view)
        leaked = sorted(v for v in erased if v in shown)
        assert not leaked, (actor.id, leaked)
        assert view.erased == (person or "*",)
        for party in view.parties:
            if person in ("", party["id"]):
                for member in _PERSONAL:
                    if member == "name" and party["kind"] != "person":
                        continue  # an organisation's name is not personal data
                    assert party.get(member, "") in ("", ERASED), (actor.id, member, party)
    assert viewers
    director = service.view(world["director"], CID)
    for party in director.parties:
        if person in ("", party["id"]):
            assert party["phone"] == ERASED
            if party["kind"] == "person":
                assert party["name"] == ERASED
    if not person:
        assert director.description == ERASED

    # no file of the store's directory holds an erased plaintext, nor any other
    assert not holding(walk.directory, _needles(erased))
    assert not holding(walk.directory, _needles(kept))
    store.close()
    assert not holding(walk.directory, _needles(erased | kept))
