"""A fan-out of Claude Code workers on the simulator, each in its own worktree, merged.

The simulator scripts each worker's first turn to run a shell command that writes a file; two of
them write the same new file with different text, so merging their branches conflicts. Every
model call goes through the proxy to the dispatcher, so it is a `CallFinished` of its task with
tokens and cost; the API key of this process never reaches a Claude Code process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.events import (
    CallFinished,
    StepFinished,
    TaskFinished,
    TaskStarted,
    ToolCalled,
)

from .conftest import EnvDumps, bash_rule, make_repo, sh

SECRET = "sk-ant-api03-the-real-key-never-leaves-the-engine-0123456789"

FANOUT = """
version: 1
name: fix
limits: {concurrency: 3}
steps:
  - id: fix
    for_each: [alpha, beta, gamma]
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

RULES = [
    bash_rule("item alpha", "echo alpha > alpha.txt"),
    bash_rule("item beta", "echo beta > shared.txt"),
    bash_rule("item gamma", "echo gamma > shared.txt"),
]


async def test_a_fanout_of_claude_code_workers_commits_branches_and_merges_them(
    harness: Any, wrapper: tuple[Path, EnvDumps], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)  # as a real run's environment would hold it
    repo = make_repo(tmp_path / "repo")
    h = harness(RULES)
    outcome = await h.run(FANOUT, workspace=repo, run_id="RUNCC1")
    assert outcome.status == "succeeded", outcome.error

    # each branch holds its worker's commit, made from the run's starting commit
    start = sh(repo, "git", "rev-parse", "main")
    fix = [e for e in h.of(TaskFinished) if e.step_id == "fix"]
    assert len(fix) == 3 and all(e.status == "succeeded" for e in fix)
    for index in range(3):
        branch = f"orchestrate/RUNCC1/fix-{index}"
        assert sh(repo, "git", "rev-list", "--count", f"{start}..{branch}") == "1"
    assert sh(repo, "git", "show", "orchestrate/RUNCC1/fix-0:alpha.txt") == "alpha"
    assert sh(repo, "git", "show", "orchestrate/RUNCC1/fix-2:shared.txt") == "gamma"
    output = next(e.output for e in fix if e.output["branch"].endswith("fix-1"))
    assert output["diffstat"]["files"] == 1 and len(output["commits"]) == 1
    assert isinstance(output["result"], str) and output["result"]
    assert not (repo / "alpha.txt").exists()  # the workspace itself is untouched

    # merge: branches merged two and reported the scripted conflict; nothing was lost
    merged = next(e for e in h.of(StepFinished) if e.step_id == "merged")
    assert merged.status == "succeeded"
    assert merged.output["merged"] == ["orchestrate/RUNCC1/fix-0", "orchestrate/RUNCC1/fix-1"]
    assert merged.output["conflicts"] == [
        {"branch": "orchestrate/RUNCC1/fix-2", "files": ["shared.txt"]}
    ]
    into = merged.output["into"]
    assert into == "orchestrate/RUNCC1/merged"
    assert sh(repo, "git", "show", f"{into}:alpha.txt") == "alpha"
    assert sh(repo, "git", "show", f"{into}:shared.txt") == "beta"
    assert not (tmp_path / "runs" / "RUNCC1" / "worktrees").exists()  # removed at the end

    # every call went through the dispatcher: one CallFinished per request the simulator saw,
    # each under a Claude Code task, with tokens and a cost
    task_ids = {e.task_id for e in h.of(TaskStarted) if e.step_id == "fix"}
    calls = h.of(CallFinished)
    seen = h.sim.log.find(path="/v1/messages")
    assert len(calls) == len(seen) >= 3
    assert all(c.task_id in task_ids and c.status == "succeeded" for c in calls)
    assert all(sum(c.usage.values()) > 0 and (c.cost_usd or 0) > 0 for c in calls)
    for e in fix:  # a task's usage and cost are its calls' sums
        mine = [c for c in calls if c.task_id == e.task_id]
        assert e.cost_usd == pytest.approx(sum(c.cost_usd or 0 for c in mine))
        assert e.usage["output_tokens"] == sum(c.usage["output_tokens"] for c in mine)
    # the tool calls Claude Code ran are in the history too
    assert {e.input["command"] for e in h.of(ToolCalled) if e.tool == "Bash"} == {
        "echo alpha > alpha.txt",
        "echo beta > shared.txt",
        "echo gamma > shared.txt",
    }

    # the API key is in no Claude Code process's environment: each saw its own task token
    envs = wrapper[1].all()
    assert len(envs) == 3
    for env in envs:
        assert SECRET not in "\0".join(f"{k}={v}" for k, v in env.items())
        assert env["ANTHROPIC_API_KEY"].startswith("orchestrate-task-")
        assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert len({env["ANTHROPIC_API_KEY"] for env in envs}) == 3


