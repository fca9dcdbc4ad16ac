"""The scheduler's pure decisions: no I/O, no awaiting, no events. Each is a function of data.

Which step may start (`ready`), whether it runs at all (`gate`, `when_skips`), the task key a
resumed run matches on (`task_key`) and what it reuses (`reused`), how item outcomes make a
fan-out's result (`fanout_result`), how a loop body or sub-workflow failed (`body_failure`) and
how the run ended (`run_verdict`). The concurrency that carries these out lives in
`scheduler.py`, `attempts.py` and the step kinds; tests check these functions directly.

Invariants decided here:
- A step starts once every dependency in its scope has ended. Dependents of a failed or
  cancelled step are `cancelled`; a step whose dependencies were all skipped is `skipped`.
- A task key is a function of the step's path, the loop iteration, the item's index and a hash
  of the item, so the same work has the same key in every process; resume reuses a key that
  succeeded and runs everything else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orchestrator.engine.runs import PriorTask
from orchestrator.engine.warmup import LoopPeriod
from orchestrator.names import task_label
from orchestrator.states import RunStatus, StepStatus, TaskStatus
from orchestrator.workflow import Step, Workflow

WAITS_ON = "waits on step"  # the error of a step held back by one that waits for a person


class StopReason(StrEnum):
    """Why no new task may start: a budget was reached, or the run was cancelled."""

    BUDGET = "budget"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class StepResult:
    status: StepStatus
    output: Any = None
    error: str | None = None
    exit_code: int | None = None
    iterations: int | None = None  # how many a loop ran (events carry the count)
    history: list[dict[str, Any]] | None = None  # a loop's finished iterations, oldest first
    exhausted: bool | None = None  # a loop stopped at max_iterations with `until` still false

    def view(self) -> dict[str, Any]:
        """What templates see as `steps.<id>` (`iterations`: a loop's list of iterations)."""
        return {
            "output": self.output,
            "status": self.status,
            "exit_code": self.exit_code,
            "iterations": self.history,
            "exhausted": self.exhausted,
            "error": self.error,
        }


@dataclass(slots=True)
class TaskOutcome:
    """How one task ended, as its step sees it."""

    status: TaskStatus
    output: Any = None
    error: str | None = None


@dataclass(slots=True)
class Scope:
    """Where a list of steps runs: top level, one loop iteration, or a sub-workflow."""

    workflow: Workflow
    path: str  # step-id prefix: "", "polish." or "sub."
    key: str  # task-key prefix, iterations included: "polish@2."
    iteration: int | None
    base: dict[str, Any]  # the template context minus `steps`
    outer: dict[str, dict[str, Any]]  # step views visible from enclosing scopes
    # the innermost loop this scope is (part of) an iteration of: the TTL of the prefixes its
    # steps repeat once per iteration follows its period (engine/warmup.py)
    loop: LoopPeriod | None = None

    def context(self, results: Mapping[str, StepResult]) -> dict[str, Any]:
        """The template context of a step here, given the results so far."""
        ctx = dict(self.base)
        ctx["steps"] = {**self.outer, **{k: v.view() for k, v in results.items()}}
        return ctx

    def loop_body(
        self, step: Step, iteration: int, previous: dict[str, Any], outer: dict[str, Any]
    ) -> Scope:
        loop_vars = {"iteration": iteration, "index": iteration, "previous": previous}
        return Scope(
            workflow=self.workflow,
            path=f"{self.path}{step.id}.",
            key=f"{self.key}{step.id}@{iteration}.",
            iteration=iteration,
            base={**self.base, "loop": loop_vars},
            outer=outer,
        )

    def sub_workflow(self, step: Step, workflow: Workflow, inputs: dict[str, Any]) -> Scope:
        return Scope(
            workflow=workflow,
            path=f"{self.path}{step.id}.",
            key=f"{self.key}{step.id}.",
            iteration=self.iteration,
            base={**self.base, "inputs": inputs, "loop": {}},
            outer={},
            loop=self.loop,
        )


def kind_of(step: Step) -> str:
    """The registry's name for a step's kind: a `for_each` makes any step a fan-out."""
    return "fanout" if step.for_each is not None else step.kind


# --- the DAG walk ------------------------------------------------------------------------


def ready(steps: Iterable[Step], started: Iterable[str], ended: Mapping[str, object]) -> list[Step]:
    """Steps not started yet whose dependencies in this scope have all ended, in file order.

    A dependency outside `steps` (an enclosing scope's step, already ended before this scope
    began) never holds a step back."""
    steps = list(steps)
    here = {s.id for s in steps}
    begun = set(started)
    return [
        s
        for s in steps
        if s.id not in begun and all(d in ended for d in s.deps if d in here and d != s.id)
    ]


def gate(
    step: Step, results: Mapping[str, StepResult], stop: StopReason | None
) -> StepResult | None:
    """The result a step gets without running (cancelled or skipped), or None: it may run."""
    deps = [d for d in step.deps if d in results]
    blocked = [d for d in deps if results[d].status in (StepStatus.FAILED, StepStatus.CANCELLED)]
    if blocked:
        return StepResult(StepStatus.CANCELLED, error=f"dependency '{blocked[0]}' did not succeed")
    waits = [d for d in deps if results[d].status == StepStatus.WAITING]
    if waits:  # not cancelled: it runs once the question is answered and the run resumed
        return StepResult(StepStatus.WAITING, error=f"{WAITS_ON} '{waits[0]}'")
    data = [d for d in deps if d not in step.after]  # order-only deps do not pass a skip on
    if data and all(results[d].status == StepStatus.SKIPPED for d in data):
        return StepResult(StepStatus.SKIPPED)
    if stop is not None:
        return StepResult(StepStatus.CANCELLED, error=f"run {stop}")
    return None


def when_skips(step: Step, ctx: dict[str, Any]) -> bool:
    """True when the step's `when` is false. Raises the template's error, if any."""
    return step.when is not None and not step.when.render(ctx)


# --- tasks and resume --------------------------------------------------------------------


def item_hash(item: Any) -> str:
    data = json.dumps(item, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()[:10]


def task_key(scope_key: str, step_id: str, index: int | None = None, item: Any = None) -> str:
    """`research[3]:<hash>` for item 3 of a fan-out, `plan` for a single task; prefixed by
    the scope (`polish@2.draft`). The hash ties the key to the item's value, so a resumed
    fan-out whose list changed does not reuse another item's output."""
    label = task_label(step_id, index)
    return f"{scope_key}{label}" if index is None else f"{scope_key}{label}:{item_hash(item)}"


def reused(prior: Mapping[str, PriorTask], key: str) -> TaskOutcome | None:
    """The outcome a resumed run takes over for `key` instead of running it, if any."""
    found = prior.get(key)
    return None if found is None else TaskOutcome(TaskStatus.SUCCEEDED, found.output)


def fanout_items(value: Any) -> list[Any] | None:
    """A `for_each` value as the list of items (a mapping gives `{key, value}` items), or
    None when it is not a list."""
    if isinstance(value, dict):
        return [{"key": k, "value": v} for k, v in value.items()]
    return value if isinstance(value, list) else None


def over_max_workers(created: int, wanted: int, maximum: int, *, fanout: bool) -> str | None:
    """Why `wanted` more tasks would break `limits.max_workers`, or None."""
    if created + wanted <= maximum:
        return None
    if not fanout:
        return f"limits.max_workers={maximum} reached before this step"
    return (
        f"for_each would create {wanted} tasks, over limits.max_workers={maximum} for the run "
        f"({created} already created); raise limits.max_workers if this is intended"
    )


# --- results -----------------------------------------------------------------------------


def task_step_result(step: Step, outcome: TaskOutcome) -> StepResult:
    """A single-task step's result. A `run` task's output holds the command's output and exit
    code, which become the step's `output` and `exit_code`."""
    if step.kind == "run" and isinstance(outcome.output, dict):
        data = outcome.output
        return StepResult(
            outcome.status,
            output=data.get("output"),
            exit_code=data.get("exit_code"),
            error=outcome.error,
        )
    if outcome.status != TaskStatus.SUCCEEDED:
        return StepResult(outcome.status, error=outcome.error)
    return StepResult(StepStatus.SUCCEEDED, output=outcome.output)


def fanout_result(
    step: Step, outcomes: list[TaskOutcome | None], stop: StopReason | None
) -> tuple[StepResult, int]:
    """The fan-out's result from its items' outcomes (decided once every item has ended), and
    how many failed items `on_item_error: skip` dropped."""
    total = len(outcomes)
    done = [o for o in outcomes if o is not None]
    if len(done) < total or any(o.status == TaskStatus.CANCELLED for o in done):
        return StepResult(StepStatus.CANCELLED, error=f"run {stop or 'cancelled'}"), 0
    failed = [(i, o) for i, o in enumerate(done) if o.status == TaskStatus.FAILED]
    if step.kind == "run":
        values = [task_step_result(step, o).output for o in done]
    else:
        values = [o.output for o in done]
    if failed and step.on_item_error == "fail":
        first_index, first = failed[0]
        error = (
            f"{len(failed)} of {total} items failed; first, item {first_index}: "
            f"{first.error or 'command failed'}"
        )
        return StepResult(StepStatus.FAILED, error=error), 0
    waiting = [o for o in done if o.status == TaskStatus.WAITING]
    if waiting:  # a tool call of an item waits for its approval
        error = f"{len(waiting)} of {total} items wait for a person: {waiting[0].error}"
        return StepResult(StepStatus.WAITING, error=error), 0
    if failed:
        bad = {i for i, _ in failed}
        values = [v for i, v in enumerate(values) if i not in bad]
    return StepResult(StepStatus.SUCCEEDED, output=values), len(failed)


def body_failure(results: Mapping[str, StepResult]) -> tuple[str, StepResult] | None:
    """The first step of a loop body or sub-workflow that failed or was cancelled, else the
    first that waits for a person (the body then waits too)."""
    for sid, result in results.items():
        if result.status in (StepStatus.FAILED, StepStatus.CANCELLED):
            return sid, result
    for sid, result in results.items():
        if result.status == StepStatus.WAITING:
            return sid, result
    return None


def render_outputs(
    workflow: Workflow, scope: Scope, results: Mapping[str, StepResult]
) -> dict[str, Any]:
    """A workflow's `outputs:` rendered over its steps' results (raises template errors)."""
    ctx = scope.context(results)
    return {name: tpl.render(ctx) for name, tpl in workflow.outputs.items()}


def run_verdict(
    stop: StopReason | None,
    cancel_reason: str | None,
    budget_error: str | None,
    results: Mapping[str, StepResult],
) -> tuple[RunStatus, str | None]:
    """How the run ended, before its outputs are rendered: cancelled beats budget beats a
    failed step beats a step that waits for a person; otherwise it succeeded."""
    if stop == StopReason.CANCELLED:
        return RunStatus.CANCELLED, f"run cancelled ({cancel_reason or 'interrupted'})"
    if stop == StopReason.BUDGET:
        return RunStatus.BUDGET_EXCEEDED, budget_error
    failed = [(sid, r) for sid, r in results.items() if r.status == StepStatus.FAILED]
    if failed:
        return RunStatus.FAILED, "; ".join(f"step '{sid}': {r.error}" for sid, r in failed)
    waiting = [(sid, r) for sid, r in results.items() if r.status == StepStatus.WAITING]
    if waiting:  # name the steps that ask, not the ones held back behind them
        asking = [(sid, r) for sid, r in waiting if not (r.error or "").startswith(WAITS_ON)]
        shown = "; ".join(f"step '{sid}' {r.error}" for sid, r in asking or waiting)
        return RunStatus.WAITING, shown
    return RunStatus.SUCCEEDED, None
