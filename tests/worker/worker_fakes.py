"""Fakes for worker tests: a scripted call function, a toolset and an event sink."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.contracts import JSON, LLMResponse, TaskSpec, Usage, WorkerContext
from orchestrator.events import Event


def spec(**overrides: Any) -> TaskSpec:
    values: dict[str, Any] = {
        "run_id": "run1",
        "task_id": "task1",
        "step_id": "research",
        "key": "research/0",
        "agent": "researcher",
        "model": "claude-sonnet-5-5",
        "prompt": "Research the topic.",
    }
    values.update(overrides)
    return TaskSpec(**values)


def text_message(text: str, stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def tool_message(*uses: tuple[str, str, dict[str, Any]], text: str = "") -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    for use_id, name, tool_input in uses:
        content.append({"type": "tool_use", "id": use_id, "name": name, "input": tool_input})
    return {
        "id": "msg_t",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


Reply = dict[str, Any] | Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ScriptedCall:
    """A `CallFn` that answers with the scripted messages in order and records each request."""

    def __init__(self, *replies: Reply, cost: float | None = 0.01) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.cost = cost

    async def __call__(self, task: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        self.requests.append(copy.deepcopy(request))
        if not self.replies:
            raise AssertionError("the worker made more calls than scripted")
        reply = self.replies.pop(0)
        message = reply if isinstance(reply, dict) else await reply(request)
        return LLMResponse(
            message=message,
            usage=Usage.from_dict(message.get("usage")),
            request_id="req_1",
            cost_usd=self.cost,
        )


@dataclass
class Outcome:
    content: str
    is_error: bool = False


ToolFn = Callable[[dict[str, Any]], Awaitable[Outcome]]


@dataclass
class FakeTools:
    handlers: dict[str, ToolFn]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def api_tools(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "description": f"the {name} tool", "input_schema": {"type": "object"}}
            for name in self.handlers
        ]

    def is_client_tool(self, name: str) -> bool:
        return name in self.handlers

    async def execute(self, name: str, tool_input: dict[str, Any]) -> Outcome:
        self.calls.append((name, tool_input))
        if name not in self.handlers:  # like orchestrator.tools.Toolset: an error result
            return Outcome(f"unknown tool '{name}'", is_error=True)
        return await self.handlers[name](tool_input)


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[str, JSON] = {}

    async def get(self, key: str) -> JSON:
        return self.data.get(key)

    async def set(self, key: str, value: JSON) -> None:
        self.data[key] = value

    async def list(self, prefix: str = "") -> dict[str, JSON]:
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}


def context(call: ScriptedCall) -> tuple[WorkerContext, list[Event]]:
    events: list[Event] = []
    return WorkerContext(call=call, state=MemoryState(), emit=events.append), events
