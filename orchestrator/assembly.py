"""Assembling a run, and the Python API: the one place that builds the store writer, the client
(or the simulator), the run log and the engine, runs a workflow, and closes them again.

`orchestrator.run(...)`/`await orchestrator.arun(...)` (below) and `orchestrate run`/`resume`
all go through `new_run`/`resume_run` (what to run: ids, workspace, what a resume keeps) and
`execute` (running it), so a run started from Python is recorded exactly like one from the CLI.
Like `cli/`, this module may import every package; nothing in the core imports it. Heavy
packages (the engine, the SDK, the simulator) are imported inside the functions that need them.

Invariants:
- nothing is created (store, folders, client) before the inputs and the API key are checked;
- a resume claims its run in the store (one conditional UPDATE) before anything runs, so two
  resumes of one run never both run what is left;
- the run's row is committed before its first task starts, so a process killed at any moment
  after its first model call leaves a run that `resume` continues;
- the client, the simulator and the run log are closed on every way out, cancellation included.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from orchestrator.errors import FatalError, UsageError
from orchestrator.paths import private_dir

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.contracts import LLM, LLMResponse, People
    from orchestrator.engine import Engine, ResumeState, RunOutcome
    from orchestrator.engine.dispatch import SharedLimits
    from orchestrator.events import Event
    from orchestrator.people.terminal import TerminalPrompt
    from orchestrator.sim import SimConfig
    from orchestrator.store import Store, StoreWriter
    from orchestrator.workflow import Workflow

Sink = Callable[["Event"], None]


@dataclass(kw_only=True)
class RunPlan:
    """A run ready to start (what the engine's `RunRequest` is built from)."""

    workflow: Workflow
    inputs: dict[str, Any]
    run_id: str
    workspace: Path
    resume: ResumeState | None = None


@dataclass(kw_only=True)
class Hosted:
    """What the runs of one host (`orchestrate serve`) share instead of building their own:
    the store writer, the client and the dispatcher's rate limiters and overload gate.
    `on_engine` is handed each run's engine (the host cancels it to drain)."""

    writer: StoreWriter
    llm: LLM
    shared: SharedLimits
    on_engine: Callable[[Engine], None] | None = None


@dataclass(kw_only=True)
class Limits:
    """Flag values that override the workflow's `limits:` for one run (None: keep them)."""

    concurrency: int | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None


# --- checks before anything is created ---------------------------------------------------------


def needs_model(workflow: Workflow) -> bool:
    """Whether any step may call a model: agent steps, in loops and sub-workflows too. A
    workflow of `run:` and `merge` steps only runs without an API key."""
    for _, step in workflow.iter_steps():
        if step.kind == "agent":
            return True
        if step.kind == "workflow" and (step.sub is None or needs_model(step.sub)):
            return True
    return False


def uses_claude_code(workflow: Workflow) -> bool:
    """Whether any agent step (in loops and sub-workflows too) runs on Claude Code."""
    for _, step in workflow.iter_steps():
        if step.kind == "agent":
            agent = workflow.resolve_agent(step.agent) if step.agent else None
            runtime = (
                step.runtime or (agent.runtime if agent else None) or workflow.defaults.runtime
            )
            if runtime == "claude-code":
                return True
        if step.kind == "workflow" and step.sub is not None and uses_claude_code(step.sub):
            return True
    return False


def check_api_key(
    workflow: Workflow, sim: SimConfig | None, environ: Mapping[str, str] = os.environ
) -> None:
    """Fail before anything is created when the run needs the real API and has no key (the
    client would say the same, but only once the run's store and folders exist), or needs
    the Claude Code CLI and it is not installed."""
    from orchestrator.llm import NO_KEY_MESSAGE

    if uses_claude_code(workflow):
        from orchestrator.runtimes.claude_code import find_cli

        find_cli(dict(environ))

    if sim is None and needs_model(workflow) and not environ.get("ANTHROPIC_API_KEY", "").strip():
        raise UsageError(NO_KEY_MESSAGE)


# --- what to run -------------------------------------------------------------------------------


def new_run(settings: Settings, workflow: Workflow, inputs: dict[str, Any]) -> RunPlan:
    """A fresh run id and its workspace (the workflow's `workspace:`, or one under runs_dir)."""
    from orchestrator.ids import new_id

    run_id = new_id()
    if workflow.workspace:
        target = Path(workflow.workspace)
        if not target.is_absolute():
            target = workflow.path.parent / target
        workspace = private_dir(target.resolve())
    else:
        workspace = private_dir(Path(settings.engine.runs_dir).resolve() / run_id / "workspace")
    return RunPlan(workflow=workflow, inputs=inputs, run_id=run_id, workspace=workspace)


@dataclass(frozen=True)
class AlreadySucceeded:
    """`resume` of a run that succeeded: nothing runs; its stored outputs stand."""

    run_id: str
    outputs: dict[str, Any] | None


def resume_run(
    store: Store,
    settings: Settings,
    run_ref: str,
    *,
    sim: SimConfig | None,
    use_current: bool = False,
) -> RunPlan | AlreadySucceeded:
    """The plan to continue a run, after claiming it in the store; or `AlreadySucceeded`.

    The workflow is the snapshot stored with the run; if the file changed since, this refuses
    unless `use_current`. A run that a live process runs, or that another resume claimed a
    moment ago, is refused (`UsageError`, exit 2)."""
    from orchestrator.engine import PriorTask, ResumeState
    from orchestrator.workflow import load_workflow

    run_id = store.resolve_run(run_ref)
    record = store.get_run(run_id, stale_after_s=settings.engine.stale_after)
    assert record is not None
    if record.status == "succeeded":
        return AlreadySucceeded(run_id, record.outputs)
    path = Path(record.workflow_path)
    on_disk = path.read_text("utf-8") if path.exists() else None
    if use_current:
        if on_disk is None:
            raise UsageError(f"--use-current: {path} no longer exists")
        workflow = load_workflow(path, settings=settings)
    else:
        if on_disk is not None and on_disk != record.workflow_snapshot:
            raise UsageError(
                f"{path} changed since run {run_id[:10]} started; restore it, or pass "
                "--use-current to resume with the file as it is now"
            )
        workflow = load_workflow(path, text=record.workflow_snapshot, settings=settings)
    check_api_key(workflow, sim)
    claim = store.claim_run(run_id, pid=os.getpid(), stale_after_s=settings.engine.stale_after)
    if not claim.ok:
        if claim.status == "succeeded":
            return AlreadySucceeded(run_id, record.outputs)
        raise UsageError(claim.reason)
    point = store.resume_point(run_id)
    resume = ResumeState(
        tasks={
            key: PriorTask(output=t.output, usage=t.usage.to_dict(), cost_usd=t.cost_usd)
            for key, t in point.tasks.items()
        },
        state=dict(point.state),
        batches=point.batches,
        conversations=point.conversations,
        spent_usd=point.spent_usd,
        spent_tokens=point.spent_tokens,
        spent_by_step=point.spent_by_step,
    )
    return RunPlan(
        workflow=workflow,
        inputs=dict(record.inputs or {}),
        run_id=run_id,
        workspace=private_dir(Path(record.workspace)),
        resume=resume,
    )


# --- running it --------------------------------------------------------------------------------


class _NoModel:
    """The client of a run that has no API key and needs none (`run:` and `merge` steps only):
    a model call, which `needs_model` says cannot happen, fails plainly instead of leaving."""

    async def create(
        self,
        request: dict[str, Any],
        *,
        stream: bool = False,
        on_delta: Callable[[str], None] | None = None,
    ) -> LLMResponse:
        from orchestrator.llm import NO_KEY_MESSAGE

        raise FatalError(NO_KEY_MESSAGE)

    async def aclose(self) -> None:
        return None


async def execute(
    settings: Settings,
    plan: RunPlan,
    store: Store,
    *,
    sim: SimConfig | None = None,
    limits: Limits | None = None,
    sinks: Sequence[Sink] = (),
    handle_signals: bool = False,
    freeze_heap: bool = False,
    prompt: TerminalPrompt | None = None,
    keep_waiting: bool = False,
    hosted: Hosted | None = None,
) -> RunOutcome:
    """Run `plan` with the real client (or the simulator when `sim` is given) and record it in
    `store`; `sinks` see every event too. `handle_signals`: SIGINT/SIGTERM cancel the run (a
    second one exits at once), for a process that is only this run. `freeze_heap`: move
    everything loaded so far out of the collector's sight (the CLI: the process ends with the
    run). Questions for people go into the store; `prompt` asks them on the terminal, and
    `keep_waiting` (`--wait`) waits for their answers from elsewhere instead of ending the run
    `waiting`. `hosted`: run on a host's shared writer, client and limits (`serve`), which
    the host closes. The store stays open; the caller closes it."""
    from orchestrator import ui
    from orchestrator.engine import Engine, RunRequest
    from orchestrator.events import SimulatorUsed
    from orchestrator.store import AsyncScopes

    limits = limits or Limits()
    runtimes: dict[str, Any] = {}
    if uses_claude_code(plan.workflow):
        from orchestrator.runtimes.claude_code import ClaudeCodeRuntime

        runtimes["claude-code"] = ClaudeCodeRuntime()
    executor, worker = _executor(settings, runtimes)
    concurrency = (
        limits.concurrency or plan.workflow.limits.concurrency or settings.engine.concurrency
    )
    closers: list[Callable[[], None]] = []
    llm: LLM | None = None
    try:
        if executor is not None:  # joins the cluster first: it refuses a store it cannot serve
            executor.connect()
            closers.append(executor.close)
        log = ui.make_run_log(private_dir(Path(settings.engine.logs_dir)) / f"{plan.run_id}.jsonl")
        closers.append(log.close)
        llm = (
            hosted.llm
            if hosted is not None
            else _client(settings, plan.workflow, sim, concurrency, closers)
        )
        from orchestrator.telemetry import sink_from_env  # no OpenTelemetry unless OTEL_* is set

        telemetry = sink_from_env(warn=lambda text: print(text, file=sys.stderr))
        if telemetry is not None:
            closers.insert(0, telemetry.close)  # last: a slow collector must not hold the display
        if freeze_heap:
            # Everything loaded by now (the SDK, pydantic, SQLAlchemy, the simulator: millions
            # of objects) lives as long as the process; keep the garbage collector from
            # scanning it again and again during the run. No gc.collect() first: it found ~40
            # objects to free and took 0.1-0.5 s of the run's wall (bench/fanout.py --profile).
            gc.freeze()
        async with (
            contextlib.nullcontext(hosted.writer) if hosted is not None else store.writer()
        ) as writer:

            def to_store(event: Event) -> None:
                if event.type != "text_delta":  # deltas go to the run log only (README: volume)
                    writer.send(event)
                if sim is not None and event.type == "run_started":  # `resume` reads it back
                    writer.send(SimulatorUsed(run_id=event.run_id, config=simulator_settings(sim)))

            all_sinks: list[Sink] = [to_store, log, *sinks]
            if telemetry is not None:
                all_sinks.append(telemetry)

            def emit(event: Event) -> None:
                for sink in all_sinks:
                    sink(event)

            async def should_cancel(rid: str) -> bool:
                return await anyio.to_thread.run_sync(store.cancel_requested, rid)

            committed = False

            async def pace() -> None:
                nonlocal committed
                if not committed:
                    # The run's row (RunStarted) is committed before the first task starts:
                    # a process killed during its first calls must leave a resumable run.
                    await writer.flush()
                    committed = True
                await writer.drain()

            engine = Engine(
                settings=settings,
                llm=llm,
                # a task's recorded calls are committed before its next request leaves
                before_request=writer.flush_task if settings.engine.durable_calls else None,
                emit=emit,
                worker=worker,
                runtimes=runtimes,
                should_cancel=should_cancel,
                pace=pace,
                people=_desk(settings, plan, store, emit, prompt, keep_waiting),
                scopes=AsyncScopes(store),
                shared=hosted.shared if hosted is not None else None,
            )
            if hosted is not None and hosted.on_engine is not None:
                hosted.on_engine(engine)
            request = RunRequest(
                workflow=plan.workflow,
                inputs=plan.inputs,
                workspace=plan.workspace,
                run_id=plan.run_id,
                resume=plan.resume,
                concurrency=limits.concurrency,
                max_cost_usd=limits.max_cost_usd,
                max_tokens=limits.max_tokens,
            )
            async with contextlib.AsyncExitStack() as stack:
                if executor is not None:  # the relay that serves its tasks' calls
                    await stack.enter_async_context(executor.running())
                for runtime in runtimes.values():  # Claude Code: its proxy serves the run
                    if hasattr(runtime, "running"):
                        await stack.enter_async_context(runtime.running())
                if not handle_signals:
                    return await engine.run(request)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_on_signals, engine)
                    outcome = await engine.run(request)
                    tg.cancel_scope.cancel()
                return outcome
    finally:
        if llm is not None and hosted is None:
            with anyio.CancelScope(shield=True):
                await llm.aclose()
        for close in reversed(closers):
            close()


