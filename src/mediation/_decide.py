"""The one decision: may this command be recorded on this case now, and what does it lead to?

:func:`decide` is called by the live path (:meth:`CaseService.execute`), by the "what may I do
now" query (:meth:`CaseService.allowed`, with the payload unknown) and by replay
(:func:`mediation.verify`, with the role or relation the event records and the grants of the day
when a directory is given).  What one of them accepts, the others accept; what one refuses, the
others refuse with the same error.

The checks run in one order, each with one error:

1. the actor holds a relation to the case or a role in its committee that the command allows
   (:class:`~mediation.NotPermitted`): first, so that someone with no standing in a case learns
   nothing of its state;
2. the command is one of the case's workflow, and legal from the case's state
   (:class:`~mediation.IllegalTransition`);
3. the people its payload names are where the declaration says (:class:`~mediation.InvalidCommand`);
4. every guard holds, in declaration order (:class:`~mediation.GuardFailed`);
5. the target: the declared one, or the same state while a ``completes_when`` predicate does not
   hold yet.

``transitions`` runs checks 2 to 5: one machine per workflow version, without models (a short-lived
probe carries the state), whose transition conditions are the people check and the guards.  The
machine has no callbacks, so its answer depends only on the state, the command and which of its
transitions had all its conditions hold: for a command with no condition at all, on the state
alone.  The decision evaluates the machine's own conditions, in the machine's order, on every call,
and asks the machine itself once per (state, command, transition taken), remembering its answer;
the ``transitions`` trigger machinery (event data, logging, the state change on a probe) runs only
then.  A raising condition never returns False: a failed check is an error with a reason; only
``completes_when`` predicates choose a branch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from transitions import Machine, MachineError

from ._authz import Directory, Grant, _Trusted, authorize
from ._case import Case
from ._errors import IllegalTransition, KeyDestroyed
from ._guards import GUARDS, Context, check_people, failure
from ._privacy import sealed_places
from ._spec import CommandSpec, Workflow
from ._vocab import NEW

__all__ = ["Decision", "decide", "machine_of"]


class Decision(NamedTuple):
    """An accepted command: under which role or relation, and the state it leads to (a named
    tuple: made on every command, so the cheapest immutable value)."""

    command: CommandSpec
    acted_as: str
    state: str
    #: guards that need the payload, not judged (only when the payload was not given)
    pending: tuple[str, ...] = ()


class _Probe:
    """What the machine transitions: one attribute, set from the case, read back, dropped."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def _condition(check: Callable[[Context], bool], name: str) -> Callable[[Any], bool]:
    """A machine condition (``send_event``: it is given the event data) that runs ``check`` on the
    context the trigger carries; ``check`` is kept on it (``on_ctx``) for :func:`_rows`."""

    def cond(event: Any) -> bool:
        return check(event.kwargs["ctx"])

    cond.__name__ = name
    cond.on_ctx = check  # type: ignore[attr-defined]
    return cond


def _people_check(ctx: Context) -> bool:
    if not ctx.partial:
        assert ctx.spec is not None
        check_people(ctx.case, ctx.spec, ctx.payload)
    return True


_people = _condition(_people_check, "_people")


def _erased_check(ctx: Context) -> bool:
    """New personal data is never recorded for a person (or a case) whose personal data was
    erased: part of the decision, so that the window between the erasure's event and the keys'
    destruction accepts nothing either, and replay refuses what the live path refuses."""
    erased = ctx.case.erased
    if erased and not ctx.partial:
        assert ctx.spec is not None
        for place, value in sealed_places(ctx.case.workflow, ctx.spec, ctx.payload):
            filled = isinstance(value, dict) or (isinstance(value, str) and value.strip())
            if filled and ("*" in erased or place.subject in erased):
                who = "the case" if "*" in erased else place.subject
                raise KeyDestroyed(
                    f"the personal data of {who} in case {ctx.case.id} was erased: "
                    f"{place.pointer} cannot be recorded",
                    message_zh=f"案件 {ctx.case.id} 中{'本案' if who == 'the case' else who}"
                    "的个人信息已删除，不能再记录",
                    field=place.member,
                    case=ctx.case.id,
                    command=ctx.command,
                    actor=ctx.actor,
                    state=ctx.case.state,
                )
    return True


