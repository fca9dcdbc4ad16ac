"""MCP servers' tools for API workers: a real stdio server (the `mcp` SDK's own server class),
started per task, granted by Claude Code's `mcp__<server>__<tool>` names, on the simulator."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import TaskFailed
from orchestrator.tools.mcp import mcp_tools

pytest.importorskip("mcp")

SERVER = textwrap.dedent(
    '''
    import os
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("notes")
    NOTES: dict[str, str] = {}

    @app.tool()
    def add_note(title: str, body: str) -> str:
        """Store a note under a title."""
        NOTES[title] = body
        return f"stored {title}"

    @app.tool()
    def get_note(title: str) -> str:
        """Read the note stored under a title."""
        if title not in NOTES:
            raise ValueError(f"no note {title!r}")
        return NOTES[title]

    @app.tool()
    def secrets() -> str:
        """Which secret-looking variables this server can see, and where it runs."""
        names = sorted(k for k in os.environ if "KEY" in k or "ANTHROPIC" in k)
        return f"{','.join(names) or 'none'} in {os.getcwd()}"

    app.run()
    '''
)


@pytest.fixture
def server(tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "notes_server.py"
    script.write_text(SERVER)
    return {"command": sys.executable, "args": [str(script)]}


async def test_a_task_gets_the_servers_tools_and_its_state_lasts_the_task(
    tmp_path: Path, server: dict[str, object]
) -> None:
    granted = ["mcp__notes__add_note", "mcp__notes__get_note"]
    async with mcp_tools(granted, {"notes": server}, cwd=tmp_path) as tools:
        by_name = {t.name: t for t in tools}
        assert sorted(by_name) == granted  # `secrets` was not granted
        assert by_name["mcp__notes__add_note"].input_schema["required"] == ["title", "body"]
        stored = await by_name["mcp__notes__add_note"].handler({"title": "a", "body": "hello"})
        assert str(stored.content) == "stored a" and not stored.is_error  # type: ignore[union-attr]
        got = await by_name["mcp__notes__get_note"].handler({"title": "a"})
        assert got.content == "hello"  # type: ignore[union-attr]
        missing = await by_name["mcp__notes__get_note"].handler({"title": "zz"})
        assert missing.is_error  # type: ignore[union-attr]


async def test_a_server_name_grants_all_its_tools(
    tmp_path: Path, server: dict[str, object]
) -> None:
    async with mcp_tools(["mcp__notes"], {"notes": server}, cwd=tmp_path) as tools:
        assert {t.name for t in tools} == {
            "mcp__notes__add_note",
            "mcp__notes__get_note",
            "mcp__notes__secrets",
        }


async def test_undeclared_servers_missing_tools_and_dead_commands_fail_clearly(
    tmp_path: Path, server: dict[str, object]
) -> None:
    with pytest.raises(TaskFailed, match=r"'files', which is not in mcp_servers \(declared: notes"):
        async with mcp_tools(["mcp__files__read"], {"notes": server}, cwd=tmp_path):
            pass
    with pytest.raises(TaskFailed, match=r"no tool 'remove'; it offers: mcp__notes__add_note"):
        async with mcp_tools(["mcp__notes__remove"], {"notes": server}, cwd=tmp_path):
            pass
    broken = {"command": sys.executable, "args": ["-c", "import sys; sys.exit('boom at start')"]}
    with pytest.raises(TaskFailed, match=r"MCP server 'notes' failed to start.*boom at start"):
        async with mcp_tools(["mcp__notes"], {"notes": broken}, cwd=tmp_path):
            pass


WORKFLOW = """\
version: 1
name: notes
mcp_servers:
  notes: {server}
steps:
  - id: keep
    agent: archivist
    prompt: "Keep a note"
outputs:
  reply: "{{{{ steps.keep.output }}}}"
"""

AGENT = """\
---
name: archivist
description: keeps notes through the notes server
tools: mcp__notes__add_note, mcp__notes__get_note, mcp__notes__secrets
---
You keep notes.
"""

RULES = """\
- turn: 1
  tool_calls:
    - {name: mcp__notes__add_note, input: {title: plan, body: ship on friday}}
    - {name: mcp__notes__secrets, input: {}}
- turn: 2
  tool_calls: [{name: mcp__notes__get_note, input: {title: plan}}]
- {turn: 3, text: noted}
"""


def test_an_api_worker_uses_mcp_tools_on_the_simulator(
    tmp_path: Path, server: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "archivist.md").write_text(AGENT)
    (tmp_path / "wf.yaml").write_text(WORKFLOW.format(server=json.dumps(server)))
    (tmp_path / "rules.yaml").write_text(RULES)
    runner = CliRunner()
    listed = runner.invoke(app, ["agents", "list", "--json"])
    assert listed.exit_code == 0, listed.stderr
    listing = json.loads(listed.stdout)
    assert listing["problems"] == []  # MCP names load without a "not available" warning
    (archivist,) = [a for a in listing["agents"] if a["name"] == "archivist"]
    assert "mcp__notes__get_note" in archivist["tools"]
    result = runner.invoke(
        app,
        ["run", "wf.yaml", "--simulate", "--sim-script", "rules.yaml", "--quiet"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.stderr
    run_id = result.stderr.splitlines()[0].split()[1]
    shown = runner.invoke(app, ["runs", "transcript", run_id, "keep", "--json"])
    assert shown.exit_code == 0, shown.stderr
    text = shown.stdout
    assert "stored plan" in text  # the server ran the first call
    assert "ship on friday" in text  # and the second call read what the first stored
    assert "sk-ant-must-not-leak" not in text
    secrets = next(line for line in text.splitlines() if " in /" in line)
    assert "none in" in secrets and "workspace" in secrets  # no key; runs in the workspace
