"""Evaluation (可评估): counts, success rate, durations and overdue cases.

What a supervisor (司法所/街道) may see: categories, counts and durations, never a party or a text
(DOMAIN.md, Confidentiality).  Success rate = cases whose agreement took effect (effective,
following up, resolved) over cases that reached a decision (those plus failed).

:func:`compute_statistics` counts summary rows (what :meth:`CaseService.statistics` reads: fast,
but the rows are not evidence: anyone with database access can edit them).
:func:`verified_statistics` replays every case's events instead, counts the cases that verify, and
says where the summary rows disagree with them (``mediation stats --verified``).
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import _commands as C
from ._calendar import CalendarNotCovered
from ._case import Case, CaseSummary
from ._deadlines import Policy, summary_deadlines
from ._errors import InvalidCommand
from ._events import StoredEvent, by_stream, format_time, parse_body, parse_time
from ._spec import StateSpec, known
from ._vocab import Stage
from ._workflow import WORKFLOW

if TYPE_CHECKING:
    from ._audit import Verdict
    from ._authz import Directory
    from .stores._base import StatEvent, Store

__all__ = [
    "AGREED",
    "DEFAULT_DEFINITION",
    "DEFINITIONS",
    "GROUPINGS",
    "OUTCOMES",
    "STAGES",
    "CaseFacts",
    "Definition",
    "Disagreement",
    "Durations",
    "Evaluation",
    "Outcomes",
    "Statistics",
    "VerifiedStatistics",
    "compute_statistics",
    "evaluate",
    "evaluation",
    "outcome_text",
    "projected_facts",
    "replayed_facts",
    "statistics_json",
    "verified_evaluation",
    "verified_statistics",
]


@attrs.frozen
class Statistics:
    committees: tuple[str, ...]
    cases: int
    by_state: Mapping[str, int]
    by_category: Mapping[str, int]
    by_level: Mapping[str, int]
    agreed: int
    decided: int
    overdue: int
    median_days_to_close: float | None

    @property
    def success_rate(self) -> float | None:
        """Agreements over decided cases (the source reports 80%), or None before any decision."""
        return self.agreed / self.decided if self.decided else None


def _state(row: CaseSummary) -> StateSpec | None:
    """The declaration of a row's state in its case's version (None if this process does not know
    the version or the state: the row is counted, but neither agreed, failed nor closed)."""
    workflow = known(row.workflow)
    if workflow is None:
        return None
    try:
        return workflow.state(row.state)
    except KeyError:
        return None


def compute_statistics(
    rows: Iterable[CaseSummary], committees: Iterable[str], now: _dt.datetime, policy: Policy
) -> Statistics:
    rows = list(rows)
    specs = [_state(r) for r in rows]
    durations = [
        (parse_time(r.updated_at) - parse_time(r.opened_at)) / _dt.timedelta(days=1)
        for r, spec in zip(rows, specs, strict=True)
        if spec is not None and spec.terminal
    ]
    return Statistics(
        committees=tuple(sorted(set(committees))),
        cases=len(rows),
        by_state=dict(sorted(Counter(r.state for r in rows).items())),
        by_category=dict(sorted(Counter(r.category for r in rows).items())),
        by_level=dict(sorted(Counter(r.level for r in rows).items())),
        agreed=sum(spec is not None and spec.agreed for spec in specs),
        decided=sum(spec is not None and (spec.agreed or spec.failed) for spec in specs),
        overdue=sum(bool(_late(r, now, policy)) for r in rows),
        median_days_to_close=round(statistics.median(durations), 2) if durations else None,
    )


def statistics_json(stats: Statistics) -> dict[str, Any]:
    """The statistics as one JSON object (``mediation stats --json``)."""
    rate = stats.success_rate
    return {
        "committees": list(stats.committees),
        "cases": stats.cases,
        "by_state": dict(stats.by_state),
        "by_category": dict(stats.by_category),
        "by_level": dict(stats.by_level),
        "agreed": stats.agreed,
        "decided": stats.decided,
        "success_rate": None if rate is None else round(rate, 4),
        "overdue": stats.overdue,
        "median_days_to_close": stats.median_days_to_close,
    }


# -- from verified events -------------------------------------------------------------------------


@attrs.frozen
class Disagreement:
    """A case whose summary row does not say what its verified events say (or a row without
    events, or events without a row): the message names the columns.  A row whose ``case_id`` is
    not text (NULL, a BLOB) has ``case_id`` ``""``."""

    case_id: str
    message: str


@attrs.frozen
class VerifiedStatistics:
    """Statistics from the replayed events, beside those the summary rows give."""

    #: from the cases whose events verify (each rebuilt by replaying them)
    verified: Statistics
    #: from the summary rows as stored (:func:`compute_statistics`, what the service reads)
    summary: Statistics
    #: the summary rows that disagree with the replayed cases, in case-id order
    disagreements: tuple[Disagreement, ...]
    #: the cases whose events do not verify (left out of :attr:`verified`), one verdict each
    unverified: tuple[Verdict, ...]

    @property
    def agree(self) -> bool:
        """The summary rows say what the verified events say, and every case verified."""
        return not self.disagreements and not self.unverified


def _late(row: CaseSummary, now: _dt.datetime, policy: Policy) -> set[str]:
    """The kinds of the deadlines ``row``'s case is past at ``now``.  A deadline whose due day
    falls in a year the calendar does not cover yet, while ``now`` is in an earlier year, is not
    past (it is due after ``now``, whatever the holidays): the case counts as not overdue then;
    once ``now`` is in that year, :class:`~mediation.CalendarNotCovered` is raised."""
    try:
        return {d.kind for d in summary_deadlines(row, now, policy) if d.overdue}
    except CalendarNotCovered as exc:
        if policy.calendar.local_date(now).year < exc.year:
            return set()
        raise


def verified_statistics(
    store: Store,
    now: _dt.datetime,
    policy: Policy,
    committees: Iterable[str] | None = None,
    *,
    strict: bool = False,
    directory: Directory | None = None,
) -> VerifiedStatistics:
    """Statistics computed from the store's verified events: every case is replayed
    (:func:`mediation.verify`, ``strict`` and ``directory`` as there) and counted from the case
    it rebuilds; a case whose events do not verify is left out (:attr:`VerifiedStatistics.
    unverified`).  The summary rows are compared with the replayed cases, and the statistics they
    give are computed too: :attr:`VerifiedStatistics.disagreements` says where they differ.

    ``committees``: only these committees' cases (by the replayed case's committee, and by the
    row's for the rows); every committee by default."""
    from ._audit import verify
    from ._events import by_stream
    from ._roster import rosters_of
    from ._verify_store import malformed_rows, summary_fault

    wanted = None if committees is None else frozenset(committees)
    listing = store.cases()
    rows = {r.case_id: r for r in listing if type(r.case_id) is str}
    replayed: list[CaseSummary] = []
    disagreements: list[Disagreement] = []
    unverified: list[Verdict] = []
    seen: set[str] = set()
    rosters = rosters_of(store)  # role claims are judged on the committees' rosters
    for case_id, records in by_stream(store.scan()):
        if case_id.startswith("@"):
            # not a case: no case id starts with "@" (the id format), the streams that do are the
            # host's records beside the cases (the committees' rosters); ``verify`` judges them
            continue
        seen.add(case_id)
        verdict = verify(records, case_id, strict=strict, directory=directory, rosters=rosters)
        case = verdict.case if verdict.ok else None
        row = rows.get(case_id)
        committee = case.committee if case is not None else getattr(row, "committee", None)
        if wanted is not None and committee not in wanted:
            continue
        if case is None:
            unverified.append(verdict.without_case())
        else:
            replayed.append(case.summary())
        fault = summary_fault(verdict, row, None if case is None else case.summary())
        if fault is not None:
            disagreements.append(Disagreement(case_id, fault.message))
    for case_id, row in rows.items():
        if case_id not in seen and (wanted is None or row.committee in wanted):
            disagreements.append(
                Disagreement(case_id, "a summary row without events (the events were deleted)")
            )
    # a row whose case_id is not text names no case (only a write past the library leaves one):
    # the service counts it, so the summary figures do too, and it is a disagreement of its own
    odd = [r for r in listing if type(r.case_id) is not str]
    odd = [r for r in odd if wanted is None or r.committee in wanted]
    disagreements += [Disagreement("", message) for message in malformed_rows(odd)]
    disagreements.sort(key=lambda d: d.case_id)
    chosen = [r for r in listing if wanted is None or r.committee in wanted]
    names = wanted if wanted is not None else {s.committee for s in (*replayed, *chosen)}
    names = {n for n in names if type(n) is str}
    return VerifiedStatistics(
        verified=compute_statistics(replayed, names, now, policy),
        summary=compute_statistics(chosen, names, now, policy),
        disagreements=tuple(disagreements),
        unverified=tuple(unverified),
    )