async def test_merge_fails_on_a_conflict_only_when_asked(harness: Any, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    h = harness(RULES[1:])
    text = FANOUT.replace("[alpha, beta, gamma]", "[beta, gamma]") + "    on_conflict: fail\n"
    outcome = await h.run(text, workspace=repo, run_id="RUNCC2")
    assert outcome.status == "failed"
    assert "orchestrate/RUNCC2/fix-1" in (outcome.error or "")
    # the conflicting branch is still there, whole
    assert sh(repo, "git", "show", "orchestrate/RUNCC2/fix-1:shared.txt") == "gamma"


async def test_a_budget_stops_every_claude_code_worker(harness: Any, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    h = harness(RULES)
    # Claude Code asks for 32,000 output tokens a call, with ~15,000 tokens of input: the budget
    # holds one call's worst case, not two, nor one plus what a finished call used; so one call
    # is sent, and every worker's next call (the others' first) is refused
    outcome = await h.run(FANOUT, workspace=repo, run_id="RUNCC3", max_tokens=50_000)
    assert outcome.status == "budget_exceeded", outcome.error
    fix = [e for e in h.of(TaskFinished) if e.step_id == "fix"]
    assert len(fix) == 3
    assert all(e.status == "cancelled" for e in fix), [(e.status, e.error) for e in fix]
    calls = h.of(CallFinished)
    assert len(calls) == len(h.sim.log.find(path="/v1/messages")) == 1
    assert h.runtime is not None and h.runtime.pids == []  # no Claude Code process is left


async def test_a_workspace_that_is_not_a_repository_fails_the_tasks_saying_how_to_fix_it(
    harness: Any, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    h = harness(RULES)
    outcome = await h.run(FANOUT, workspace=plain, run_id="RUNCC4")
    assert outcome.status == "failed"
    assert "git init" in (outcome.error or "")
    assert h.sim.log.find(path="/v1/messages") == []  # no worker started


MCP = """
version: 1
name: mcp
mcp_servers:
  shared: {command: /bin/true, args: ["--workflow"]}
  notes: {type: http, url: "http://127.0.0.1:9/mcp"}
agents:
  helper:
    system: Be brief.
    runtime: claude-code
    mcp_servers:
      notes: {type: http, url: "http://127.0.0.1:9/agent"}
steps:
  - id: ask
    agent: helper
    model: claude-haiku-4-5
    mcp_servers:
      own: {command: /bin/true, env: {TOKEN: "abc"}}
    prompt: Say hello.
"""


async def test_claude_code_workers_receive_the_mcp_servers_of_workflow_agent_and_step(
    harness: Any, wrapper: tuple[Path, EnvDumps], tmp_path: Path
) -> None:
    h = harness([])
    outcome = await h.run(MCP, workspace=tmp_path, run_id="RUNMCP")
    assert outcome.status == "succeeded", outcome.error
    [config] = wrapper[1].mcp_configs()
    assert config == {
        "mcpServers": {
            "shared": {"command": "/bin/true", "args": ["--workflow"]},
            "notes": {"type": "http", "url": "http://127.0.0.1:9/agent"},  # the agent's wins
            "own": {"command": "/bin/true", "env": {"TOKEN": "abc"}},
        }
    }
