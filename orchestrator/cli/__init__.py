"""The `orchestrate` command. It only assembles: real store, client and simulator are built here
and passed into the engine. Heavy modules (the SDK, the engine, the store) are imported inside the
commands that need them, so `orchestrate --help` and the read commands start fast."""

# Each module adds its commands to `app`; none imports the SDK, the engine or the store at import.
import orchestrator.cli.estimate  # noqa: F401  # `orchestrate estimate`
from orchestrator.cli import answer, history, run, serve, sim, state, web, workflow  # noqa: F401
from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