# -- evaluation: written definitions, periods, "as of", groupings (docs/evaluation.md) ------------
#
# Every figure below is defined on the per-case facts of :class:`CaseFacts`, which come either from
# the store's projection of the events (:meth:`Store.stat_events`: the envelope's ``at``, ``type``
# and ``state`` and a few payloads, computed in SQL on SQLite and PostgreSQL, nothing replayed) or
# from the replayed, verified cases (:func:`replayed_facts`).  Both must give equal facts: the
# tests compare them on random histories.


def _command_target(command: type[C.Command]) -> str:
    spec = WORKFLOW.command(command.name)
    assert spec.target is not None, spec.name
    return spec.target


#: the outcome of a case whose agreement took effect (达成协议)
AGREED = "agreed"
#: the state a withdrawal leads to, and the outcome of a withdrawal after registration
WITHDRAWN = _command_target(C.Withdraw)
#: the outcome of a withdrawal before registration
WITHDRAWN_UNREGISTERED = WITHDRAWN + "_unregistered"
#: the state (and outcome) of a transfer
TRANSFERRED = _command_target(C.Transfer)
#: the states (and outcomes) of mediation ended without agreement
FAILED = tuple(s.name for s in WORKFLOW.states if s.failed)


def _outcomes_declared() -> tuple[str, ...]:
    out = [AGREED]
    for spec in WORKFLOW.states:
        if spec.terminal and not spec.agreed:
            out.append(spec.name)
            if spec.name == WITHDRAWN:
                out.append(WITHDRAWN_UNREGISTERED)
    return tuple(out)


