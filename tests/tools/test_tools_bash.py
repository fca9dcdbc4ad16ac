from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.contracts import CLIENT_TOOLS, StateAccess
from orchestrator.tools import Toolset, build_toolset


@pytest.fixture
def bash(workspace: Path, state: StateAccess) -> Toolset:
    return build_toolset(["Bash"], workspace=workspace, state=state)


async def test_bash_is_not_granted_unless_named(workspace: Path, state: StateAccess) -> None:
    others = [name for name in CLIENT_TOOLS if name != "Bash"]
    toolset = build_toolset(others, workspace=workspace, state=state)
    assert "Bash" not in [tool["name"] for tool in toolset.api_tools()]
    assert not toolset.is_client_tool("Bash")
    out = await toolset.execute("Bash", {"command": "touch pwned"})
    assert out.is_error and "unknown tool 'Bash'" in out.content
    assert not (workspace / "pwned").exists()


async def test_bash_runs_in_the_workspace(bash: Toolset, workspace: Path) -> None:
    out = await bash.execute("Bash", {"command": "pwd && echo hi > made.txt", "description": "x"})
    assert not out.is_error
    assert out.content == os.path.realpath(workspace)
    assert (workspace / "made.txt").read_text() == "hi\n"


async def test_bash_hides_api_keys(bash: Toolset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://secret-base")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("ORDINARY_SETTING", "visible")
    out = await bash.execute("Bash", {"command": "env"})
    assert "sk-ant-secret-value" not in out.content
    assert "ANTHROPIC" not in out.content
    assert "sk-openai-secret" not in out.content
    assert "ORDINARY_SETTING=visible" in out.content


async def test_bash_reports_stderr_and_exit_code(bash: Toolset) -> None:
    out = await bash.execute("Bash", {"command": "echo out; echo err >&2; exit 3"})
    assert out.is_error
    assert "out" in out.content and "err" in out.content
    assert "exit code 3" in out.content


async def test_bash_no_output(bash: Toolset) -> None:
    out = await bash.execute("Bash", {"command": "true"})
    assert out == type(out)("(no output)")


async def test_bash_timeout_kills_the_process_group(bash: Toolset, workspace: Path) -> None:
    started = time.monotonic()
    out = await bash.execute(
        "Bash", {"command": "sleep 30 & echo $! > child.pid; echo started; wait", "timeout": 500}
    )
    assert time.monotonic() - started < 10
    assert out.is_error
    assert "timed out after 500 ms" in out.content
    assert "started" in out.content
    child = int((workspace / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


async def test_bash_background_child_does_not_hang_the_call(bash: Toolset) -> None:
    started = time.monotonic()
    out = await bash.execute("Bash", {"command": "sleep 30 & echo done"})
    assert time.monotonic() - started < 10
    assert out.content == "done"


async def test_bash_truncates_long_output(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(["Bash"], workspace=workspace, state=state, max_output_chars=1000)
    out = await toolset.execute("Bash", {"command": "seq 1 100000"})
    assert not out.is_error
    assert "output truncated" in out.content
    assert out.content.startswith("1\n2\n3\n")
    assert out.content.endswith("99999\n100000")
    assert len(out.content) < 1300


async def test_bash_timeout_is_validated(bash: Toolset) -> None:
    out = await bash.execute("Bash", {"command": "true", "timeout": "soon"})
    assert out.is_error and "field 'timeout'" in out.content
    out = await bash.execute("Bash", {})
    assert out.is_error and "missing required field 'command'" in out.content


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of an exited shell may linger as a zombie until reaped by init.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False
