"""Steps with a body of steps (`loop`, `group`, `workflow`), once or once per fan-out item.

A body runs in its own scope under a `Home`: the path its steps' events carry (`polish.draft`,
`topics[1].research`) and the stem of its task keys (`polish`, `topics[1]:<item hash>`), so
the same work has the same key in every process and resume tells items and iterations apart.
With `for_each`, each item's body runs with the item (and its `index_as`) in scope, items in
parallel under the step's `concurrency`; the step's output is the list of per-item outputs in
item order, and `on_item_error` decides what a failed item does, once every item has ended.

Loops (`run_loop`): `loop.history` is the list of finished iterations (body id -> output),
oldest first (in `until`, the iteration just finished included), `loop.previous` the last of
them; the step's `iterations` view is that list, and
`exhausted` says it stopped at `max_iterations` with `until` still false (a warning, or a
failure with `on_exhausted: fail`). `max_iterations` may be an expression, rendered once.
`max_duration` bounds a loop by time instead or as well: no iteration starts after it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio

from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import (
    Scope,
    StepResult,
    TaskOutcome,
    body_failure,
    fanout_result,
    render_outputs,
    task_key,
)
from orchestrator.engine.ttl import expected_period_s
from orchestrator.engine.warmup import LoopPeriod
from orchestrator.errors import OrchestrateError, UsageError
from orchestrator.events import Warning as WarningEvent
from orchestrator.states import StepStatus, TaskStatus
from orchestrator.workflow import Step, Template

__all__ = ["Home", "fan_out_bodies", "home_of", "run_body", "run_group", "run_loop"]


@dataclass(frozen=True, slots=True)
class Home:
    """Where one body runs: its steps' path prefix, its task-key stem and its context."""

    path: str  # "polish." or "topics[1]."
    stem: str  # "polish" or "topics[1]:<hash>"
    base: dict[str, Any]  # the body's template context minus `steps`
    outer: dict[str, Any]  # step views visible from enclosing scopes
    scope: Scope  # the scope the step itself runs in

    def body(
        self,
        *,
        key: str,
        iteration: int | None,
        base: dict[str, Any],
        loop: LoopPeriod | None = None,
    ) -> Scope:
        """A scope for one run of the body; `loop` when it is a loop's iteration, else the
        enclosing loop's (a group in a loop body repeats with that loop)."""
        return Scope(
            workflow=self.scope.workflow,
            path=self.path,
            key=key,
            iteration=iteration,
            base=base,
            outer=self.outer,
            loop=loop or self.scope.loop,
        )


def home_of(step: Step, scope: Scope, ctx: dict[str, Any]) -> Home:
    """The home of a step's one body (no fan-out)."""
    return Home(
        path=f"{scope.path}{step.id}.",
        stem=f"{scope.key}{step.id}",
        base=dict(scope.base),
        outer=dict(ctx["steps"]),
        scope=scope,
    )


def _item_home(
    step: Step, scope: Scope, ctx: dict[str, Any], index: int, item: Any
) -> tuple[Home, dict[str, Any]]:
    names = {step.as_: item, **({step.index_as: index} if step.index_as else {})}
    home = Home(
        path=f"{scope.path}{step.id}[{index}].",
        stem=task_key(scope.key, step.id, index, item),
        base={**scope.base, **names},
        outer=dict(ctx["steps"]),
        scope=scope,
    )
    return home, {**ctx, **names}


def _cap(step: Step, ctx: dict[str, Any]) -> int | None:
    assert step.loop is not None
    raw = step.loop.max_iterations
    if raw is None:  # bounded by max_duration alone
        return None
    value = raw.render(ctx) if isinstance(raw, Template) else raw
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        source = raw.source if isinstance(raw, Template) else raw
        raise UsageError(f"max_iterations {source} gave {value!r}; it must be a positive number")
    return value


async def run_loop(
    run: RunContext, step: Step, home: Home, ctx: dict[str, Any], label: str
) -> StepResult:
    """A loop's iterations until `until` or the cap. `label` names the step in warnings."""
    assert step.loop is not None
    spec = step.loop
    cap = _cap(step, ctx)
    # max_duration counts from when this process starts the loop (a resumed run starts again)
    deadline = None if spec.max_duration is None else time.monotonic() + spec.max_duration
    history: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {}
    iteration = 0
    period = LoopPeriod(expected_period_s(run, step, home.scope.workflow), clock=run.clock)
    for iteration in itertools.count(1) if cap is None else range(1, cap + 1):
        if deadline is not None and iteration > 1 and time.monotonic() >= deadline:
            iteration -= 1
            timed_out = True
            break
        loop_vars = {
            "iteration": iteration,
            "index": iteration,
            "previous": history[-1] if history else {},
            "history": list(history),
        }
        body = home.body(
            key=f"{home.stem}@{iteration}.",
            iteration=iteration,
            base={**home.base, "loop": loop_vars},
            loop=period,
        )
        results = await run.walk(spec.steps, body)
        outputs = {sid: r.output for sid, r in results.items()}
        failure = body_failure(results)
        if failure is not None:
            sid, bad = failure
            return StepResult(
                bad.status
                if bad.status in (StepStatus.CANCELLED, StepStatus.WAITING)
                else StepStatus.FAILED,
                output=outputs,
                iterations=iteration,
                history=history,
                error=f"iteration {iteration}, step '{sid}': {bad.error}",
            )
        history.append(outputs)
        # `until` sees this iteration as finished: in `loop.history` as well as in `steps`
        until_ctx = body.context(results)
        until_ctx["loop"] = {**loop_vars, "history": list(history)}
        if spec.until is not None and spec.until.render(until_ctx):
            return StepResult(
                StepStatus.SUCCEEDED,
                output=outputs,
                iterations=iteration,
                history=history,
                exhausted=False,
            )
    else:
        timed_out = False
    exhausted = spec.until is not None  # a loop without `until` is a fixed count
    result = StepResult(
        StepStatus.SUCCEEDED,
        output=outputs,
        iterations=iteration,
        history=history,
        exhausted=exhausted,
    )
    if exhausted:
        bound = f"max_duration={spec.max_duration:g}s" if timed_out else f"max_iterations={cap}"
        message = (
            f"loop '{label}' stopped at {bound} with 'until' still false "
            f"(steps.{step.id}.exhausted is true)"
        )
        if spec.on_exhausted == "fail":
            result.status = StepStatus.FAILED
            result.error = message + "; on_exhausted: fail"
        else:
            run.emit(WarningEvent(run_id=run.run_id, step_id=label, message=message))
    return result