#: the outcomes a case can have (as of a moment), in the declaration's order: an agreement, then
#: the terminal states that are not agreed (a withdrawal split at registration)
OUTCOMES = _outcomes_declared()
#: outcomes of a case that was never registered: the terminal states of the registration stage
#: (refused, not accepted) and a withdrawal before registration
NOT_REGISTERED = (
    *(s.name for s in WORKFLOW.states if s.terminal and not s.agreed and s.stage is Stage.REGISTER),
    WITHDRAWN_UNREGISTERED,
)
#: the stages, in flow order, by their English name
STAGES = tuple(s.en for s in Stage)
_DAY = 86400


def outcome_text(outcome: str) -> tuple[str, str]:
    """The outcome in Chinese and in English."""
    if outcome == AGREED:
        return "达成协议", "agreement took effect"
    if outcome == WITHDRAWN:
        return "受理后撤回", "withdrawn after registration"
    if outcome == WITHDRAWN_UNREGISTERED:
        return "受理前撤回", "withdrawn before registration"
    try:
        spec = WORKFLOW.state(outcome)
    except KeyError:
        return outcome, outcome
    return spec.zh.split("（")[0], spec.en


@attrs.frozen
class Definition:
    """A named definition of the success rate: ``success`` outcomes over ``base`` outcomes, both
    counted over the cases whose outcome falls in the period."""

    name: str
    zh: str
    en: str
    success: frozenset[str]
    base: frozenset[str]


#: the default success-rate definition (issue 10)
DEFAULT_DEFINITION = "standard"
#: the success-rate definitions in use, by name
DEFINITIONS: Mapping[str, Definition] = {
    d.name: d
    for d in (
        Definition(
            DEFAULT_DEFINITION,
            "调解成功率＝达成协议（书面或口头，协议生效）÷ 本期调解结束的已受理案件"
            "（达成协议、调解终止、受理后撤回）；未受理与移交另列",
            "success rate = agreements that took effect (written or oral) / registered cases "
            "whose mediation ended in the period (agreement, failure, withdrawal after "
            "registration); not registered and transferred are reported apart",
            frozenset({AGREED}),
            frozenset({AGREED, *FAILED, WITHDRAWN}),
        ),
        Definition(
            "decided",
            "调解成功率＝达成协议 ÷（达成协议＋调解终止）；撤回、未受理、移交不计（本库旧口径）",
            "success rate = agreements / (agreements + failures); withdrawals, cases not "
            "registered and transfers left out (this library's former figure)",
            frozenset({AGREED}),
            frozenset({AGREED, *FAILED}),
        ),
        Definition(
            "all_ended",
            "调解成功率＝达成协议 ÷ 本期办结的全部案件（含未受理、受理前后撤回与移交）",
            "success rate = agreements / every case that ended in the period (not registered, "
            "withdrawn and transferred included)",
            frozenset({AGREED}),
            frozenset(OUTCOMES),
        ),
    )
}


