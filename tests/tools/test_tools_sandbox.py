"""What a Bash command can and cannot reach, under `sandbox: auto | on | off`.

The sandbox tests run real bubblewrap (`.ci/run` installs it); where it cannot work they are
skipped. What happens without bubblewrap is tested everywhere by naming a program that does not
exist (`sandbox: {bwrap: ...}`), which is what a machine without it looks like to the engine.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.contracts import StateAccess
from orchestrator.environment import (
    SandboxPolicy,
    parse_sandbox,
    probe_bubblewrap,
    step_sandbox,
)
from orchestrator.tools import Toolset, build_toolset

MISSING = {"bwrap": "/nonexistent/bin/bwrap"}

needs_bwrap = pytest.mark.skipif(
    not probe_bubblewrap().usable,
    reason=f"no working bubblewrap here ({probe_bubblewrap().problem}); .ci/run installs it",
)


def _bash(workspace: Path, state: StateAccess, **sandbox: object) -> Toolset:
    return build_toolset(["Bash"], workspace=workspace, state=state, sandbox=sandbox)


class Listener:
    """A loopback TCP port outside the sandbox that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"hello from outside\n")
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


# --- inside the sandbox -----------------------------------------------------------------------


@needs_bwrap
async def test_sandboxed_command_writes_in_the_workspace(
    workspace: Path, state: StateAccess
) -> None:
    bash = _bash(workspace, state, mode="on")
    out = await bash.execute("Bash", {"command": "mkdir -p sub && echo hi > sub/made.txt && pwd"})
    assert not out.is_error, out.content
    assert out.content == os.path.realpath(workspace)
    assert (workspace / "sub" / "made.txt").read_text() == "hi\n"


@needs_bwrap
async def test_sandboxed_command_cannot_write_outside_the_workspace(
    workspace: Path, outside: Path, state: StateAccess
) -> None:
    bash = _bash(workspace, state, mode="on")
    target = outside / "pwned.txt"
    out = await bash.execute("Bash", {"command": f"echo x > {target}"})
    assert out.is_error
    # the workspace's neighbours here are under /tmp, which the sandbox replaces with its own
    assert "No such file or directory" in out.content or "Read-only" in out.content
    assert not target.exists()
    out = await bash.execute("Bash", {"command": f"echo changed > {outside / 'secret.txt'}"})
    assert out.is_error
    assert (outside / "secret.txt").read_text() == "TOP SECRET\n"
    # the rest of the filesystem is there, read-only
    name = f"/etc/orchestrate-sandbox-{uuid.uuid4().hex}"
    out = await bash.execute("Bash", {"command": f"test -d /etc && touch {name}"})
    assert out.is_error and "Read-only file system" in out.content
    assert not Path(name).exists()
    # /tmp is the sandbox's own: what is written there does not land on the host
    out = await bash.execute("Bash", {"command": f"echo x > /tmp/{workspace.parent.name}.txt"})
    assert not out.is_error, out.content
    assert not Path(f"/tmp/{workspace.parent.name}.txt").exists()


@needs_bwrap
async def test_unsandboxed_command_can_write_outside_the_workspace(
    workspace: Path, outside: Path, state: StateAccess
) -> None:
    """The control for the test above: the same command does escape with `sandbox: off`."""
    bash = _bash(workspace, state, mode="off")
    target = outside / "pwned.txt"
    out = await bash.execute("Bash", {"command": f"echo x > {target}"})
    assert not out.is_error, out.content
    assert target.exists()


@needs_bwrap
async def test_sandboxed_command_cannot_see_the_engine_process(
    workspace: Path, state: StateAccess
) -> None:
    bash = _bash(workspace, state, mode="on")
    engine = os.getpid()
    command = (
        f"test -e /proc/{engine} && echo engine-visible; "
        "ls /proc | grep -c '^[0-9]'; cat /proc/1/comm"
    )
    out = await bash.execute("Bash", {"command": command})
    assert not out.is_error, out.content
    lines = out.content.splitlines()
    assert "engine-visible" not in lines
    count, pid1 = lines
    assert int(count) < 10, "only the sandbox's own processes are listed"
    assert pid1 == "bwrap", "PID 1 is the sandbox, not the engine or the host's init"


