"""`orchestrate run` and `orchestrate resume`: assemble the real store, client, simulator and
sinks, hand them to the engine, and map its outcome to an exit code."""

from __future__ import annotations

import gc
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli.app import app

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.engine import ResumeState, RunOutcome
    from orchestrator.sim import SimConfig
    from orchestrator.store import Store
    from orchestrator.workflow import Workflow

_SIM = "Simulator"
_LIMITS = "Limits"
_OUT = "Output"


@dataclass
class _Options:
    sim: SimConfig | None  # None: the real API
    concurrency: int | None
    max_cost_usd: float | None
    max_tokens: int | None
    output: Path | None
    json: bool
    quiet: bool


def _sim_config(
    simulate: bool,
    latency: str | None,
    faults: str | None,
    script: Path | None,
    seed: int,
    rate_limits: str | None,
) -> SimConfig | None:
    """The simulator's settings, checked before anything starts (bad flags are exit 2)."""
    from orchestrator.errors import UsageError

    given = [
        flag
        for flag, value in (
            ("--sim-latency", latency),
            ("--sim-faults", faults),
            ("--sim-script", script),
            ("--sim-rate-limits", rate_limits),
        )
        if value is not None
    ]
    if not simulate:
        if given:
            raise UsageError(f"{given[0]} only applies with --simulate")
        return None
    from orchestrator.cli.sim import build_config

    return build_config(
        seed=seed, latency=latency, faults=faults, script=script, rate_limits=rate_limits
    )


def _require_api_key(opts: _Options) -> None:
    """Fail before anything is created when neither a key nor --simulate is there (make_llm
    would say the same, but only once the run's store and folders exist)."""
    from orchestrator.errors import UsageError
    from orchestrator.llm import NO_KEY_MESSAGE

    if opts.sim is None and not os.environ.get("ANTHROPIC_API_KEY"):
        raise UsageError(NO_KEY_MESSAGE)


def _settings(config: Path | None, db: str | None) -> Settings:
    from orchestrator.config import load_settings

    overrides: dict[str, Any] = {}
    if db:
        overrides["engine"] = {"db": db}
    return load_settings(config, overrides=overrides)


