"""The `loop` kind: its body's steps, iteration after iteration, until `until` or the cap.

Each iteration is its own scope: step paths `polish.draft`, task keys `polish@2.draft` (so
resume tells iterations apart), `loop.iteration`/`loop.previous` in templates. The step's
output is the last iteration's outputs by step id, `iterations` how many ran. A failed or
cancelled body step ends the loop with that status.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import Scope, StepResult, body_failure
from orchestrator.engine.registry import register
from orchestrator.states import StepStatus
from orchestrator.workflow import Step


@register("loop")
async def loop_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    assert step.loop is not None
    spec = step.loop
    previous: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    iteration = 0
    outer = dict(ctx["steps"])
    for iteration in range(1, spec.max_iterations + 1):
        body = scope.loop_body(step, iteration, previous, outer)
        results = await run.walk(spec.steps, body)
        outputs = {sid: r.output for sid, r in results.items()}
        failure = body_failure(results)
        if failure is not None:
            sid, bad = failure
            return StepResult(
                StepStatus.CANCELLED if bad.status == StepStatus.CANCELLED else StepStatus.FAILED,
                output=outputs,
                iterations=iteration,
                error=f"iteration {iteration}, step '{sid}': {bad.error}",
            )
        if spec.until is not None and spec.until.render(body.context(results)):
            break
        previous = outputs
    return StepResult(StepStatus.SUCCEEDED, output=outputs, iterations=iteration)
