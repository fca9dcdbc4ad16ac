"""`run:` steps: a shell command in the run's workspace, through anyio (never blocking the loop)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from orchestrator.environment import SandboxPolicy, prepare_launch, without_secrets
from orchestrator.errors import TaskFailed


@dataclass
class CommandResult:
    stdout: str
    stderr: str
    exit_code: int
    warning: str | None = None  # ran unsandboxed under `sandbox: auto` (see environment.py)


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without API keys: a command step never sees them."""
    env = without_secrets()
    env.update(extra or {})
    return env


async def run_command(
    command: str,
    *,
    cwd: Path,
    timeout_s: float | None,
    env: dict[str, str] | None = None,
    sandbox: SandboxPolicy | None = None,
    max_output_bytes: int | None = None,
) -> CommandResult:
    """Raises `SandboxUnavailable` when the policy demands a sandbox that this machine lacks,
    and a final `TaskFailed` when stdout passes `max_output_bytes` (stderr keeps its tail)."""
    policy = sandbox or SandboxPolicy()
    launch = await prepare_launch(
        ["bash", "-c", command], workspace=cwd, policy=policy, origin="run"
    )
    process = await anyio.open_process(
        launch.argv,
        cwd=cwd,
        env=command_env(env),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    stdout = bytearray()
    stderr = bytearray()
    limit = max_output_bytes
    overflow = False

    async def pump(stream: Any, sink: bytearray, keep_tail: bool) -> None:
        nonlocal overflow
        async for chunk in stream:
            if overflow:
                continue  # drain what is left after the kill
            sink.extend(chunk)
            if limit is not None and len(sink) > limit:
                if keep_tail:  # stderr: only its tail is ever shown
                    del sink[: len(sink) - limit]
                else:  # stdout is the output: past the limit the step fails (no huge value)
                    overflow = True
                    sink.clear()
                    _kill_group(process.pid)

    try:
        with anyio.fail_after(timeout_s):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, process.stdout, stdout, False)
                tg.start_soon(pump, process.stderr, stderr, True)
            code = await process.wait()
    except TimeoutError:
        _kill_group(process.pid)
        with anyio.CancelScope(shield=True):
            await process.wait()
        raise TaskFailed(f"command timed out after {timeout_s:g}s: {command}") from None
    except BaseException:
        _kill_group(process.pid)
        with anyio.CancelScope(shield=True):
            await process.wait()
        raise
    if overflow:
        raise TaskFailed(
            f"command printed over {limit} bytes on stdout, over engine.max_value_bytes (raise "
            f"it in orchestrate.yaml, or write the output to a file in the workspace): "
            f"{command[:200]}",
            final=True,
        )
    return CommandResult(
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        exit_code=code,
        warning=launch.warning,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_output(result: CommandResult, mode: Any) -> Any:
    if mode == "json":
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise TaskFailed(
                f"`output: json` but stdout is not JSON ({exc.msg} at line {exc.lineno}): "
                f"{result.stdout[:200]!r}"
            ) from None
    return result.stdout
