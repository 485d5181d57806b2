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
probe carries the state), whose transition conditions are the people check and the guards.  For a
command with no condition at all the machine's answer depends on the state alone: it is asked once
per (state, command) and its answer is remembered.  A raising condition never returns False: a failed check is an
error with a reason; only ``completes_when`` predicates choose a branch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from transitions import Machine, MachineError

from ._authz import Directory, Grant, _Trusted, authorize
from ._case import Case
from ._errors import IllegalTransition
from ._guards import GUARDS, Context, check_people, failure
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


def _people(event: Any) -> bool:
    ctx: Context = event.kwargs["ctx"]
    if not ctx.partial:
        assert ctx.spec is not None
        check_people(ctx.case, ctx.spec, ctx.payload)
    return True


def _guard_condition(name: str, impl: str) -> Callable[[Any], bool]:
    g = GUARDS[impl]
    fn, needs_payload, needs_directory = g.fn, g.needs_payload, g.needs_directory

    def cond(event: Any) -> bool:
        ctx: Context = event.kwargs["ctx"]
        if needs_payload and ctx.partial:
            ctx.pending.append(name)
            return True
        if needs_directory and ctx.directory is None:
            return True  # G3 is judged only where the grants of the day are known
        reason = fn(ctx)
        if reason is not None:
            raise failure(name, reason, ctx)
        return True

    cond.__name__ = f"guard_{name}"
    return cond


def _completion(impl: str) -> Callable[[Any], bool]:
    fn = GUARDS[impl].fn

    def cond(event: Any) -> bool:
        return fn(event.kwargs["ctx"]) is None

    cond.__name__ = f"completes_{impl}"
    return cond


def _build(workflow: Workflow) -> Machine:
    rows: list[dict[str, Any]] = []
    for c in workflow.commands:
        conditions: list[Callable[[Any], bool]] = [_people] if c.people else []
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
    event = machine_of(workflow).events.get(command)
    if event is None:
        raise _illegal(
            case,
            command,
            actor,
            f"{command} is not a command of workflow {workflow.version}",
            f"流程 {workflow.version} 中没有「{command}」",
            state=False,  # not authorized yet: nothing of where the case is
        )
    spec = workflow.command(command)
    given = {} if payload is None else payload
    acted_as = authorize(spec, case, actor, given, claim, grants)
    # the conditions read a context; a command without any needs none
    ctx = (
        Context(
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
        if spec.checked
        else None
    )
    if ctx is None:  # no condition: the machine's answer depends on the state alone
        answers: dict[tuple[str, str], str | MachineError] = workflow.cached("answers", _no_answers)
        answer = answers.get((case.state, command))
        if answer is None:
            answer = answers[(case.state, command)] = _ask(event, case.state)
    else:
        answer = _ask(event, case.state, ctx)
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
    return Decision(spec, acted_as, answer, pending)


def _ask(event: Any, state: str, ctx: Context | None = None) -> str | MachineError:
    """Trigger ``event`` on a probe in ``state``: the state it leads to, or the machine's refusal
    of the state (a failed check raises its own error)."""
    probe = _Probe(state)
    try:
        event.trigger(probe, ctx=ctx)
    except MachineError as exc:
        return exc.with_traceback(None)
    return probe.state


def _no_answers(workflow: Workflow) -> dict[tuple[str, str], str | MachineError]:
    """The machine's answers for the commands without conditions, by (state, command): asked once
    each, then remembered (the same state and command always get the same answer)."""
    return {}
