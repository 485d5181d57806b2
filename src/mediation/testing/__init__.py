"""Helpers for people who test code built on mediation (and for mediation's own tests).

- :class:`StoreConformance`: the store contract as reusable test methods; no pytest needed.
- :class:`KeyStoreConformance`: the same for a key store (where sealing keys live).
- The paths to every state of the workflow, as data: :func:`path_to`, :func:`paths`,
  :func:`drive` (a :class:`Step` is who issues which command; a :class:`Leg` the steps along one
  transition), with the cast of a :class:`World`.
- Hypothesis strategies derived from the workflow declaration: :func:`command_for`,
  :func:`actor_for`, :func:`step`, :func:`histories`.

The strategies need ``hypothesis`` (``pip install mediation[test]``); the conformance suite, the
world and the paths do not.
"""

import typing as _typing

from ._conformance import (
    KeyStoreConformance,
    StoreConformance,
    raises,
    synthetic_records,
    synthetic_summary,
)
from ._dataset import Dataset, generate_dataset
from ._paths import (
    BRANCHES,
    HAPPY_PATH,
    FromCase,
    Leg,
    PathOptions,
    Routes,
    Step,
    drive,
    follow,
    path_to,
    paths,
    routes,
)
from ._world import TickClock, World

__all__ = [
    "BRANCHES",
    "HAPPY_PATH",
    "Dataset",
    "Driven",
    "FromCase",
    "KeyStoreConformance",
    "Leg",
    "PathOptions",
    "Routes",
    "Step",
    "StoreConformance",
    "TickClock",
    "World",
    "actor_for",
    "command_for",
    "commands_from",
    "drive",
    "driven_cases",
    "follow",
    "generate_dataset",
    "guided_step",
    "histories",
    "host_openings",
    "opening_step",
    "path_to",
    "paths",
    "progress_steps",
    "raises",
    "routes",
    "step",
    "synthetic_records",
    "synthetic_summary",
]

#: the hypothesis strategies, imported on first use so that the rest needs no hypothesis
_STRATEGIES = frozenset(
    {
        "Driven",
        "actor_for",
        "command_for",
        "commands_from",
        "driven_cases",
        "guided_step",
        "histories",
        "host_openings",
        "opening_step",
        "progress_steps",
        "step",
    }
)


def __getattr__(name: str) -> _typing.Any:
    if name in _STRATEGIES:
        from . import _strategies

        return getattr(_strategies, name)
    raise AttributeError(name)