@attrs.frozen
class CaseFacts:
    """What the statistics know of one case as of a moment (its events up to then)."""

    case_id: str
    committee: str
    category: str
    subtype: str
    #: the level as of the moment (after any escalation)
    level: str
    #: the first mediator assigned (the first lead, 承办调解员); "" if none yet
    mediator: str
    escalated: bool
    state: str
    workflow: str
    seq: int
    opened_at: str
    updated_at: str
    registered_at: str | None
    #: one of :data:`OUTCOMES` (or the state's name for a terminal state of another workflow
    #: version); None while mediation goes on
    outcome: str | None
    #: when the outcome was reached: the agreement's effect, or entering the terminal state
    outcome_at: str | None
    #: the agreement in effect is an oral one (口头协议)
    oral: bool
    #: stage (English name) -> seconds spent in it, for the stages the case has left
    stage_seconds: Mapping[str, int]
    #: stage -> when the case last left it
    stage_left: Mapping[str, str]
    #: (when, satisfaction 0-5, 0 = not asked) of every follow-up visit
    follow_ups: tuple[tuple[str, int], ...]
    paused: bool
    paused_seconds: int
    extra_days: int

    def summary(self) -> CaseSummary:
        """The summary row the case had at the moment (for its deadlines)."""
        return CaseSummary(
            case_id=self.case_id,
            committee=self.committee,
            state=self.state,
            level=self.level,
            category=self.category,
            seq=self.seq,
            head="",
            opened_at=self.opened_at,
            updated_at=self.updated_at,
            registered_at=self.registered_at,
            paused=self.paused,
            paused_seconds=self.paused_seconds,
            extra_days=self.extra_days,
            workflow=self.workflow,
        )


def _spec_of(workflow: str, state: str) -> StateSpec | None:
    wf = known(workflow)
    if wf is None:
        return None
    try:
        return wf.state(state)
    except KeyError:
        return None


