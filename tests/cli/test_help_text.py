"""Issue 14 item 19: `--help` reads like any command's help, and JSON costs carry no float noise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.cli._json import clean_costs

COMMANDS = [
    ["run"],
    ["resume"],
    ["validate"],
    ["graph"],
    ["runs", "list"],
    ["runs", "show"],
    ["runs", "logs"],
    ["runs", "transcript"],
    ["sim", "serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_names_not_python_types(command: list[str]) -> None:
    done = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert not re.search(r"\{[A-Z]", done.output), done.output  # `{WORKFLOW}`
    assert not re.search(r"<(str|int|list\[[A-Za-z]+\]|Path|float|int range)>", done.output)


def test_usage_lines_name_their_arguments_plainly() -> None:
    run = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "Usage: orchestrate run [OPTIONS] WORKFLOW" in run
    validate = CliRunner().invoke(app, ["validate", "--help"], env={"COLUMNS": "200"}).output
    assert "Usage: orchestrate validate [OPTIONS] FILE..." in validate
    assert re.search(r"^\s+FILE\.\.\.\s+Workflow files to check", validate, re.M)


def test_json_costs_are_rounded_to_eight_decimals() -> None:
    noisy = {"cost_usd": sum([0.04602] * 3), "steps": [{"cost_usd": 0.1 + 0.2, "calls": 3}]}
    assert json.dumps(clean_costs(noisy)) == (
        '{"cost_usd": 0.13806, "steps": [{"cost_usd": 0.3, "calls": 3}]}'
    )


def _failing_run(tmp_path: Path, *flags: str) -> list[str]:
    (tmp_path / "wf.yaml").write_text(
        'version: 1\nname: f\nsteps:\n  - id: a\n    run: "echo disk is full >&2; exit 3"\n'
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "orchestrate"),
            "run",
            "wf.yaml",
            "--db",
            "s.db",
            *flags,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,  # a bound against a hang only
    )
    assert done.returncode == 1, done.stderr
    return done.stderr.splitlines()


def test_a_failed_run_step_shows_its_stderr_and_the_run_error_once(tmp_path: Path) -> None:
    lines = _failing_run(tmp_path)
    run_lines = [line for line in lines if "run failed" in line]
    assert len(run_lines) == 1 and "command exited with code 3: disk is full" in run_lines[0]
    assert re.fullmatch(r"failed: run \w+", lines[-1]), lines[-1]  # not the error a second time
    quiet = _failing_run(tmp_path, "-q")
    assert quiet[1:] == ["failed: step 'a': command exited with code 3: disk is full"]
