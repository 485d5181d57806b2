"""Statistics with written definitions (docs/evaluation.md): what a street office reports for a
period, as of a date, under a named success-rate definition.

- :func:`evaluation` computes an :class:`Evaluation` from the store's projection of the events
  (:meth:`~mediation.stores.Store.stat_events`, one SQL query on SQLite and PostgreSQL): no case is
  replayed.  :func:`verified_evaluation` replays every case instead; both give equal figures on a
  store nobody wrote past the library.
- :data:`DEFINITIONS` names the success-rate definitions (:class:`Definition`); :data:`OUTCOMES`,
  :data:`GROUPINGS` and :data:`STAGES` the outcomes, groupings and stages reported.
- :class:`CaseFacts` is what the figures are computed from, per case: :func:`projected_facts` from
  a case's :class:`StatEvent` records, :func:`replayed_facts` from its replayed records;
  :func:`evaluate` turns facts into an :class:`Evaluation` (:class:`Outcomes`, :class:`Durations`).
"""

from ._stats import (
    AGREED,
    DEFAULT_DEFINITION,
    DEFINITIONS,
    GROUPINGS,
    OUTCOMES,
    STAGES,
    CaseFacts,
    Definition,
    Durations,
    Evaluation,
    Outcomes,
    evaluate,
    evaluation,
    outcome_text,
    projected_facts,
    replayed_facts,
    verified_evaluation,
)
from .stores._base import STAT_PAYLOAD_TYPES, StatEvent

__all__ = [
    "AGREED",
    "DEFAULT_DEFINITION",
    "DEFINITIONS",
    "GROUPINGS",
    "OUTCOMES",
    "STAGES",
    "STAT_PAYLOAD_TYPES",
    "CaseFacts",
    "Definition",
    "Durations",
    "Evaluation",
    "Outcomes",
    "StatEvent",
    "evaluate",
    "evaluation",
    "outcome_text",
    "projected_facts",
    "replayed_facts",
    "verified_evaluation",
]
