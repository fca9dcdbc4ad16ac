"""`orchestrate run` and `orchestrate resume`: parse the flags, hand the run to the assembly
(`orchestrator/assembly.py`, shared with the Python API), show its progress, and map its outcome
to an exit code.

The options both commands take are declared once, as the fields of `RunFlags`; `@run_flags`
gives a command those fields as its options and passes them in as one `flags` argument. The
engine, the SDK and the store are imported inside the commands, so `orchestrate --help` stays
fast.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from orchestrator.cli._options import InputOpt, InputsFileOpt, WorkflowArg
from orchestrator.cli.app import app
from orchestrator.cli.sim import SimConfigOpt, SimModelOpt
from orchestrator.errors import UsageError
from orchestrator.paths import write_private

if TYPE_CHECKING:
    from orchestrator.assembly import RunPlan
    from orchestrator.config import Settings
    from orchestrator.engine import RunOutcome
    from orchestrator.sim import SimConfig
    from orchestrator.store import Store
    from orchestrator.workflow import Workflow

_SIM = "Simulator"
_LIMITS = "Limits"
_OUT = "Output"


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
ExecutorOpt = Annotated[
    str | None,
    typer.Option("--executor", metavar="local|ray", help="Where tasks run (engine.executor)."),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", metavar="HOST:PORT", help="With --executor ray: the cluster."),
]
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
        help="Write the outputs as JSON here (a private file, 0600).",
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
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="When a question waits for a person, keep running until it is answered (from "
        "`orchestrate answer`, the web view...) instead of ending the run `waiting` (exit 4).",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the outputs.", rich_help_panel=_OUT)
]


@dataclass
class RunFlags:
    """The options of `run` and `resume`, declared once (a new one is one field here)."""

    simulate: SimulateOpt = False
    sim_latency: SimLatencyOpt = None
    sim_faults: SimFaultsOpt = None
    sim_script: SimScriptOpt = None
    sim_seed: SimSeedOpt = 0
    sim_rate_limits: SimRateLimitsOpt = None
    sim_config_file: SimConfigOpt = None
    sim_model: SimModelOpt = None
    db: DbOpt = None
    config: ConfigOpt = None
    concurrency: ConcurrencyOpt = None
    max_cost_usd: MaxCostOpt = None
    max_tokens: MaxTokensOpt = None
    output: OutputOpt = None
    json_: JsonOpt = False
    quiet: QuietOpt = False
    wait: WaitOpt = False
    executor: ExecutorOpt = None
    ray_address: RayAddressOpt = None

    def settings(self) -> Settings:
        from orchestrator.config import load_settings

        given = {"db": self.db, "executor": self.executor, "ray_address": self.ray_address}
        engine = {name: value for name, value in given.items() if value}
        overrides: dict[str, Any] = {"engine": engine} if engine else {}
        return load_settings(self.config, overrides=overrides)

    def sim_config(self) -> SimConfig | None:
        """The simulator's settings, checked before anything starts (bad flags are exit 2)."""
        given = [
            flag
            for flag, value in (
                ("--sim-latency", self.sim_latency),
                ("--sim-faults", self.sim_faults),
                ("--sim-script", self.sim_script),
                ("--sim-rate-limits", self.sim_rate_limits),
                ("--sim-config", self.sim_config_file),
                ("--sim-model", self.sim_model or None),
            )
            if value is not None
        ]
        if not self.simulate:
            if given:
                raise UsageError(f"{given[0]} only applies with --simulate")
            return None
        from orchestrator.cli.sim import build_config

        return build_config(
            seed=self.sim_seed or None,  # the default 0 must not override a --sim-config seed
            latency=self.sim_latency,
            faults=self.sim_faults,
            script=self.sim_script,
            rate_limits=self.sim_rate_limits,
            config_file=self.sim_config_file,
            models=self.sim_model,
        )


