"""The scheduler: walks a workflow's DAG and runs it to a terminal status.

Pure orchestration: no HTTP (the `LLM` is passed in and reached only through the dispatcher) and
no SQL (everything that happens leaves as an event through `emit`; the store is one sink).

Invariants:
- A step starts as soon as every dependency has ended. Dependents of a failed step are
  `cancelled`; a step whose dependencies were all skipped is `skipped`.
- Every unit of work (an agent call, one fan-out item, a `run` command) is a task with a
  deterministic key. On resume, a task whose key already succeeded is not run again: its stored
  output is used.
- Calls in flight are bounded by the run-wide limit, and fan-out items by the step's own
  `concurrency`, through anyio capacity limiters; nothing is spawned outside a task group.
- Once a budget is reached or the run is cancelled no new task starts; tasks in flight end and are
  recorded (cancelled ones as `cancelled`), so the run can be resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio

from orchestrator.config import Settings
from orchestrator.contracts import (
    LLM,
    BatchLLM,
    Emit,
    TaskResult,
    TaskSpec,
    Usage,
    WorkerContext,
)
from orchestrator.engine import reducers
from orchestrator.engine.batch import BatchCollector
from orchestrator.engine.budget import Budget
from orchestrator.engine.commands import parse_output, run_command
from orchestrator.engine.dispatch import Dispatcher
from orchestrator.engine.state import SharedState
from orchestrator.environment import SandboxPolicy, SandboxUnavailable, describe_sandbox
from orchestrator.errors import (
    EXIT_BUDGET,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    BudgetExceeded,
    FatalError,
    OrchestrateError,
    RetryableError,
    TaskFailed,
    UsageError,
)
from orchestrator.events import (
    Heartbeat,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskRetried,
    TaskStarted,
)
from orchestrator.events import Warning as WarningEvent
from orchestrator.ids import new_id
from orchestrator.workflow import Step, Workflow

WorkerFn = Callable[[TaskSpec, WorkerContext], Awaitable[TaskResult]]

SUCCEEDED, FAILED, SKIPPED, CANCELLED = "succeeded", "failed", "skipped", "cancelled"
_EXIT_CODES = {
    "succeeded": EXIT_OK,
    "failed": EXIT_FAILED,
    "budget_exceeded": EXIT_BUDGET,
    "cancelled": EXIT_CANCELLED,
}


@dataclass
class PriorTask:
    """A task that succeeded in an earlier attempt at this run."""

    output: Any
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = 0.0


@dataclass
class ResumeState:
    tasks: dict[str, PriorTask] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)  # step path -> batch ids
    spent_usd: float = 0.0
    spent_tokens: int = 0


@dataclass
class RunRequest:
    workflow: Workflow
    inputs: dict[str, Any]
    workspace: Path
    run_id: str = field(default_factory=new_id)
    resume: ResumeState | None = None
    concurrency: int | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_workers: int | None = None


@dataclass
class RunOutcome:
    run_id: str
    status: str
    outputs: dict[str, Any] | None
    error: str | None

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES.get(self.status, EXIT_FAILED)


@dataclass
class StepResult:
    status: str
    output: Any = None
    error: str | None = None
    exit_code: int | None = None
    iterations: int | None = None

    def view(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "status": self.status,
            "exit_code": self.exit_code,
            "iterations": self.iterations,
            "error": self.error,
        }


@dataclass
class _Scope:
    """Where a list of steps runs: top level, one loop iteration, or a sub-workflow."""

    workflow: Workflow
    path: str  # step-id prefix, "" or "polish." or "sub."
    key: str  # task-key prefix, includes iterations: "polish@2."
    iteration: int | None
    base: dict[str, Any]  # template context minus `steps`
    outer: dict[str, dict[str, Any]]  # step views visible from enclosing scopes


class _TaskOutcome:
    __slots__ = ("error", "output", "status")

    def __init__(self, status: str, output: Any = None, error: str | None = None) -> None:
        self.status = status
        self.output = output
        self.error = error


def _item_hash(item: Any) -> str:
    data = json.dumps(item, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()[:10]


def _add_spent(into: TaskResult, other: TaskResult) -> None:
    into.usage.add(other.usage)
    into.turns += other.turns
    into.calls += other.calls
    if into.cost_usd is not None:
        into.cost_usd = None if other.cost_usd is None else into.cost_usd + other.cost_usd


class Engine:
    """Runs workflows. Build one per process; `run` may be called for several runs in turn."""

    def __init__(
        self,
        *,
        settings: Settings,
        llm: LLM,
        emit: Emit,
        worker: WorkerFn | None = None,
        should_cancel: Callable[[str], Awaitable[bool]] | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if worker is None:
            from orchestrator.worker import run_worker

            worker = run_worker
        self.settings = settings
        self.llm = llm
        self.emit = emit
        self.worker = worker
        self.should_cancel = should_cancel
        # awaited before each task starts: lets a slower sink (the store) hold the engine back
        self.pace = pace
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self._scope: anyio.CancelScope | None = None
        self._cancel_reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the current run to stop: in-flight work is cancelled, the run ends `cancelled`."""
        self._cancel_reason = reason
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, request: RunRequest) -> RunOutcome:
        run = _Run(self, request)
        return await run.execute()


