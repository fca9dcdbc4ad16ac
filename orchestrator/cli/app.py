"""The typer application and the error boundary: every `OrchestrateError` becomes a message on
stderr and its exit code (DESIGN.md); a traceback is shown only with `--debug`. The boundary
lives in the click group, so `typer.testing.CliRunner` sees exactly what a user sees."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption


class _Argument(TyperArgument):
    """Arguments as click and man pages show them: `RUN`, `[RUN]`, `FILE...` in the usage
    line, and no Python type (`<str>`, `<list[Path]>`) after the name in the help."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"

    def _rich_display_name(self) -> str:
        return self.display_name_raw

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(TyperOption):
    """`--format FORMAT`, not `--format <str>`: a value's name, as click shows it."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        name = (self.name or "value").upper()
        return name + "..." if self.nargs != 1 else name


def _plain_arguments(command: Any) -> None:  # typer's own (vendored) click types
    for param in command.params:  # same state, only how help shows them differs
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    for sub in getattr(command, "commands", {}).values():
        _plain_arguments(sub)


class _Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_arguments(self)  # the whole tree: typer builds the subcommands first

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
