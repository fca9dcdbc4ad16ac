"""The typer application and the error boundary: every `OrchestrateError` becomes a message on
stderr and its exit code (DESIGN.md); a traceback is shown only with `--debug`. The boundary
lives in the click group, so `typer.testing.CliRunner` sees exactly what a user sees."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        from orchestrator.errors import EXIT_CANCELLED, OrchestrateError, SpecError

        try:
            return super().invoke(ctx)
        except OrchestrateError as exc:
            if _state["debug"]:
                raise
            text = str(exc) if isinstance(exc, SpecError) else f"error: {exc}"
            typer.echo(text, err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("cancelled", err=True)
            raise typer.Exit(EXIT_CANCELLED) from None


app = typer.Typer(
    name="orchestrate",
    cls=_Group,
    help=(
        "Run declarative multi-agent Claude workflows, and inspect their history.\n\n"
        "Exit codes: 0 succeeded, 1 run failed, 2 bad input (workflow, inputs, flags), "
        "3 budget exceeded, 4 waiting for a person (answer, then resume), 130 cancelled."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
runs_app = typer.Typer(help="Inspect and manage the history of runs.", no_args_is_help=True)
agents_app = typer.Typer(help="Agent definitions (agents/*.md).", no_args_is_help=True)
config_app = typer.Typer(
    help="Settings: packaged defaults < orchestrate.yaml < ORCHESTRATE_* < flags.",
    no_args_is_help=True,
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
    sys.exit(app())
