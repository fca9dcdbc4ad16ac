"""Fixtures: a database path, a store holding three synthetic runs, a CLI runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app

from .synthetic import RUN_A, RUN_B, RUN_C, fill, full_run, live_run

Invoke = Callable[..., Result]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no stray orchestrate.yaml
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)
    return str(tmp_path / "state.db")


@pytest.fixture
def filled(db: str) -> str:
    """Three runs: A (old, failed), B (succeeded), C (newest, running)."""
    now = time.time()
    fill(db, full_run(RUN_A, now - 3600, fail=True))
    fill(db, full_run(RUN_B, now - 1800, fail=False, workflow="digest"))
    fill(db, live_run(RUN_C, now))
    return db


def exit_code(result: Result) -> int:
    """The exit code a user would see. While the error boundary in cli/app.py raises click's own
    `Exit` (typer 0.29 vendors click, so typer does not catch it) CliRunner reports 1 with the
    `Exit` as the exception; read the code from it. The subprocess tests check the real thing."""
    code = getattr(result.exception, "exit_code", None)
    return code if isinstance(code, int) else result.exit_code


@pytest.fixture
def invoke() -> Invoke:
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "200"})

    return run
