"""One headless Claude Code process: its command line, its environment, and its stream.

Claude Code is driven directly as `claude -p --output-format stream-json --verbose` rather than
through the `claude-agent-sdk` package: the SDK merges this process's whole environment into the
child's (the API key and every other secret with it), where here the child's environment is
built from nothing; and the CLI's stream-json lines are all a worker needs (messages, tool calls,
the final result with `structured_output`).

Invariants:
- The environment holds no variable of this process but PATH, LANG and TMPDIR (see `environment`):
  `ANTHROPIC_API_KEY` is the task's proxy token and `ANTHROPIC_BASE_URL` the proxy; HOME is a
  scratch folder per task, so no user settings, credentials or memory leak in or out.
- The prompt goes on stdin (no argv length limit); the process runs in its own session and is
  killed as a group on cancel or timeout, Bash tool children included; with `setpriv` present it
  also dies with the engine (`kill -9` of the run leaves no worker behind).
- Only the tools the step or agent names are available and pre-approved (`--tools`,
  `--allowedTools`), the same rule as API workers; MCP servers are only the workflow's
  (`--strict-mcp-config`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream

from orchestrator.contracts import TaskSpec
from orchestrator.errors import UsageError

CLI_ENV = "ORCHESTRATE_CLAUDE"
NPM_PACKAGE = "@anthropic-ai/claude-code"
PIP_EXTRA = "orchestrate[claude-code]"
# The tools Claude Code has under the names the workflow language uses.
CLAUDE_CODE_TOOLS = ("Read", "Write", "Edit", "Glob", "Grep", "Bash", "WebSearch", "WebFetch")
_STDERR_KEPT = 4000
_KEPT_FROM_PARENT = ("PATH", "LANG", "LC_ALL", "TMPDIR")


def missing_cli_message(tried: str) -> str:
    return (
        f"runtime: claude-code needs the Claude Code CLI, and {tried}: install it with "
        f"`npm install -g {NPM_PACKAGE}` (or set {CLI_ENV} to the `claude` binary), and "
        f"install the Python side with `pip install '{PIP_EXTRA}'`"
    )


def find_cli(environ: dict[str, str] | None = None) -> Path:
    """The `claude` binary: `$ORCHESTRATE_CLAUDE`, else `claude` on PATH; `UsageError` naming
    both installs when neither is there."""
    env = os.environ if environ is None else environ
    named = env.get(CLI_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise UsageError(missing_cli_message(f"{CLI_ENV}={named} is not an executable file"))
    found = shutil.which("claude", path=env.get("PATH"))
    if found is None:
        raise UsageError(missing_cli_message("no `claude` is on PATH"))
    return Path(found)


def tool_names(spec: TaskSpec) -> list[str]:
    """The step's tools as Claude Code names them; `UsageError` for one it does not have."""
    names: list[str] = []
    for tool in spec.tools:
        if isinstance(tool, str) and (tool in CLAUDE_CODE_TOOLS or tool.startswith("mcp__")):
            names.append(tool)
            continue
        shown = tool if isinstance(tool, str) else json.dumps(tool)
        raise UsageError(
            f"step '{spec.step_id}': runtime: claude-code has no tool {shown} (it has "
            f"{', '.join(CLAUDE_CODE_TOOLS)} and mcp__<server>__<tool> from mcp_servers); "
            "give the shared state to it through an MCP server, or use the default runtime"
        )
    return names


def command(cli: Path, spec: TaskSpec, *, mcp_config: Path | None = None) -> list[str]:
    """The CLI's arguments for `spec` (the prompt itself goes on stdin). `mcp_config` is the
    file holding the task's MCP servers (a file, not an argument: their env may hold tokens,
    and every user of the machine can read a process's arguments)."""
    tools = ",".join(tool_names(spec))
    argv = [
        str(cli),
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--no-session-persistence",
        "--permission-mode",
        "acceptEdits",
        "--model",
        spec.model,
        "--max-turns",
        str(spec.max_turns),
        "--tools",
        tools,
        "--strict-mcp-config",
    ]
    if tools:
        argv += ["--allowedTools", tools]
    if spec.system:
        # appended, not replacing: Claude Code keeps its own instructions for its tools
        argv += ["--append-system-prompt", spec.system]
    if isinstance(spec.output, dict):
        argv += ["--json-schema", json.dumps(spec.output)]
    if mcp_config is not None:
        argv += ["--mcp-config", str(mcp_config)]
    if shutil.which("setpriv"):
        argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
    return argv


def write_mcp_config(home: Path, servers: dict[str, Any]) -> Path | None:
    """The task's MCP servers as Claude Code's `.mcp.json`, readable by this user only."""
    if not servers:
        return None
    path = home / "orchestrate-mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    path.chmod(0o600)
    return path


def prompt_text(spec: TaskSpec) -> str:
    if spec.context:
        return f"{spec.context}\n\n{spec.prompt}"
    return spec.prompt


def environment(
    *, home: Path, base_url: str, token: str, parent: dict[str, str] | None = None
) -> dict[str, str]:
    """A Claude Code process's whole environment, built from scratch."""
    source = os.environ if parent is None else parent
    env = {name: source[name] for name in _KEPT_FROM_PARENT if source.get(name)}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "HOME": str(home),
            "SHELL": shutil.which("bash") or "/bin/sh",
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": token,
            "CLAUDE_CODE_MAX_RETRIES": "0",  # the dispatcher retried already
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return env


@dataclass
class Transcript:
    """How one process ended: its final stream-json `result` message, exit code and stderr."""

    messages: int = 0
    result: dict[str, Any] | None = None
    exit_code: int | None = None
    stderr: str = ""


async def run(
    argv: list[str],
    *,
    prompt: str,
    cwd: Path,
    env: dict[str, str],
    on_message: Callable[[dict[str, Any]], None],
    on_start: Callable[[int], None] | None = None,
) -> Transcript:
    """Run the CLI to its end, handing each stream-json message to `on_message` as it comes.
    Cancelled (a timeout, the run stopping): the whole process group is killed first."""
    transcript = Transcript()
    process = await anyio.open_process(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if on_start is not None:
        on_start(process.pid)
    stderr = bytearray()

    async def feed() -> None:
        assert process.stdin is not None
        try:
            await process.stdin.send(prompt.encode())
        finally:
            await process.stdin.aclose()

    async def read_stdout() -> None:
        assert process.stdout is not None
        pending = ""
        async for chunk in TextReceiveStream(process.stdout):
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                _take(transcript, line, on_message)
        _take(transcript, pending, on_message)

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            stderr.extend(chunk)
            del stderr[: max(0, len(stderr) - _STDERR_KEPT)]

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            tg.start_soon(read_stdout)
            tg.start_soon(read_stderr)
        transcript.exit_code = await process.wait()
    except BaseException:
        _kill_group(process)
        with anyio.CancelScope(shield=True):
            await process.wait()
        raise
    transcript.stderr = stderr.decode("utf-8", "replace")
    return transcript


def _take(transcript: Transcript, line: str, on_message: Callable[[dict[str, Any]], None]) -> None:
    line = line.strip()
    if not line.startswith("{"):
        return
    try:
        message = json.loads(line)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    transcript.messages += 1
    if message.get("type") == "result":
        transcript.result = message
    on_message(message)


def _kill_group(process: anyio.abc.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