def _executor(settings: Settings, runtimes: dict[str, Any]) -> tuple[Any, Any]:
    """(executor, api worker) for `engine.executor`: (None, None) runs tasks here; with `ray`,
    every runtime is wrapped to run on the cluster (`runtimes` is changed in place)."""
    if settings.engine.executor != "ray":
        return None, None
    from orchestrator.executors import load_ray
    from orchestrator.worker import run_worker

    executor = load_ray()(address=settings.engine.ray_address, db=settings.engine.db)
    if "claude-code" in runtimes:  # each node starts its own loopback proxy into the relay
        runtimes["claude-code"] = executor.wrap(_claude_code_on_node)
    return executor, executor.wrap(run_worker)


async def _claude_code_on_node(spec: Any, ctx: Any) -> Any:
    """A Claude Code task on a Ray node: its proxy runs there, its calls come back here."""
    from orchestrator.runtimes.claude_code import ClaudeCodeRuntime

    runtime = ClaudeCodeRuntime()
    async with runtime.running():
        return await runtime(spec, ctx)


_SIM_FIELDS = (
    "seed",
    "latency_s",
    "jitter",
    "faults",
    "list_len",
    "tool_calls",
    "rate_limits",
    "retry_after_s",
    "models",
)


def simulator_settings(sim: SimConfig) -> dict[str, Any]:
    """What a run records of its simulator: everything but the scripted rules (a script is for
    one run; a resume answers the rest as the simulator does by default)."""
    return {name: getattr(sim, name) for name in _SIM_FIELDS}


