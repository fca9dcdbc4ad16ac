"""The scheduler: a run's lifecycle and the walk of its DAG.

`Engine.run` announces the run, walks its steps under one cancel scope, and decides how it ended
(`plan.run_verdict`). The walk starts every step whose dependencies have ended (`plan.ready`),
lets `plan.gate` and `when` decide whether it runs, hands it to its kind's handler (the
registry in `engine/registry.py`, the kinds in `engine/kinds/`) and records its end. Pure
orchestration: no HTTP (the `LLM` is passed in and reached only through the dispatcher) and no
SQL (everything that happens leaves as an event through `emit`; the store is one sink).

Invariants:
- A step starts as soon as every dependency has ended; steps with no path between them run
  concurrently. Every step ends with exactly one `StepFinished` (its status only moves forward,
  `states.advance`), also when the run is cancelled before it could start.
- Calls in flight are bounded by the run-wide limit, and fan-out items by the step's own
  `concurrency`, through anyio capacity limiters; nothing is spawned outside a task group.
- Once a budget is reached or the run is cancelled no new task starts; tasks in flight end and are
  recorded (cancelled ones as `cancelled`), so the run can be resumed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

import orchestrator.engine.kinds  # noqa: F401  # registers the built-in step kinds
from orchestrator.config import Settings
from orchestrator.contracts import LLM, Emit, People, TaskResult, TaskSpec, WorkerContext
from orchestrator.engine import registry
from orchestrator.engine.attempts import Stop, TaskRunner
from orchestrator.engine.budget import Budget, step_budgets
from orchestrator.engine.context import RunContext, WorkerFn
from orchestrator.engine.delegation import Delegator
from orchestrator.engine.dispatch import Dispatcher, SharedLimits
from orchestrator.engine.kinds import ask
from orchestrator.engine.plan import (
    Scope,
    StepResult,
    StopReason,
    gate,
    kind_of,
    ready,
    render_outputs,
    run_verdict,
    when_skips,
)
from orchestrator.engine.resolve import run_limits
from orchestrator.engine.runs import ResumeState, RunOutcome, RunRequest
from orchestrator.engine.state import MemoryScopes, SharedState, StateScopes
from orchestrator.environment import describe_sandbox
from orchestrator.errors import FatalError, OrchestrateError
from orchestrator.events import Heartbeat, RunFinished, RunStarted, StepFinished, StepStarted
from orchestrator.states import RunStatus, StepStatus, advance
from orchestrator.workflow import Step
from orchestrator.workflow.templates import value_limit

__all__ = ["Engine", "WorkerFn"]


def _route(api: WorkerFn, runtimes: Mapping[str, WorkerFn]) -> WorkerFn:
    """One worker function that runs each task on the runtime its spec names."""

    async def route(spec: TaskSpec, ctx: WorkerContext) -> TaskResult:
        if spec.runtime == "api":
            return await api(spec, ctx)
        worker = runtimes.get(spec.runtime)
        if worker is None:  # the assembly builds every runtime a workflow names
            raise FatalError(
                message=f"step '{spec.step_id}': runtime '{spec.runtime}' is not set up in this "
                "engine (pass it in Engine(runtimes=...), as orchestrator.run() does)"
            )
        return await worker(spec, ctx)

    return route


class Engine:
    """Runs workflows. Build one per process; `run` may be called for several runs in turn.

    The attributes are read when a run starts, so a test may swap `worker` between runs."""

    def __init__(
        self,
        *,
        settings: Settings,
        llm: LLM,
        emit: Emit,
        worker: WorkerFn | None = None,
        runtimes: Mapping[str, WorkerFn] | None = None,
        should_cancel: Callable[[str], Awaitable[bool]] | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
        before_request: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
        people: People | None = None,
        scopes: StateScopes | None = None,
        shared: SharedLimits | None = None,
    ) -> None:
        if worker is None:
            from orchestrator.worker import run_worker

            worker = run_worker
        self.settings = settings
        self.llm = llm
        self.emit = emit
        self.worker = worker
        # the other runtimes by name (`runtime: claude-code`); `worker` is the "api" one
        self.runtimes = dict(runtimes or {})
        self.should_cancel = should_cancel
        # awaited before each task starts: lets a slower sink (the store) hold the engine back
        self.pace = pace
        # awaited with a task's id before each of its requests leaves (`Dispatcher`)
        self.before_request = before_request
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        # who answers questions (ask steps, tool approvals, the budget guard); None: no one
        self.people = people
        # where `state_scope:` state lives: the store's (from the assembly), else in memory
        self.scopes: StateScopes = scopes if scopes is not None else MemoryScopes()
        # rate limiters and the overload gate shared by every run of a host (`serve`)
        self.shared = shared
        self._scope: anyio.CancelScope | None = None
        self._cancel_reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the current run to stop: in-flight work is cancelled, the run ends `cancelled`."""
        self._cancel_reason = reason
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, request: RunRequest) -> RunOutcome:
        # Every value the run renders is bounded by the setting (workflow/templates.py).
        with value_limit(self.settings.engine.max_value_bytes):
            return await self._run(request)

    async def _run(self, request: RunRequest) -> RunOutcome:
        run = _Run(self, request)
        await run.announce()
        scope = self._scope = anyio.CancelScope()
        if self._cancel_reason:  # cancelled before the run began
            scope.cancel()
        results: dict[str, StepResult] = {}
        try:
            with scope:
                results = await run.walk_all()
        finally:
            self._scope = None
            with anyio.CancelScope(shield=True):  # worktrees go, their branches stay
                await run.ctx.worktrees.close()
        reason, self._cancel_reason = self._cancel_reason, None  # the next run starts clean
        return run.finish(
            results, cancelled=scope.cancelled_caught or reason is not None, reason=reason
        )


