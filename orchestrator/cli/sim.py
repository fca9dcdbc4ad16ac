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
    seed: int = 0,
    latency: str | None = None,
    faults: str | None = None,
    script: Path | None = None,
    list_len: int = 5,
    tool_calls: bool = True,
    rate_limits: str | None = None,
) -> SimConfig:
    """A `SimConfig` from flag values; a bad value is a `UsageError` naming the flag."""
    from orchestrator.errors import UsageError
    from orchestrator.sim import SimConfig, load_rules

    try:
        latency_s = SimConfig.parse_latency(latency) if latency else 0.0
    except ValueError as exc:
        raise UsageError(f"--sim-latency: {exc}") from None
    try:
        fault_map = SimConfig.parse_faults(faults) if faults else {}
    except ValueError as exc:
        raise UsageError(f"--sim-faults: {exc}") from None
    try:
        rules = load_rules(script) if script else []
    except ValueError as exc:
        raise UsageError(f"--sim-script: {exc}") from None
    extra: dict[str, Any] = {}
    if rate_limits is not None:
        extra["rate_limits"] = _parse_rate_limits(rate_limits)
    try:
        return SimConfig(
            seed=seed,
            latency_s=latency_s,
            faults=fault_map,
            rules=rules,
            list_len=list_len,
            tool_calls=tool_calls,
            **extra,
        )
    except ValueError as exc:
        raise UsageError(f"simulator: {exc}") from None


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
        int, typer.Option("--seed", "--sim-seed", help="Seed: same seed, same replies.")
    ] = 0,
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
        int, typer.Option("--list-len", help="Length of generated JSON arrays.")
    ] = 5,
    no_tool_calls: Annotated[
        bool, typer.Option("--no-tool-calls", help="Answer at once instead of calling tools.")
    ] = False,
    sim_rate_limits: RateLimitsOpt = None,
) -> None:
    """Serve the Messages API simulator until Ctrl-C."""
    from orchestrator.errors import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port: {port} is not a port number (0-65535)")
    if list_len < 0:
        raise UsageError("--list-len: must be 0 or more")
    config = build_config(
        seed=seed,
        latency=sim_latency,
        faults=sim_faults,
        script=sim_script,
        list_len=list_len,
        tool_calls=not no_tool_calls,
        rate_limits=sim_rate_limits,
    )
    from orchestrator.sim import SimServer

    # Bind first, so a busy port is a clear usage error and port 0 prints the real port.
    try:
        server = SimServer(config, host=host, port=port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.start()  # before printing: whoever reads the URL may connect at once
    typer.echo(f"Messages API simulator on {server.base_url} (seed {seed})")
    typer.echo(f"  export ANTHROPIC_BASE_URL={server.base_url}")
    typer.echo("  export ANTHROPIC_API_KEY=sk-sim   # any non-empty key works")
    typer.echo("Ctrl-C to stop.")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
