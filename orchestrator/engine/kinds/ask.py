"""The `ask` kind, and the other two ways a run asks a person: tool approvals and the budget guard.

- `ask: "..."` (with `options:` or an `output:` schema; free text by default) is a step whose
  output is the answer; later steps route on it with `when`.
- `approve: [Bash, Write]` (or `all`) on an agent step makes each such tool call wait for a
  person (`approver`, lent to the worker as `WorkerContext.approve`); a denial reaches the model
  as the tool's error, with the reason.
- `limits.ask_above_usd` asks before the first step whose worst-case cost would take the run past
  that amount (`budget_guard`, called by the scheduler before a step runs).

Every question goes through the run's `People` port (`contracts.people`): it is recorded before
anything waits on it, its key is deterministic (so a resumed run finds the earlier answer instead
of asking again), and when no one can answer now the step, or the task, ends `waiting`: the rest
of the run goes on, and the run ends `waiting` (exit 4) once nothing else can run. Time a tool
call spends waiting for its approval does not count against the task's timeout.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.contracts import Answer, ApproveFn, Emit, People, Question, TaskSpec
from orchestrator.contracts.people import APPROVAL_OPTIONS, BUDGET_OPTIONS
from orchestrator.engine.context import RunContext
from orchestrator.engine.estimate import estimate_step
from orchestrator.engine.plan import Scope, StepResult, task_key
from orchestrator.engine.registry import register
from orchestrator.engine.waiting import holding_timeout
from orchestrator.events import QuestionAnswered, QuestionAsked
from orchestrator.states import StepStatus
from orchestrator.workflow import Step

__all__ = ["approver", "ask_person", "ask_step", "budget_guard", "worst_case_usd"]


async def ask_person(people: People, emit: Emit, question: Question) -> Answer | None:
    """The answer to `question`: one given before (a resumed run), one a person gives now, or
    None when no one can answer now."""
    asked = await people.ask(question)
    if asked.answer is not None:
        return asked.answer
    emit(
        QuestionAsked(
            run_id=question.run_id,
            question_id=asked.question_id,
            step_id=question.step_id,
            kind=question.kind,
            prompt=question.prompt,
            options=question.options,
            tool=question.tool,
        )
    )
    answer = await people.wait(question, asked.question_id)
    if answer is not None:
        emit(
            QuestionAnswered(
                run_id=question.run_id,
                question_id=asked.question_id,
                step_id=question.step_id,
                answer=answer.value,
                reason=answer.reason,
                by=answer.by,
            )
        )
    return answer


def _waiting(run: RunContext, path: str, what: str = "answer") -> StepResult:
    return StepResult(
        StepStatus.WAITING,
        error=f"waits for an {what}: orchestrate answer {run.run_id[:10]} {path} VALUE, "
        f"then orchestrate resume {run.run_id[:10]}",
    )


@register("ask")
async def ask_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    assert step.ask is not None
    if run.people is None:
        return StepResult(StepStatus.FAILED, error="this engine was built with no one to ask")
    question = Question(
        run_id=run.run_id,
        step_id=path,
        key=task_key(scope.key, step.id),
        prompt=step.ask.render_str(ctx),
        options=step.options,
        output=None if step.output == "text" else step.output,
    )
    answer = await ask_person(run.people, run.emit, question)
    if answer is None:
        return _waiting(run, path)
    return StepResult(StepStatus.SUCCEEDED, output=answer.value)


# --- tool approvals ------------------------------------------------------------------------


def _call_key(spec: TaskSpec, tool: str, tool_input: Any) -> str:
    data = json.dumps(tool_input, sort_keys=True, default=str, ensure_ascii=False)
    return f"{spec.key}#{tool}:{hashlib.sha256(data.encode()).hexdigest()[:10]}"


def approver(people: People, emit: Emit) -> ApproveFn:
    """What a worker calls before a tool call that its step's `approve:` names: the person's
    answer (`approve`, or `deny` with a reason), or None when no one can answer now. The same
    call (tool and input) in the same task has one question, so a resumed run that makes it
    again gets the earlier answer."""

    async def approve(spec: TaskSpec, tool: str, tool_input: Any) -> Answer | None:
        question = Question(
            run_id=spec.run_id,
            step_id=spec.step_id,
            key=_call_key(spec, tool, tool_input),
            prompt=f"Allow this {tool} call?",
            kind="approval",
            options=list(APPROVAL_OPTIONS),
            tool=tool,
            tool_input=tool_input,
        )
        with holding_timeout():
            return await ask_person(people, emit, question)

    return approve


# --- the budget guard ----------------------------------------------------------------------


def worst_case_usd(run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any]) -> float | None:
    """What an agent step could cost at most (`engine/estimate.py`, the estimator `orchestrate
    estimate` uses): every item's every turn writing `max_tokens`, with its prompt. None when
    its model has no price."""
    path = scope.path + step.id
    return estimate_step(
        step, scope.workflow, run.settings, ctx, path, max_workers=run.limits.max_workers
    ).worst_usd


def _usd(amount: float) -> str:
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


async def budget_guard(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult | None:
    """Before an agent step: None when it may run; a failed (the person said stop) or waiting
    result when it may not. Asks only while the run's spending is below the line and only until
    a person says proceed once."""
    limit = run.limits.ask_above_usd
    if limit is None or step.kind != "agent" or run.budget_approved or run.people is None:
        return None
    spent = run.dispatcher.budget.spent_usd
    worst = worst_case_usd(run, step, scope, ctx)
    if spent > limit or (worst is not None and spent + worst <= limit):
        return None
    cost = "an unknown amount (no price for its model)" if worst is None else f"up to {_usd(worst)}"
    question = Question(
        run_id=run.run_id,
        step_id=path,
        key=f"{task_key(scope.key, step.id)}$budget",
        prompt=(
            f"Step '{path}' may cost {cost}; the run has spent {_usd(spent)} and "
            f"limits.ask_above_usd is ${limit:.2f}. Proceed?"
        ),
        kind="budget",
        options=list(BUDGET_OPTIONS),
    )
    answer = await ask_person(run.people, run.emit, question)
    if answer is None:
        return _waiting(run, path)
    if answer.value == BUDGET_OPTIONS[0]:
        run.budget_approved = True
        return None
    return StepResult(StepStatus.FAILED, error=f"stopped by a person before spending {cost}")
