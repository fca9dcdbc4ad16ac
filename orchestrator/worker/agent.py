"""One worker: one isolated conversation with the model, for one task.

A worker is a function of a serialisable `TaskSpec` and the `WorkerContext` the engine lends it.
All conversation state lives in the local variables of one `run_worker` call, so no worker ever
sees another's messages. Every model call goes through `ctx.call`, which owns rate limits,
budgets, retries and the per-call events; `RetryableError`/`FatalError` raised there propagate
untouched (the engine decides). What a worker cannot fix itself ends in `TaskFailed`, with a
message that says what to change.

The loop: call; on `tool_use` run every client tool of the turn concurrently and answer with one
`tool_result` per call, in the model's order; on `pause_turn` send the assistant content back to
let the server finish (at most `MAX_PAUSES` times in a row); on a final answer read the output
and, when it is not the JSON asked for, send the problem back. An empty final reply (no text, no
tool call) is never an output: the model is nudged in a new user turn, as Anthropic's docs advise,
and the task fails when nudging does not help. Repairs and nudges share the task's one attempt
budget, `spec.retries` (the engine lowers it for a retry by what earlier attempts used).
`max_turns` bounds the model's turns; repair calls are counted in `calls` but not in `turns`.
A failure that another attempt cannot fix (the budget spent, a `max_tokens` cut: the same
`max_tokens` would cut it again) is a `final` `TaskFailed`.

`Task`/`Agent` calls go to `ctx.delegate`, which runs each as a child task; they are numbered in
the order the conversation made them (replayed turns included), so a resumed parent names the
same children. On resume `ctx.replay` holds the calls the conversation already made: each turn
whose request is the recorded one takes the recorded response and tool results instead of calling
the model and running the tools (see `orchestrator/contracts/replay.py`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import anyio

from orchestrator import events
from orchestrator.contracts import (
    DELEGATE_TOOLS,
    JSON,
    LLMResponse,
    Replay,
    TaskResult,
    TaskSpec,
    Usage,
    WorkerContext,
    add_cost,
)
from orchestrator.errors import TaskFailed, Waiting
from orchestrator.worker import approval
from orchestrator.worker.output import OutputProblem, read_output, repair_message
from orchestrator.worker.request import base_request, first_user_content

PREVIEW_CHARS = 200
MAX_PAUSES = 5  # `pause_turn` continuations in a row before the task fails
NUDGE = "Your reply was empty. Please continue and give your answer."


class ToolResult(Protocol):
    content: Any  # a string, or a list of content blocks
    is_error: bool


class Tools(Protocol):
    """What a worker needs of `orchestrator.tools.Toolset`."""

    def api_tools(self) -> list[dict[str, Any]]: ...

    def is_client_tool(self, name: str) -> bool: ...

    async def execute(self, name: str, tool_input: dict[str, Any]) -> ToolResult: ...


class _Outcome:
    __slots__ = ("content", "is_error")

    def __init__(self, content: str, is_error: bool) -> None:
        self.content = content
        self.is_error = is_error


@asynccontextmanager
async def _tools_for(spec: TaskSpec, ctx: WorkerContext) -> AsyncIterator[Tools]:
    """The toolset `spec.tools` grants, with the task's own MCP servers running while it lasts."""
    # Imported here: a worker without tools never pays for the tool modules.
    from orchestrator.tool_names import mcp_tool_parts
    from orchestrator.tools import build_toolset

    workspace = Path(spec.workspace)
    agents = ctx.delegate.agents() if ctx.delegate is not None else None  # for `Task`
    mcp_names = [t for t in spec.tools if isinstance(t, str) and mcp_tool_parts(t) is not None]
    if not mcp_names:
        yield build_toolset(
            spec.tools, workspace=workspace, state=ctx.state, sandbox=spec.sandbox, agents=agents
        )
        return
    from orchestrator.tools.mcp import mcp_tools

    async with mcp_tools(mcp_names, spec.mcp_servers, cwd=workspace) as served:
        yield build_toolset(
            spec.tools,
            workspace=workspace,
            state=ctx.state,
            sandbox=spec.sandbox,
            mcp=served,
            agents=agents,
        )


def final_text(content: list[dict[str, Any]]) -> str:
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _preview(content: Any) -> str:
    text = content if isinstance(content, str) else str(content)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