def run_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command(..., flags: RunFlags)` the fields of `RunFlags` as its own options (typer
    reads the signature), and call it with them gathered into one `RunFlags`."""
    names = [f.name for f in dataclasses.fields(RunFlags)]
    hints = get_type_hints(RunFlags, include_extras=True)
    own = get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)
    params = [
        p.replace(annotation=own[p.name])
        for p in signature.parameters.values()
        if p.name != "flags"
    ]
    shared = [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name]
        )
        for f in dataclasses.fields(RunFlags)
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = RunFlags(**{name: kwargs.pop(name) for name in names})
        command(**kwargs, flags=flags)

    wrapper.__signature__ = signature.replace(parameters=[*params, *shared])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*params, *shared]}
    del wrapper.__wrapped__  # typer must see the new signature, not the function's own
    return wrapper


# --- showing a run -----------------------------------------------------------------------------


def _console_sinks(
    flags: RunFlags, workflow: Workflow
) -> tuple[list[Callable[[Any], None]], list[Callable[[], None]]]:
    """(sinks, closers) for the terminal: JSON lines, the live display, or plain lines."""
    from orchestrator import ui

    if flags.json_:
        return [ui.JsonEventsSink(sys.stdout)], []
    if flags.quiet:
        return [], []
    if sys.stderr.isatty():
        from rich.console import Console

        display = ui.ProgressDisplay(
            Console(stderr=True), workflow_name=workflow.name, steps=_planned(workflow.steps)
        )
        display.start()
        return [display], [display.stop]
    return [ui.PlainProgress(sys.stderr)], []


def _planned(steps: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """(id, kind) of every step, loop and group bodies included (`loop.child`), in order: the
    live display lists them as pending before they start."""
    out: list[tuple[str, str]] = []
    for step in steps:
        path = prefix + step.id
        out.append((path, str(step.kind)))
        out.extend(_planned(step.body, path + "."))
    return out


def _print_warnings(workflow: Workflow) -> None:
    """What `validate` would warn about, on stderr before the run starts (even with -q or
    --json: stdout stays the outputs or the event lines)."""
    for warning in workflow.warnings:
        print(warning, file=sys.stderr)


def _write_outputs(flags: RunFlags, outputs: dict[str, Any] | None) -> None:
    if flags.output is not None:
        write_private(flags.output, json.dumps(outputs, indent=2, ensure_ascii=False) + "\n")


def _report(outcome: RunOutcome, flags: RunFlags) -> None:
    _write_outputs(flags, outcome.outputs)
    if flags.json_:
        final = {
            "type": "result",
            "run_id": outcome.run_id,
            "status": outcome.status,
            "outputs": outcome.outputs,
            "error": outcome.error,
        }
        print(json.dumps(final, ensure_ascii=False, default=str))
    else:
        if outcome.error and flags.quiet:
            print(f"{outcome.status}: {outcome.error}", file=sys.stderr)
        elif not flags.quiet:  # the progress above already showed the error, once
            print(f"{outcome.status}: run {outcome.run_id}", file=sys.stderr)
        if outcome.outputs is not None:
            for name, value in outcome.outputs.items():
                text = value if isinstance(value, str) else json.dumps(value, indent=2)
                if len(outcome.outputs) > 1 or not flags.quiet:
                    print(f"== {name} ==")
                print(text)
    raise typer.Exit(outcome.exit_code)


def _terminal_prompt(sinks: list[Callable[[Any], None]]) -> Any:
    """On a terminal, questions are asked inline (the live display pauses meanwhile); off one,
    None: a question ends the run `waiting` unless --wait."""
    if not sys.stdin.isatty():
        return None
    from contextlib import contextmanager

    from orchestrator import ui
    from orchestrator.people.terminal import TerminalPrompt

    display = next((s for s in sinks if isinstance(s, ui.ProgressDisplay)), None)

    @contextmanager
    def pause() -> Any:
        if display is None:
            yield
            return
        display.stop()
        try:
            yield
        finally:
            display.start()

    return TerminalPrompt(pause=pause)


def _start(
    flags: RunFlags, settings: Settings, plan: RunPlan, store: Store, sim: SimConfig | None
) -> None:
    """Run `plan` to its end in this process (it is the whole process: signals cancel it)."""
    import anyio

    from orchestrator import assembly

    if flags.json_:
        print(json.dumps({"type": "run", "run_id": plan.run_id}), flush=True)
    else:
        print(f"run {plan.run_id}", file=sys.stderr, flush=True)
    sinks, closers = _console_sinks(flags, plan.workflow)
    limits = assembly.Limits(
        concurrency=flags.concurrency,
        max_cost_usd=flags.max_cost_usd,
        max_tokens=flags.max_tokens,
    )
    prompt = _terminal_prompt(sinks)
    try:
        outcome = anyio.run(
            functools.partial(
                assembly.execute,
                settings,
                plan,
                store,
                sim=sim,
                limits=limits,
                sinks=sinks,
                handle_signals=True,
                freeze_heap=True,
                prompt=prompt,
                keep_waiting=flags.wait,
            )
        )
    finally:
        for close in closers:
            close()
        store.close()
    _report(outcome, flags)


# --- the commands ------------------------------------------------------------------------------


@app.command()
@run_flags
def run(
    workflow_file: WorkflowArg,
    input_: InputOpt = None,
    inputs_file: InputsFileOpt = None,
    *,
    flags: RunFlags,
) -> None:
    """Run a workflow. The run id is printed first, the outputs last.

    Uses the real API with ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL if set), or the built-in
    simulator with --simulate; a workflow of `run:` and `merge` steps only needs neither. Every
    call, token and output is recorded in the state store; an interrupted run continues with
    `orchestrate resume RUN`.
    """
    from orchestrator import assembly
    from orchestrator.store import Store
    from orchestrator.workflow import load_workflow

    settings = flags.settings()
    sim = flags.sim_config()
    workflow = load_workflow(workflow_file, settings=settings)
    _print_warnings(workflow)
    inputs = workflow.coerce_inputs(_parse_inputs(input_ or [], inputs_file))
    assembly.check_api_key(workflow, sim)
    store = Store.open(settings.engine.db)
    plan = assembly.new_run(settings, workflow, inputs)
    _start(flags, settings, plan, store, sim)


@app.command()
@run_flags
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
    *,
    flags: RunFlags,
) -> None:
    """Continue a cancelled, failed, interrupted, over-budget or waiting run.

    Every task that succeeded keeps its output and is not called again; the rest run, and the
    history is appended to the same run. The workflow is the snapshot stored with the run; if the
    file on disk changed since, resume refuses unless --use-current. A run that another process
    runs or resumes is refused (exit 2). Resuming a run that succeeded runs nothing, but still
    writes its outputs to --output.
    """
    from orchestrator import assembly
    from orchestrator.store import Store

    settings = flags.settings()
    sim = flags.sim_config()
    store = Store.open(settings.engine.db)
    if sim is None:  # a simulated run is resumed on the simulator, as it ran
        sim = assembly.recorded_simulator(store, run_ref)
        if sim is not None:
            print(f"run {run_ref} was simulated: resuming on the simulator", file=sys.stderr)
    try:
        plan = assembly.resume_run(store, settings, run_ref, sim=sim, use_current=use_current)
    except BaseException:
        store.close()
        raise
    if isinstance(plan, assembly.AlreadySucceeded):
        store.close()
        _write_outputs(flags, plan.outputs)
        print(f"run {plan.run_id} already succeeded: nothing to resume", file=sys.stderr)
        raise typer.Exit(0)
    _print_warnings(plan.workflow)
    _start(flags, settings, plan, store, sim)


def _parse_inputs(pairs: list[str], inputs_file: Path | None) -> dict[str, Any]:
    import yaml

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
