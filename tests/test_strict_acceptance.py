"""What the service accepts, strict replay accepts: every event the live path writes verifies with
``verify(strict=True)`` (payloads re-validated against their command class, canonical bytes), for
random walks of random commands, under clocks that jump, step back within the tolerance and run
at the ends of the calendar, with and without sealing personal data.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, note
from hypothesis import strategies as st

from mediation import AESGCMVault, CaseService, MediationError, MemoryStore, verify
from mediation.testing import World
from mediation.testing._strategies import guided_step, opening_step

#: how the clock moves between two commands: forward by up to a month, or back within tolerance
STEPS = st.one_of(
    st.timedeltas(dt.timedelta(0), dt.timedelta(days=31)),
    st.timedeltas(-dt.timedelta(minutes=5), dt.timedelta(0)),
)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@st.composite
def starts(draw: st.DrawFn) -> dt.datetime:
    """Where the clock starts: usually now-ish, sometimes at the ends of the calendar."""
    naive = draw(
        st.one_of(
            st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2040, 1, 1)),
            st.datetimes(dt.datetime(1, 1, 1), dt.datetime(1, 1, 3)),
            st.datetimes(dt.datetime(999, 12, 1), dt.datetime(1000, 1, 31)),
            st.datetimes(dt.datetime(9999, 10, 1), dt.datetime(9999, 12, 31, 23, 59)),
        )
    )
    return naive.replace(tzinfo=draw(OFFSETS))


class StepClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


@given(
    data=st.data(),
    start=starts(),
    sealed=st.booleans(),
    steps=st.integers(1, 40),
)
def test_every_event_the_service_writes_verifies_strictly(
    data: st.DataObject, start: dt.datetime, sealed: bool, steps: int
) -> None:
    world = World()
    clock = StepClock(start)
    service = CaseService(
        MemoryStore(),
        directory=world.directory,
        clock=clock,
        vault=AESGCMVault() if sealed else None,
    )
    case_id = "k1"
    opened = False
    for _ in range(steps):
        step = data.draw(STEPS, label="clock step")
        try:
            clock.now = clock.now + step
        except OverflowError:
            break  # the host's clock cannot go past 9999
        if not opened:
            actor, command = data.draw(opening_step(world, case_id), label="opening")
        else:
            case = service.case(case_id)
            if case.terminal and case.archived:
                break
            actor, command = data.draw(guided_step(world, case, True, 8), label="step")
        try:
            event = service.execute(actor, case_id, command)
        except MediationError as exc:  # refused: nothing written (checked by other tests)
            note(f"{command.name}: {type(exc).__name__}: {exc}")
            continue
        opened = True
        note(f"{event.seq} {event.type} at {event.at.isoformat()}")
    if not opened:
        return
    records = service.store.read(case_id)
    verdict = verify(records, case_id, directory=world.directory, strict=True)
    assert verdict.ok, verdict.describe()
    assert verdict.events == len(records)
