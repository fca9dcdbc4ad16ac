"""Issue 14 item 19: `runs logs last --follow` opened before the run starts waits for it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

CLI = str(Path(sys.executable).parent / "orchestrate")


def test_follow_started_before_any_run_waits_then_follows(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: late\nsteps:\n  - id: a\n    run: echo hi\n"
    )
    err = tmp_path / "follow.err"
    with err.open("wb") as stderr:
        follower = subprocess.Popen(
            [CLI, "runs", "logs", "last", "--follow", "--db", "s.db"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 300  # a bound against a hang, not a speed requirement
        while "waiting for a run" not in err.read_text():
            assert follower.poll() is None, err.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        done = subprocess.run(
            [CLI, "run", "wf.yaml", "--db", "s.db", "-q"], cwd=tmp_path, timeout=300
        )
        assert done.returncode == 0
        out, _ = follower.communicate(timeout=300)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err.read_text()
    assert "run_started" in out or "started" in out
    assert "succeeded" in out