def _secs(a: str, b: str) -> int:
    return int((parse_time(b) - parse_time(a)) // _dt.timedelta(seconds=1))


class _Stages:
    """Time per stage from the sequence of states: a case is in the stage of its (non-terminal)
    state; entering a state of another stage, or a terminal state, leaves it."""

    def __init__(self, workflow: str) -> None:
        self.workflow = workflow
        self.current: str | None = None
        self.since = ""
        self.seconds: dict[str, int] = {}
        self.left: dict[str, str] = {}

    def enter(self, state: str, at: str) -> None:
        spec = _spec_of(self.workflow, state)
        stage = None if spec is None or spec.terminal or spec.stage is None else spec.stage.en
        if stage == self.current:
            return
        if self.current is not None:
            self.seconds[self.current] = self.seconds.get(self.current, 0) + _secs(self.since, at)
            self.left[self.current] = at
        self.current, self.since = stage, at

    def done(self) -> tuple[dict[str, int], dict[str, str]]:
        current = self.current
        seconds = {k: v for k, v in self.seconds.items() if k != current}
        return seconds, {k: v for k, v in self.left.items() if k != current}


def _outcome(
    workflow: str,
    state: str,
    registered_at: str | None,
    effective_at: str | None,
    closed: str | None,
) -> tuple[str | None, str | None]:
    spec = _spec_of(workflow, state)
    if spec is None:
        return None, None
    if spec.agreed:
        return AGREED, effective_at
    if not spec.terminal:
        return None, None
    if state == WITHDRAWN and registered_at is None:
        return WITHDRAWN_UNREGISTERED, closed
    return state, closed


_PARTY_SIDE = frozenset(("applicant", "respondent", "agent"))


def _assigns_jointly(version: str) -> bool:
    """Whether ``assign_mediator`` by a party takes effect only once every party made the same
    choice in that version (its declared effect, version 2 on)."""
    from ._fold import assign_jointly

    workflow = known(version)
    spec = workflow.find(C.AssignMediator.name) if workflow is not None else None
    return spec is not None and spec.effect is assign_jointly


def projected_facts(events: Sequence[StatEvent]) -> CaseFacts:
    """The facts of one case from the store's projection of its events (in seq order): no replay,
    the fold's bookkeeping of times, levels and pauses redone on the envelope."""
    first = events[0]
    opening = first.payload or {}
    workflow = first.workflow
    committee = str(opening.get("committee", ""))
    category = str(opening.get("category", ""))
    subtype = str(opening.get("subtype", ""))
    level = str(opening.get("level", ""))
    mediator = ""
    escalated = oral = False
    registered_at = effective_at = closed_at = paused_since = None
    paused_seconds = extra_days = 0
    follow_ups: list[tuple[str, int]] = []
    state = ""
    stages: _Stages | None = None
    parties = {
        str(x.get("id"))
        for x in (*opening.get("applicants", ()), *opening.get("respondents", ()))
        if isinstance(x, dict)
    }
    principal: dict[str, str] = {}  # agent -> the party who appointed them
    choices: dict[str, set[str]] = {}  # a mediator the parties choose jointly -> who chose so far
    joint = _assigns_jointly(workflow)
    for ev in events:
        p = ev.payload or {}
        if ev.type == C.AppointAgent.name:
            agent = p.get("agent")
            if isinstance(agent, dict):
                principal[str(agent.get("id"))] = principal.get(ev.actor, ev.actor)
        if ev.type == C.AssignMediator.name and not mediator:
            if joint and ev.acted_as in _PARTY_SIDE:  # the parties' choice, once all made it
                key = f"{p.get('mediator')}:{'lead' if p.get('lead') else 'co'}"
                chosen = choices.get(key, set()) | {principal.get(ev.actor, ev.actor)}
                choices[key] = chosen
                if chosen >= parties:
                    mediator = str(p.get("mediator", ""))
            else:
                mediator = str(p.get("mediator", ""))
        elif ev.type == C.Escalate.name:
            escalated = True
            nxt = p.get("level") or p.get("to_level") or {"L0": "L1", "L1": "L2"}.get(level, level)
            level = str(nxt)
        elif ev.type == C.ExtendTerm.name:
            extra_days += int(p.get("days", 0))
        elif ev.type == C.RecordFollowUp.name:
            follow_ups.append((ev.at, int(p.get("satisfaction", 0))))
        elif ev.type == C.Register.name:
            registered_at = ev.at
        elif ev.type == C.RecordOralAgreement.name:
            oral = True
        elif ev.type == C.Reopen.name:
            oral = False
            effective_at = None
        elif ev.type == C.Pause.name:
            paused_since = ev.at
        elif ev.type == C.Resume.name and paused_since is not None:
            paused_seconds += _secs(paused_since, ev.at)
            paused_since = None
        if stages is None:
            stages = _Stages(workflow)
        if ev.state != state:
            spec = _spec_of(stages.workflow, ev.state)
            if spec is not None and spec.terminal:
                closed_at = ev.at
                if paused_since is not None:
                    paused_seconds += _secs(paused_since, ev.at)
                    paused_since = None
            if spec is not None and spec.agreed and effective_at is None:
                effective_at = ev.at
            stages.enter(ev.state, ev.at)
            state = ev.state
    assert stages is not None
    seconds, left = stages.done()
    outcome, outcome_at = _outcome(stages.workflow, state, registered_at, effective_at, closed_at)
    return CaseFacts(
        case_id=first.case_id,
        committee=committee,
        category=category,
        subtype=subtype,
        level=level,
        mediator=mediator,
        escalated=escalated,
        state=state,
        workflow=stages.workflow,
        seq=events[-1].seq,
        opened_at=first.at,
        updated_at=events[-1].at,
        registered_at=registered_at,
        outcome=outcome,
        outcome_at=outcome_at,
        oral=oral and outcome == AGREED,
        stage_seconds=seconds,
        stage_left=left,
        follow_ups=tuple(follow_ups),
        paused=paused_since is not None,
        paused_seconds=paused_seconds,
        extra_days=extra_days,
    )


def replayed_facts(records: Sequence[StoredEvent]) -> CaseFacts:
    """The facts of one case from its records (in seq order) replayed one by one: each fact read
    off the case the library folds (state, level, lead, times, pauses) after each event; only the
    follow-up satisfaction is read from the event itself, as no case field keeps it.  Raises
    :class:`~mediation.IntegrityViolation` if the records do not verify."""
    from ._audit import replay
    from ._events import decode_event

    case: Case | None = None
    mediator = ""
    escalated = False
    opening_level = ""
    follow_ups: list[tuple[str, int]] = []
    stages: _Stages | None = None
    state = ""
    for rec in records:
        case = replay([rec], rec.case_id) if case is None else replay([rec], start=case)
        event = decode_event(rec)
        at = format_time(event.at)
        if stages is None:
            stages = _Stages(case.workflow.version)
            opening_level = case.level
        if not mediator and case.lead is not None:
            mediator = case.lead
        escalated = escalated or case.level != opening_level
        if event.type == C.RecordFollowUp.name:
            follow_ups.append((at, int(event.payload.get("satisfaction", 0))))
        if case.state != state:
            stages.enter(case.state, at)
            state = case.state
    assert case is not None and stages is not None
    seconds, left = stages.done()
    outcome, outcome_at = _outcome(
        case.workflow.version, case.state, case.registered_at, case.effective_at, case.closed_at
    )
    return CaseFacts(
        case_id=case.id,
        committee=case.committee,
        category=case.category,
        subtype=case.subtype,
        level=case.level,
        mediator=mediator,
        escalated=escalated,
        state=case.state,
        workflow=case.workflow.version,
        seq=case.seq,
        opened_at=case.opened_at,
        updated_at=case.updated_at,
        registered_at=case.registered_at,
        outcome=outcome,
        outcome_at=outcome_at,
        oral=case.oral_agreement and outcome == AGREED,
        stage_seconds=seconds,
        stage_left=left,
        follow_ups=tuple(follow_ups),
        paused=case.paused,
        paused_seconds=case.paused_seconds,
        extra_days=case.extra_days,
    )


# -- the figures ----------------------------------------------------------------------------------


@attrs.frozen
class Durations:
    """Days (calendar days, fractions kept, paused time included), over ``n`` cases: the median
    (the mean of the two middle values when ``n`` is even) and the 90th percentile by nearest rank
    (the smallest value at least 90% of the values do not exceed), both rounded to 2 decimals."""

    n: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, days: Iterable[float]) -> Durations:
        values = sorted(days)
        if not values:
            return cls(0, None, None)
        rank = max(1, math.ceil(0.9 * len(values)))
        return cls(len(values), round(statistics.median(values), 2), round(values[rank - 1], 2))

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "median": self.median, "p90": self.p90}