async def run_group(run: RunContext, step: Step, home: Home) -> StepResult:
    """A group's body as one step: its output maps body ids to their outputs."""
    assert step.group is not None
    body = home.body(key=f"{home.stem}.", iteration=home.scope.iteration, base=home.base)
    results = await run.walk(step.group.steps, body)
    outputs = {sid: r.output for sid, r in results.items()}
    failure = body_failure(results)
    if failure is not None:
        sid, bad = failure
        return StepResult(bad.status, output=outputs, error=f"step '{sid}': {bad.error}")
    return StepResult(StepStatus.SUCCEEDED, output=outputs)


async def run_subworkflow(
    run: RunContext, step: Step, home: Home, ctx: dict[str, Any]
) -> StepResult:
    """One item of a `workflow:` fan-out: the child sees only its inputs and its own steps."""
    sub = step.sub
    assert sub is not None
    raw = {name: tpl.render(ctx) for name, tpl in step.inputs.items()}
    child = Scope(
        workflow=sub,
        path=home.path,
        key=f"{home.stem}.",
        iteration=home.scope.iteration,
        base={**home.scope.base, "inputs": sub.coerce_inputs(raw), "loop": {}},
        outer={},
        loop=home.scope.loop,
    )
    results = await run.walk(sub.steps, child)
    failure = body_failure(results)
    if failure is not None:
        sid, bad = failure
        return StepResult(bad.status, error=f"sub-workflow step '{sid}': {bad.error}")
    return StepResult(StepStatus.SUCCEEDED, output=render_outputs(sub, child, results))


async def run_body(
    run: RunContext, step: Step, home: Home, ctx: dict[str, Any], label: str
) -> StepResult:
    """The body of a loop, group or workflow step at `home`."""
    if step.kind == "loop":
        return await run_loop(run, step, home, ctx, label)
    if step.kind == "group":
        return await run_group(run, step, home)
    if step.kind == "workflow":
        return await run_subworkflow(run, step, home, ctx)
    raise UsageError(f"step '{label}': a {step.kind} step has no body to run per item")


_TASK_STATUS = {
    StepStatus.SUCCEEDED: TaskStatus.SUCCEEDED,
    StepStatus.SKIPPED: TaskStatus.SUCCEEDED,  # every body step skipped: the item is done
    StepStatus.FAILED: TaskStatus.FAILED,
    StepStatus.CANCELLED: TaskStatus.CANCELLED,
}


async def fan_out_bodies(
    run: RunContext,
    step: Step,
    scope: Scope,
    ctx: dict[str, Any],
    path: str,
    items: list[Any],
) -> StepResult:
    """One body per (kept) item, in parallel under the step's concurrency. Body tasks take
    their own task slots, so items wait on no slot of their own (that could deadlock)."""
    results: list[StepResult | None] = [None] * len(items)
    top = run.limits.concurrency
    width = min(step.concurrency or top, top, max(1, len(items)))
    cursor = iter(range(len(items)))

    async def item_worker() -> None:
        for index in cursor:
            home, item_ctx = _item_home(step, scope, ctx, index, items[index])
            try:
                results[index] = await run_body(run, step, home, item_ctx, f"{path}[{index}]")
            except OrchestrateError as exc:  # a template error in this item only
                results[index] = StepResult(StepStatus.FAILED, error=str(exc))

    await _pool(width, item_worker)
    outcomes: list[TaskOutcome | None] = [
        None
        if r is None
        else TaskOutcome(_TASK_STATUS.get(r.status, TaskStatus.FAILED), r.output, r.error)
        for r in results
    ]
    result, dropped = fanout_result(step, outcomes, run.stop.reason)
    if dropped:
        message = f"{dropped} of {len(items)} items failed and were skipped"
        run.emit(WarningEvent(run_id=run.run_id, step_id=path, message=message))
    return result


async def _pool(width: int, worker: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(width):
            tg.start_soon(worker)
