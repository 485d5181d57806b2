"""The retry helper: conflicts are retried with jittered backoff, everything else is not."""

from __future__ import annotations

import pytest

from mediation import CaseService, ConcurrencyConflict, GuardFailed, InvalidCommand


def _flaky(conflicts: int, calls: list[int]) -> object:
    def fn() -> str:
        calls.append(1)
        if len(calls) <= conflicts:
            raise ConcurrencyConflict("lost the race", expected_seq=3)
        return "done"

    return fn


def test_conflicts_are_retried_with_growing_jittered_sleeps() -> None:
    calls: list[int] = []
    sleeps: list[float] = []
    fn = _flaky(3, calls)
    assert CaseService.retry(fn, attempts=5, backoff=0.01, sleep=sleeps.append) == "done"  # type: ignore[arg-type]
    assert len(calls) == 4 and len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):
        assert 0 <= slept <= 0.01 * 2**attempt


def test_gives_up_after_the_last_attempt() -> None:
    calls: list[int] = []
    with pytest.raises(ConcurrencyConflict):
        CaseService.retry(_flaky(10, calls), attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise GuardFailed("no", guard="G1", basis="PML17")

    with pytest.raises(GuardFailed):
        CaseService.retry(fn, sleep=lambda _: None)
    assert calls == [1]
    with pytest.raises(InvalidCommand):
        CaseService.retry(fn, attempts=0)