@attrs.frozen
class Outcomes:
    """The cases whose outcome fell in the period, by outcome, and the success rate they give under
    the evaluation's definition."""

    #: outcome -> cases (every outcome of :data:`OUTCOMES`, zeros included)
    counts: Mapping[str, int]
    success: int
    base: int
    #: agreements by form
    written: int
    oral: int

    @property
    def ended(self) -> int:
        return sum(self.counts.values())

    @property
    def not_registered(self) -> int:
        return sum(self.counts.get(o, 0) for o in NOT_REGISTERED)

    @property
    def transferred(self) -> int:
        return self.counts.get(TRANSFERRED, 0)

    @property
    def rate(self) -> float | None:
        return self.success / self.base if self.base else None

    def to_json(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "ended": self.ended,
            "outcomes": dict(self.counts),
            "success": self.success,
            "denominator": self.base,
            "success_rate": None if rate is None else round(rate, 4),
            "agreements_written": self.written,
            "agreements_oral": self.oral,
            "not_registered": self.not_registered,
            TRANSFERRED: self.transferred,  # the outcome named by the declaration
        }


#: the groupings of :attr:`Evaluation.groups`
GROUPINGS = ("category", "subtype", "level", "mediator", "escalated")


@attrs.frozen
class Evaluation:
    """The statistics of a period, as of a moment, under a named success-rate definition
    (docs/evaluation.md).  Times are UTC; the period's dates are the committee's local dates."""

    definition: Definition
    committees: tuple[str, ...]
    #: the period's first and last local dates (None: unbounded)
    start: _dt.date | None
    end: _dt.date | None
    #: the moment the figures are as of: only events before it count
    as_of: _dt.datetime
    zone: str
    #: the cases opened before ``as_of``
    cases: int
    #: their states as of ``as_of``
    by_state: Mapping[str, int]
    #: the cases whose outcome fell in the period
    outcomes: Outcomes
    #: grouping -> value -> outcomes of that group's cases
    groups: Mapping[str, Mapping[str, Outcomes]]
    #: stage -> days spent in it, over the cases that left it in the period
    stage_days: Mapping[str, Durations]
    #: outcome ("all" and each outcome) -> days from opening to the outcome, over the cases whose
    #: outcome fell in the period
    days_to_outcome: Mapping[str, Durations]
    #: satisfaction (0: not asked, 1-5) -> follow-up visits recorded in the period
    satisfaction: Mapping[int, int]
    #: the open cases with an overdue deadline as of ``as_of``, and by deadline kind
    overdue: int
    overdue_by_kind: Mapping[str, int]

    @property
    def success_rate(self) -> float | None:
        return self.outcomes.rate

    def to_json(self) -> dict[str, Any]:
        return {
            "definition": {
                "name": self.definition.name,
                "zh": self.definition.zh,
                "en": self.definition.en,
            },
            "committees": list(self.committees),
            "from": None if self.start is None else self.start.isoformat(),
            "to": None if self.end is None else self.end.isoformat(),
            "as_of": format_time(self.as_of),
            "zone": self.zone,
            "cases": self.cases,
            "by_state": dict(self.by_state),
            **self.outcomes.to_json(),
            "groups": {
                g: {k: o.to_json() for k, o in values.items()} for g, values in self.groups.items()
            },
            "stage_days": {k: d.to_json() for k, d in self.stage_days.items()},
            "days_to_outcome": {k: d.to_json() for k, d in self.days_to_outcome.items()},
            "satisfaction": {str(k): v for k, v in self.satisfaction.items()},
            "overdue": self.overdue,
            "overdue_by_kind": dict(self.overdue_by_kind),
        }


