"""`orchestrate run` with Claude Code workers, killed with SIGKILL mid fan-out, then resumed.

The child runs in real mode (its own `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` at a simulator in
this process), so every request its Claude Code workers make is seen here. Item 0 finishes; item
1's worker sits in a shell command that waits for a file. The child is killed there; the resume
must not start item 0's worker again, must redo item 1 from the starting commit, and must end
with both branches merged. Neither run's Claude Code processes held the child's API key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.sim import SimConfig, SimServer, load_rules
from tests._support.wait import wait_for
from tests.reliability.conftest import API_KEY, Cli, real_env

from .conftest import EnvDumps, bash_rule, make_repo, sh

WORKFLOW = """\
version: 1
name: fix
workspace: repo
limits: {concurrency: 1}
steps:
  - id: fix
    for_each: [alpha, beta]
    as: name
    runtime: claude-code
    isolation: worktree
    model: claude-haiku-4-5
    tools: [Bash]
    prompt: "Fix item {{ name }}."
  - id: merged
    merge: branches
    from: fix
"""


def _asks(entry: Any, word: str) -> bool:
    return word in str((entry.body or {}).get("messages", ""))


def test_kill_9_then_resume_does_not_repeat_a_finished_worker(
    tmp_path: Path, wrapper: tuple[Path, EnvDumps]
) -> None:
    cli_path, dumps = wrapper
    make_repo(tmp_path / "repo")
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    gate = tmp_path / "go"
    began = tmp_path / "beta-began"
    rules = [
        bash_rule("item alpha", "echo alpha > alpha.txt"),
        bash_rule(
            "item beta",
            f"touch {began}; while [ ! -e {gate} ]; do sleep 0.05; done; echo beta > beta.txt",
        ),
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    cli = Cli(tmp_path)
    try:
        with SimServer(SimConfig(rules=load_rules(tmp_path / "rules.yaml"))) as sim:
            env = real_env(sim, ORCHESTRATE_CLAUDE=str(cli_path))
            args = ("--db", "state.db", "-q")
            child = cli.start("run", "wf.yaml", *args, env=env)
            run_id = child.run_id()
            wait_for(began.exists, timeout=120, what="item beta's worker to start its command")
            child.kill()
            first = len(sim.log.find())
            alpha_calls = sum(_asks(e, "item alpha") for e in sim.log.find())
            assert alpha_calls >= 1
            gate.touch()  # lets the killed worker's command end, if anything still runs it

            done = cli.run("resume", run_id, *args, env=env)
            assert done.code == 0, done.stderr
            later = sim.log.find()[first:]
            assert later and not any(_asks(e, "item alpha") for e in later)
            assert any(_asks(e, "item beta") for e in later)
    finally:
        cli.close()
    repo = tmp_path / "repo"
    merged = f"orchestrate/{run_id}/merged"
    assert sh(repo, "git", "show", f"{merged}:alpha.txt") == "alpha"
    assert sh(repo, "git", "show", f"{merged}:beta.txt") == "beta"
    start = sh(repo, "git", "rev-parse", "main")
    # item 1 was redone from the starting commit: one commit on its branch, not two
    assert sh(repo, "git", "rev-list", "--count", f"{start}..orchestrate/{run_id}/fix-1") == "1"
    envs = dumps.all()
    assert len(envs) == 3  # alpha, beta (killed), beta again: alpha's worker ran once
    assert all(API_KEY not in "\0".join(env.values()) for env in envs)
