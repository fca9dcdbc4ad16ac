"""The `loop` kind: its body's steps, iteration after iteration, until `until` or the cap.

Each iteration is its own scope: step paths `polish.draft`, task keys `polish@2.draft` (so
resume tells iterations apart), `loop.iteration`, `loop.previous` and `loop.history` in
templates. The step's output is the last iteration's outputs by step id; `steps.<id>.iterations`
is every finished iteration's, oldest first, and `steps.<id>.exhausted` whether it stopped at the
cap with `until` still false. A failed or cancelled body step ends the loop with that status;
so does one that waits for a person.
The iterations themselves run in `compound.run_loop`, shared with a loop fan-out's items.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.context import RunContext
from orchestrator.engine.kinds.compound import home_of, run_loop
from orchestrator.engine.plan import Scope, StepResult
from orchestrator.engine.registry import register
from orchestrator.workflow import Step


@register("loop")
async def loop_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    return await run_loop(run, step, home_of(step, scope, ctx), ctx, path)
