"""`orchestrate sim serve`: flags, errors, and a real server in a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app

CLI = [sys.executable, "-u", "-c", "from orchestrator.cli import main; main()"]


def exit_code(result: Result) -> int:
    """CliRunner reports 1 when the CLI's error boundary raises click's `Exit`; read its code."""
    code = getattr(result.exception, "exit_code", None)
    return code if isinstance(code, int) else result.exit_code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sim-faults", "429=2"], "--sim-faults: fault 429: probability 2.0 must be between 0"),
        (["--sim-latency", "soon"], "--sim-latency: bad latency 'soon'"),
        (["--sim-script", "missing.yaml"], "--sim-script: missing.yaml: cannot read rules file"),
        (["--port", "70000"], "--port: 70000 is not a port number"),
        (["--list-len", "-1"], "--list-len: must be 0 or more"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args, message):
    result = CliRunner().invoke(app, ["sim", "serve", *args])
    assert exit_code(result) == 2, result.output
    assert message in result.output


def test_bad_rules_file_is_reported(tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {stepp: a, text: b}\n")
    result = CliRunner().invoke(app, ["sim", "serve", "--sim-script", str(rules)])
    assert exit_code(result) == 2
    assert "rules.yaml rule 1: unknown keys ['stepp']" in result.output


def test_bad_flag_in_a_real_process_exits_2():
    proc = subprocess.run(
        [*CLI, "sim", "serve", "--sim-latency", "x"], capture_output=True, text=True
    )
    assert "--sim-latency: bad latency 'x'" in proc.stderr
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_serve_prints_the_url_and_answers(tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {prompt: ping, text: pong}\n")
    args = [
        "sim",
        "serve",
        "--port",
        "0",
        "--seed",
        "3",
        "--sim-script",
        str(rules),
        "--model",
        "m",
    ]
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        export = proc.stdout.readline()
        base_url = first.split(" on ")[1].split()[0]
        assert export.strip() == f"export ANTHROPIC_BASE_URL={base_url}"
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "ping"}]}
        reply = httpx.post(f"{base_url}/v1/messages", json=body, headers={"x-api-key": "k"})
        assert reply.json()["content"] == [{"type": "text", "text": "pong"}]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode in (0, 130)
