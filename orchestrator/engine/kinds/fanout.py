"""The `fanout` kind: any agent or `run` step with `for_each`, one task per item.

Items run through a bounded pool (`min(step concurrency, run concurrency)` workers pulling items
in order), so memory stays flat at any list size; with `batch: true` an agent fan-out instead
starts every item at once and gathers their calls into Message Batches (`engine/batch.py`).
`steps.<id>.output` is the list of item outputs in item order; what failed items do to the step
(`on_item_error`) is decided once every item has ended (`plan.fanout_result`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from orchestrator.contracts import WorkerContext, supports_batches
from orchestrator.engine.attempts import Prepare
from orchestrator.engine.batch import BatchCollector
from orchestrator.engine.context import RunContext
from orchestrator.engine.kinds.agent import agent_task
from orchestrator.engine.kinds.command import command_task
from orchestrator.engine.plan import (
    Scope,
    StepResult,
    TaskOutcome,
    fanout_items,
    fanout_result,
    task_key,
)
from orchestrator.engine.registry import register
from orchestrator.engine.resolve import task_settings
from orchestrator.errors import UsageError
from orchestrator.events import Warning as WarningEvent
from orchestrator.states import StepStatus
from orchestrator.workflow import Step

# (item context, task key, index, worker context or None) -> the item's task
_ItemTask = Callable[[dict[str, Any], str, int, WorkerContext | None], Prepare]


@register("fanout", announces_itself=True)
async def fanout_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    assert step.for_each is not None
    value = step.for_each.render(ctx)
    items = fanout_items(value)
    # announced once the item count is known, so progress can show "0/N" from the start
    run.announce(path, scope, "fanout", len(items) if items is not None else None)
    if items is None:
        return StepResult(
            StepStatus.FAILED,
            error=f"for_each must give a list, got {type(value).__name__}: {str(value)[:100]}",
        )
    problem = run.claim_tasks(len(items), fanout=True)
    if problem is not None:
        return StepResult(StepStatus.FAILED, error=problem)
    item_task = _item_task(run, step, scope, path)
    outcomes: list[TaskOutcome | None] = [None] * len(items)
    if step.batch and step.kind == "agent":
        await _batched(run, step, scope, ctx, path, items, outcomes, item_task)
    else:
        await _pooled(run, step, scope, ctx, path, items, outcomes, item_task)
    result, dropped = fanout_result(step, outcomes, run.stop.reason)
    if dropped:
        run.emit(
            WarningEvent(
                run_id=run.run_id,
                step_id=path,
                message=f"{dropped} of {len(items)} items failed and were skipped",
            )
        )
    return result


def _item_task(run: RunContext, step: Step, scope: Scope, path: str) -> _ItemTask:
    if step.kind == "run":
        return lambda item_ctx, _key, _index, _lent: command_task(run, step, scope, item_ctx)
    resolved = task_settings(step, scope.workflow, run.settings)  # once for every item

    def item_task(
        item_ctx: dict[str, Any], key: str, index: int, lent: WorkerContext | None
    ) -> Prepare:
        return agent_task(
            run, step, item_ctx, path=path, key=key, index=index, resolved=resolved, worker_ctx=lent
        )

    return item_task


def _item(
    step: Step, scope: Scope, ctx: dict[str, Any], index: int, item: Any
) -> tuple[dict[str, Any], str]:
    """One item's template context and its deterministic task key."""
    item_ctx = dict(ctx)
    item_ctx[step.as_] = item
    return item_ctx, task_key(scope.key, step.id, index, item)


async def _pooled(
    run: RunContext,
    step: Step,
    scope: Scope,
    ctx: dict[str, Any],
    path: str,
    items: list[Any],
    outcomes: list[TaskOutcome | None],
    item_task: _ItemTask,
) -> None:
    """A bounded pool of workers pulls items in order: memory stays flat at any size."""
    top = run.limits.concurrency
    width = min(step.concurrency or top, top, max(1, len(items)))
    cursor = iter(range(len(items)))

    async def pool_worker() -> None:
        for index in cursor:
            item_ctx, key = _item(step, scope, ctx, index, items[index])
            async with run.task_slots:
                outcomes[index] = await run.tasks.run(
                    path=path,
                    key=key,
                    index=index,
                    iteration=scope.iteration,
                    prepare=item_task(item_ctx, key, index, None),
                )

    async with anyio.create_task_group() as tg:
        for _ in range(width):
            tg.start_soon(pool_worker)


async def _batched(
    run: RunContext,
    step: Step,
    scope: Scope,
    ctx: dict[str, Any],
    path: str,
    items: list[Any],
    outcomes: list[TaskOutcome | None],
    item_task: _ItemTask,
) -> None:
    """Every item at once, its calls gathered into Message Batches (see engine/batch.py)."""
    llm = run.llm
    if not supports_batches(llm):
        raise UsageError(f"step '{path}': batch: true needs a client with the Batches API")
    collector = BatchCollector(
        llm=llm,
        dispatcher=run.dispatcher,
        settings=run.settings,
        emit=run.emit,
        run_id=run.run_id,
        step_id=path,
        sleep=run.sleep,
        prior_batches=run.prior_batches.get(path),
    )
    lent = WorkerContext(call=collector.call, state=run.state, emit=run.emit)
    collector.expect(len(items))

    async def one(index: int) -> None:
        with collector.item():
            item_ctx, key = _item(step, scope, ctx, index, items[index])
            outcomes[index] = await run.tasks.run(
                path=path,
                key=key,
                index=index,
                iteration=scope.iteration,
                prepare=item_task(item_ctx, key, index, lent),
            )

    async with collector.running(), anyio.create_task_group() as tg:
        for index in range(len(items)):
            tg.start_soon(one, index)