def recorded_simulator(store: Store, run_ref: str) -> SimConfig | None:
    """The simulator a run used (None: it called the real API), for `resume` without
    `--simulate`."""
    from orchestrator.sim import SimConfig

    try:
        run_id = store.resolve_run(run_ref)
    except (LookupError, ValueError, UsageError):
        return None  # resume_run reports the bad reference
    used = store.events(run_id, type="simulator_used")
    if not used:
        return None
    config = (used[-1].payload or {}).get("config") or {}
    return SimConfig(**{k: v for k, v in config.items() if k in _SIM_FIELDS})


def _desk(
    settings: Settings,
    plan: RunPlan,
    store: Store,
    emit: Sink,
    prompt: TerminalPrompt | None,
    keep_waiting: bool,
) -> People:
    """The run's people: the store's questions, the terminal, the notices (the workflow's
    `notify:` over the settings')."""
    from orchestrator.events import Warning as WarningEvent
    from orchestrator.people import Desk, NoticeTargets

    own, base = plan.workflow.notify, settings.notify
    targets = NoticeTargets(command=own.command or base.command, url=own.url or base.url)

    def warn(message: str) -> None:
        emit(WarningEvent(run_id=plan.run_id, message=message))

    return Desk(store, notify=targets, prompt=prompt, keep_waiting=keep_waiting, warn=warn)