def _parse_inputs(pairs: list[str], inputs_file: Path | None) -> dict[str, Any]:
    import yaml

    from orchestrator.errors import UsageError

    raw: dict[str, Any] = {}
    if inputs_file is not None:
        try:
            data = yaml.safe_load(inputs_file.read_text("utf-8"))
        except OSError as exc:
            raise UsageError(f"--inputs {inputs_file}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError:
            raise UsageError(f"--inputs {inputs_file}: not valid JSON or YAML") from None
        if not isinstance(data, dict):
            raise UsageError(f"--inputs {inputs_file}: must hold a mapping of input names")
        raw.update(data)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--input {pair!r}: expected NAME=VALUE, e.g. --input question=why")
        raw[name.strip()] = value
    return raw


def _private_dir(path: Path) -> Path:
    from orchestrator.errors import UsageError

    missing = []
    parent = path
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for folder in reversed(missing):  # every folder we create is private, not just the last
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    return path


def _workspace(settings: Settings, workflow: Workflow, run_id: str) -> Path:
    if workflow.workspace:
        target = Path(workflow.workspace)
        if not target.is_absolute():
            target = workflow.path.parent / target
        return _private_dir(target.resolve())
    return _private_dir(Path(settings.engine.runs_dir).resolve() / run_id / "workspace")


def _console_sinks(
    opts: _Options, workflow: Workflow, run_id: str, settings: Settings
) -> tuple[list[Any], list[Any]]:
    """(sinks, closers) for the terminal and the per-run JSON log."""
    from orchestrator import ui

    sinks: list[Any] = []
    closers: list[Any] = []
    log_dir = _private_dir(Path(settings.engine.logs_dir))
    log = ui.make_run_log(log_dir / f"{run_id}.jsonl")
    sinks.append(log)
    closers.append(log.close)
    if opts.json:
        sinks.append(ui.JsonEventsSink(sys.stdout))
    elif not opts.quiet:
        if sys.stderr.isatty():
            from rich.console import Console

            display = ui.ProgressDisplay(Console(stderr=True), workflow_name=workflow.name)
            display.start()
            sinks.append(display)
            closers.append(display.stop)
        else:
            sinks.append(ui.PlainProgress(sys.stderr))
    return sinks, closers


async def _execute(
    settings: Settings,
    workflow: Workflow,
    inputs: dict[str, Any],
    run_id: str,
    workspace: Path,
    opts: _Options,
    store: Store,
    resume: ResumeState | None,
) -> RunOutcome:
    import signal

    import anyio

    from orchestrator.engine import Engine, RunRequest
    from orchestrator.llm import make_llm

    concurrency = opts.concurrency or workflow.limits.concurrency or settings.engine.concurrency
    closers: list[Any] = []
    llm = None
    try:
        base_url = None
        if opts.sim is not None:
            from orchestrator.sim import SimServer

            sim = SimServer(opts.sim)
            sim.start()
            closers.append(sim.stop)
            base_url = sim.base_url
        llm = make_llm(
            settings, simulate=base_url is not None, base_url=base_url, concurrency=concurrency
        )
        sinks, sink_closers = _console_sinks(opts, workflow, run_id, settings)
        closers.extend(sink_closers)
        from orchestrator.telemetry import sink_from_env  # no OpenTelemetry unless OTEL_* is set

        if (otel := sink_from_env(warn=lambda text: print(text, file=sys.stderr))) is not None:
            sinks.append(otel)
            closers.insert(0, otel.close)  # last: a slow collector must not hold the display
        # Everything loaded by now (the SDK, created just above, pydantic, SQLAlchemy, the
        # simulator: millions of objects) lives as long as the process; keep the garbage
        # collector from scanning it again and again during the run.
        gc.collect()
        gc.freeze()
        async with store.writer() as writer:

            def to_store(event: Any) -> None:
                if event.type != "text_delta":  # deltas go to the run log only (README: volume)
                    writer.send(event)

            all_sinks = [to_store, *sinks]

            def emit(event: Any) -> None:
                for sink in all_sinks:
                    sink(event)

            async def should_cancel(rid: str) -> bool:
                return await anyio.to_thread.run_sync(store.cancel_requested, rid)

            engine = Engine(
                settings=settings,
                llm=llm,
                emit=emit,
                should_cancel=should_cancel,
                pace=writer.drain,
            )
            request = RunRequest(
                workflow=workflow,
                inputs=inputs,
                workspace=workspace,
                run_id=run_id,
                resume=resume,
                concurrency=opts.concurrency,
                max_cost_usd=opts.max_cost_usd,
                max_tokens=opts.max_tokens,
            )

            async def on_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    count = 0
                    async for signum in signals:
                        count += 1
                        if count > 1:
                            os._exit(130)  # a second signal: leave at once
                        name = signal.Signals(signum).name
                        print(f"\n{name}: cancelling (again to exit at once)", file=sys.stderr)
                        engine.cancel(name)

            async with anyio.create_task_group() as tg:
                tg.start_soon(on_signals)
                outcome = await engine.run(request)
                tg.cancel_scope.cancel()
    finally:
        if llm is not None:
            with anyio.CancelScope(shield=True):
                await llm.aclose()
        for close in reversed(closers):  # the display first, the simulator last
            close()
    return outcome


def _alive(pid: int | None) -> bool:
    """Whether the process that ran a run still lives (a fresh heartbeat from a process that
    was killed a moment ago must not block its resume)."""
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _report(outcome: RunOutcome, opts: _Options) -> None:
    if opts.output is not None:
        opts.output.write_text(json.dumps(outcome.outputs, indent=2, ensure_ascii=False) + "\n")
    if opts.json:
        final = {
            "type": "result",
            "run_id": outcome.run_id,
            "status": outcome.status,
            "outputs": outcome.outputs,
            "error": outcome.error,
        }
        print(json.dumps(final, ensure_ascii=False, default=str))
    else:
        if outcome.error:
            print(f"{outcome.status}: {outcome.error}", file=sys.stderr)
        elif not opts.quiet:
            print(f"{outcome.status}: run {outcome.run_id}", file=sys.stderr)
        if outcome.outputs is not None:
            for name, value in outcome.outputs.items():
                text = value if isinstance(value, str) else json.dumps(value, indent=2)
                if len(outcome.outputs) > 1 or not opts.quiet:
                    print(f"== {name} ==")
                print(text)
    raise typer.Exit(outcome.exit_code)


def _start(
    settings: Settings,
    workflow: Workflow,
    inputs: dict[str, Any],
    run_id: str,
    workspace: Path,
    opts: _Options,
    resume: ResumeState | None,
    store: Store,
) -> None:
    import anyio

    if opts.json:
        print(json.dumps({"type": "run", "run_id": run_id}), flush=True)
    else:
        print(f"run {run_id}", file=sys.stderr, flush=True)
    outcome = anyio.run(
        _execute, settings, workflow, inputs, run_id, workspace, opts, store, resume
    )
    store.close()
    _report(outcome, opts)


SimulateOpt = Annotated[
    bool,
    typer.Option(
        "--simulate",
        help="Use the built-in Messages API simulator on 127.0.0.1 instead of the real API.",
        rich_help_panel=_SIM,
    ),
]
SimLatencyOpt = Annotated[
    str | None,
    typer.Option(
        "--sim-latency",
        metavar="DURATION",
        help="Simulated latency, e.g. 200ms.",
        rich_help_panel=_SIM,
    ),
]
SimFaultsOpt = Annotated[
    str | None,
    typer.Option(
        "--sim-faults",
        metavar="SPEC",
        help="Injected faults, e.g. 429=0.05,529=0.02,500=0.01,disconnect=0.01.",
        rich_help_panel=_SIM,
    ),
]
SimScriptOpt = Annotated[
    Path | None,
    typer.Option(
        "--sim-script",
        metavar="FILE",
        help="Rules file scripting exact replies.",
        rich_help_panel=_SIM,
    ),
]
SimSeedOpt = Annotated[
    int, typer.Option("--sim-seed", metavar="N", help="Simulator seed.", rich_help_panel=_SIM)
]
SimRateLimitsOpt = Annotated[
    str | None,
    typer.Option(
        "--sim-rate-limits",
        metavar="SPEC",
        help="Simulated limits per minute, e.g. requests=600; or 'off'.",
        rich_help_panel=_SIM,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", metavar="URL", help="State store: a path or URL (default .orchestrate/state.db)."
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", metavar="FILE", help="Settings file.")]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency", metavar="N", min=1, help="Workers in flight.", rich_help_panel=_LIMITS
    ),
]
MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        "--max-cost-usd", metavar="USD", min=0, help="Dollar budget.", rich_help_panel=_LIMITS
    ),
]
MaxTokensOpt = Annotated[
    int | None,
    typer.Option("--max-tokens", metavar="N", min=1, help="Token budget.", rich_help_panel=_LIMITS),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write the outputs as JSON here.",
        rich_help_panel=_OUT,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print events as JSON lines on stdout; the last line is the result.",
        rich_help_panel=_OUT,
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the outputs.", rich_help_panel=_OUT)
]


