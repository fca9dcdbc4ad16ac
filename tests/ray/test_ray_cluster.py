"""`orchestrate run --executor ray` as a user runs it: a driver process joining a running Ray
cluster (this module's), the store on PostgreSQL, the real client against a simulator.

- the driver killed mid-run leaves a run that `orchestrate resume --executor ray` finishes,
  keeping every task that had finished (none is asked of the model again);
- `isolation: worktree` tasks run on the nodes in worktrees on the shared filesystem: what they
  wrote comes back as commits on their branches in the run's repository;
- a Ray the driver starts itself never sees the API key in its processes' environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.sim import SimConfig, SimServer
from orchestrator.store import Store
from tests._support.gate import Gate, by_key
from tests._support.wait import wait_for

pytestmark = pytest.mark.timeout(400)

CLI = Path(sys.executable).parent / "orchestrate"
KEY = "sk-test-ray-cluster"
FAST = {
    "ORCHESTRATE_RETRY__BASE_DELAY": "10ms",
    "ORCHESTRATE_RETRY__MAX_DELAY": "200ms",
    "ORCHESTRATE_ENGINE__HEARTBEAT": "200ms",
    "ORCHESTRATE_ENGINE__STALE_AFTER": "1s",
    "PYTHONUNBUFFERED": "1",
}


def env(base_url: str, **extra: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "ORCHESTRATE_", "CLAUDE_", "RAY_ADDRESS"))
    }
    return {**clean, **FAST, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": KEY, **extra}


FAN = """\
version: 1
name: ray-resume
steps:
  - id: research
    for_each: "{{ range(4) | list }}"
    prompt: "Say one thing about {{ item }}."
    max_tokens: 64
outputs:
  results: "{{ steps.research.output }}"
"""


def test_a_killed_driver_leaves_a_run_that_resume_finishes(
    tmp_path: Path,
    pg_url: str,
    ray_address: str,
    sim_factory: Callable[..., SimServer],
    gate_factory: Callable[..., Gate],
) -> None:
    sim = sim_factory(SimConfig(seed=9))
    held = gate_factory(sim, by_key("research[3]:"))
    (tmp_path / "fan.yaml").write_text(FAN)
    ray_flags = ["--executor", "ray", "--ray-address", ray_address, "--db", pg_url]
    child = subprocess.Popen(
        [str(CLI), "run", "fan.yaml", *ray_flags, "--json"],
        cwd=tmp_path,
        env=env(held.base_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        run_id = json.loads(child.stdout.readline())["run_id"]
        store = Store.open(pg_url)
        try:
            done = lambda: len(store.list_tasks(run_id, status="succeeded")) == 3  # noqa: E731
            wait_for(done, "three tasks to finish while the fourth is held")
            held.wait_held(1)
            child.send_signal(signal.SIGKILL)
            child.wait(60)
            interrupted = lambda: store.get_run(run_id, stale_after_s=1).status == "interrupted"  # noqa: E731
            wait_for(interrupted, "the killed run to show as interrupted")
        finally:
            store.close()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(60)

    before = {key: sim.log.count(task=key) for key in held.held_keys}
    finished_keys = [e.task for e in sim.log.entries if not e.task.startswith("research[3]:")]
    held.release()
    resumed = subprocess.run(
        [str(CLI), "resume", run_id, *ray_flags, "-q", "-o", "out.json"],
        cwd=tmp_path,
        env=env(sim.base_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    outputs = json.loads((tmp_path / "out.json").read_text())
    assert len(outputs["results"]) == 4
    for key in finished_keys:  # kept from the first process, not asked again
        assert sim.log.count(task=key) == 1, key
    assert before == {key: 0 for key in held.held_keys}  # the held call never reached the model
    assert all(sim.log.count(task=key) >= 1 for key in held.held_keys)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_worktree_tasks_on_nodes_bring_their_commits_back(
    tmp_path: Path, pg_url: str, ray_address: str, sim_factory: Callable[..., SimServer]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    (tmp_path / "wt.yaml").write_text(
        f"""\
version: 1
name: ray-worktrees
workspace: {repo}
steps:
  - id: fix
    for_each: [a, b]
    isolation: worktree
    tools: [Write]
    prompt: "Use Write to leave notes on {{{{ item }}}}."
    max_tokens: 64
outputs:
  fixes: "{{{{ steps.fix.output }}}}"
"""
    )
    sim = sim_factory(SimConfig(seed=2))
    flags = ["--executor", "ray", "--ray-address", ray_address, "--db", pg_url]
    done = subprocess.run(
        [str(CLI), "run", "wt.yaml", *flags, "-q", "-o", "out.json"],
        cwd=tmp_path,
        env=env(sim.base_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    fixes = json.loads((tmp_path / "out.json").read_text())["fixes"]
    assert len(fixes) == 2
    for fix in fixes:
        assert len(fix["commits"]) == 1, fix
        assert "Notes on" in sh(repo, "git", "show", f"{fix['branch']}:notes.md")
    assert not (repo / "notes.md").exists()  # the workspace itself is untouched


def test_a_ray_started_by_the_driver_never_sees_the_api_key(tmp_path: Path) -> None:
    code = """
import os, anyio, ray
from orchestrator.executors.ray import RayExecutor

@ray.remote
def seen():
    return sorted(k for k in os.environ if k.startswith("ANTHROPIC_"))

async def main():
    async with RayExecutor().running():
        print(ray.get(seen.remote()))
        print(os.environ["ANTHROPIC_API_KEY"] == "sk-secret-test")

anyio.run(main)
"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ANTHROPIC_"))}
    short = tempfile.mkdtemp(prefix="rk-", dir="/tmp")  # Ray's socket paths must stay short
    clean.update({"ANTHROPIC_API_KEY": "sk-secret-test", "RAY_TMPDIR": short})
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=clean,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]  # not in Ray; still in the driver
