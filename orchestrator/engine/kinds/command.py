"""The `run:` kind: a shell command in the run's workspace (see `engine/commands.py`).

The task's output is `{output, exit_code, stderr}`; the step's `output` is the command's stdout
(or its parsed JSON with `output: json`) and `steps.<id>.exit_code` its exit code. A non-zero
exit without `allow_failure` fails the task for good rather than retrying it, so a resume runs
the command again instead of replaying its failure; stdout that is not the JSON asked for is
retried like any `TaskFailed`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine import resolve
from orchestrator.engine.attempts import Ended, Prepare, Prepared
from orchestrator.engine.commands import parse_output, run_command
from orchestrator.engine.context import RunContext
from orchestrator.engine.kinds.agent import single_task
from orchestrator.engine.plan import Scope, StepResult
from orchestrator.engine.registry import register
from orchestrator.environment import SandboxUnavailable
from orchestrator.events import Warning as WarningEvent
from orchestrator.states import StepStatus, TaskStatus
from orchestrator.workflow import Step

_STDERR_KEPT = 4000
_STDERR_IN_ERROR = 300


def command_task(run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any]) -> Prepare:
    assert step.run is not None
    template = step.run
    retries = resolve.retries(step, scope.workflow, run.settings)
    timeout_s = resolve.timeout(step, scope.workflow, run.settings)
    policy = resolve.sandbox(step, run.settings)

    def prepare(task_id: str) -> Prepared:
        command = template.render_str(ctx)

        async def attempt() -> Ended:
            try:
                result = await run_command(
                    command,
                    cwd=run.workspace,
                    timeout_s=None,
                    sandbox=policy,
                    max_output_bytes=run.settings.engine.max_value_bytes,
                )
            except SandboxUnavailable as exc:  # another try cannot help
                return Ended(TaskStatus.FAILED, None, str(exc))
            if result.warning and not run.sandbox_warned:
                run.sandbox_warned = True
                run.emit(WarningEvent(run_id=run.run_id, step_id=step.id, message=result.warning))
            output: Any = {
                "output": parse_output(result, step.output),
                "exit_code": result.exit_code,
                "stderr": result.stderr[-_STDERR_KEPT:],
            }
            if result.exit_code != 0 and not step.allow_failure:
                tail = result.stderr.strip()[-_STDERR_IN_ERROR:]
                error = f"command exited with code {result.exit_code}" + (
                    f": {tail}" if tail else ""
                )
                return Ended(TaskStatus.FAILED, output, error)
            return Ended(TaskStatus.SUCCEEDED, output)

        return Prepared(prompt=command, attempt=attempt, retries=retries, timeout_s=timeout_s)

    return prepare


@register("run")
async def run_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    problem = run.claim_tasks(1, fanout=False)
    if problem is not None:
        return StepResult(StepStatus.FAILED, error=problem)
    return await single_task(run, step, scope, path, command_task(run, step, scope, ctx))
