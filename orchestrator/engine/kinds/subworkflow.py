"""The `workflow` kind: another workflow's steps run as child steps (`sub.shout`).

Its inputs are rendered here and checked against the child's declared inputs; the child sees
only those inputs and its own steps. The step's output is the child's rendered `outputs:`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import Scope, StepResult, body_failure, render_outputs
from orchestrator.engine.registry import register
from orchestrator.states import StepStatus
from orchestrator.workflow import Step


@register("workflow")
async def subworkflow_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    sub = step.sub
    assert sub is not None
    raw = {name: tpl.render(ctx) for name, tpl in step.inputs.items()}
    child = scope.sub_workflow(step, sub, sub.coerce_inputs(raw))
    results = await run.walk(sub.steps, child)
    failure = body_failure(results)
    if failure is not None:
        sid, bad = failure
        return StepResult(bad.status, error=f"sub-workflow step '{sid}': {bad.error}")
    return StepResult(StepStatus.SUCCEEDED, output=render_outputs(sub, child, results))
