"""`orchestrate sim serve`: the Messages API simulator in the foreground, for other programs.

The simulator (and uvicorn) is imported inside the command, so other commands never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli.app import sim_app

if TYPE_CHECKING:
    from orchestrator.sim import SimConfig


def build_config(
    *,
    seed: int | None = None,
    latency: str | None = None,
    faults: str | None = None,
    script: Path | None = None,
    list_len: int | None = None,
    tool_calls: bool | None = None,
    rate_limits: str | None = None,
    models: list[str] | None = None,
    config_file: Path | None = None,
) -> SimConfig:
    """A `SimConfig` from flag values over a `--sim-config` file; None means "not given".
    A bad value is a `UsageError` naming the flag (or the file)."""
    from orchestrator.errors import UsageError
    from orchestrator.sim import SimConfig, load_config_file, load_rules

    base: dict[str, Any] = {}
    if config_file is not None:
        try:
            base = load_config_file(config_file)
        except ValueError as exc:
            raise UsageError(f"--sim-config: {exc}") from None
    try:
        if latency:
            base["latency_s"] = SimConfig.parse_latency(latency)
    except ValueError as exc:
        raise UsageError(f"--sim-latency: {exc}") from None
    try:
        if faults:
            base["faults"] = SimConfig.parse_faults(faults)
    except ValueError as exc:
        raise UsageError(f"--sim-faults: {exc}") from None
    try:
        if script:
            base["rules"] = load_rules(script)
    except ValueError as exc:
        raise UsageError(f"--sim-script: {exc}") from None
    if rate_limits is not None:
        base["rate_limits"] = _parse_rate_limits(rate_limits)
    if models:
        base["models"] = [*base.get("models", []), *models]
    given = {"seed": seed, "list_len": list_len, "tool_calls": tool_calls}
    base.update({k: v for k, v in given.items() if v is not None})
    try:
        return SimConfig(**base)
    except (TypeError, ValueError) as exc:
        where = f"--sim-config: {config_file}" if config_file is not None else "simulator"
        raise UsageError(f"{where}: {exc}") from None


def _parse_rate_limits(spec: str) -> dict[str, int]:
    """`off`, or `requests=4000,input_tokens=2000000,output_tokens=400000` (per minute)."""
    from orchestrator.errors import UsageError

    if spec.strip().lower() == "off":
        return {}
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise UsageError(
                f"--sim-rate-limits: {part!r}: expected NAME=N "
                "(requests, input_tokens, output_tokens per minute) or 'off'"
            )
        limits[name.strip()] = int(value)
    return limits


SimConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--sim-config",
        metavar="FILE",
        help="YAML file of simulator settings (SimConfig fields); flags override it.",
        rich_help_panel="Simulator",
    ),
]
SimModelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sim-model",
        metavar="ID",
        help="A model id the simulator serves besides configs/default.yaml's (repeatable).",
        rich_help_panel="Simulator",
    ),
]
RateLimitsOpt = Annotated[
    str | None,
    typer.Option(
        "--sim-rate-limits",
        help="Simulated limits per minute, e.g. requests=4000,input_tokens=2000000; or 'off'.",
    ),
]


@sim_app.command("serve")
def serve(
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    seed: Annotated[
        int | None, typer.Option("--seed", "--sim-seed", help="Seed: same seed, same replies.")
    ] = None,
    sim_latency: Annotated[
        str | None, typer.Option("--sim-latency", help="Latency per request, e.g. 200ms, 1s.")
    ] = None,
    sim_faults: Annotated[
        str | None,
        typer.Option(
            "--sim-faults",
            help="Fault probabilities, e.g. 429=0.05,529=0.02,500=0.01,disconnect=0.01.",
        ),
    ] = None,
    sim_script: Annotated[
        Path | None, typer.Option("--sim-script", help="YAML rules file scripting exact replies.")
    ] = None,
    list_len: Annotated[
        int | None, typer.Option("--list-len", help="Length of generated JSON arrays (5).")
    ] = None,
    no_tool_calls: Annotated[
        bool,
        typer.Option("--no-tool-calls", help="Call tools only when tool_choice forces it."),
    ] = False,
    sim_rate_limits: RateLimitsOpt = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "--sim-model", metavar="ID", help="Serve this model id too (repeatable)."
        ),
    ] = None,
    sim_config: Annotated[
        Path | None,
        typer.Option("--sim-config", metavar="FILE", help="YAML file of simulator settings."),
    ] = None,
) -> None:
    """Serve the Messages API simulator until Ctrl-C."""
    from orchestrator.errors import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port: {port} is not a port number (0-65535)")
    if list_len is not None and list_len < 0:
        raise UsageError("--list-len: must be 0 or more")
    config = build_config(
        seed=seed,
        latency=sim_latency,
        faults=sim_faults,
        script=sim_script,
        list_len=list_len,
        tool_calls=False if no_tool_calls else None,
        rate_limits=sim_rate_limits,
        models=model,
        config_file=sim_config,
    )
    from orchestrator.sim import SimServer

    # Bind first, so a busy port is a clear usage error and port 0 prints the real port.
    try:
        server = SimServer(config, host=host, port=port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.start()  # before printing: whoever reads the URL may connect at once
    typer.echo(f"Messages API simulator on {server.base_url} (seed {config.seed})")
    typer.echo(f"  export ANTHROPIC_BASE_URL={server.base_url}")
    typer.echo("  export ANTHROPIC_API_KEY=sk-sim   # any non-empty key works")
    typer.echo("Ctrl-C to stop.")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
