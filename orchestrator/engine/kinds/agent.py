"""The `agent` kind: one worker conversation, and the task preparation fan-outs share.

`agent_task` turns a step's resolved settings and a template context into the `prepare` of one
task: the spec is rendered when the task starts (so a resumed task renders nothing), and every
attempt hands the same spec to the run's worker function. A task that was in flight when an
earlier process ended gets its recorded calls to replay (`TaskRunner.replay_for`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from orchestrator.contracts import TaskResult, TaskSpec, WorkerContext
from orchestrator.engine.attempts import Prepare, Prepared
from orchestrator.engine.context import RunContext
from orchestrator.engine.dynamic import rendered_step
from orchestrator.engine.plan import Scope, StepResult, task_key, task_step_result
from orchestrator.engine.registry import register
from orchestrator.engine.resolve import TaskSettings, task_settings, task_spec
from orchestrator.engine.ttl import has_prefix, step_ttl
from orchestrator.errors import FatalError, OrchestrateError
from orchestrator.states import StepStatus
from orchestrator.workflow import Step


def agent_task(
    run: RunContext,
    step: Step,
    ctx: dict[str, Any],
    *,
    path: str,
    key: str,
    index: int | None,
    resolved: TaskSettings,
    worker_ctx: WorkerContext | None = None,
) -> Prepare:
    """One agent task. `worker_ctx` replaces the run's (a batch's collector); its items are
    bounded only by an explicit step `timeout`, since a batch can take hours."""
    lent = worker_ctx or run.worker_ctx
    timeout_s = resolved.timeout_s if worker_ctx is None else step.timeout

    def prepare(task_id: str) -> Prepared:
        spec = task_spec(
            resolved,
            step,
            ctx,
            run_id=run.run_id,
            task_id=task_id,
            path=path,
            key=key,
            index=index,
            workspace=str(run.workspace),
        )

        replay = run.tasks.replay_for(key)
        given = lent if replay is None else replace(lent, replay=replay)
        attempt: Callable[[], Awaitable[TaskResult]] = partial(run.worker, spec, given)
        if step.isolation == "worktree":
            attempt = partial(_isolated, run, spec, given)
        return Prepared(
            prompt=spec.prompt,
            attempt=attempt,
            retries=resolved.retries,
            timeout_s=timeout_s,
            agent=spec.agent,
            model=spec.model,
            system=spec.system,
            allow_repairs=partial(setattr, spec, "retries"),  # one budget per task
        )

    return prepare


async def _isolated(run: RunContext, spec: TaskSpec, lent: WorkerContext) -> TaskResult:
    """One attempt in a fresh worktree on the task's branch; what it changed is committed there
    (also when it fails), and its output becomes `{result, branch, base, commits, diffstat}`."""
    try:
        checkout = await run.worktrees.checkout(spec.key)
    except OrchestrateError as exc:  # not a repository, git failing: no retry will help
        raise FatalError(message=str(exc)) from None
    spec.workspace = str(checkout.path)
    item = f" [{spec.index}]" if spec.index is not None else ""
    title = spec.prompt.strip().splitlines()[0][:60] if spec.prompt.strip() else ""
    message = f"{spec.step_id}{item}: {title}\n\norchestrate run {spec.run_id}, task {spec.task_id}"
    try:
        result = await run.worker(spec, lent)
    except Exception:
        await run.worktrees.finish(checkout, message + " (the attempt failed)")
        raise
    described = await run.worktrees.finish(checkout, message)
    result.output = {"result": result.output, **described}
    return result


async def single_task(
    run: RunContext, step: Step, scope: Scope, path: str, prepare: Prepare
) -> StepResult:
    """Run a step that is one task (agent or `run`), within the run's task slots."""
    key = task_key(scope.key, step.id)
    async with run.task_slots:
        outcome = await run.tasks.run(
            path=path, key=key, index=None, iteration=scope.iteration, prepare=prepare
        )
    return task_step_result(step, outcome)


@register("agent")
async def agent_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    problem = run.claim_tasks(1, fanout=False)
    if problem is not None:
        return StepResult(StepStatus.FAILED, error=problem)
    own = rendered_step(step, ctx, run.settings, scope.workflow)  # templated settings, checked
    resolved = task_settings(own, scope.workflow, run.settings)
    if scope.loop is not None and run.settings.cache.enabled and has_prefix(resolved, own):
        # a step in a loop body sends the same prefix once per iteration: mark it, for as long
        # as the loop's period asks (engine/ttl.py); prefixes below the minimum stay unmarked
        resolved = replace(resolved, cache_ttl=step_ttl(run, scope, path))
    key = task_key(scope.key, step.id)
    prepare = agent_task(run, own, ctx, path=path, key=key, index=None, resolved=resolved)
    return await single_task(run, step, scope, path, prepare)