_erased = _condition(_erased_check, "_erased")


def _guard_condition(name: str, impl: str) -> Callable[[Any], bool]:
    g = GUARDS[impl]
    fn, needs_payload, needs_directory = g.fn, g.needs_payload, g.needs_directory

    def check(ctx: Context) -> bool:
        if needs_payload and ctx.partial:
            ctx.pending.append(name)
            return True
        if needs_directory and ctx.directory is None:
            return True  # G3 is judged only where the grants of the day are known
        reason = fn(ctx)
        if reason is not None:
            raise failure(name, reason, ctx)
        return True

    return _condition(check, f"guard_{name}")


def _completion(impl: str) -> Callable[[Any], bool]:
    fn = GUARDS[impl].fn

    def check(ctx: Context) -> bool:
        return fn(ctx) is None

    return _condition(check, f"completes_{impl}")


def _build(workflow: Workflow) -> Machine:
    rows: list[dict[str, Any]] = []
    for c in workflow.commands:
        conditions: list[Callable[[Any], bool]] = [_people] if c.people else []
        conditions += [_erased] if c.persons or c.sealed else []
        conditions += [_guard_condition(g, workflow.guard(g).function) for g in c.guards]
        for src in c.sources:
            if c.completes_when is not None:
                done = [*conditions, _completion(workflow.guard(c.completes_when).function)]
                rows.append(dict(trigger=c.name, source=src, dest=c.target, conditions=done))
            rows.append(
                dict(
                    trigger=c.name,
                    source=src,
                    dest=None if c.completes_when else c.target,
                    conditions=conditions,
                )
            )
    return Machine(
        model=None,
        states=[NEW, *(s.name for s in workflow.states)],
        initial=NEW,
        transitions=rows,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )


def machine_of(workflow: Workflow) -> Machine:
    """The ``transitions`` machine of ``workflow``, built once and shared (it has no models)."""
    machine: Machine | None = workflow._cache.get("machine")
    return machine if machine is not None else workflow.cached("machine", _build)


def _illegal(
    case: Case, command: str, actor: str, en: str, zh: str, *, state: bool = True
) -> IllegalTransition:
    return IllegalTransition(
        en,
        message_zh=zh,
        case=case.id,
        state=case.state if state else None,
        command=command,
        actor=actor,
    )


#: per command: its machine event, its declaration and the machine's remembered answers: by state
#: for a command without conditions, by (state, the index of the transition taken: -1 none, -2 the
#: state is not a source) for the others; each asked of the machine once, then remembered (the
#: same key always gets the same answer); and by state, the machine's transitions from it as
#: :func:`_rows` gives them
_Entry = tuple[Any, CommandSpec, dict[Any, str | MachineError], dict[str, Any]]


