"""The `group` kind: a body of steps run as one step (`group: {steps: [...]}`).

A false `when` on the group skips all of it (the scheduler decides that before this runs). Body
steps may read outer steps; their paths are `g.a` and their task keys `g.a`, or with `for_each`
`g[1].a` and `g[1]:<item hash>.a` (see `compound.py`). The output maps body ids to outputs.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.context import RunContext
from orchestrator.engine.kinds.compound import home_of, run_group
from orchestrator.engine.plan import Scope, StepResult
from orchestrator.engine.registry import register
from orchestrator.workflow import Step


@register("group")
async def group_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    return await run_group(run, step, home_of(step, scope, ctx))