class _Conversation:
    """The mutable state of one task's conversation; never shared."""

    def __init__(self, spec: TaskSpec, ctx: WorkerContext, tools: Tools | None) -> None:
        self.spec = spec
        self.ctx = ctx
        self.tools = tools
        self.base = base_request(spec, tools.api_tools() if tools else [])
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": first_user_content(spec)}
        ]
        self.usage = Usage()
        self.cost: float | None = 0.0
        self.turns = 0
        self.calls = 0
        self.children = 0  # `Task`/`Agent` calls so far: the next child's number
        replay = ctx.replay
        self.replay: Replay | None = replay if replay is not None and replay.claim() else None
        self.repairs = 0  # drawn from the task's attempt budget, spec.retries

    async def call(self) -> dict[str, Any]:
        # A fresh list per call: the dispatcher may keep the request (events, store) after we
        # append to the conversation.
        request = {**self.base, "messages": list(self.messages)}
        if self.replay is not None:
            recorded = self.replay.answer(request)
            if recorded is not None:  # paid for in an earlier process: counted, not sent
                self.usage.add(recorded.usage)
                self.cost = add_cost(self.cost, recorded.cost_usd)
                return recorded.response
            if self.replay.diverged_at is not None:
                self.warn(
                    f"task '{self.spec.key}': request {self.replay.diverged_at + 1} differs from "
                    "the one recorded before the resume (the workflow or an agent file changed?); "
                    f"replayed {self.replay.replayed} recorded call(s), going on live from here"
                )
            self.replay = None
        response: LLMResponse = await self.ctx.call(self.spec, request)
        self.calls += 1
        self.usage.add(response.usage)
        self.cost = add_cost(self.cost, response.cost_usd)
        return response.message

    def result(self, output: JSON, text: str, stop_reason: str | None) -> TaskResult:
        return TaskResult(
            output=output,
            text=text,
            usage=self.usage,
            cost_usd=self.cost,
            turns=self.turns,
            calls=self.calls,
            stop_reason=stop_reason,
        )

    async def run_tools(self, content: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One `tool_result` per `tool_use` block, in the same order; the tools run concurrently."""
        uses = [b for b in content if b.get("type") == "tool_use"]
        numbers: dict[int, int] = {}  # a delegation's child number, in the model's order
        for index, block in enumerate(uses):
            if block.get("name") in DELEGATE_TOOLS:
                numbers[index] = self.children
                self.children += 1
        # what ran before the resume is not run again: its recorded result is the answer
        known = self.replay.tool_results(uses) if self.replay is not None else {}
        results = [known.get(str(b.get("id")), {}) for b in uses]
        todo = [(i, b) for i, b in enumerate(uses) if not results[i]]
        if not todo:
            return results
        # `approve:` (may wait); indexes into `todo`
        asked = await approval.denials(self.spec, self.ctx, [b for _, b in todo])
        denied = {todo[j][0]: reason for j, reason in asked.items()}
        waiting: list[Waiting] = []

        async def run_one(index: int, block: dict[str, Any]) -> None:
            name, tool_input = block.get("name", ""), block.get("input") or {}
            try:
                outcome = await self.run_tool(
                    name, tool_input, denied=denied.get(index), child=numbers.get(index)
                )
            except Waiting as exc:  # a child waits for a person: so does this task
                waiting.append(exc)
                return
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": block.get("id", ""),
                "content": outcome.content,
            }
            if outcome.is_error:
                result["is_error"] = True
            results[index] = result
            # kept in full, so a resume after this point replays it instead of running the tool
            self.ctx.emit(
                events.ToolResults(
                    run_id=self.spec.run_id,
                    task_id=self.spec.task_id,
                    step_id=self.spec.step_id,
                    results=[result],
                )
            )

        async with anyio.create_task_group() as group:
            for index, block in todo:
                group.start_soon(run_one, index, block)
        if waiting:
            raise waiting[0]
        return results

    async def run_tool(
        self, name: str, tool_input: Any, *, denied: str | None = None, child: int | None = None
    ) -> ToolResult:
        started = time.perf_counter()
        outcome: ToolResult
        if denied is not None:  # a person said no: the model reads why
            outcome = _Outcome(denied, True)
        elif child is not None and self.tools is not None and self.tools.is_client_tool(name):
            outcome = await self.delegate(child, tool_input)
        elif self.tools is None:
            outcome = _Outcome(f"unknown tool '{name}': this step grants no tools", True)
        else:
            try:
                # The toolset answers unknown names and bad arguments itself, as error results.
                outcome = await self.tools.execute(name, tool_input)
            except Exception as exc:  # a tool's bug must not end its siblings or the task
                outcome = _Outcome(f"{name} failed: {type(exc).__name__}: {exc}", True)
        self.ctx.emit(
            events.ToolCalled(
                run_id=self.spec.run_id,
                task_id=self.spec.task_id,
                step_id=self.spec.step_id,
                tool=name,
                input=tool_input,
                is_error=outcome.is_error,
                output_preview=_preview(outcome.content),
                duration_s=time.perf_counter() - started,
            )
        )
        return outcome

    async def delegate(self, child: int, tool_input: Any) -> ToolResult:
        """A granted `Task`/`Agent` call: the engine runs it as child number `child`."""
        if self.ctx.delegate is None:
            from orchestrator.tools.delegate import NO_ENGINE

            return _Outcome(NO_ENGINE, True)
        if not isinstance(tool_input, dict):
            return _Outcome("Task: arguments must be a JSON object", True)
        try:
            done = await self.ctx.delegate(self.spec, child, tool_input)
        except (Waiting, TaskFailed, anyio.get_cancelled_exc_class()):
            raise
        except Exception as exc:  # the engine's bug must not end the parent's siblings
            return _Outcome(f"Task failed: {type(exc).__name__}: {exc}", True)
        return _Outcome(done.text, done.is_error)

    def warn(self, message: str) -> None:
        self.ctx.emit(
            events.Warning(
                run_id=self.spec.run_id,
                message=message,
                step_id=self.spec.step_id,
                task_id=self.spec.task_id,
            )
        )


async def run_worker(
    spec: TaskSpec, ctx: WorkerContext, *, tools: Tools | None = None
) -> TaskResult:
    """Run one task to its output. `tools` defaults to the toolset `spec.tools` grants."""
    if tools is None and spec.tools:
        async with _tools_for(spec, ctx) as granted:
            return await _run(spec, ctx, granted)
    return await _run(spec, ctx, tools)


async def _run(spec: TaskSpec, ctx: WorkerContext, tools: Tools | None) -> TaskResult:
    convo = _Conversation(spec, ctx, tools)
    try:
        return await _converse(spec, convo)
    except (TaskFailed, Waiting) as exc:
        exc.spent = convo.result(None, "", None)  # what the attempt used so far still counts
        if isinstance(exc, TaskFailed):
            exc.repairs = convo.repairs
        raise


async def _converse(spec: TaskSpec, convo: _Conversation) -> TaskResult:
    repairing = False
    pauses = 0
    while True:
        if not repairing:
            if convo.turns >= spec.max_turns:
                raise TaskFailed(
                    f"reached max_turns={spec.max_turns} without a final answer; "
                    "raise max_turns or simplify the task"
                )
            convo.turns += 1
        repairing = False
        message = await convo.call()
        content: list[dict[str, Any]] = message.get("content") or []
        stop = message.get("stop_reason")

        if stop == "tool_use" and any(b.get("type") == "tool_use" for b in content):
            convo.messages.append({"role": "assistant", "content": content})
            convo.messages.append({"role": "user", "content": await convo.run_tools(content)})
            continue
        if stop == "pause_turn":
            # A server tool (web search, fetch) paused a long turn: send it back to resume.
            pauses += 1
            if pauses > MAX_PAUSES:
                raise TaskFailed(
                    f"the model paused its turn (stop_reason=pause_turn) {pauses} times in a "
                    "row; simplify the task or grant fewer server tools",
                    final=True,
                )
            convo.messages.append({"role": "assistant", "content": content})
            continue
        pauses = 0

        text = final_text(content)
        if stop == "refusal":
            raise TaskFailed("the model declined to answer (stop_reason=refusal)")
        if stop == "model_context_window_exceeded":
            raise TaskFailed(
                "the conversation outgrew the model's context window; shorten the prompt, "
                "context or tool outputs",
                final=True,
            )
        if stop == "max_tokens":
            if (spec.output is None or spec.output == "text") and text:
                # Text output keeps what was written; the cut is reported, not hidden.
                convo.warn(f"reply cut off at max_tokens={spec.max_tokens}; output is truncated")
                return convo.result(text, text, stop)
            # Not retried: the same max_tokens would cut the same reply again.
            raise TaskFailed(
                f"reply cut off at max_tokens={spec.max_tokens}; raise max_tokens on the step "
                "(not retried: the same limit would cut the reply again)",
                final=True,
            )
        if not text.strip() and not any(b.get("type") == "tool_use" for b in content):
            if convo.repairs >= spec.retries:
                raise TaskFailed(
                    f"the model returned an empty reply (stop_reason={stop}) "
                    f"{_after(convo.repairs, 'nudge')}; check the prompt and tool results",
                    final=True,
                )
            convo.repairs += 1
            repairing = True
            # The empty turn is not echoed (the API refuses it): a new user turn asks again.
            convo.messages.append({"role": "user", "content": NUDGE})
            continue

        try:
            output = read_output(text, spec.output)
        except OutputProblem as problem:
            if convo.repairs >= spec.retries:
                tries = _after(convo.repairs, "repair attempt")
                raise TaskFailed(f"{problem.detail} ({tries})", final=True) from None
            convo.repairs += 1
            repairing = True
            convo.messages.append({"role": "assistant", "content": content})
            convo.messages.append({"role": "user", "content": repair_message(problem)})
            continue
        return convo.result(output, text, stop)


def _after(count: int, what: str) -> str:
    return f"after {count} {what}{'s' if count != 1 else ''}"
