"""The `fanout` kind: any step with `for_each`: one task per item for agent and `run` steps,
one body per item for `group`, `loop` and `workflow` steps (`compound.fan_out_bodies`).

`where` drops items before any task is created; `index_as` names an item's 0-based position
among the items kept, which with the item's hash makes its task key. An agent fan-out's
templated settings (`model: "{{ item.model }}"`) are rendered and checked for every item before
any task starts: with `on_item_error: fail` one bad item fails the step before anything is sent;
with `skip` that item fails, naming the problem, and the others run.
Items run through a bounded pool (`min(step concurrency, run concurrency)` workers pulling items
in order), so memory stays flat at any list size; with `batch: true` an agent fan-out instead
starts every item at once and gathers their calls into Message Batches (`engine/batch.py`).
`steps.<id>.output` is the list of item outputs in item order; what failed items do to the step
(`on_item_error`) is decided once every item has ended (`plan.fanout_result`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import anyio

from orchestrator.contracts import WorkerContext, supports_batches
from orchestrator.engine.attempts import Prepare
from orchestrator.engine.batch import BatchCollector
from orchestrator.engine.context import RunContext
from orchestrator.engine.dynamic import rendered_step
from orchestrator.engine.kinds.agent import agent_task
from orchestrator.engine.kinds.command import command_task
from orchestrator.engine.kinds.compound import fan_out_bodies
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
from orchestrator.engine.ttl import has_prefix, step_ttl
from orchestrator.engine.warmup import expected_step_s
from orchestrator.errors import OrchestrateError, UsageError
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
    kept: list[Any] | None = None
    problem: str | None = None
    if items is not None:
        try:
            kept = _kept(step, ctx, items)
        except OrchestrateError as exc:
            problem = f"where: {exc}"
    # announced once the item count is known, so progress can show "0/N" from the start
    run.announce(path, scope, "fanout", len(kept) if kept is not None else None)
    if items is None:
        return StepResult(
            StepStatus.FAILED,
            error=f"for_each must give a list, got {type(value).__name__}: {str(value)[:100]}",
        )
    if kept is None:
        return StepResult(StepStatus.FAILED, error=problem)
    items = kept
    if step.kind in ("group", "loop", "workflow"):
        return await fan_out_bodies(run, step, scope, ctx, path, items)
    problem = run.claim_tasks(len(items), fanout=True)
    if problem is not None:
        return StepResult(StepStatus.FAILED, error=problem)
    item_task, refused = _item_tasks(run, step, scope, ctx, path, items)
    if refused and step.on_item_error == "fail":
        index, why = next(iter(refused.items()))
        error = f"{len(refused)} of {len(items)} items cannot start; first, item {index}: {why}"
        return StepResult(StepStatus.FAILED, error=error)
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


def _names(step: Step, index: int, item: Any) -> dict[str, Any]:
    return {step.as_: item, **({step.index_as: index} if step.index_as else {})}


def _kept(step: Step, ctx: dict[str, Any], items: list[Any]) -> list[Any]:
    """The items `where` keeps, in order (all of them without `where`)."""
    if step.where is None:
        return items
    where = step.where
    return [item for item in items if where.render({**ctx, step.as_: item})]


def _refused(why: str) -> Prepare:
    def prepare(task_id: str) -> Any:
        raise UsageError(why)

    return prepare


def _item_tasks(
    run: RunContext,
    step: Step,
    scope: Scope,
    ctx: dict[str, Any],
    path: str,
    items: list[Any],
) -> tuple[_ItemTask, dict[int, str]]:
    """How each item's task is made, and the items whose settings fail their checks (index ->
    why), found before any task starts."""
    if step.kind == "run":
        return lambda item_ctx, _key, _index, _lent: command_task(run, step, scope, item_ctx), {}
    workflow = scope.workflow
    if not step.dynamic:
        resolved = task_settings(step, workflow, run.settings)  # once for every item
        if resolved.cache_ttl and has_prefix(resolved, step):  # 1h when long (engine/ttl.py)
            width = min(step.concurrency or run.limits.concurrency, run.limits.concurrency)
            expected = expected_step_s(len(items), width, resolved.max_tokens)
            ttl = step_ttl(run, scope, path, expected_s=expected)
            resolved = dataclasses.replace(resolved, cache_ttl=ttl)

        def same(
            item_ctx: dict[str, Any], key: str, index: int, lent: WorkerContext | None
        ) -> Prepare:
            return agent_task(
                run, step, item_ctx, path=path, key=key, index=index, resolved=resolved,
                worker_ctx=lent,
            )  # fmt: skip

        return same, {}
    per_item: dict[int, tuple[Step, Any]] = {}
    refused: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            own = rendered_step(step, {**ctx, **_names(step, index, item)}, run.settings, workflow)
            per_item[index] = (own, task_settings(own, workflow, run.settings))
        except OrchestrateError as exc:
            refused[index] = str(exc)

    def item_task(
        item_ctx: dict[str, Any], key: str, index: int, lent: WorkerContext | None
    ) -> Prepare:
        if index in refused:
            return _refused(refused[index])
        own, resolved = per_item[index]
        return agent_task(
            run, own, item_ctx, path=path, key=key, index=index, resolved=resolved, worker_ctx=lent
        )

    return item_task, refused


def _item(
    step: Step, scope: Scope, ctx: dict[str, Any], index: int, item: Any
) -> tuple[dict[str, Any], str]:
    """One item's template context and its deterministic task key."""
    item_ctx = {**ctx, **_names(step, index, item)}
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
    lent = WorkerContext(
        call=collector.call, state=run.state, emit=run.emit, approve=run.worker_ctx.approve
    )
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
