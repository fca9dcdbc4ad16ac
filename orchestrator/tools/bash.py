"""The Bash tool: one `bash -c` command in the workspace, bounded in time and output.

Only granted when a workflow names it. The command is one the model wrote, so it runs in the
sandbox (`orchestrator.environment`: bubblewrap, only the workspace writable, no network, the
engine's process out of sight) unless the setting is `sandbox: off`; under `auto` without a
working bubblewrap the call is refused with a tool error that says how to install it. Either way
the child's environment carries no `ANTHROPIC_*` variable and no `*_API_KEY`/`*_AUTH_TOKEN`.
The command runs in its own session; on timeout, cancellation or completion the whole process
group (and, sandboxed, the whole PID namespace) is killed, so background children do not outlive
the call.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from orchestrator.environment import (
    SandboxPolicy,
    SandboxUnavailable,
    prepare_launch,
    without_secrets,
)
from orchestrator.errors import ToolError
from orchestrator.tools.base import Tool, ToolOutcome, object_schema

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
# After the shell exits, wait this long for children that still hold its output open.
_DRAIN_AFTER_EXIT_S = 0.5
_NOTE_ROOM = 160


def bash_tool(workspace: str, max_output_chars: int, sandbox: SandboxPolicy | None = None) -> Tool:
    policy = sandbox or SandboxPolicy()

    async def handler(args: dict[str, Any]) -> ToolOutcome:
        timeout_ms = min(int(args.get("timeout") or DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS)
        argv = ["bash", "-c", args["command"]]
        try:
            launch = await prepare_launch(
                argv, workspace=Path(workspace), policy=policy, origin="tool"
            )
        except SandboxUnavailable as exc:
            raise ToolError(str(exc)) from None
        return await run_command(
            launch.argv,
            cwd=workspace,
            timeout_s=timeout_ms / 1000,
            max_output_chars=max_output_chars,
        )

    return Tool("Bash", _DESCRIPTION, _SCHEMA, handler)


async def run_command(
    argv: Sequence[str], *, cwd: str, timeout_s: float, max_output_chars: int
) -> ToolOutcome:
    output = _BoundedOutput(max_output_chars)
    timed_out = False
    process = await anyio.open_process(
        list(argv),
        cwd=cwd,
        env=without_secrets(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with anyio.move_on_after(timeout_s) as deadline:
            await _collect(process, output)
        timed_out = deadline.cancelled_caught
    finally:
        with anyio.CancelScope(shield=True):
            _kill_group(process)
            await process.wait()
            await process.aclose()

    text = output.text()
    if timed_out:
        note = f"Command timed out after {timeout_s * 1000:.0f} ms and was killed"
        return ToolOutcome(f"{text}\n\n[{note}]" if text else note, is_error=True)
    code = process.returncode
    if code:
        return ToolOutcome(f"{text}\n\n[exit code {code}]" if text else f"[exit code {code}]", True)
    return ToolOutcome(text or "(no output)")


async def _collect(process: Process, output: _BoundedOutput) -> None:
    assert process.stdout is not None
    stdout = process.stdout
    drained = anyio.Event()

    async def read_all() -> None:
        try:
            async for chunk in stdout:
                output.add(chunk)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            drained.set()

    async with anyio.create_task_group() as group:
        group.start_soon(read_all)
        await process.wait()
        # The shell is done; background children may still hold the pipe open. Give them a
        # moment, then stop reading (the process group is killed on the way out).
        with anyio.move_on_after(_DRAIN_AFTER_EXIT_S):
            await drained.wait()
        group.cancel_scope.cancel()


def _kill_group(process: Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _BoundedOutput:
    """Keeps the head and the tail of a stream, so memory stays bounded for chatty commands."""

    def __init__(self, max_chars: int) -> None:
        self.limit = max(max_chars, 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    def text(self) -> str:
        full = (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace")
        if self.total == len(self.head) + len(self.tail) and len(full) <= self.limit:
            return full.rstrip("\n")
        half = max(self.limit - _NOTE_ROOM, 2) // 2  # the result, note included, fits the limit
        head = bytes(self.head).decode("utf-8", errors="replace")[:half]
        tail = (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace")[-half:]
        return (
            f"{head}\n\n[output truncated: {self.total} bytes in all, showing the first and "
            f"last {half} characters]\n\n{tail}".rstrip("\n")
        )


_DESCRIPTION = (
    "Run a bash command in the workspace directory and return its combined stdout and stderr. "
    f"timeout is in milliseconds (default {DEFAULT_TIMEOUT_MS}, at most {MAX_TIMEOUT_MS}). "
    "A non-zero exit code is reported. Prefer Read, Grep and Glob for looking at files."
)
_SCHEMA = object_schema(
    {
        "command": {"type": "string", "description": "The command to execute"},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": f"Optional timeout in milliseconds (max {MAX_TIMEOUT_MS})",
        },
        "description": {
            "type": "string",
            "description": "A short description of what the command does",
        },
    },
    ["command"],
)
