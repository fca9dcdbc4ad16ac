"""The real `orchestrate serve` in a child process: SIGTERM drains (the run it cannot wait for
is cancelled and left resumable), exit 0; a restart resumes that run, reusing what succeeded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from orchestrator.store import Store
from tests._support.wait import wait_for

from .conftest import WAIT_S, gated, write

CLI = Path(sys.executable).parent / "orchestrate"
TOKEN = "sigterm-token"


def events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def start(tmp: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "ORCHESTRATE_"))}
    env.update(
        ORCHESTRATE_SERVE_TOKEN=TOKEN,
        ORCHESTRATE_ENGINE__HEARTBEAT="200ms",
        PYTHONUNBUFFERED="1",
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(CLI),
                "serve",
                "slow.yaml",
                "--listen",
                "127.0.0.1:0",
                "--json",
                "--drain-timeout",
                "0",
            ],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_status(tmp: Path, run_id: str) -> str | None:
    db = tmp / ".orchestrate" / "state.db"
    if not db.exists():
        return None
    with Store.open(str(db), readonly=True) as store:
        record = store.get_run(run_id)
        return None if record is None else record.status


def test_sigterm_drains_and_a_restart_resumes_the_run(tmp_path: Path) -> None:
    write(tmp_path, "slow.yaml", gated("slow"))
    ws = tmp_path / "ws-slow"
    log = tmp_path / "serve.log"
    child = start(tmp_path, log)
    try:
        serving = wait_for(lambda: [e for e in events(log) if e["event"] == "serving"], "serving")
        url = f"http://{serving[0]['listen']}/runs"
        req = urllib.request.Request(
            url,
            data=json.dumps({"workflow": "slow"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            run_id = json.loads(resp.read())["run_id"]
        wait_for(lambda: (ws / "started.txt").exists(), "the run's first step")
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert run_status(tmp_path, run_id) == "cancelled"  # left resumable, not lost
    assert not (tmp_path / ".orchestrate" / "serve.json").exists()

    (ws / "release").write_text("")
    child = start(tmp_path, log)
    try:
        wait_for(lambda: run_status(tmp_path, run_id) == "succeeded", "the resumed run")
        resumed = [e for e in events(log) if e["event"] == "run_started" and e["resumed"]]
        assert [e["run_id"] for e in resumed] == [run_id]
        # the step that succeeded before the drain was reused, not run again
        assert (ws / "started.txt").read_text().count("started") == 1
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