def host_client(
    settings: Settings,
    workflows: Sequence[Workflow],
    sim: SimConfig | None,
    concurrency: int,
    closers: list[Callable[[], None]],
) -> LLM:
    """One client for every run of a host (`serve`): the simulator's, the API's when any
    workflow calls a model (`check_api_key` first), else one that refuses calls."""
    needing = [w for w in workflows if needs_model(w)]
    return _client(settings, needing[0] if needing else workflows[0], sim, concurrency, closers)


def _client(
    settings: Settings,
    workflow: Workflow,
    sim: SimConfig | None,
    concurrency: int,
    closers: list[Callable[[], None]],
) -> LLM:
    from orchestrator.llm import make_llm

    if sim is not None:
        from orchestrator.sim import SimServer

        server = SimServer(sim)
        server.start()
        closers.append(server.stop)
        return make_llm(settings, simulate=True, base_url=server.base_url, concurrency=concurrency)
    if not needs_model(workflow) and not os.environ.get("ANTHROPIC_API_KEY", "").strip():
        return _NoModel()
    return make_llm(settings, concurrency=concurrency)


async def _cancel_on_signals(engine: Any) -> None:
    """Cancel the run on SIGINT/SIGTERM, also one that came while the process was loading (the
    CLI deferred them at start, `orchestrator.interrupts`); a second one exits at once."""
    from orchestrator import interrupts

    loop = asyncio.get_running_loop()

    def cancel(name: str) -> None:
        print(f"\n{name}: cancelling (again to exit at once)", file=sys.stderr)
        engine.cancel(name)

    fresh = interrupts.defer()  # already in place when the CLI started this process
    try:
        # The handler runs between bytecodes, maybe mid-render: it only schedules the cancel.
        def schedule(name: str) -> None:
            loop.call_soon_threadsafe(cancel, name)

        with interrupts.listening(schedule):
            await anyio.sleep_forever()
    finally:
        if fresh:
            interrupts.restore()


