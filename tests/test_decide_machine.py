"""The decision's remembered machine answers are the machine's answers.

:func:`mediation._decide.decide` evaluates the machine's own transition conditions, in the
machine's order, and asks the ``transitions`` trigger once per (state, command, transition taken),
remembering its answer.  Here every command of the workflow, by holders of its grants and by
strangers, with payloads drawn to fit the case or naming people who are not in it, and with the
payload unknown (the "what may I do" query), is decided both ways on random histories: by
:func:`decide`, and by a reference that triggers a freshly built machine every time (the decision
as it was before answers were remembered).  They must agree: the same decision, or the same error
with the same message and fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import event, given, note
from hypothesis import strategies as st
from transitions import MachineError

from mediation import WORKFLOW, Role
from mediation._authz import TRUSTED, authorize
from mediation._decide import Decision, _ask, _build, decide
from mediation._errors import IllegalTransition, MediationError
from mediation._guards import Context
from mediation.commands import to_payload
from mediation.testing import Driven, command_for, driven_cases

FRESH_MACHINE = _build(WORKFLOW)


def reference(
    case: Any,
    command: str,
    actor: str,
    payload: Mapping[str, Any] | None,
    at: str,
    *,
    grants: Any,
    claim: str | None,
    directory: Any,
) -> Decision:
    """The decision with the machine's trigger fired on every call, on a machine of its own."""
    spec = case.workflow.command(command)
    given_ = {} if payload is None else payload
    acted_as = authorize(spec, case, actor, given_, claim, grants)
    partial = payload is None
    ctx = None
    if spec.checked:
        ctx = Context(case, command, given_, actor, acted_as, at, directory, spec, claim, grants)
        ctx.partial = partial
    answer = _ask(FRESH_MACHINE.events[command], case.state, ctx)
    if isinstance(answer, MachineError):
        where = "a new case" if case.state == "new" else f"state {case.state}"
        raise IllegalTransition(
            f"{command} is not allowed from {where}",
            case=case.id,
            state=case.state,
            command=command,
            actor=actor,
        )
    pending = tuple(dict.fromkeys(ctx.pending)) if ctx is not None and ctx.pending else ()
    return Decision(spec, acted_as, answer, pending)


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        d = fn(*args, **kwargs)
    except MediationError as exc:
        return type(exc).__name__, (exc.message, exc.fields())
    return "decided", (d.command.name, d.acted_as, d.state, d.pending)


@given(d=driven_cases(max_steps=30), data=st.data())
def test_remembered_answers_equal_the_machines_on_every_command(
    d: Driven, data: st.DataObject
) -> None:
    case = d.service.case(d.case_id)
    at = case.updated_at
    everyone = sorted(d.world.people.values(), key=lambda a: a.id)
    for spec in WORKFLOW.commands:
        if spec.opens:
            continue
        claim = data.draw(st.sampled_from(spec.grants), label=f"{spec.name} claim")
        holders = d.world.holders(case, claim) or everyone
        actor = data.draw(st.sampled_from(holders), label=f"{spec.name} actor")
        command = data.draw(command_for(d.world, case, spec.name), label=f"{spec.name} payload")
        payload = to_payload(command)
        if spec.people and data.draw(st.booleans(), label=f"{spec.name} misnamed"):
            field = spec.people[0][0]
            if isinstance(payload.get(field), str):
                payload = {**payload, field: "ghost"}
        grants = actor.grants if claim in {r.value for r in Role} else TRUSTED
        for given_payload in (payload, None):
            for claimed in (claim, None):
                directory = data.draw(st.sampled_from((d.world.directory, None)), label="directory")
                kwargs = dict(grants=grants, claim=claimed, directory=directory)
                args = (case, spec.name, actor.id, given_payload, at)
                got = _outcome(decide, *args, **kwargs)
                want = _outcome(reference, *args, **kwargs)
                note(f"{spec.name} in {case.state} by {actor.id} as {claimed}: {got}")
                event(want[0])
                if want[0] == "IllegalTransition":  # the reference spells no Chinese message
                    assert got[0] == want[0] and got[1][0] == want[1][0]
                else:
                    assert got == want
                # asked again, the remembered answer is the same
                assert _outcome(decide, *args, **kwargs) == got


def test_a_branching_command_gets_each_branch_from_the_machine() -> None:
    """``sign`` has two transitions (to the target once every signature is in, else stay): each
    signature is decided as the machine decides it, the last one too, after the branch that stays
    was remembered."""
    from mediation import commands as cmd
    from mediation.testing import PathOptions, World, drive

    world = World()
    service = world.service()
    case = drive(service, world, "c", "agreement_drafted", PathOptions(lead="med1"))
    spec = WORKFLOW.command("sign")
    signers = [(a, g) for g in spec.grants for a in world.holders(case, g)]
    seen = set()
    for actor, grant in signers:
        case = service.case("c")
        if case.state != "agreement_drafted":
            break
        payload = to_payload(cmd.Sign())
        kwargs = dict(grants=actor.grants, claim=grant, directory=world.directory)
        args = (case, "sign", actor.id, payload, case.updated_at)
        got = _outcome(decide, *args, **kwargs)
        assert got == _outcome(reference, *args, **kwargs)
        if got[0] == "decided":
            seen.add(got[1][2])
            service.execute(actor, "c", cmd.Sign(), acting_as=grant)
    assert seen == {"agreement_drafted", "agreement_effective"}
