"""The `agent` kind: one worker conversation, and the task preparation fan-outs share.

`agent_task` turns a step's resolved settings and a template context into the `prepare` of one
task: the spec is rendered when the task starts (so a resumed task renders nothing), and every
attempt hands the same spec to the run's worker function.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from orchestrator.contracts import WorkerContext
from orchestrator.engine.attempts import Prepare, Prepared
from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import Scope, StepResult, task_key, task_step_result
from orchestrator.engine.registry import register
from orchestrator.engine.resolve import TaskSettings, task_settings, task_spec
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

        return Prepared(
            prompt=spec.prompt,
            attempt=partial(run.worker, spec, lent),
            retries=resolved.retries,
            timeout_s=timeout_s,
            agent=spec.agent,
            model=spec.model,
            system=spec.system,
        )

    return prepare


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
    resolved = task_settings(step, scope.workflow, run.settings)
    key = task_key(scope.key, step.id)
    prepare = agent_task(run, step, ctx, path=path, key=key, index=None, resolved=resolved)
    return await single_task(run, step, scope, path, prepare)
