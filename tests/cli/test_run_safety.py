"""What `run` and `resume` guarantee when processes die or race (issue 14): a run killed at its
first model call is in the store and resumable; two resumes of one run never both run; `-o`
files are private and written even when there is nothing left to resume; a workflow of `run:`
steps needs no API key. Children are real `orchestrate` processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.sim import SimConfig, SimServer
from orchestrator.store import Store
from tests._support.children import clean_environ
from tests._support.wait import wait_for

ORCHESTRATE = Path(sys.executable).parent / "orchestrate"
TIMEOUT_S = 300  # a bound against a hang, never a speed target: loaded hosts are slow


def env(**extra: str) -> dict[str, str]:
    return clean_environ(**{"ORCHESTRATE_ENGINE__HEARTBEAT": "200ms", **extra})


def orchestrate(
    cwd: Path, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ORCHESTRATE), *args],
        cwd=cwd,
        env=environ or env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def runs(cwd: Path) -> list[dict[str, object]]:
    done = orchestrate(cwd, "runs", "list", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_run_killed_at_its_first_model_call_is_recorded_and_resumable(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: first\nsteps:\n  - {id: a, prompt: hello}\n  - {id: b, prompt: again}\n"
    )
    # The simulator holds every request: the child is killed while its first call is in flight.
    with SimServer(SimConfig(latency_s=600.0, jitter=0.0)) as sim:
        child = subprocess.Popen(
            [str(ORCHESTRATE), "run", "wf.yaml", "-q"],
            cwd=tmp_path,
            env=env(ANTHROPIC_BASE_URL=sim.base_url, ANTHROPIC_API_KEY="sk-test-loopback"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: sim.log.max_in_flight > 0 or child.poll() is not None, "a call")
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=TIMEOUT_S)
        finally:
            child.kill()
            if child.stderr:
                child.stderr.close()
    (run,) = runs(tmp_path)  # the whole run is there, not lost with the process
    assert run["workflow"] == "first" and run["status"] in ("running", "interrupted")
    done = orchestrate(tmp_path, "resume", str(run["id"]), "--simulate", "-q")
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in runs(tmp_path)] == ["succeeded"]


def test_two_resumes_of_one_run_the_second_is_refused_at_once(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    (tmp_path / "wf.yaml").write_text(
        # the test's folder is the workspace, so the sandboxed commands see the gate file
        "version: 1\nname: held\nworkspace: .\nsteps:\n"
        "  - {id: flaky, run: 'test -f tried || (touch tried; exit 1)'}\n"
        # the first resume waits here until the test lets it go
        f"  - {{id: hold, needs: [flaky], run: 'while [ ! -f {gate} ]; do sleep 0.05; done'}}\n"
        f"  - {{id: after, needs: [hold], run: 'echo done >> {tmp_path}/count'}}\n"
    )
    assert orchestrate(tmp_path, "run", "wf.yaml", "-q").returncode == 1
    first = subprocess.Popen(
        [str(ORCHESTRATE), "resume", "last", "-q"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                any(r["status"] == "running" for r in runs(tmp_path)) or first.poll() is not None
            ),
            "the first resume to claim the run",
        )
        second = orchestrate(tmp_path, "resume", "last", "-q")
        assert second.returncode == 2, second.stderr
        assert "still running" in second.stderr or "taken over" in second.stderr
        assert "Traceback" not in second.stderr
        gate.touch()
        assert first.wait(timeout=TIMEOUT_S) == 0
    finally:
        first.kill()
        if first.stderr:
            first.stderr.close()
    assert (tmp_path / "count").read_text() == "done\n"  # what was left ran once


def _claim(db: str, run_id: str, barrier_dir: str, n: int) -> bool:
    """In a child process: wait until every claimant is ready, then claim."""
    ready = Path(barrier_dir) / f"ready{n}"
    ready.touch()
    while len(list(Path(barrier_dir).glob("ready*"))) < 2:
        time.sleep(0.001)
    with Store.open(db) as store:
        return store.claim_run(run_id, pid=os.getpid()).ok


def test_a_claim_is_atomic_across_processes(tmp_path: Path) -> None:
    import multiprocessing

    from orchestrator.events import RunFinished, RunStarted

    db = str(tmp_path / "state.db")
    with Store.open(db) as store:
        import anyio

        async def write() -> None:
            async with store.writer() as w:
                w.send(
                    RunStarted(
                        run_id="r1",
                        workflow_name="w",
                        workflow_path="w.yaml",
                        workflow_snapshot="version: 1",
                        workflow_hash="h",
                        inputs={},
                        workspace=str(tmp_path),
                        pid=1,
                    )
                )
                w.send(RunFinished(run_id="r1", status="failed", error="x"))

        anyio.run(write)
    ctx = multiprocessing.get_context("spawn")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with ctx.Pool(2) as pool:
        results = pool.starmap(_claim, [(db, "r1", str(barrier), 0), (db, "r1", str(barrier), 1)])
    assert sorted(results) == [False, True]  # read at the same moment, exactly one wins
    with Store.open(db, readonly=True) as store:
        run = store.get_run("r1")
        assert run is not None and run.status == "running" and run.owner is not None


def test_output_files_are_private_and_a_succeeded_resume_still_writes_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: out\nsteps:\n  - {id: a, run: 'echo hi'}\n"
        "outputs:\n  said: '{{ steps.a.output }}'\n"
    )
    first = tmp_path / "out" / "first.json"
    done = orchestrate(tmp_path, "run", "wf.yaml", "-q", "-o", str(first))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    again = tmp_path / "again.json"
    again.write_text("stale")
    again.chmod(0o644)
    done = orchestrate(tmp_path, "resume", "last", "-q", "-o", str(again))
    assert done.returncode == 0, done.stderr
    assert "already succeeded" in done.stderr
    assert json.loads(again.read_text()) == json.loads(first.read_text()) == {"said": "hi\n"}
    assert stat.S_IMODE(again.stat().st_mode) == 0o600


@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_workflow_of_run_steps_needs_no_api_key(tmp_path: Path, command: str) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: shell\nsteps:\n"
        "  - {id: a, run: 'test -f tried || (touch tried; exit 1)'}\n"
        "  - {id: b, loop: {max_iterations: 2, steps: [{id: c, run: 'echo c'}]}}\n"
        "  - {id: f, for_each: '{{ [1, 2] }}', run: 'echo {{ item }}'}\n"
        "  - {id: m, merge: concat, from: f}\n"
    )
    done = orchestrate(tmp_path, "run", "wf.yaml", "-q")  # no key, no --simulate
    assert "ANTHROPIC_API_KEY" not in done.stderr
    assert done.returncode == 1  # step a fails its first time: a real run, not a refusal
    if command == "resume":
        done = orchestrate(tmp_path, "resume", "last", "-q")
        assert done.returncode == 0, done.stderr
        assert [r["status"] for r in runs(tmp_path)] == ["succeeded"]


def test_a_workflow_with_an_agent_step_still_asks_for_a_key(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: mixed\nsteps:\n  - {id: a, run: 'echo a'}\n"
        "  - {id: b, loop: {max_iterations: 1, steps: [{id: c, prompt: hi}]}}\n"
    )
    done = orchestrate(tmp_path, "run", "wf.yaml", "-q")
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr and "--simulate" in done.stderr
    assert not (tmp_path / ".orchestrate" / "state.db").exists()
