"""Issue 14 item 19: `resume` of a simulated run needs no `--simulate` again (and no API key)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "orchestrate")

WORKFLOW = """\
version: 1
name: sim-resume
steps:
  - id: write
    prompt: Write one line about bees.
  - id: check
    needs: [write]
    run: test -n "$H14_OK"
"""


def _cli(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "ORCHESTRATE_"))}
    env.update(extra)
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_simulated_run_resumes_on_the_simulator_unasked(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    first = _cli(tmp_path, "run", "wf.yaml", "--simulate", "--sim-seed", "7", "--db", "s.db")
    assert first.returncode == 1, first.stderr  # `check` fails: H14_OK is not set yet
    resumed = _cli(tmp_path, "resume", "last", "--db", "s.db", "-q", H14_OK="1")
    assert resumed.returncode == 0, resumed.stderr
    assert "was simulated: resuming on the simulator" in resumed.stderr
