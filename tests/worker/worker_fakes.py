"""Fakes for worker tests: a scripted call function (on `FakeLLM`), a toolset, a state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.contracts import JSON, LLMResponse, TaskSpec, WorkerContext
from orchestrator.events import Event
from orchestrator.testing import FakeLLM, FakeRequest, Reply


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


Scripted = dict[str, Any] | Reply


def _no_more(request: FakeRequest) -> Reply:
    raise AssertionError(f"the worker made more calls than scripted (call {request.turn})")


class ScriptedCall:
    """A `CallFn` on `FakeLLM`: answers the scripted messages (or `Reply`s) in order, each call
    priced at `cost`, and records every request as the worker sent it."""

    def __init__(self, *replies: Scripted, cost: float | None = 0.01) -> None:
        self.llm = FakeLLM(default=_no_more)
        self.llm.queue(*(r if isinstance(r, Reply) else Reply.message(r) for r in replies))
        self._call = self.llm.call_fn(cost_usd=cost)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.llm.requests]

    async def __call__(self, task: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        return await self._call(task, request)


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