def _outcomes(facts: Iterable[CaseFacts], definition: Definition) -> Outcomes:
    counts = dict.fromkeys(OUTCOMES, 0)
    written = oral = 0
    for f in facts:
        assert f.outcome is not None
        counts[f.outcome] = counts.get(f.outcome, 0) + 1
        if f.outcome == AGREED:
            oral += f.oral
            written += not f.oral
    return Outcomes(
        counts=counts,
        success=sum(n for o, n in counts.items() if o in definition.success),
        base=sum(n for o, n in counts.items() if o in definition.base),
        written=written,
        oral=oral,
    )


def _group_key(f: CaseFacts, grouping: str) -> str:
    if grouping == "escalated":
        return "yes" if f.escalated else "no"
    return str(getattr(f, grouping)) or "-"


def _local_midnight(day: _dt.date, zone: _dt.tzinfo) -> _dt.datetime:
    return _dt.datetime.combine(day, _dt.time(), zone).astimezone(_dt.timezone.utc)


def moment_of(as_of: _dt.date | _dt.datetime, zone: _dt.tzinfo) -> _dt.datetime:
    """The moment "as of" means: a datetime as given; a date, the end of that local day (the events
    of the day count)."""
    if isinstance(as_of, _dt.datetime):
        if as_of.utcoffset() is None:
            raise ValueError("as_of must be timezone-aware")
        return as_of.astimezone(_dt.timezone.utc)
    return _local_midnight(as_of + _dt.timedelta(days=1), zone)


def evaluate(
    facts: Iterable[CaseFacts],
    *,
    as_of: _dt.datetime,
    start: _dt.date | None = None,
    end: _dt.date | None = None,
    definition: str = DEFAULT_DEFINITION,
    committees: Iterable[str] | None = None,
    policy: Policy | None = None,
    zone: _dt.tzinfo | None = None,
) -> Evaluation:
    """The figures of :class:`Evaluation` from the facts of each case as of ``as_of`` (the facts
    of events before it): the period is ``[start, end]`` in local dates of ``zone``."""
    tz = zone if zone is not None else _zone()
    chosen = DEFINITIONS[definition]
    wanted = None if committees is None else frozenset(committees)
    rows = [f for f in facts if wanted is None or f.committee in wanted]
    lo = None if start is None else format_time(_local_midnight(start, tz))
    hi_moment = as_of if end is None else min(as_of, moment_of(end, tz))
    hi = format_time(hi_moment)

    def in_period(at: str | None) -> bool:
        return at is not None and (lo is None or at >= lo) and at < hi

    ended = [f for f in rows if f.outcome is not None and in_period(f.outcome_at)]
    groups = {
        g: {
            key: _outcomes([f for f in ended if _group_key(f, g) == key], chosen)
            for key in sorted({_group_key(f, g) for f in ended})
        }
        for g in GROUPINGS
    }
    stage_days = {
        stage: Durations.of(
            f.stage_seconds[stage] / _DAY
            for f in rows
            if stage in f.stage_seconds and in_period(f.stage_left.get(stage))
        )
        for stage in STAGES
    }
    to_outcome = {
        "all": Durations.of(_secs(f.opened_at, str(f.outcome_at)) / _DAY for f in ended),
        **{
            o: Durations.of(
                _secs(f.opened_at, str(f.outcome_at)) / _DAY for f in ended if f.outcome == o
            )
            for o in OUTCOMES
        },
    }
    satisfaction = dict.fromkeys(range(6), 0)
    for f in rows:
        for at, score in f.follow_ups:
            if in_period(at):
                satisfaction[score] = satisfaction.get(score, 0) + 1
    kinds: Counter[str] = Counter()
    overdue = 0
    pol = policy if policy is not None else Policy()
    for f in rows:
        late = _late(f.summary(), as_of, pol)
        overdue += bool(late)
        kinds.update(late)
    names = wanted if wanted is not None else {f.committee for f in rows}
    return Evaluation(
        definition=chosen,
        committees=tuple(sorted(names)),
        start=start,
        end=end,
        as_of=as_of,
        zone=str(tz),
        cases=len(rows),
        by_state=dict(sorted(Counter(f.state for f in rows).items())),
        outcomes=_outcomes(ended, chosen),
        groups=groups,
        stage_days=stage_days,
        days_to_outcome=to_outcome,
        satisfaction=satisfaction,
        overdue=overdue,
        overdue_by_kind=dict(sorted(kinds.items())),
    )


