"""The `orchestrate` command. It only assembles: real store, client and simulator are built here
and passed into the engine. Heavy modules (the SDK, the engine, the store) are imported inside the
commands that need them, so `orchestrate --help` and the read commands start fast.

`orchestrate run` and `resume` defer SIGINT/SIGTERM before anything else is imported
(`orchestrator.interrupts`): a Ctrl-C while the process is still loading cancels the run as soon as
it exists, instead of being lost."""

import sys
from pathlib import Path

from orchestrator import interrupts


def _first_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv[1:] if not arg.startswith("-")), None)


if Path(sys.argv[0]).name in ("orchestrate", "__main__.py") and _first_command(sys.argv) in (
    "run",
    "resume",
):
    interrupts.defer()

# Each module adds its commands to `app`; none imports the SDK, the engine or the store at import.
import orchestrator.cli.estimate  # noqa: E402, F401  # `orchestrate estimate`
from orchestrator.cli import answer, history, run, serve, sim, state, web, workflow  # noqa: E402, F401
from orchestrator.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