class _Run:
    """One run: its services (dispatcher, budget, shared state, task runner) and its walk."""

    def __init__(self, engine: Engine, request: RunRequest) -> None:
        self.engine = engine
        self.request = request
        self.workflow = request.workflow
        self.run_id = request.run_id
        self.emit = engine.emit
        settings = engine.settings
        self.limits = run_limits(request, settings)
        resume = request.resume or ResumeState()
        self.budget = Budget(
            max_cost_usd=self.limits.max_cost_usd,
            max_tokens=self.limits.max_tokens,
            spent_usd=resume.spent_usd,
            spent_tokens=resume.spent_tokens,
            steps=step_budgets(self.workflow),
            prior=resume.spent_by_step,
        )
        dispatcher = Dispatcher(
            llm=engine.llm,
            settings=settings,
            emit=self.emit,
            run_id=self.run_id,
            concurrency=self.limits.concurrency,
            budget=self.budget,
            clock=engine.clock,
            sleep=engine.sleep,
            rand=engine.rand,
            before_request=engine.before_request,
        )
        scope_name = self.workflow.state_scope_name
        state = self.state = SharedState(
            self.run_id,
            self.emit,
            resume.state,
            scope=scope_name,
            scopes=engine.scopes if scope_name is not None else None,
        )
        self.stop = Stop()
        self.ctx = RunContext(
            run_id=self.run_id,
            settings=settings,
            limits=self.limits,
            emit=self.emit,
            workspace=request.workspace,
            llm=engine.llm,
            dispatcher=dispatcher,
            state=state,
            worker=_route(engine.worker, engine.runtimes),
            worker_ctx=WorkerContext(
                call=dispatcher.call,
                state=state,
                emit=self.emit,
                approve=ask.approver(engine.people, self.emit) if engine.people else None,
            ),
            tasks=TaskRunner(
                run_id=self.run_id,
                emit=self.emit,
                prior=resume.tasks,
                stop=self.stop,
                retry=settings.retry,
                sleep=engine.sleep,
                rand=engine.rand,
                pace=engine.pace,
                recorded=resume.conversations,
            ),
            stop=self.stop,
            sleep=engine.sleep,
            walk=self.walk,
            announce=self._started,
            prior_batches=resume.batches,
            people=engine.people,
            clock=engine.clock,
            repeats_every_s=(
                self.workflow.schedule.period_s() if self.workflow.schedule is not None else None
            ),
        )
        self.ctx.worker_ctx.delegate = Delegator(self.ctx, self.workflow)  # `Task` calls
        self.top = Scope(
            workflow=self.workflow,
            path="",
            key="",
            iteration=None,
            base={
                "inputs": request.inputs,
                "run": {"id": self.run_id, "workspace": str(request.workspace)},
                "state": state.values,
                "env": {name: os.environ.get(name, "") for name in self.workflow.env},
                "loop": {},
            },
            outer={},
        )
        # scope key + step id -> status: a step moves forward only, and ends once
        self.step_status: dict[str, StepStatus] = {}

    # --- the run --------------------------------------------------------------------------

    async def announce(self) -> None:
        wf = self.workflow
        self.emit(
            RunStarted(
                run_id=self.run_id,
                workflow_name=wf.name,
                workflow_path=str(wf.path.resolve()),  # resume may run from elsewhere
                workflow_snapshot=wf.source_text,
                workflow_hash=hashlib.sha256(wf.source_text.encode()).hexdigest(),
                inputs=self.request.inputs,
                workspace=str(self.request.workspace),
                resumed=self.request.resume is not None,
                pid=os.getpid(),
                limits=self.limits.to_dict(),
                sandbox=await describe_sandbox(self.ctx.settings.sandbox),
            )
        )

    async def walk_all(self) -> dict[str, StepResult]:
        await self.state.load()  # a scope's values as they are now (no-op for a run's own)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat)
            results = await self.walk(self.workflow.steps, self.top)
            tg.cancel_scope.cancel()
        return results

    def finish(
        self, results: dict[str, StepResult], *, cancelled: bool, reason: str | None
    ) -> RunOutcome:
        if cancelled:  # outranks an earlier budget stop
            self.stop.reason = StopReason.CANCELLED
        status, error = run_verdict(self.stop.reason, reason, self.budget.exceeded, results)
        outputs: dict[str, Any] | None = None
        if status == RunStatus.SUCCEEDED:
            try:
                outputs = render_outputs(self.workflow, self.top, results)
            except OrchestrateError as exc:
                status, error = RunStatus.FAILED, f"outputs: {exc}"
        self.emit(RunFinished(run_id=self.run_id, status=status, outputs=outputs, error=error))
        return RunOutcome(run_id=self.run_id, status=status, outputs=outputs, error=error)

    async def _heartbeat(self) -> None:
        interval = self.engine.settings.engine.heartbeat
        while True:
            await anyio.sleep(interval)
            self.emit(Heartbeat(run_id=self.run_id))
            should_cancel = self.engine.should_cancel
            if should_cancel is not None and await should_cancel(self.run_id):
                self.engine.cancel("cancel requested from `orchestrate runs cancel`")

    # --- the walk -------------------------------------------------------------------------

    async def walk(self, steps: list[Step], scope: Scope) -> dict[str, StepResult]:
        """Run `steps` in `scope` to their results: each as soon as its dependencies end."""
        results: dict[str, StepResult] = {}
        started: set[str] = set()
        # one message per step that ends, so the buffer never fills
        send, receive = anyio.create_memory_object_stream[str](max(1, len(steps)))

        async def one(step: Step) -> None:
            try:
                results[step.id] = await self._step(step, scope, results)
            finally:
                if step.id not in results:  # cancelled: record it, so the history is whole
                    results[step.id] = self._cancelled(step, scope)
                send.send_nowait(step.id)

        with send, receive:
            try:
                async with anyio.create_task_group() as tg:
                    while len(results) < len(steps):
                        startable = ready(steps, started, results)
                        if not startable and len(started) == len(results):
                            raise AssertionError(f"steps wait on each other: {scope.path!r}")
                        for step in startable:
                            started.add(step.id)
                            tg.start_soon(one, step)
                        await receive.receive()
            finally:
                for step in steps:  # never started: the run was cancelled first
                    if step.id not in results:
                        results[step.id] = self._cancelled(step, scope)
        return {step.id: results[step.id] for step in steps}

    async def _step(self, step: Step, scope: Scope, results: dict[str, StepResult]) -> StepResult:
        path = scope.path + step.id
        decided = gate(step, results, self.stop.reason)
        if decided is not None:
            return self._finish(path, scope, decided)
        ctx = scope.context(results)
        try:
            if when_skips(step, ctx):
                return self._finish(path, scope, StepResult(StepStatus.SKIPPED))
        except OrchestrateError as exc:
            return self._finish(path, scope, StepResult(StepStatus.FAILED, error=f"when: {exc}"))
        try:
            held = await ask.budget_guard(self.ctx, step, scope, ctx, path)  # ask_above_usd
            if held is not None:
                return self._finish(path, scope, held)
            kind = registry.lookup(kind_of(step))
            if not kind.announces_itself:
                self._started(path, scope, kind.name)
            result = await kind.handler(self.ctx, step, scope, ctx, path)
        except OrchestrateError as exc:
            result = StepResult(StepStatus.FAILED, error=str(exc))
        return self._finish(path, scope, result)

    def _started(self, path: str, scope: Scope, kind: str, total_tasks: int | None = None) -> None:
        self._move(path, scope, StepStatus.RUNNING)
        self.emit(
            StepStarted(
                run_id=self.run_id,
                step_id=path,
                kind=kind,
                iteration=scope.iteration,
                total_tasks=total_tasks,
            )
        )

    def _move(self, path: str, scope: Scope, status: StepStatus) -> None:
        # keyed like task keys (iterations included), so every loop iteration is its own step
        where = scope.key + path[len(scope.path) :]
        old = self.step_status.get(where, StepStatus.PENDING)
        self.step_status[where] = advance(old, status, f"step '{path}'")

    def _cancelled(self, step: Step, scope: Scope) -> StepResult:
        return self._finish(
            scope.path + step.id, scope, StepResult(StepStatus.CANCELLED, error="cancelled")
        )

    def _finish(self, path: str, scope: Scope, result: StepResult) -> StepResult:
        self._move(path, scope, result.status)
        self.emit(
            StepFinished(
                run_id=self.run_id,
                step_id=path,
                status=result.status,
                output=result.output,
                error=result.error,
                iteration=scope.iteration,
                exit_code=result.exit_code,
                iterations=result.iterations,
                exhausted=result.exhausted,
            )
        )
        return result
