"""The `set` kind: a data step, `set: "{{ expr }}"`; its output is the expression's native
value, with no model call and no task.

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
    value = step.set_.render(ctx) if step.set_ is not None else None
    return StepResult(StepStatus.SUCCEEDED, output=plain_json(value))
