"""The typer application and the error boundary: every `OrchestrateError` becomes a message on
stderr and its exit code; a traceback is shown only with `--debug`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="orchestrate",
    help="Run declarative multi-agent Claude workflows, and inspect their history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
runs_app = typer.Typer(help="Inspect and manage the history of runs.", no_args_is_help=True)
agents_app = typer.Typer(help="Agent definitions (agents/*.md).", no_args_is_help=True)
config_app = typer.Typer(
    help="Settings: packaged defaults, orchestrate.yaml, environment.", no_args_is_help=True
)
sim_app = typer.Typer(help="The built-in Messages API simulator.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(agents_app, name="agents")
app.add_typer(config_app, name="config")
app.add_typer(sim_app, name="sim")

_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def debug_enabled() -> bool:
    return _state["debug"]


def main() -> None:
    from orchestrator.errors import OrchestrateError

    try:
        app(standalone_mode=False)
    except OrchestrateError as exc:
        if debug_enabled():
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