@needs_bwrap
async def test_sandboxed_command_cannot_reach_a_loopback_port(
    workspace: Path, state: StateAccess, listener: Listener
) -> None:
    bash = _bash(workspace, state, mode="on")
    out = await bash.execute(
        "Bash", {"command": f"exec 3<>/dev/tcp/127.0.0.1/{listener.port} && cat <&3"}
    )
    assert out.is_error
    assert "hello from outside" not in out.content
    assert listener.accepted == 0


@needs_bwrap
async def test_network_true_lets_a_sandboxed_command_connect(
    workspace: Path, state: StateAccess, listener: Listener
) -> None:
    bash = _bash(workspace, state, mode="on", network=True)
    out = await bash.execute(
        "Bash", {"command": f"exec 3<>/dev/tcp/127.0.0.1/{listener.port} && cat <&3"}
    )
    assert not out.is_error, out.content
    assert out.content == "hello from outside"
    assert listener.accepted == 1
    # still confined to the workspace for writing
    out = await bash.execute("Bash", {"command": "touch /usr/pwned"})
    assert out.is_error and not Path("/usr/pwned").exists()


@needs_bwrap
async def test_sandboxed_command_cannot_reach_unix_sockets_under_run(
    workspace: Path, state: StateAccess
) -> None:
    """PostgreSQL's and Docker's sockets live under /run; a read-only mount does not stop a
    connect(), so the sandbox hides /run altogether."""
    bash = _bash(workspace, state, mode="on")
    out = await bash.execute("Bash", {"command": "ls -A /run | wc -l"})
    assert not out.is_error, out.content
    assert out.content.strip() == "0"


@needs_bwrap
async def test_auto_sandboxes_when_bubblewrap_works(
    workspace: Path, outside: Path, state: StateAccess
) -> None:
    bash = _bash(workspace, state)  # the default: auto
    out = await bash.execute("Bash", {"command": f"touch {outside / 'x'}; echo $$"})
    assert not (outside / "x").exists()
    assert out.content.splitlines()[-1] in {"1", "2", "3"}, "a fresh PID namespace"


# --- without bubblewrap -----------------------------------------------------------------------


async def test_auto_without_bubblewrap_refuses_bash_and_says_how_to_fix(
    workspace: Path, state: StateAccess
) -> None:
    bash = _bash(workspace, state, mode="auto", **MISSING)
    out = await bash.execute("Bash", {"command": "touch ran"})
    assert out.is_error
    assert not (workspace / "ran").exists()
    assert "is not installed" in out.content
    assert "apt-get install bubblewrap" in out.content
    assert "sandbox: off" in out.content


async def test_on_without_bubblewrap_refuses_bash(workspace: Path, state: StateAccess) -> None:
    bash = _bash(workspace, state, mode="on", **MISSING)
    out = await bash.execute("Bash", {"command": "touch ran"})
    assert out.is_error and "sandbox: on requires a sandbox" in out.content
    assert not (workspace / "ran").exists()


async def test_off_runs_bash_without_bubblewrap(workspace: Path, state: StateAccess) -> None:
    bash = _bash(workspace, state, mode="off", **MISSING)
    out = await bash.execute("Bash", {"command": "touch ran && echo ok"})
    assert out.content == "ok"
    assert (workspace / "ran").exists()


# --- the setting ------------------------------------------------------------------------------


def test_sandbox_setting_accepts_words_yaml_booleans_and_mappings() -> None:
    assert parse_sandbox("on") == SandboxPolicy(mode="on")
    assert parse_sandbox(False) == SandboxPolicy(mode="off")  # YAML reads a bare `off` as false
    assert parse_sandbox({"network": True}) == SandboxPolicy(network=True)
    assert SandboxPolicy(mode="on").override(step_sandbox({"network": True})) == SandboxPolicy(
        mode="on", network=True
    )
    assert SandboxPolicy(network=True).override(step_sandbox(False)) == SandboxPolicy(
        mode="off", network=True
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("sometimes", "must be one of auto, on, off"),
        ({"mode": "on", "net": True}, "unknown sandbox key net"),
        ({"network": "yes"}, "network must be true or false"),
        ({"bwrap": "/usr/bin/bwrap"}, "unknown sandbox key bwrap"),  # a step cannot move it
        (3, "must be one of auto, on, off or a mapping"),
    ],
)
def test_bad_step_sandbox_is_named(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        step_sandbox(raw)
