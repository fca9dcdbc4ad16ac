"""`ClaudeCodeRuntime`: a task as one headless Claude Code process, every call through the proxy.

`async with ClaudeCodeRuntime(...).running() as runtime:` starts the run's proxy; `runtime` is
then a `WorkerFn` (`await runtime(spec, ctx)`). For each task it leases a proxy token bound to
`ctx.call` (the dispatcher), runs Claude Code in the task's workspace with the step's prompt,
system prompt, model, tools, `max_turns`, output schema and MCP servers, and returns the final
result. What the history shows comes from where it always comes from: each model call is a
`CallFinished` the dispatcher emits (so `runs transcript` and `runs calls` show a Claude Code
worker like an API worker), each tool Claude Code ran is a `ToolCalled`, and the task's usage and
cost are the sum of its calls as the API reported them (not Claude Code's own estimate).

Invariants:
- The CLI is found when the runtime is built, so a missing install is a `UsageError` naming the
  npm package and the pip extra before anything runs.
- A task whose call was refused for budget raises `BudgetExceeded` after its process ends (the
  run ends `budget_exceeded`, resumable); one refused by a fatal API error raises `FatalError`
  (no retry); any other way Claude Code fails is a `TaskFailed` carrying what its calls cost.
- The scratch HOME of a task is removed when the task ends, on every way out.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import jsonschema

from orchestrator.contracts import TaskResult, TaskSpec, WorkerContext
from orchestrator.errors import BudgetExceeded, FatalError, TaskFailed
from orchestrator.events import ToolCalled
from orchestrator.runtimes.claude_code import process
from orchestrator.runtimes.claude_code.proxy import Lease, MessagesProxy

_PREVIEW = 300
_FENCE = "```"


class _Tools:
    """Turns the stream's tool_use/tool_result pairs into `ToolCalled` events."""

    def __init__(self, spec: TaskSpec, ctx: WorkerContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.open: dict[str, tuple[str, Any, float]] = {}

    def take(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind not in ("assistant", "user"):
            return
        content = (message.get("message") or {}).get("content")
        if not isinstance(content, list):
            return
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                entry = (str(block.get("name")), block.get("input"), time.monotonic())
                self.open[str(block.get("id"))] = entry
            elif block.get("type") == "tool_result":
                opened = self.open.pop(str(block.get("tool_use_id")), None)
                if opened is None:
                    continue
                name, tool_input, started = opened
                self.ctx.emit(
                    ToolCalled(
                        run_id=self.spec.run_id,
                        task_id=self.spec.task_id,
                        step_id=self.spec.step_id,
                        tool=name,
                        input=tool_input,
                        is_error=bool(block.get("is_error")),
                        output_preview=_text(block.get("content"))[:_PREVIEW],
                        duration_s=round(time.monotonic() - started, 4),
                    )
                )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b
        )
    return "" if content is None else json.dumps(content)


def _parse_json(text: str) -> Any:
    body = text.strip()
    if body.startswith(_FENCE):  # a fenced block: ```json ... ```
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit(_FENCE, 1)[0]
    return json.loads(body)


class ClaudeCodeRuntime:
    """Claude Code workers for one run (see the module docstring)."""

    def __init__(self, *, cli: Path | None = None) -> None:
        self.cli = cli or process.find_cli()
        self.proxy = MessagesProxy()
        self.started = 0  # processes started, for tests and the bench
        self.pids: list[int] = []  # of processes still running

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ClaudeCodeRuntime]:
        async with self.proxy.running():
            yield self

    async def __call__(self, spec: TaskSpec, ctx: WorkerContext) -> TaskResult:
        home = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, "", "orchestrate-claude-"))
        pid: list[int] = []

        def started(number: int) -> None:
            self.started += 1
            pid.append(number)
            self.pids.append(number)

        try:
            mcp_config = process.write_mcp_config(home, spec.mcp_servers)
            argv = process.command(self.cli, spec, mcp_config=mcp_config)
            with self.proxy.lease(spec, ctx.call) as lease:
                env = process.environment(
                    home=home, base_url=self.proxy.base_url, token=lease.token
                )
                tools = _Tools(spec, ctx)
                transcript = await process.run(
                    argv,
                    prompt=process.prompt_text(spec),
                    cwd=Path(spec.workspace),
                    env=env,
                    on_message=tools.take,
                    on_start=started,
                )
                return self._result(spec, lease, transcript)
        finally:
            for number in pid:
                self.pids.remove(number)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(home, ignore_errors=True))

    def _result(self, spec: TaskSpec, lease: Lease, transcript: process.Transcript) -> TaskResult:
        result = transcript.result or {}
        turns = int(result.get("num_turns") or 0)
        spent = TaskResult(
            output=None,
            usage=lease.usage,
            cost_usd=lease.cost_usd,
            turns=turns,
            calls=lease.calls,
        )
        if isinstance(lease.stopped, BudgetExceeded):
            raise BudgetExceeded(str(lease.stopped))
        if isinstance(lease.stopped, FatalError):
            raise lease.stopped
        if not result:
            tail = transcript.stderr.strip()[-500:]
            failed = TaskFailed(
                f"Claude Code exited with code {transcript.exit_code} without a result"
                + (f": {tail}" if tail else "")
            )
            failed.spent = spent
            raise failed
        subtype = result.get("subtype")
        if result.get("is_error") or subtype != "success":
            if subtype == "error_max_turns":
                message = f"Claude Code reached max_turns ({spec.max_turns}) before it finished"
            else:
                said = str(result.get("result") or transcript.stderr.strip()[-500:])
                message = f"Claude Code failed ({subtype}): {said}"
            failed = TaskFailed(message)
            failed.spent = spent
            raise failed
        text = str(result.get("result") or "")
        spent.output = self._output(spec, result, text, spent)
        spent.text = text
        spent.stop_reason = result.get("stop_reason")
        return spent

    def _output(self, spec: TaskSpec, result: dict[str, Any], text: str, spent: TaskResult) -> Any:
        if spec.output in (None, "text"):
            return text
        try:
            if isinstance(spec.output, dict):
                value = result.get("structured_output")
                if value is None:
                    raise ValueError("Claude Code returned no structured output")
                jsonschema.validate(value, spec.output)
                return value
            return _parse_json(text)
        except (ValueError, jsonschema.ValidationError) as exc:
            detail = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
            failed = TaskFailed(f"Claude Code's output does not match `output:`: {detail}")
            failed.spent = spent
            raise failed from None
