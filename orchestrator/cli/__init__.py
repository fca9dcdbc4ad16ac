"""The `orchestrate` command. It only assembles: real store, client and simulator are built here
and passed into the engine. Heavy modules (the SDK, the engine, the store) are imported inside the
commands that need them, so `orchestrate --help` and the read commands start fast."""

from orchestrator.cli.app import app, main

# Each module adds its commands to `app`; none imports the SDK, the engine or the store at import.
from orchestrator.cli import commands_run, commands_runs, commands_sim, commands_spec  # noqa: E402,F401,I001

__all__ = ["app", "main"]