def _print_warnings(workflow: Workflow) -> None:
    """What `validate` would warn about, on stderr before the run starts (even with -q or
    --json: stdout stays the outputs or the event lines)."""
    for warning in workflow.warnings:
        print(warning, file=sys.stderr)


@app.command()
def run(
    workflow_file: Annotated[
        Path, typer.Argument(metavar="WORKFLOW", help="The workflow YAML file.")
    ],
    input_: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", metavar="NAME=VALUE", help="An input as NAME=VALUE (repeatable)."
        ),
    ] = None,
    inputs_file: Annotated[
        Path | None, typer.Option("--inputs", metavar="FILE", help="A JSON or YAML file of inputs.")
    ] = None,
    simulate: SimulateOpt = False,
    sim_latency: SimLatencyOpt = None,
    sim_faults: SimFaultsOpt = None,
    sim_script: SimScriptOpt = None,
    sim_seed: SimSeedOpt = 0,
    sim_rate_limits: SimRateLimitsOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_cost_usd: MaxCostOpt = None,
    max_tokens: MaxTokensOpt = None,
    output: OutputOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a workflow. The run id is printed first, the outputs last.

    Uses the real API with ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL if set), or the built-in
    simulator with --simulate. Every call, token and output is recorded in the state store;
    an interrupted run continues with `orchestrate resume RUN`.
    """
    from orchestrator.ids import new_id
    from orchestrator.store import Store
    from orchestrator.workflow import load_workflow

    settings = _settings(config, db)
    opts = _Options(
        _sim_config(simulate, sim_latency, sim_faults, sim_script, sim_seed, sim_rate_limits),
        concurrency,
        max_cost_usd,
        max_tokens,
        output,
        json_,
        quiet,
    )
    workflow = load_workflow(workflow_file, settings=settings)
    _print_warnings(workflow)
    inputs = workflow.coerce_inputs(_parse_inputs(input_ or [], inputs_file))
    _require_api_key(opts)
    store = Store.open(settings.engine.db)
    run_id = new_id()
    workspace = _workspace(settings, workflow, run_id)
    _start(settings, workflow, inputs, run_id, workspace, opts, None, store)


@app.command()
def resume(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="A run id, a unique prefix, or 'last'.")
    ],
    use_current: Annotated[
        bool,
        typer.Option(
            "--use-current", help="Run the workflow file as it is now, even if it changed."
        ),
    ] = False,
    simulate: SimulateOpt = False,
    sim_latency: SimLatencyOpt = None,
    sim_faults: SimFaultsOpt = None,
    sim_script: SimScriptOpt = None,
    sim_seed: SimSeedOpt = 0,
    sim_rate_limits: SimRateLimitsOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_cost_usd: MaxCostOpt = None,
    max_tokens: MaxTokensOpt = None,
    output: OutputOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Continue a cancelled, failed, interrupted or over-budget run.

    Every task that succeeded keeps its output and is not called again; the rest run, and the
    history is appended to the same run. The workflow is the snapshot stored with the run; if the
    file on disk changed since, resume refuses unless --use-current.
    """
    from orchestrator.engine import PriorTask, ResumeState
    from orchestrator.errors import UsageError
    from orchestrator.store import Store
    from orchestrator.workflow import load_workflow

    settings = _settings(config, db)
    opts = _Options(
        _sim_config(simulate, sim_latency, sim_faults, sim_script, sim_seed, sim_rate_limits),
        concurrency,
        max_cost_usd,
        max_tokens,
        output,
        json_,
        quiet,
    )
    store = Store.open(settings.engine.db)
    run_id = store.resolve_run(run_ref)
    record = store.get_run(run_id)
    assert record is not None
    status = store.run_status(record, settings.engine.stale_after)
    if status == "succeeded":
        print(f"run {run_id} already succeeded: nothing to resume", file=sys.stderr)
        raise typer.Exit(0)
    if status == "running" and _alive(record.pid):
        raise UsageError(
            f"run {run_id} is still running (process {record.pid}, heartbeat fresh); "
            f"cancel it first with `orchestrate runs cancel {run_id[:10]}`"
        )
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
    _print_warnings(workflow)
    _require_api_key(opts)
    prior = {
        key: PriorTask(output=task.output, cost_usd=task.cost_usd)
        for key, task in store.succeeded_tasks(run_id).items()
    }
    batches: dict[str, list[str]] = {}
    for event in store.events(run_id, type="batch_submitted"):
        batches.setdefault(event.payload["step_id"], []).append(event.payload["batch_id"])
    state = ResumeState(
        batches=batches,
        tasks=prior,
        state=store.state_items(run_id),
        spent_usd=record.cost_usd or 0.0,
        spent_tokens=(
            record.input_tokens
            + record.output_tokens
            + record.cache_creation_tokens
            + record.cache_read_tokens
        ),
    )
    workspace = _private_dir(Path(record.workspace))
    _start(settings, workflow, dict(record.inputs or {}), run_id, workspace, opts, state, store)
