"""The Bash tool's behaviour, the same with and without the sandbox (`sandbox: off` / `on`)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.contracts import CLIENT_TOOLS, StateAccess
from orchestrator.environment import probe_bubblewrap
from orchestrator.tools import Toolset, build_toolset


@pytest.fixture(params=["off", "on"])
def bash(request: pytest.FixtureRequest, workspace: Path, state: StateAccess) -> Toolset:
    if request.param == "on" and not probe_bubblewrap().usable:
        pytest.skip(f"no sandbox here ({probe_bubblewrap().problem}); .ci/run installs it")
    return build_toolset(["Bash"], workspace=workspace, state=state, sandbox=request.param)


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
    # Found by a unique argv[0]: inside the sandbox `$!` is a pid of another PID namespace.
    marker = f"bg-{uuid.uuid4().hex}"
    command = f"(touch child.ran; exec -a {marker} sleep 300) & echo started; wait"
    out = await bash.execute("Bash", {"command": command, "timeout": 500})
    assert out.is_error
    assert "timed out after 500 ms" in out.content
    assert "started" in out.content
    assert (workspace / "child.ran").exists()
    _wait_until_gone(marker)  # a child that survived would hang here until pytest's timeout


async def test_bash_background_child_does_not_hang_the_call(bash: Toolset) -> None:
    # A hang would be caught by pytest's timeout: the child sleeps far longer than that.
    marker = f"bg-{uuid.uuid4().hex}"
    out = await bash.execute("Bash", {"command": f"(exec -a {marker} sleep 3000) & echo done"})
    assert out.content == "done"
    _wait_until_gone(marker)  # and it does not outlive the call


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


def _running(marker: str) -> list[int]:
    """Pids of live (not zombie) processes whose argv[0] is `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv0 = cmdline.read().split(b"\0")[0]
            with open(f"/proc/{entry}/stat") as stat:
                # A killed child of an exited shell may linger as a zombie until reaped by init.
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv0 == marker.encode() and state != "Z":
            found.append(int(entry))
    return found


def _wait_until_gone(marker: str) -> None:
    """The kill is asynchronous (SIGKILL, then the kernel reaps): wait for it, bounded only by
    pytest's timeout, so a slow host waits longer instead of failing."""
    while _running(marker):
        time.sleep(0.02)
