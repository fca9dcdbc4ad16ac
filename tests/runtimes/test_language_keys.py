"""The language keys of issue 19: runtime, isolation, mcp_servers, merge: branches."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.engine.resolve import task_settings
from orchestrator.errors import SpecError
from orchestrator.workflow import Workflow, load_workflow


def load(tmp_path: Path, text: str) -> Workflow:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(text))
    return load_workflow(path)


def errors(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as raised:
        load(tmp_path, text)
    return str(raised.value)


BASE = """
version: 1
name: w
steps:
  - id: fix
    prompt: Fix it.
"""


def test_runtime_and_isolation_are_checked_with_a_hint(tmp_path: Path) -> None:
    text = errors(tmp_path, BASE + "    runtime: claude\n    isolation: worktre\n")
    assert "'runtime' must be one of api, claude-code" in text
    assert "did you mean 'worktree'" in text


def test_mcp_servers_are_checked_where_they_are_written(tmp_path: Path) -> None:
    text = errors(tmp_path, BASE + "    mcp_servers: {files: {args: [1]}}\n")
    assert "wf.yaml:7:" in text and "server 'files' needs a 'command'" in text
    text = errors(tmp_path, BASE.replace("steps:", "mcp_servers:\n  mcpServers: {}\nsteps:"))
    assert "without 'mcpServers:'" in text
    text = errors(tmp_path, BASE + "    mcp_servers: {web: {type: http, url: x, header: {}}}\n")
    assert "unknown key 'header'" in text and "did you mean 'headers'" in text


def test_merge_branches_and_its_keys(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        BASE
        + "    isolation: worktree\n"
        + "  - id: merged\n    merge: branches\n    from: fix\n"
        + "    into: fixes\n    on_conflict: fail\n",
    )
    merged = wf.step("merged")
    assert (merged.merge, merged.into, merged.on_conflict) == ("branches", "fixes", "fail")
    assert wf.step("fix").isolation == "worktree"
    wf = load(tmp_path, BASE + "  - id: joined\n    merge: concat\n    from: fix\n    into: x\n")
    assert any("only used by 'merge: branches'" in d.message for d in wf.warnings)


def test_runtime_and_servers_resolve_step_over_agent_over_workflow(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "coder.md").write_text(
        "---\nname: coder\nruntime: claude-code\ntools: Read, mcp__files__read\n"
        "mcp_servers:\n  files: {command: agent-files}\n---\nYou code.\n"
    )
    wf = load(
        tmp_path,
        """
        version: 1
        name: w
        defaults: {runtime: api}
        mcp_servers:
          files: {command: workflow-files}
          search: {type: sse, url: "http://127.0.0.1:9/sse"}
        steps:
          - id: a
            agent: coder
            prompt: Go.
          - id: b
            prompt: Go.
          - id: c
            agent: coder
            runtime: api
            mcp_servers: {files: {command: step-files}}
            prompt: Go.
        """,
    )
    settings = load_settings(None)
    a, b, c = (task_settings(wf.step(s), wf, settings) for s in "abc")
    assert (a.runtime, b.runtime, c.runtime) == ("claude-code", "api", "api")
    assert dict(a.mcp_servers)["files"] == {"command": "agent-files"}
    assert set(dict(a.mcp_servers)) == {"files", "search"}
    assert dict(c.mcp_servers)["files"] == {"command": "step-files"}
    assert a.tools == ("Read", "mcp__files__read")  # a Claude Code agent keeps its MCP tools