def decide(
    case: Case,
    command: str,
    actor: str,
    payload: Mapping[str, Any] | None,
    at: str,
    *,
    grants: frozenset[Grant] | _Trusted,
    claim: str | None = None,
    directory: Directory | None = None,
) -> Decision:
    """Decide ``command`` by ``actor`` at ``at`` on ``case`` (as folded so far, on its workflow).

    ``payload`` None asks whether the command may be issued at all, with the guards that need a
    payload left pending.  ``claim`` is the role or relation the actor acts under (None: the first
    that permits it); ``grants`` the actor's roles of the day, or ``TRUSTED`` to accept a claimed
    role as recorded.  Returns the :class:`Decision` or raises the typed refusal.
    """
    workflow = case.workflow
    table = workflow._cache.get("decisions")
    if table is None:
        table = workflow.cached("decisions", _decisions)
    entry: _Entry | None = table.get(command)
    if entry is None:
        raise _illegal(
            case,
            command,
            actor,
            f"{command} is not a command of workflow {workflow.version}",
            f"流程 {workflow.version} 中没有「{command}」",
            state=False,  # not authorized yet: nothing of where the case is
        )
    event, spec, answers, plans = entry
    state = case.state
    given = {} if payload is None else payload
    acted_as = authorize(spec, case, actor, given, claim, grants)
    if not spec.checked:  # no condition: the machine's answer depends on the state alone
        ctx = None
        answer = answers.get(state)
        if answer is None:
            answer = answers[state] = _ask(event, state)
    else:
        # the conditions read a context
        ctx = Context(
            case,
            command,
            given,
            actor,
            acted_as,
            at,
            directory,
            spec,
            claim,
            grants,
            payload is None,
        )
        # the machine's own transitions from this state, tried as its trigger tries them: the
        # first whose conditions all hold is taken (a failing check raises its error here)
        rows = plans.get(state, _UNSET)
        if rows is _UNSET:
            rows = plans[state] = _rows(event, state)
        if rows is None:  # not a source: the machine refuses before any condition
            taken = -2
        else:
            taken = -1
            for i, row in enumerate(rows):
                for check, want in row:
                    if check(ctx) != want:
                        break
                else:
                    taken = i
                    break
        answer = answers.get((state, taken))
        if answer is None:  # the machine's answer, asked once for this outcome
            answer = answers[(state, taken)] = _ask(event, state, ctx)
    if isinstance(answer, MachineError):  # not allowed from this state
        where = "a new case" if case.state == NEW else f"state {case.state}"
        raise _illegal(
            case,
            command,
            actor,
            f"{command} is not allowed from {where}",
            f"当前状态下不能「{spec.zh}」",
        ) from answer
    pending = tuple(dict.fromkeys(ctx.pending)) if ctx is not None and ctx.pending else ()
    return _new_decision(Decision, (spec, acted_as, answer, pending))


_UNSET = object()
#: makes a Decision from its four fields without the named tuple's Python-level ``__new__``
_new_decision = tuple.__new__


class _Data:
    """What the machine hands a condition (``send_event``): the conditions read ``kwargs`` only."""

    __slots__ = ("kwargs",)

    def __init__(self, ctx: Context) -> None:
        self.kwargs = {"ctx": ctx}


def _rows(
    event: Any, state: str
) -> tuple[tuple[tuple[Callable[[Context], bool], bool], ...], ...] | None:
    """The machine's transitions of ``event`` from ``state``, in its order, each as its conditions:
    (the check the condition runs on the context, the result the machine wants of it); None when
    ``state`` is not a source of ``event``."""
    routes = event.transitions.get(state)
    if routes is None:
        return None
    out = []
    for route in routes:
        row = []
        for cond in route.conditions:
            check = getattr(cond.func, "on_ctx", None)
            if check is None:  # a condition not made by _condition: call it as the machine does
                check = functools.partial(_as_machine_calls, cond.func)
            row.append((check, cond.target))
        out.append(tuple(row))
    return tuple(out)


def _as_machine_calls(func: Callable[[Any], Any], ctx: Context) -> Any:
    return func(_Data(ctx))


def _ask(event: Any, state: str, ctx: Context | None = None) -> str | MachineError:
    """Trigger ``event`` on a probe in ``state``: the state it leads to, or the machine's refusal
    of the state (a failed check raises its own error)."""
    probe = _Probe(state)
    try:
        event.trigger(probe, ctx=ctx)
    except MachineError as exc:
        return exc.with_traceback(None)
    return probe.state


def _decisions(workflow: Workflow) -> dict[str, _Entry]:
    """What :func:`decide` looks up per command of ``workflow``, built once from its machine."""
    machine = machine_of(workflow)
    return {name: (event, workflow.command(name), {}, {}) for name, event in machine.events.items()}
