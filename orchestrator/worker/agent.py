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
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import anyio

from orchestrator import events
from orchestrator.contracts import (
    JSON,
    LLMResponse,
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


def _build_tools(spec: TaskSpec, ctx: WorkerContext) -> Tools:
    # Imported here: a worker without tools never pays for the tool modules.
    from orchestrator.tools import build_toolset

    toolset: Tools = build_toolset(
        spec.tools, workspace=Path(spec.workspace), state=ctx.state, sandbox=spec.sandbox
    )
    return toolset


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
        self.repairs = 0  # drawn from the task's attempt budget, spec.retries

    async def call(self) -> dict[str, Any]:
        # A fresh list per call: the dispatcher may keep the request (events, store) after we
        # append to the conversation.
        request = {**self.base, "messages": list(self.messages)}
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
        results: list[dict[str, Any]] = [{} for _ in uses]
        denied = await approval.denials(self.spec, self.ctx, uses)  # `approve:` (may wait)

        async def run_one(index: int, block: dict[str, Any]) -> None:
            name, tool_input = block.get("name", ""), block.get("input") or {}
            outcome = await self.run_tool(name, tool_input, denied=denied.get(index))
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": block.get("id", ""),
                "content": outcome.content,
            }
            if outcome.is_error:
                result["is_error"] = True
            results[index] = result

        async with anyio.create_task_group() as group:
            for index, block in enumerate(uses):
                group.start_soon(run_one, index, block)
        return results

    async def run_tool(
        self, name: str, tool_input: Any, *, denied: str | None = None
    ) -> ToolResult:
        started = time.perf_counter()
        outcome: ToolResult
        if denied is not None:  # a person said no: the model reads why
            outcome = _Outcome(denied, True)
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
        tools = _build_tools(spec, ctx)
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
