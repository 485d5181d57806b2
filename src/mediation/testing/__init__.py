"""Helpers for people who test code built on mediation (and for mediation's own tests).

- :class:`StoreConformance`: the store contract as reusable test methods; no pytest needed.
- Hypothesis strategies derived from the workflow declaration: :func:`command_for`,
  :func:`actor_for`, :func:`step`, :func:`histories`, with the cast of a :class:`World`.

The strategies need ``hypothesis`` (``pip install mediation[test]``); the conformance suite does not.
"""

import typing as _typing

from ._conformance import StoreConformance, raises, synthetic_records, synthetic_summary

__all__ = [
    "Driven",
    "StoreConformance",
    "TickClock",
    "World",
    "actor_for",
    "command_for",
    "commands_from",
    "driven_cases",
    "guided_step",
    "histories",
    "opening_step",
    "progress_steps",
    "raises",
    "step",
    "synthetic_records",
    "synthetic_summary",
]

#: the hypothesis strategies, imported on first use so that the conformance suite needs no hypothesis
_STRATEGIES = frozenset(__all__) - {
    "StoreConformance",
    "raises",
    "synthetic_records",
    "synthetic_summary",
}


def __getattr__(name: str) -> _typing.Any:
    if name in _STRATEGIES:
        from . import _strategies

        return getattr(_strategies, name)
    raise AttributeError(name)