# --- the Python API ----------------------------------------------------------------------------


async def arun(
    workflow: str | os.PathLike[str],
    inputs: Mapping[str, Any] | None = None,
    *,
    simulate: bool | SimConfig = False,
    db: str | None = None,
    config: str | os.PathLike[str] | None = None,
    concurrency: int | None = None,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
    on_event: Sink | None = None,
) -> RunOutcome:
    """Run a workflow file and record it in the store, as `orchestrate run` does; returns the
    engine's `RunOutcome` (`run_id`, `status`, `outputs`, `error`, `exit_code`).

    `simulate=True` uses the built-in simulator (or pass a `SimConfig`); otherwise the real API
    with `ANTHROPIC_API_KEY`. `db` is the store (default: the `engine.db` setting,
    `.orchestrate/state.db`); `config` a settings file. `inputs` are coerced to the workflow's
    declared types. `on_event` sees every event. A bad workflow or input raises `SpecError` or
    `UsageError`; a run that fails or goes over budget returns with that status.
    """
    from orchestrator.config import load_settings
    from orchestrator.store import Store
    from orchestrator.workflow import load_workflow

    overrides: dict[str, Any] = {"engine": {"db": db}} if db else {}
    settings = load_settings(Path(config) if config is not None else None, overrides=overrides)
    loaded = load_workflow(Path(workflow), settings=settings)
    coerced = loaded.coerce_inputs(dict(inputs or {}))
    sim = _sim_config(simulate)
    check_api_key(loaded, sim)
    store = await anyio.to_thread.run_sync(Store.open, settings.engine.db)
    try:
        plan = new_run(settings, loaded, coerced)
        return await execute(
            settings,
            plan,
            store,
            sim=sim,
            limits=Limits(
                concurrency=concurrency, max_cost_usd=max_cost_usd, max_tokens=max_tokens
            ),
            sinks=() if on_event is None else (on_event,),
        )
    finally:
        store.close()


def run(
    workflow: str | os.PathLike[str],
    inputs: Mapping[str, Any] | None = None,
    *,
    simulate: bool | SimConfig = False,
    db: str | None = None,
    config: str | os.PathLike[str] | None = None,
    concurrency: int | None = None,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
    on_event: Sink | None = None,
) -> RunOutcome:
    """`arun` for code without an event loop of its own (in a notebook or async code, use
    `await orchestrator.arun(...)`)."""

    async def main() -> RunOutcome:
        return await arun(
            workflow,
            inputs,
            simulate=simulate,
            db=db,
            config=config,
            concurrency=concurrency,
            max_cost_usd=max_cost_usd,
            max_tokens=max_tokens,
            on_event=on_event,
        )

    return anyio.run(main)


def _sim_config(simulate: bool | SimConfig) -> SimConfig | None:
    if simulate is False:
        return None
    from orchestrator.sim import SimConfig

    return SimConfig() if simulate is True else simulate
