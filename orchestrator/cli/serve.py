"""`orchestrate serve [WORKFLOW...|DIR]` and `orchestrate serve status`.

`serve` loads every workflow named (a directory: its *.yaml and *.yml files) before anything
starts, checks each (bad files, a schedule on a workflow with required inputs, a missing API
key: exit 2), binds `--listen`, and hands them to `orchestrator.serve.Server`, which runs until
SIGTERM/SIGINT drains it. While it runs it keeps `serve.json` (next to the runs directory) up to
date; `serve status` reads it.

Exit codes: 0 stopped cleanly, 2 bad input (a workflow, a flag, an address that cannot be bound).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli.app import app
from orchestrator.cli.sim import build_config
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.workflow import Workflow

TOKEN_ENV = "ORCHESTRATE_SERVE_TOKEN"
SECRET_ENV = "ORCHESTRATE_WEBHOOK_SECRET"


def status_file(settings: Settings) -> Path:
    """Where a server (for this directory's settings) says what it hosts."""
    return Path(settings.engine.runs_dir).resolve().parent / "serve.json"


@app.command("serve")
def serve(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(metavar="[WORKFLOW...|DIR]", help="Workflow files, or a directory of them."),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Serve the trigger endpoint here (port 0: any free). Loopback unless a host "
            f"is given; POST /runs needs the bearer token in ${TOKEN_ENV}.",
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Log one JSON object a line.")] = False,
    drain_timeout: Annotated[
        float,
        typer.Option(
            "--drain-timeout",
            metavar="SECONDS",
            min=0,
            help="On SIGTERM, how long running runs may take to finish before they are "
            "cancelled (resumable; a restart resumes them).",
        ),
    ] = 30.0,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, help="Model calls in flight across all runs."),
    ] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Use the built-in simulator for every run.")
    ] = False,
    sim_latency: Annotated[
        str | None, typer.Option("--sim-latency", metavar="DURATION", help="Simulated latency.")
    ] = None,
    sim_script: Annotated[
        Path | None, typer.Option("--sim-script", metavar="FILE", help="Simulator rules file.")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", metavar="URL", help="The store (default: engine.db).")
    ] = None,
) -> None:
    """Host the workflows until SIGTERM/SIGINT: run their `schedule:`s, start runs from the
    endpoint, resume runs a previous server left unfinished. One SIGTERM drains (no new runs;
    running ones get --drain-timeout to finish, then are cancelled, resumable); a second
    cancels them at once. `orchestrate serve status [--json]`: what a running server hosts."""
    if paths and paths[0] == Path("status") and not paths[0].exists():
        if len(paths) > 1:
            raise UsageError("orchestrate serve status takes no workflow")
        return status(json_)
    import anyio

    from orchestrator.assembly import check_api_key
    from orchestrator.config import load_settings
    from orchestrator.serve import Server, log_printer
    from orchestrator.store import Store

    if not paths:
        raise UsageError("name the workflows to host: orchestrate serve FILE.yaml... or DIR")
    overrides = {"engine": {"db": db}} if db else {}
    settings = load_settings(None, overrides=overrides)
    workflows = _load(paths, settings)
    sim = None
    if simulate or sim_latency or sim_script:
        if not simulate:
            raise UsageError("--sim-latency/--sim-script need --simulate")
        sim = build_config(latency=sim_latency, script=sim_script)
    for wf in workflows.values():
        check_api_key(wf, sim)
    sock = _bind(listen) if listen is not None else None
    say = log_printer(json_, sys.stdout if json_ else sys.stderr)
    store = Store.open(settings.engine.db)
    server = Server(
        settings=settings,
        store=store,
        workflows=workflows,
        sim=sim,
        say=say,
        drain_timeout=drain_timeout,
        concurrency=concurrency,
        status_path=status_file(settings),
        token=os.environ.get(TOKEN_ENV, "").strip() or None,
        webhook_secret=os.environ.get(SECRET_ENV, "").strip() or None,
    )
    if sock is not None:
        host, port = sock.getsockname()[:2]
        server.listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if server.token is None:
            say("warning", message=f"{TOKEN_ENV} is not set: POST /runs refuses every request")
    try:
        anyio.run(server.serve, sock)
    finally:
        if sock is not None:
            sock.close()
        store.close()


def status(json_: bool) -> None:
    """What a running `orchestrate serve` (for this directory's settings) hosts: its
    workflows, schedules and next slots, and the runs in flight. Exit 2 if none runs."""
    from orchestrator.config import load_settings
    from orchestrator.store import pid_alive

    path = status_file(load_settings())
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        raise UsageError(f"no `orchestrate serve` is running here (no {path})") from None
    if not pid_alive(int(data.get("pid") or 0)):
        raise UsageError(f"the server that wrote {path} (pid {data.get('pid')}) is gone")
    if json_:
        typer.echo(json.dumps(data, indent=2))
        return
    draining = " (draining)" if data.get("draining") else ""
    typer.echo(
        f"serve pid {data['pid']} since {data['started_at']}{draining}; "
        f"endpoint {data.get('listen') or 'off'}; store {data['db']}"
    )
    for stem, wf in data["workflows"].items():
        when = wf["schedule"] or "on trigger only"
        nxt = f", next {wf['next_slot']}" if wf.get("next_slot") else ""
        scope = f", state scope {wf['state_scope']}" if wf.get("state_scope") else ""
        typer.echo(f"  {stem}: {when}{nxt}, overlap {wf['overlap']}{scope}")
    runs = data.get("runs") or []
    typer.echo(f"{len(runs)} run(s) in flight")
    for run in runs:
        typer.echo(f"  {run['run_id']}  {run['workflow']}  {run['origin']}  {run['started_at']}")


def _load(paths: list[Path], settings: Settings) -> dict[str, Workflow]:
    from orchestrator.workflow import load_workflow

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise UsageError(f"{path}: no *.yaml workflow in this directory")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    out: dict[str, Workflow] = {}
    for file in files:
        if file.stem in out:
            raise UsageError(
                f"{file}: a hosted workflow is named by its file stem, and "
                f"{out[file.stem].path} already has {file.stem!r}; rename one"
            )
        wf = load_workflow(file, settings=settings)
        if wf.schedule is not None:
            missing = [n for n, spec in wf.inputs.items() if not spec.has_default]
            if missing:
                raise UsageError(
                    f"{file}: a scheduled run gets no inputs, but {', '.join(missing)} has no "
                    "default; give it one"
                )
        out[file.stem] = wf
    return out


def _bind(listen: str) -> socket.socket:
    host, sep, port_text = listen.rpartition(":")
    if not sep:  # a bare port: loopback
        host, port_text = "127.0.0.1", listen
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise UsageError(f"--listen {listen}: use HOST:PORT or PORT (0: any free)") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--listen {listen}: cannot listen: {exc.strerror}") from None
    return sock
