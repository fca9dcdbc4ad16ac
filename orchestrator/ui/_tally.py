"""Running totals of one run, folded from its event stream, O(1) per event.

The live display and the plain progress lines both read this; neither keeps state of its own.
Steps are keyed by their path (a loop body step keeps one line, showing its current iteration);
tokens and dollars come from `call_finished` events (one per HTTP attempt), never from
`task_finished`, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator import events as ev
from orchestrator.contracts import Usage
from orchestrator.names import task_label


@dataclass(slots=True)
class StepProgress:
    step_id: str
    kind: str
    started_at: float | None  # None: a step of the workflow that has not started yet
    iteration: int | None = None
    total_tasks: int | None = None
    status: str = "running"
    finished_at: float | None = None
    error: str | None = None
    exhausted: bool | None = None  # a loop stopped at max_iterations, `until` still false
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    retrying: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: bool = False

    @property
    def finished_tasks(self) -> int:
        return self.succeeded + self.failed + self.skipped + self.cancelled

    @property
    def depth(self) -> int:
        return self.step_id.count(".")

    def duration(self, now: float) -> float:
        if self.started_at is None:  # not started yet
            return 0.0
        return (self.finished_at or now) - self.started_at


@dataclass(slots=True)
class _TaskInfo:
    step_id: str
    index: int | None
    retrying: bool = False

    def label(self) -> str:
        return task_label(self.step_id, self.index)


@dataclass(slots=True)
class RunTally:
    workflow_name: str = ""
    run_id: str = ""
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    steps: dict[str, StepProgress] = field(default_factory=dict)
    tasks: dict[str, _TaskInfo] = field(default_factory=dict)  # tasks in flight
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_unknown: bool = False
    calls: int = 0
    call_retries: int = 0
    task_retries: int = 0
    # Wall-clock time during which some call waited to be retried or the run was paused: the
    # union of the waits, not their sum (200 workers waiting the same 10 s is 10 s, not 33 min).
    rate_limit_wait_s: float = 0.0
    _waiting_until: float = 0.0
    concurrency: int | None = None
    warnings: int = 0
    last_warning: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.usage.total_tokens

    @property
    def tasks_running(self) -> int:
        return len(self.tasks)

    def elapsed(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or now) - self.started_at

    def task_label(self, task_id: str, step_id: str) -> str:
        info = self.tasks.get(task_id)
        return info.label() if info else step_id

    def apply(self, event: ev.Event) -> None:
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)

    # --- handlers (one per event type that changes a total) --------------------------------

    def _run_started(self, event: ev.Event) -> None:
        assert isinstance(event, ev.RunStarted)
        self.run_id = event.run_id
        self.workflow_name = event.workflow_name or self.workflow_name
        self.status = "running"
        if self.started_at is None:
            self.started_at = event.ts

    def _run_finished(self, event: ev.Event) -> None:
        assert isinstance(event, ev.RunFinished)
        self.status = event.status
        self.error = event.error
        self.finished_at = event.ts

    def _step_started(self, event: ev.Event) -> None:
        assert isinstance(event, ev.StepStarted)
        if self.started_at is None:
            self.started_at = event.ts
        step = self.steps.get(event.step_id)
        if step is None or step.status == "pending":
            self.steps[event.step_id] = StepProgress(
                step_id=event.step_id,
                kind=event.kind,
                started_at=event.ts,
                iteration=event.iteration,
                total_tasks=event.total_tasks,
            )
            return
        # A loop body step runs again: its line shows the current iteration only, its tokens
        # and dollars included (the run's totals line has the sums).
        self.steps[event.step_id] = StepProgress(
            step_id=event.step_id,
            kind=event.kind,
            started_at=event.ts,
            iteration=event.iteration,
            total_tasks=event.total_tasks,
        )

    def _step(self, step_id: str, ts: float) -> StepProgress:
        step = self.steps.get(step_id)
        if step is None:  # events of a step we never saw start (a resumed run, a late sink)
            step = self.steps[step_id] = StepProgress(step_id=step_id, kind="", started_at=ts)
        elif step.started_at is None:  # a planned step that ends without starting (skipped)
            step.started_at = ts
        return step

    def plan(self, steps: Sequence[tuple[str, str]]) -> None:
        """List the workflow's steps (id, kind) before they start, as `pending`."""
        for step_id, kind in steps:
            if step_id not in self.steps:
                self.steps[step_id] = StepProgress(
                    step_id=step_id, kind=kind, started_at=None, status="pending"
                )

    def _step_finished(self, event: ev.Event) -> None:
        assert isinstance(event, ev.StepFinished)
        step = self._step(event.step_id, event.ts)
        step.status = event.status
        step.finished_at = event.ts
        step.error = event.error
        step.exhausted = event.exhausted

    def _task_started(self, event: ev.Event) -> None:
        assert isinstance(event, ev.TaskStarted)
        step = self._step(event.step_id, event.ts)
        info = self.tasks.get(event.task_id)
        if info is None:
            self.tasks[event.task_id] = _TaskInfo(event.step_id, event.index)
            step.running += 1
        elif info.retrying:  # a new attempt of a task that was waiting to retry
            info.retrying = False
            step.retrying -= 1

    def _task_finished(self, event: ev.Event) -> None:
        assert isinstance(event, ev.TaskFinished)
        step = self._step(event.step_id, event.ts)
        info = self.tasks.pop(event.task_id, None)
        if info is not None:
            step.running -= 1
            if info.retrying:
                step.retrying -= 1
        if event.status == "succeeded":
            step.succeeded += 1
            self.tasks_succeeded += 1
        elif event.status == "failed":
            step.failed += 1
            self.tasks_failed += 1
        elif event.status == "skipped":
            step.skipped += 1
        else:
            step.cancelled += 1

    def _mark_retrying(self, task_id: str, step_id: str, ts: float) -> None:
        info = self.tasks.get(task_id)
        if info is not None and not info.retrying:
            info.retrying = True
            self._step(step_id, ts).retrying += 1

    def _task_retried(self, event: ev.Event) -> None:
        assert isinstance(event, ev.TaskRetried)
        self.task_retries += 1
        self._mark_retrying(event.task_id, event.step_id, event.ts)

    def _call_retried(self, event: ev.Event) -> None:
        assert isinstance(event, ev.CallRetried)
        self.call_retries += 1
        self._waited(event.ts, event.wait_s)
        self._mark_retrying(event.task_id, event.step_id, event.ts)

    def _call_finished(self, event: ev.Event) -> None:
        assert isinstance(event, ev.CallFinished)
        self.calls += 1
        usage = Usage.from_dict(event.usage)
        self.usage.add(usage)
        step = self._step(event.step_id, event.ts)
        step.tokens += usage.total_tokens
        if event.cost_usd is None:
            self.cost_unknown = step.cost_unknown = True
        else:
            self.cost_usd += event.cost_usd
            step.cost_usd += event.cost_usd
        if event.status == "succeeded":
            info = self.tasks.get(event.task_id)
            if info is not None and info.retrying:
                info.retrying = False
                step.retrying -= 1

    def _rate_limited(self, event: ev.Event) -> None:
        assert isinstance(event, ev.RateLimited)
        self.concurrency = event.concurrency
        self._waited(event.ts, event.pause_s)

    def _waited(self, start: float, wait_s: float) -> None:
        end = start + max(0.0, wait_s)
        if end > self._waiting_until:
            self.rate_limit_wait_s += end - max(start, self._waiting_until)
            self._waiting_until = end

    def _warning(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Warning)
        self.warnings += 1
        self.last_warning = event.message


_HANDLERS: dict[str, Callable[[RunTally, ev.Event], None]] = {
    ev.RunStarted.type: RunTally._run_started,
    ev.RunFinished.type: RunTally._run_finished,
    ev.StepStarted.type: RunTally._step_started,
    ev.StepFinished.type: RunTally._step_finished,
    ev.TaskStarted.type: RunTally._task_started,
    ev.TaskFinished.type: RunTally._task_finished,
    ev.TaskRetried.type: RunTally._task_retried,
    ev.CallRetried.type: RunTally._call_retried,
    ev.CallFinished.type: RunTally._call_finished,
    ev.RateLimited.type: RunTally._rate_limited,
    ev.Warning.type: RunTally._warning,
}