def _zone() -> _dt.tzinfo:
    import zoneinfo

    from ._timeline import COMMITTEE_TZ

    return zoneinfo.ZoneInfo(COMMITTEE_TZ)


def _by_case(events: Iterable[StatEvent]) -> Iterator[list[StatEvent]]:
    batch: list[StatEvent] = []
    for ev in events:
        if batch and ev.case_id != batch[0].case_id:
            yield batch
            batch = []
        batch.append(ev)
    if batch:
        yield batch


def _bounds(
    as_of: _dt.date | _dt.datetime | None,
    end: _dt.date | None,
    now: _dt.datetime | None,
    tz: _dt.tzinfo,
) -> _dt.datetime:
    if as_of is not None:
        return moment_of(as_of, tz)
    if end is not None:  # a period's figures are those known at its end, and never change
        return moment_of(end, tz)
    return (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)


def _check_definition(definition: str) -> None:
    """Refuse a success-rate definition that is not one of :data:`DEFINITIONS` (a typed error,
    which is also a ``ValueError``)."""
    if definition not in DEFINITIONS:
        raise InvalidCommand(
            f"unknown definition {definition!r:.80}: one of {', '.join(DEFINITIONS)}",
            field="definition",
        )


def evaluation(
    store: Store,
    *,
    start: _dt.date | None = None,
    end: _dt.date | None = None,
    as_of: _dt.date | _dt.datetime | None = None,
    definition: str = DEFAULT_DEFINITION,
    committees: Iterable[str] | None = None,
    policy: Policy | None = None,
    zone: _dt.tzinfo | None = None,
    now: _dt.datetime | None = None,
) -> Evaluation:
    """The statistics of the period ``start``–``end`` (local dates of ``zone``, default the
    committee's Asia/Shanghai; either may be None) as of ``as_of`` (a date: the end of that local
    day; default: the end of the period, else ``now``), under the success-rate ``definition``
    (:data:`DEFINITIONS`), from the store's projection of the events (:meth:`Store.stat_events`,
    one SQL query on SQLite and PostgreSQL): no case is replayed and no hash checked, so the
    figures are only as good as the stored events (:func:`verified_evaluation` replays them)."""
    _check_definition(definition)
    tz = zone if zone is not None else _zone()
    moment = _bounds(as_of, end, now, tz)
    facts = (projected_facts(evs) for evs in _by_case(store.stat_events(format_time(moment))))
    return evaluate(
        facts,
        as_of=moment,
        start=start,
        end=end,
        definition=definition,
        committees=committees,
        policy=policy,
        zone=tz,
    )


def verified_evaluation(
    store: Store,
    *,
    start: _dt.date | None = None,
    end: _dt.date | None = None,
    as_of: _dt.date | _dt.datetime | None = None,
    definition: str = DEFAULT_DEFINITION,
    committees: Iterable[str] | None = None,
    policy: Policy | None = None,
    zone: _dt.tzinfo | None = None,
    now: _dt.datetime | None = None,
) -> tuple[Evaluation, tuple[str, ...]]:
    """:func:`evaluation` computed by replaying every case instead (:func:`replayed_facts` on the
    events before the moment): the figures, and the ids of the cases left out because their events
    do not verify.  On a store nobody wrote past the library, equal to :func:`evaluation`."""
    from ._audit import verify
    from ._roster import rosters_of

    _check_definition(definition)
    tz = zone if zone is not None else _zone()
    moment = _bounds(as_of, end, now, tz)
    before = format_time(moment)
    rosters = rosters_of(store)
    facts: list[CaseFacts] = []
    unverified: list[str] = []
    for case_id, records in by_stream(store.scan()):
        if case_id.startswith("@"):
            continue
        if not verify(records, case_id, rosters=rosters).ok:
            unverified.append(case_id)
            continue
        kept = [r for r in records if parse_body(r.body)["at"] < before]
        if kept:
            facts.append(replayed_facts(kept))
    found = evaluate(
        facts,
        as_of=moment,
        start=start,
        end=end,
        definition=definition,
        committees=committees,
        policy=policy,
        zone=tz,
    )
    return found, tuple(unverified)
