"""The `set` kind: a data step, `set: "{{ expr }}"`; its output is the expression's native
value, with no model call and no task. With `to_state: KEY` the value is also written to the
state under KEY through `SharedState.update` (compare-and-set in a scope: the expression is
evaluated again on the fresh value whenever another run wrote the key first).

The value is made plain JSON (tuples and ranges become lists) because step outputs are stored
and shown as JSON; a value that has no JSON form fails the step, naming its type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import Scope, StepResult
from orchestrator.engine.registry import register
from orchestrator.errors import UsageError
from orchestrator.states import StepStatus
from orchestrator.workflow import Step


def _plain(value: Any) -> Any:
    if isinstance(value, range | set | frozenset | Iterator):
        return list(value)
    raise TypeError(type(value).__name__)


def plain_json(value: Any) -> Any:
    """`value` as plain JSON data; raises `UsageError` naming a type JSON cannot hold."""
    try:
        return json.loads(json.dumps(value, default=_plain, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"set gave a value JSON cannot hold ({exc})") from None


@register("set")
async def set_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    if step.to_state is None:
        value = step.set_.render(ctx) if step.set_ is not None else None
        return StepResult(StepStatus.SUCCEEDED, output=plain_json(value))

    async def compute() -> Any:
        # `ctx["state"]` is the run's `state.values`, refreshed by `update` before each try
        return plain_json(step.set_.render(ctx) if step.set_ is not None else None)

    value = await run.state.update(step.to_state, compute)
    return StepResult(StepStatus.SUCCEEDED, output=value)
