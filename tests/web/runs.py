"""Running real simulated workflows as a user does, in child processes: `orchestrate run ...
--simulate` writing a store and a run log, and `orchestrate ui` serving them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests._support.children import clean_environ

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"


def child_env(**extra: str) -> dict[str, str]:
    """This environment without keys or telemetry settings, every call streaming (so that
    text deltas reach the run log), plus `extra`."""
    return clean_environ(**{"ORCHESTRATE_ENGINE__STREAM_ABOVE_MAX_TOKENS": "0", **extra})


def orchestrate(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def run_workflow(workflow: Path, cwd: Path, *args: str, **env: str) -> str:
    """Run to the end; returns the run id (the first line on stderr is `run <id>`)."""
    done = subprocess.run(
        orchestrate("run", str(workflow), "--simulate", "--db", "state.db", "-q", *args),
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("run "), done.stderr
    return first.split()[1]


def start_workflow(workflow: Path, cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        orchestrate("run", str(workflow), "--simulate", "--db", "state.db", "-q", *args),
        cwd=cwd,
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def gate_workflow(folder: Path) -> tuple[Path, Path]:
    """A workflow that streams one reply, then waits at a `run:` step until the test creates
    the returned file, then streams a last reply: the test decides when the run moves on."""
    go = folder / "go"
    path = folder / "gate.yaml"
    path.write_text(
        f"""version: 1
name: gate
description: Stream, wait for the test, stream again.
workspace: .  # the test's folder, so the sandboxed gate command sees the file it waits for
defaults: {{model: haiku, max_tokens: 600}}
steps:
  - id: first
    prompt: "Write three sentences on backpressure."
  - id: gate
    needs: [first]
    run: "while [ ! -e '{go}' ]; do sleep 0.05; done; echo open"
  - id: last
    needs: [gate]
    prompt: "Write two closing sentences on load shedding."
""",
        encoding="utf-8",
    )
    return path, go


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
