"""One task, from start to end: reuse on resume, the attempts, the retries, the events.

Every unit of work (an agent call, one fan-out item, a `run` command) goes through
`TaskRunner.run`. A step kind says what the task is with a `prepare` function (render the prompt
or the command; say how one attempt runs); the runner does the rest, the same way for all:

- a key that succeeded in an earlier process is not run again: its output is reused;
- before a new task starts, the sink's pace is awaited and a stopped run starts nothing;
- each attempt is bounded by the task's timeout; a timeout or a `TaskFailed` is tried again
  after a jittered exponential wait; a retryable API error past the dispatcher's horizon is not
  (the dispatcher already retried it), nor a `TaskFailed` marked `final`; a budget stop or a
  fatal error ends it at once;
- one attempt budget per task, the step's `retries`: every new attempt and every schema repair
  or empty-reply nudge inside one (`TaskFailed.repairs`) draws from it, and the next attempt may
  repair only what is left (`Prepared.allow_repairs`), so a reply that never fits its schema
  costs 1 + retries calls, never (1 + retries)^2;
- an output over `engine.max_value_bytes` fails the task, naming the step and the limit;
- the task's status only moves forward (`states.advance`): one `TaskStarted`, one
  `TaskFinished`, with what every attempt cost, also when it is cancelled mid-attempt;
- a key that was in flight in an earlier process has its recorded calls (`recorded`, read from
  the store on resume) handed out once through `replay_for`, so its worker replays them instead
  of calling the model again (`orchestrator/contracts/replay.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from orchestrator.config import RetryConfig
from orchestrator.contracts import Emit, RecordedCall, Replay, TaskResult, Usage
from orchestrator.engine.backpressure import Sleep
from orchestrator.engine.budget import covers
from orchestrator.engine.plan import StopReason, TaskOutcome, reused
from orchestrator.engine.runs import PriorTask
from orchestrator.engine.waiting import attempt_deadline
from orchestrator.errors import (
    BudgetExceeded,
    FatalError,
    OrchestrateError,
    RetryableError,
    TaskFailed,
    Waiting,
)
from orchestrator.events import TaskFinished, TaskRetried, TaskStarted
from orchestrator.ids import new_id
from orchestrator.states import TaskStatus, advance
from orchestrator.workflow.templates import current_value_limit, value_size


class Stop:
    """The run's stop flag, shared by every task: the first reason given wins. `steps` holds
    the steps whose own budget is spent (path -> why): their tasks that have not started fail."""

    __slots__ = ("reason", "steps")

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.steps: dict[str, str] = {}

    def request(self, reason: StopReason) -> None:
        self.reason = self.reason or reason

    def step_stopped(self, path: str) -> str | None:
        return next((why for step, why in self.steps.items() if covers(step, path)), None)


@dataclass(slots=True)
class Ended:
    """How one attempt ended without raising: succeeded, or failed for good (a command's
    non-zero exit is not retried: resume runs it again instead)."""

    status: TaskStatus
    output: Any = None
    error: str | None = None
    spent: TaskResult | None = None


@dataclass(slots=True)
class Prepared:
    """A task ready to start: what `TaskStarted` shows and how to run one attempt. An attempt
    returns a worker's `TaskResult` (it succeeded: `attempt` may be the worker call itself, no
    wrapper between) or an `Ended`."""

    prompt: str
    attempt: Callable[[], Awaitable[Ended | TaskResult]]
    retries: int
    timeout_s: float | None
    agent: str | None = None
    model: str | None = None
    system: str | None = None
    # Told before each retry how much of the budget is left for repairs inside that attempt.
    allow_repairs: Callable[[int], None] | None = None


Prepare = Callable[[str], Prepared]  # given the new task id; raises OrchestrateError


def should_retry(error: BaseException, used: int, retries: int, stop: StopReason | None) -> bool:
    """Whether a failed attempt is tried again: only timeouts and a `TaskFailed` that another
    attempt could fix, while the task's budget lasts (`used`: attempts so far plus the repairs
    made inside them) and the run goes on. A retryable API error reaching here has already been
    retried by the dispatcher until its horizon."""
    if isinstance(error, RetryableError) or stop is not None:
        return False
    if isinstance(error, TaskFailed) and error.final:
        return False
    return isinstance(error, TaskFailed | TimeoutError) and used <= retries


def retry_delay(attempt: int, retry: RetryConfig, rand: Callable[[], float]) -> float:
    """Seconds before attempt `attempt + 1`: exponential from `base_delay`, capped at
    `max_delay`, then jittered into its upper half."""
    wait: float = min(retry.max_delay, retry.base_delay * 2.0 ** (attempt - 1))
    return wait * (0.5 + rand() / 2)


def _failure_message(error: BaseException, timeout_s: float | None) -> str:
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout_s or 0:g}s"
    return str(error)


class TaskRunner:
    def __init__(
        self,
        *,
        run_id: str,
        emit: Emit,
        prior: Mapping[str, PriorTask],
        stop: Stop,
        retry: RetryConfig,
        sleep: Sleep,
        rand: Callable[[], float],
        pace: Callable[[], Awaitable[None]] | None = None,
        recorded: Mapping[str, list[RecordedCall]] | None = None,
    ) -> None:
        self.run_id = run_id
        self._recorded = dict(recorded or {})
        self.emit = emit
        self.prior = prior
        self.stop = stop
        self.retry = retry
        self.sleep = sleep
        self.rand = rand
        self.pace = pace

    def replay_for(self, key: str) -> Replay | None:
        """The recorded calls of `key`'s conversation, for the first task of that key started
        in this process (a prepare function asks when the task starts); None afterwards."""
        calls = self._recorded.pop(key, None)
        return Replay(calls) if calls else None

    async def run(
        self,
        *,
        path: str,
        key: str,
        index: int | None,
        iteration: int | None,
        prepare: Prepare,
        parent_id: str | None = None,
    ) -> TaskOutcome:
        reuse = reused(self.prior, key)
        if reuse is not None:
            return reuse
        if self.pace is not None:
            await self.pace()
        if self.stop.reason:
            return TaskOutcome(TaskStatus.CANCELLED, error=f"run {self.stop.reason}")
        stopped = self.stop.step_stopped(path)
        if stopped is not None:
            return TaskOutcome(TaskStatus.FAILED, error=stopped)
        task_id = new_id()
        try:
            task = prepare(task_id)
        except OrchestrateError as exc:
            return TaskOutcome(TaskStatus.FAILED, error=str(exc))
        self.emit(
            TaskStarted(
                run_id=self.run_id,
                task_id=task_id,
                step_id=path,
                key=key,
                index=index,
                iteration=iteration,
                agent=task.agent,
                model=task.model,
                system=task.system,
                prompt=task.prompt,
                parent_id=parent_id,
            )
        )
        # The attempt loop lives in this frame: every call of a task awaits through it.
        state = _Attempts(self, task_id, path)
        try:
            while True:
                state.attempt += 1
                try:
                    with anyio.fail_after(task.timeout_s) as limit, attempt_deadline(limit):
                        ended = await task.attempt()
                except BudgetExceeded as exc:
                    if exc.step is not None:  # the step's own budget: the step stops, not the run
                        self.stop.steps.setdefault(exc.step, str(exc))
                        return state.end(TaskStatus.FAILED, None, str(exc), state.earlier)
                    self.stop.request(StopReason.BUDGET)
                    return state.end(TaskStatus.CANCELLED, None, str(exc), None)
                except Waiting as exc:  # a tool call waits for a person: resume runs it again
                    spent = exc.spent if isinstance(exc.spent, TaskResult) else None
                    return state.end(TaskStatus.WAITING, None, str(exc), spent)
                except (TaskFailed, TimeoutError, RetryableError) as exc:
                    message = _failure_message(exc, task.timeout_s)
                    if isinstance(exc, TaskFailed):
                        state.repairs += exc.repairs
                        if isinstance(exc.spent, TaskResult):
                            state.earlier.add_spent(exc.spent)
                    used = state.attempt + state.repairs
                    if not should_retry(exc, used, task.retries, self.stop.reason):
                        return state.end(TaskStatus.FAILED, None, message, state.earlier)
                    if task.allow_repairs is not None:
                        task.allow_repairs(task.retries - used)
                    await state.before_retry(message)
                    continue
                except FatalError as exc:
                    return state.end(TaskStatus.FAILED, None, str(exc), state.earlier)
                if isinstance(ended, TaskResult):
                    ended.add_spent(state.earlier)
                    return state.end_bounded(TaskStatus.SUCCEEDED, ended.output, None, ended)
                if ended.status == TaskStatus.SUCCEEDED:
                    spent = ended.spent or TaskResult(output=ended.output)
                    spent.add_spent(state.earlier)
                    return state.end_bounded(ended.status, ended.output, None, spent)
                return state.end_bounded(ended.status, ended.output, ended.error, None)
        except anyio.get_cancelled_exc_class():  # also while waiting to retry
            state.end(TaskStatus.CANCELLED, None, "cancelled", None)
            raise


class _Attempts:
    """The state of one started task's attempts; ends it exactly once."""

    __slots__ = ("attempt", "earlier", "path", "repairs", "runner", "status", "task_id")

    def __init__(self, runner: TaskRunner, task_id: str, path: str) -> None:
        self.runner = runner
        self.task_id = task_id
        self.path = path
        self.status = TaskStatus.RUNNING
        self.attempt = 0
        self.repairs = 0  # schema repairs and nudges made inside failed attempts
        self.earlier = TaskResult(output=None)  # what failed attempts used: it counts too

    async def before_retry(self, error: str) -> None:
        runner = self.runner
        wait = retry_delay(self.attempt, runner.retry, runner.rand)
        runner.emit(
            TaskRetried(
                run_id=runner.run_id,
                task_id=self.task_id,
                step_id=self.path,
                attempt=self.attempt + 1,
                error=error,
                wait_s=round(wait, 3),
            )
        )
        await runner.sleep(wait)

    def end_bounded(
        self, status: TaskStatus, output: Any, error: str | None, spent: TaskResult | None
    ) -> TaskOutcome:
        """`end`, but an output over `engine.max_value_bytes` fails the task instead of being
        stored (the store must never be handed a value it cannot write)."""
        limit = current_value_limit()
        size = value_size(output) if output is not None else 0
        if size > limit:
            error = (
                f"step '{self.path}': output is {size} bytes, over engine.max_value_bytes="
                f"{limit} (raise it in orchestrate.yaml, or make the step return less)"
            )
            return self.end(TaskStatus.FAILED, None, error, spent)
        return self.end(status, output, error, spent)

    def end(
        self, status: TaskStatus, output: Any, error: str | None, spent: TaskResult | None
    ) -> TaskOutcome:
        """Finish the task: one `TaskFinished`, counting `spent` (None: nothing is counted, as
        for a task cancelled or stopped by the budget)."""
        self.status = advance(self.status, status, what=f"task {self.task_id}")
        usage = spent.usage if spent else Usage()
        self.runner.emit(
            TaskFinished(
                run_id=self.runner.run_id,
                task_id=self.task_id,
                step_id=self.path,
                status=status,
                output=output,
                error=error,
                usage=usage.to_dict(),
                cost_usd=spent.cost_usd if spent else 0.0,
                attempts=self.attempt,
                turns=spent.turns if spent else 0,
            )
        )
        return TaskOutcome(status, output, error)
