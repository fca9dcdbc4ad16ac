"""The CLI in-process, as a test drives it: `invoke(*args) -> (exit code, stdout, stderr)`.

Tables are rendered 200 columns wide, so a test reads them whole whatever the terminal (under
xdist the detected width can be narrow). The `project` fixture of `tests/conftest.py` gives the
directory to run in.
"""

from __future__ import annotations

from typer.testing import CliRunner

from orchestrator.cli import app


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr
