"""The `merge` kind: a deterministic reducer over another step's output; no model call.

A skipped source merges as an empty list, so routing around a fan-out still gives its merge a
value (an empty concat, an empty list, a vote with no winner).
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine import reducers
from orchestrator.engine.context import RunContext
from orchestrator.engine.kinds.branches import merge_branches
from orchestrator.engine.plan import Scope, StepResult
from orchestrator.engine.registry import register
from orchestrator.states import StepStatus
from orchestrator.workflow import Step


@register("merge")
async def merge_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    assert step.merge is not None and step.from_ is not None
    if step.merge == "branches":  # git, not a reducer (see kinds/branches.py)
        return await merge_branches(run, step, ctx)
    source = ctx["steps"].get(step.from_, {})
    value = [] if source.get("status") == StepStatus.SKIPPED else source.get("output")
    output = reducers.reduce(
        step.merge, value, source=step.from_, by=step.by, separator=step.separator
    )
    return StepResult(StepStatus.SUCCEEDED, output=output)
