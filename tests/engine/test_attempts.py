"""One task's attempts and retries (engine/attempts.py), with scripted attempts: no model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from orchestrator.config import RetryConfig
from orchestrator.contracts import TaskResult, Usage
from orchestrator.engine import PriorTask
from orchestrator.engine.attempts import (
    Ended,
    Prepared,
    Stop,
    TaskRunner,
    retry_delay,
    should_retry,
)
from orchestrator.engine.plan import StopReason, TaskOutcome
from orchestrator.errors import (
    BudgetExceeded,
    FatalError,
    RetryableError,
    TaskFailed,
    UsageError,
)
from orchestrator.events import Event, TaskFinished, TaskRetried, TaskStarted
from orchestrator.states import TaskStatus

RETRY = RetryConfig(base_delay=1.0, max_delay=5.0)


def test_only_timeouts_and_task_failures_are_retried_while_retries_last() -> None:
    assert should_retry(TaskFailed("x"), 1, 2, None)
    assert should_retry(TimeoutError(), 2, 2, None)
    assert not should_retry(TaskFailed("x"), 3, 2, None)  # attempt 3 of 1 + 2 retries
    assert not should_retry(TaskFailed("x"), 1, 2, StopReason.CANCELLED)
    # the dispatcher already retried this until its horizon
    assert not should_retry(RetryableError(message="busy", kind="overloaded"), 1, 5, None)


def test_retry_delay_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert [retry_delay(n, RETRY, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert retry_delay(3, RETRY, lambda: 0.0) == 2.0


class Script:
    """Attempts that raise or return, in order; records the TaskRunner's events and waits."""

    def __init__(self, *steps: BaseException | Ended | Callable[[], Any]) -> None:
        self.steps = list(steps)
        self.events: list[Event] = []
        self.waits: list[float] = []
        self.stop = Stop()
        self.runs = 0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def runner(self, prior: dict[str, PriorTask] | None = None) -> TaskRunner:
        return TaskRunner(
            run_id="r",
            emit=self.events.append,
            prior=prior or {},
            stop=self.stop,
            retry=RETRY,
            sleep=self.sleep,
            rand=lambda: 1.0,
        )

    def prepare(self, retries: int = 2, timeout_s: float | None = None) -> Any:
        async def attempt() -> Ended:
            self.runs += 1
            step = self.steps.pop(0)
            if callable(step) and not isinstance(step, BaseException):
                return await step()  # type: ignore[no-any-return]
            if isinstance(step, BaseException):
                raise step
            return step

        def prepare(task_id: str) -> Prepared:
            return Prepared(prompt="do it", attempt=attempt, retries=retries, timeout_s=timeout_s)

        return prepare

    async def run(self, runner: TaskRunner | None = None, **prepare: Any) -> TaskOutcome:
        return await (runner or self.runner()).run(
            path="s", key="s", index=None, iteration=None, prepare=self.prepare(**prepare)
        )

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def spent(tokens: int, cost: float) -> TaskResult:
    return TaskResult(output=None, usage=Usage(input_tokens=tokens), cost_usd=cost, calls=1)


async def test_failed_attempts_are_retried_and_what_they_spent_is_counted() -> None:
    first, second = TaskFailed("bad output"), TaskFailed("bad again")
    first.spent, second.spent = spent(10, 0.1), spent(20, 0.2)
    success = Ended(TaskStatus.SUCCEEDED, "ok", spent=spent(5, 0.05))
    script = Script(first, second, success)
    outcome = await script.run()
    assert outcome == TaskOutcome(TaskStatus.SUCCEEDED, "ok")
    assert [e.attempt for e in script.of(TaskRetried)] == [2, 3]
    assert script.waits == [1.0, 2.0]
    [started], [ended] = script.of(TaskStarted), script.of(TaskFinished)
    assert started.task_id == ended.task_id and started.prompt == "do it"
    assert (ended.status, ended.attempts, ended.usage["input_tokens"]) == ("succeeded", 3, 35)
    assert ended.cost_usd == pytest.approx(0.35)


async def test_retries_run_out_and_the_last_error_is_the_task_error() -> None:
    script = Script(TaskFailed("one"), TaskFailed("two"))
    outcome = await script.run(retries=1)
    assert outcome == TaskOutcome(TaskStatus.FAILED, None, "two")
    [ended] = script.of(TaskFinished)
    assert (ended.status, ended.attempts, ended.error) == ("failed", 2, "two")


@pytest.mark.parametrize(
    "error", [RetryableError(message="overloaded", kind="overloaded"), FatalError(message="no")]
)
async def test_api_errors_end_the_task_at_once(error: Exception) -> None:
    script = Script(error, Ended(TaskStatus.SUCCEEDED, "never"))
    outcome = await script.run(retries=3)
    assert outcome.status == TaskStatus.FAILED and script.runs == 1
    assert not script.of(TaskRetried)


async def test_a_budget_stop_cancels_the_task_and_stops_the_run() -> None:
    script = Script(BudgetExceeded("budget reached"))
    outcome = await script.run()
    assert outcome == TaskOutcome(TaskStatus.CANCELLED, None, "budget reached")
    assert script.stop.reason == StopReason.BUDGET
    # and nothing new starts afterwards
    later = await script.run()
    assert later == TaskOutcome(TaskStatus.CANCELLED, error="run budget")
    assert len(script.of(TaskStarted)) == 1


async def test_an_attempt_that_outlives_its_timeout_is_retried() -> None:
    async def hang() -> Ended:
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    script = Script(hang, Ended(TaskStatus.SUCCEEDED, "second time"))
    outcome = await script.run(timeout_s=0.01)
    assert outcome.output == "second time"
    [retried] = script.of(TaskRetried)
    assert retried.error == "timed out after 0.01s"


async def test_a_command_failure_ends_the_task_without_a_retry() -> None:
    script = Script(Ended(TaskStatus.FAILED, {"exit_code": 4}, "command exited with code 4"))
    outcome = await script.run(retries=3)
    assert outcome.status == TaskStatus.FAILED and script.runs == 1
    [ended] = script.of(TaskFinished)
    assert ended.output == {"exit_code": 4} and ended.usage["input_tokens"] == 0


async def test_a_resumed_key_is_reused_without_starting_a_task() -> None:
    script = Script()
    runner = script.runner(prior={"s": PriorTask(output="from before")})
    assert await script.run(runner) == TaskOutcome(TaskStatus.SUCCEEDED, "from before")
    assert script.events == [] and script.runs == 0


async def test_a_task_that_cannot_render_fails_without_events() -> None:
    script = Script()

    def broken(task_id: str) -> Prepared:
        raise UsageError("template: 'topic' is undefined")

    outcome = await script.runner().run(
        path="s", key="s", index=None, iteration=None, prepare=broken
    )
    assert outcome == TaskOutcome(TaskStatus.FAILED, error="template: 'topic' is undefined")
    assert script.events == []


async def test_cancelled_mid_attempt_the_task_ends_cancelled_once() -> None:
    started = anyio.Event()

    async def hang() -> Ended:
        started.set()
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    script = Script(hang)
    async with anyio.create_task_group() as tg:
        tg.start_soon(script.run)
        await started.wait()
        tg.cancel_scope.cancel()
    [ended] = script.of(TaskFinished)
    assert (ended.status, ended.error) == ("cancelled", "cancelled")