class _Run:
    def __init__(self, engine: Engine, request: RunRequest) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.req = request
        self.wf = request.workflow
        self.run_id = request.run_id
        self.emit = engine.emit
        limits = self.wf.limits
        self.concurrency = (
            request.concurrency or limits.concurrency or self.settings.engine.concurrency
        )
        self.max_workers = (
            request.max_workers or limits.max_workers or self.settings.engine.max_workers
        )
        resume = request.resume or ResumeState()
        self.prior = resume.tasks
        self.prior_batches = resume.batches
        self.budget = Budget(
            max_cost_usd=(
                request.max_cost_usd if request.max_cost_usd is not None else limits.max_cost_usd
            ),
            max_tokens=request.max_tokens if request.max_tokens is not None else limits.max_tokens,
            spent_usd=resume.spent_usd,
            spent_tokens=resume.spent_tokens,
        )
        self.dispatcher = Dispatcher(
            llm=engine.llm,
            settings=self.settings,
            emit=self.emit,
            run_id=self.run_id,
            concurrency=self.concurrency,
            budget=self.budget,
            clock=engine.clock,
            sleep=engine.sleep,
            rand=engine.rand,
        )
        self.state = SharedState(self.run_id, self.emit, resume.state)
        self.task_slots = anyio.CapacityLimiter(self.concurrency)
        self.tasks_created = 0
        self.stopping: str | None = None  # "budget" | "cancelled"
        self.worker_ctx = WorkerContext(call=self.dispatcher.call, state=self.state, emit=self.emit)
        self.env = {name: os.environ.get(name, "") for name in self.wf.env}
        self.sandbox_warned = False  # the unsandboxed-`run:` warning is given once per run

    # --- the run --------------------------------------------------------------------------

    async def execute(self) -> RunOutcome:
        wf = self.wf
        self.emit(
            RunStarted(
                run_id=self.run_id,
                workflow_name=wf.name,
                workflow_path=str(wf.path.resolve()),  # resume may run from elsewhere
                workflow_snapshot=wf.source_text,
                workflow_hash=hashlib.sha256(wf.source_text.encode()).hexdigest(),
                inputs=self.req.inputs,
                workspace=str(self.req.workspace),
                resumed=self.req.resume is not None,
                pid=os.getpid(),
                limits={
                    "concurrency": self.concurrency,
                    "max_workers": self.max_workers,
                    "max_cost_usd": self.budget.max_cost_usd,
                    "max_tokens": self.budget.max_tokens,
                },
                sandbox=await describe_sandbox(self.settings.sandbox),
            )
        )
        base = {
            "inputs": self.req.inputs,
            "run": {"id": self.run_id, "workspace": str(self.req.workspace)},
            "state": self.state.values,
            "env": self.env,
            "loop": {},
        }
        scope = _Scope(workflow=wf, path="", key="", iteration=None, base=base, outer={})
        results: dict[str, StepResult] = {}
        error: str | None = None
        outputs: dict[str, Any] | None = None
        cancel_scope = anyio.CancelScope()
        self.engine._scope = cancel_scope
        if self.engine._cancel_reason:
            cancel_scope.cancel()
        try:
            with cancel_scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._heartbeat)
                    results = await self._run_scope(wf.steps, scope)
                    tg.cancel_scope.cancel()
        finally:
            self.engine._scope = None
        reason, self.engine._cancel_reason = (
            self.engine._cancel_reason,
            None,
        )  # next run starts clean
        if cancel_scope.cancelled_caught or reason:
            self.stopping = "cancelled"
        failed = [(sid, r) for sid, r in results.items() if r.status == FAILED]
        if self.stopping == "cancelled":
            status = "cancelled"
            error = f"run cancelled ({reason or 'interrupted'})"
        elif self.stopping == "budget":
            status = "budget_exceeded"
            error = self.budget.exceeded
        elif failed:
            status = "failed"
            error = "; ".join(f"step '{sid}': {r.error}" for sid, r in failed)
        else:
            status = "succeeded"
            try:
                outputs = self._render_outputs(wf, scope, results)
            except OrchestrateError as exc:
                status, error = "failed", f"outputs: {exc}"
        self.emit(RunFinished(run_id=self.run_id, status=status, outputs=outputs, error=error))
        return RunOutcome(run_id=self.run_id, status=status, outputs=outputs, error=error)

    def _render_outputs(
        self, wf: Workflow, scope: _Scope, results: dict[str, StepResult]
    ) -> dict[str, Any]:
        ctx = dict(scope.base)
        ctx["steps"] = {**scope.outer, **{k: v.view() for k, v in results.items()}}
        return {name: tpl.render(ctx) for name, tpl in wf.outputs.items()}

    async def _heartbeat(self) -> None:
        interval = self.settings.engine.heartbeat
        while True:
            await anyio.sleep(interval)
            self.emit(Heartbeat(run_id=self.run_id))
            should_cancel = self.engine.should_cancel
            if should_cancel is not None and await should_cancel(self.run_id):
                self.engine.cancel("cancel requested from `orchestrate runs cancel`")

    # --- scopes and steps -----------------------------------------------------------------

    async def _run_scope(self, steps: list[Step], scope: _Scope) -> dict[str, StepResult]:
        results: dict[str, StepResult] = {}
        done = {step.id: anyio.Event() for step in steps}

        async def one(step: Step) -> None:
            try:
                for dep in step.deps:
                    if dep in done:
                        await done[dep].wait()
                results[step.id] = await self._run_step(step, scope, results)
            finally:
                if step.id not in results:  # cancelled: record it, so the history is whole
                    results[step.id] = self._finish(
                        scope.path + step.id, scope, StepResult(CANCELLED, error="cancelled")
                    )
                done[step.id].set()

        async with anyio.create_task_group() as tg:
            for step in steps:
                tg.start_soon(one, step)
        return {step.id: results[step.id] for step in steps}

    def _context(self, scope: _Scope, results: dict[str, StepResult]) -> dict[str, Any]:
        ctx = dict(scope.base)
        ctx["steps"] = {**scope.outer, **{k: v.view() for k, v in results.items()}}
        return ctx

    async def _run_step(
        self, step: Step, scope: _Scope, results: dict[str, StepResult]
    ) -> StepResult:
        path = scope.path + step.id
        kind = "fanout" if step.for_each is not None else step.kind
        deps = [d for d in step.deps if d in results]
        blocked = [d for d in deps if results[d].status in (FAILED, CANCELLED)]
        if blocked:
            return self._finish(
                path,
                scope,
                StepResult(CANCELLED, error=f"dependency '{blocked[0]}' did not succeed"),
            )
        if deps and all(results[d].status == SKIPPED for d in deps):
            return self._finish(path, scope, StepResult(SKIPPED))
        if self.stopping:
            return self._finish(path, scope, StepResult(CANCELLED, error=f"run {self.stopping}"))
        ctx = self._context(scope, results)
        try:
            if step.when is not None and not step.when.render(ctx):
                return self._finish(path, scope, StepResult(SKIPPED))
        except OrchestrateError as exc:
            return self._finish(path, scope, StepResult(FAILED, error=f"when: {exc}"))
        if kind != "fanout":  # a fan-out announces itself once it knows its item count
            self.emit(
                StepStarted(run_id=self.run_id, step_id=path, kind=kind, iteration=scope.iteration)
            )
        try:
            if step.for_each is not None:
                result = await self._fanout(step, scope, ctx, path)
            elif step.kind in ("agent", "run"):
                result = await self._single(step, scope, ctx, path)
            elif step.kind == "merge":
                result = self._merge(step, ctx)
            elif step.kind == "loop":
                result = await self._loop(step, scope, ctx, path)
            elif step.kind == "workflow":
                result = await self._subworkflow(step, scope, ctx, path)
            else:  # pragma: no cover - the spec rejects other kinds
                result = StepResult(FAILED, error=f"unknown step kind {step.kind!r}")
        except OrchestrateError as exc:
            result = StepResult(FAILED, error=str(exc))
        return self._finish(path, scope, result)

    def _finish(self, path: str, scope: _Scope, result: StepResult) -> StepResult:
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
            )
        )
        return result

    # --- step kinds -----------------------------------------------------------------------

    async def _single(
        self, step: Step, scope: _Scope, ctx: dict[str, Any], path: str
    ) -> StepResult:
        if self.tasks_created + 1 > self.max_workers:
            return StepResult(
                FAILED, error=f"limits.max_workers={self.max_workers} reached before this step"
            )
        self.tasks_created += 1
        key = scope.key + step.id
        async with self.task_slots:
            outcome = await self._task(step, scope, ctx, path, key, None)
        return self._single_result(step, outcome)

    def _single_result(self, step: Step, outcome: _TaskOutcome) -> StepResult:
        if step.kind == "run" and isinstance(outcome.output, dict):
            data = outcome.output
            return StepResult(
                outcome.status,
                output=data.get("output"),
                exit_code=data.get("exit_code"),
                error=outcome.error,
            )
        if outcome.status != SUCCEEDED:
            return StepResult(outcome.status, error=outcome.error)
        return StepResult(SUCCEEDED, output=outcome.output)

    async def _fanout(
        self, step: Step, scope: _Scope, ctx: dict[str, Any], path: str
    ) -> StepResult:
        assert step.for_each is not None
        items = step.for_each.render(ctx)
        if isinstance(items, dict):
            items = [{"key": k, "value": v} for k, v in items.items()]
        self.emit(
            StepStarted(
                run_id=self.run_id,
                step_id=path,
                kind="fanout",
                iteration=scope.iteration,
                total_tasks=len(items) if isinstance(items, list) else None,
            )
        )
        if not isinstance(items, list):
            return StepResult(
                FAILED,
                error=f"for_each must give a list, got {type(items).__name__}: {str(items)[:100]}",
            )
        if self.tasks_created + len(items) > self.max_workers:
            return StepResult(
                FAILED,
                error=(
                    f"for_each would create {len(items)} tasks, over limits.max_workers="
                    f"{self.max_workers} for the run ({self.tasks_created} already created); "
                    "raise limits.max_workers if this is intended"
                ),
            )
        self.tasks_created += len(items)
        outcomes: list[_TaskOutcome | None] = [None] * len(items)
        if step.batch and step.kind == "agent":
            await self._batch_items(step, scope, ctx, path, items, outcomes)
        else:
            await self._pool_items(step, scope, ctx, path, items, outcomes)

        done = [o for o in outcomes if o is not None]
        cancelled = [o for o in done if o.status == CANCELLED]
        failed = [(i, o) for i, o in enumerate(done) if o.status == FAILED]
        if cancelled or len(done) < len(items):
            return StepResult(CANCELLED, error=f"run {self.stopping or 'cancelled'}")
        if step.kind == "run":
            values = [self._single_result(step, o).output for o in done]
        else:
            values = [o.output for o in done]
        if failed and step.on_item_error == "fail":
            first_index, first = failed[0]
            return StepResult(
                FAILED,
                error=(
                    f"{len(failed)} of {len(items)} items failed; first, item {first_index}: "
                    f"{first.error or 'command failed'}"
                ),
            )
        if failed:
            bad = {i for i, _ in failed}
            values = [v for i, v in enumerate(values) if i not in bad]
            self.emit(
                WarningEvent(
                    run_id=self.run_id,
                    step_id=path,
                    message=f"{len(failed)} of {len(items)} items failed and were skipped",
                )
            )
        return StepResult(SUCCEEDED, output=values)

    def _item(
        self, step: Step, scope: _Scope, ctx: dict[str, Any], index: int, item: Any
    ) -> tuple[dict[str, Any], str]:
        """One fan-out item's template context and its deterministic task key."""
        item_ctx = dict(ctx)
        item_ctx[step.as_] = item
        return item_ctx, f"{scope.key}{step.id}[{index}]:{_item_hash(item)}"

    async def _pool_items(
        self,
        step: Step,
        scope: _Scope,
        ctx: dict[str, Any],
        path: str,
        items: list[Any],
        outcomes: list[_TaskOutcome | None],
    ) -> None:
        """A bounded pool of workers pulls items in order: memory stays flat at any size."""
        width = min(step.concurrency or self.concurrency, self.concurrency, max(1, len(items)))
        cursor = iter(range(len(items)))

        async def pool_worker() -> None:
            for index in cursor:
                item_ctx, key = self._item(step, scope, ctx, index, items[index])
                async with self.task_slots:
                    outcomes[index] = await self._task(step, scope, item_ctx, path, key, index)

        async with anyio.create_task_group() as tg:
            for _ in range(width):
                tg.start_soon(pool_worker)

    async def _batch_items(
        self,
        step: Step,
        scope: _Scope,
        ctx: dict[str, Any],
        path: str,
        items: list[Any],
        outcomes: list[_TaskOutcome | None],
    ) -> None:
        """Every item at once, its calls gathered into Message Batches (see engine/batch.py)."""
        llm = self.engine.llm
        if not hasattr(llm, "batch_create"):
            raise UsageError(f"step '{path}': batch: true needs a client with the Batches API")
        collector = BatchCollector(
            llm=cast(BatchLLM, llm),
            dispatcher=self.dispatcher,
            settings=self.settings,
            emit=self.emit,
            run_id=self.run_id,
            step_id=path,
            sleep=self.engine.sleep,
            prior_batches=self.prior_batches.get(path),
        )
        worker_ctx = WorkerContext(call=collector.call, state=self.state, emit=self.emit)
        collector.expect(len(items))

        async def one(index: int) -> None:
            with collector.item():
                item_ctx, key = self._item(step, scope, ctx, index, items[index])
                outcomes[index] = await self._task(
                    step, scope, item_ctx, path, key, index, worker_ctx=worker_ctx
                )

        async with collector.running(), anyio.create_task_group() as tg:
            for index in range(len(items)):
                tg.start_soon(one, index)

    def _merge(self, step: Step, ctx: dict[str, Any]) -> StepResult:
        assert step.merge is not None and step.from_ is not None
        source = ctx["steps"].get(step.from_, {})
        if source.get("status") == SKIPPED:
            return StepResult(
                SUCCEEDED,
                output=reducers.reduce(
                    step.merge, [], source=step.from_, by=step.by, separator=step.separator
                ),
            )
        output = reducers.reduce(
            step.merge,
            source.get("output"),
            source=step.from_,
            by=step.by,
            separator=step.separator,
        )
        return StepResult(SUCCEEDED, output=output)

    async def _loop(self, step: Step, scope: _Scope, ctx: dict[str, Any], path: str) -> StepResult:
        assert step.loop is not None
        spec = step.loop
        previous: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        iteration = 0
        outer = dict(ctx["steps"])
        for iteration in range(1, spec.max_iterations + 1):
            loop_vars = {"iteration": iteration, "index": iteration, "previous": previous}
            body = _Scope(
                workflow=scope.workflow,
                path=f"{path}.",
                key=f"{scope.key}{step.id}@{iteration}.",
                iteration=iteration,
                base={**scope.base, "loop": loop_vars},
                outer=outer,
            )
            results = await self._run_scope(spec.steps, body)
            outputs = {sid: r.output for sid, r in results.items()}
            bad = [(sid, r) for sid, r in results.items() if r.status in (FAILED, CANCELLED)]
            if bad:
                sid, r = bad[0]
                status = CANCELLED if r.status == CANCELLED else FAILED
                return StepResult(
                    status,
                    output=outputs,
                    iterations=iteration,
                    error=f"iteration {iteration}, step '{sid}': {r.error}",
                )
            if spec.until is not None:
                until_ctx = self._context(body, results)
                if spec.until.render(until_ctx):
                    break
            previous = outputs
        return StepResult(SUCCEEDED, output=outputs, iterations=iteration)

    async def _subworkflow(
        self, step: Step, scope: _Scope, ctx: dict[str, Any], path: str
    ) -> StepResult:
        sub = step.sub
        assert sub is not None
        raw = {name: tpl.render(ctx) for name, tpl in step.inputs.items()}
        inputs = sub.coerce_inputs(raw)
        child = _Scope(
            workflow=sub,
            path=f"{path}.",
            key=f"{scope.key}{step.id}.",
            iteration=scope.iteration,
            base={**scope.base, "inputs": inputs, "loop": {}},
            outer={},
        )
        results = await self._run_scope(sub.steps, child)
        bad = [(sid, r) for sid, r in results.items() if r.status in (FAILED, CANCELLED)]
        if bad:
            sid, r = bad[0]
            return StepResult(r.status, error=f"sub-workflow step '{sid}': {r.error}")
        return StepResult(SUCCEEDED, output=self._render_outputs(sub, child, results))

    # --- tasks ----------------------------------------------------------------------------

    def _task_spec(
        self,
        step: Step,
        scope: _Scope,
        ctx: dict[str, Any],
        path: str,
        key: str,
        task_id: str,
        index: int | None,
    ) -> TaskSpec:
        wf = scope.workflow
        defaults = wf.defaults
        engine = self.settings.engine
        agent = wf.resolve_agent(step.agent) if step.agent else None
        model = self.settings.resolve_model(
            step.model or (agent.model if agent else None) or defaults.model or engine.model
        )
        systems = [s for s in ((agent.system if agent else None), step.system) if s]
        tools: list[str | dict[str, str]] = list(agent.tools or []) if agent else []
        for tool in step.tools:
            if tool not in tools:
                tools.append(tool)
        assert step.prompt is not None
        cache_ttl = None
        if step.for_each is not None and self.settings.cache.enabled:
            cache_ttl = self.settings.cache.ttl
        max_tokens = (
            step.max_tokens
            or (agent.max_tokens if agent else None)
            or defaults.max_tokens
            or engine.max_tokens
        )
        return TaskSpec(
            run_id=self.run_id,
            task_id=task_id,
            step_id=path,
            key=key,
            index=index,
            agent=agent.name if agent else None,
            model=model,
            system="\n\n".join(s.strip() for s in systems) or None,
            prompt=step.prompt.render_str(ctx),
            context=step.context.render_str(ctx) if step.context is not None else None,
            max_tokens=max_tokens,
            stream=max_tokens > engine.stream_above_max_tokens,
            tools=tools,
            output=step.output,
            max_turns=step.max_turns or defaults.max_turns or engine.max_turns,
            retries=self._retries(step, wf),
            timeout_s=self._timeout(step, wf),
            workspace=str(self.req.workspace),
            cache_ttl=cache_ttl,
            sandbox=self._sandbox(step).to_dict(),
        )

    def _sandbox(self, step: Step) -> SandboxPolicy:
        # `sandbox:` on a step overrides the settings' (the loader normalises it: step_sandbox)
        return self.settings.sandbox.override(getattr(step, "sandbox", None))

    def _retries(self, step: Step, wf: Workflow) -> int:
        if step.retries is not None:
            return int(step.retries)
        if wf.defaults.retries is not None:
            return int(wf.defaults.retries)
        return self.settings.engine.retries

    def _timeout(self, step: Step, wf: Workflow) -> float:
        return step.timeout or wf.defaults.timeout or self.settings.engine.timeout

    async def _task(
        self,
        step: Step,
        scope: _Scope,
        ctx: dict[str, Any],
        path: str,
        key: str,
        index: int | None,
        *,
        worker_ctx: WorkerContext | None = None,
    ) -> _TaskOutcome:
        prior = self.prior.get(key)
        if prior is not None:
            return _TaskOutcome(SUCCEEDED, prior.output)
        if self.engine.pace is not None:
            await self.engine.pace()
        if self.stopping:
            return _TaskOutcome(CANCELLED, error=f"run {self.stopping}")
        task_id = new_id()
        try:
            if step.kind == "run":
                assert step.run is not None
                command = step.run.render_str(ctx)
                self.emit(
                    TaskStarted(
                        run_id=self.run_id,
                        task_id=task_id,
                        step_id=path,
                        key=key,
                        index=index,
                        iteration=scope.iteration,
                        prompt=command,
                    )
                )
                spec = None
            else:
                spec = self._task_spec(step, scope, ctx, path, key, task_id, index)
                self.emit(
                    TaskStarted(
                        run_id=self.run_id,
                        task_id=task_id,
                        step_id=path,
                        key=key,
                        index=index,
                        iteration=scope.iteration,
                        agent=spec.agent,
                        model=spec.model,
                        system=spec.system,
                        prompt=spec.prompt,
                    )
                )
        except OrchestrateError as exc:
            return _TaskOutcome(FAILED, error=str(exc))

        retries = self._retries(step, scope.workflow)
        # a batch can take hours: only an explicit step timeout bounds its items
        timeout: float | None = (
            step.timeout if worker_ctx is not None else self._timeout(step, scope.workflow)
        )
        attempt = 0
        earlier = TaskResult(output=None)  # what failed attempts used: it counts too
        try:
            while True:
                attempt += 1
                try:
                    with anyio.fail_after(timeout):
                        if spec is None:
                            return await self._command(step, command, task_id, path, attempt)
                        task_result = await self.engine.worker(spec, worker_ctx or self.worker_ctx)
                except BudgetExceeded as exc:
                    self.stopping = self.stopping or "budget"
                    return self._task_end(task_id, path, CANCELLED, None, str(exc), attempt)
                except (TaskFailed, TimeoutError, RetryableError) as exc:
                    message = (
                        f"timed out after {timeout or 0:g}s"
                        if isinstance(exc, TimeoutError)
                        else str(exc)
                    )
                    if isinstance(exc, TaskFailed) and isinstance(exc.spent, TaskResult):
                        _add_spent(earlier, exc.spent)
                    # the dispatcher already retried API errors until its horizon
                    if attempt > retries or self.stopping or isinstance(exc, RetryableError):
                        return self._task_end(
                            task_id, path, FAILED, None, message, attempt, earlier
                        )
                    await self._before_retry(task_id, path, attempt, message)
                    continue
                except FatalError as exc:
                    return self._task_end(task_id, path, FAILED, None, str(exc), attempt, earlier)
                _add_spent(task_result, earlier)
                return self._task_end(
                    task_id, path, SUCCEEDED, task_result.output, None, attempt, task_result
                )
        except anyio.get_cancelled_exc_class():  # also while waiting to retry
            self._task_end(task_id, path, CANCELLED, None, "cancelled", attempt)
            raise

    async def _before_retry(self, task_id: str, path: str, attempt: int, error: str) -> None:
        retry = self.settings.retry
        wait = min(retry.max_delay, retry.base_delay * (2 ** (attempt - 1)))
        wait *= 0.5 + self.engine.rand() / 2
        self.emit(
            TaskRetried(
                run_id=self.run_id,
                task_id=task_id,
                step_id=path,
                attempt=attempt + 1,
                error=error,
                wait_s=round(wait, 3),
            )
        )
        await self.engine.sleep(wait)

    async def _command(
        self, step: Step, command: str, task_id: str, path: str, attempt: int
    ) -> _TaskOutcome:
        """Run a `run:` step's command. A non-zero exit without `allow_failure` is a failed
        task, so resume runs the command again instead of replaying its failure."""
        try:
            result = await run_command(
                command, cwd=self.req.workspace, timeout_s=None, sandbox=self._sandbox(step)
            )
        except SandboxUnavailable as exc:  # another try cannot help
            return self._task_end(task_id, path, FAILED, None, str(exc), attempt)
        if result.warning and not self.sandbox_warned:
            self.sandbox_warned = True
            self.emit(WarningEvent(run_id=self.run_id, step_id=path, message=result.warning))
        output: Any = {
            "output": parse_output(result, step.output),
            "exit_code": result.exit_code,
            "stderr": result.stderr[-4000:],
        }
        if result.exit_code != 0 and not step.allow_failure:
            tail = result.stderr.strip()[-300:]
            error = f"command exited with code {result.exit_code}" + (f": {tail}" if tail else "")
            return self._task_end(task_id, path, FAILED, output, error, attempt)
        return self._task_end(
            task_id, path, SUCCEEDED, output, None, attempt, TaskResult(output=output)
        )

    def _task_end(
        self,
        task_id: str,
        path: str,
        status: str,
        output: Any,
        error: str | None,
        attempts: int,
        result: TaskResult | None = None,
    ) -> _TaskOutcome:
        usage = result.usage if result else Usage()
        self.emit(
            TaskFinished(
                run_id=self.run_id,
                task_id=task_id,
                step_id=path,
                status=status,
                output=output,
                error=error,
                usage=usage.to_dict(),
                cost_usd=result.cost_usd if result else 0.0,
                attempts=attempts,
                turns=result.turns if result else 0,
            )
        )
        return _TaskOutcome(status, output, error)
