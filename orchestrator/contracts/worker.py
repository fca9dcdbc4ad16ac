"""What the engine lends a worker: a call function, the shared state and an event sink.

A worker reaches the outside world only through its `WorkerContext`: `call` is the engine's
dispatcher (rate limits, budgets, global backoff and retries around `LLM.create`, one event per
attempt), `state` the run's blackboard, `emit` the event stream. Nothing else of the engine is
reachable, which is what lets a worker run elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.contracts.llm import LLMResponse
from orchestrator.contracts.people import ApproveFn
from orchestrator.contracts.replay import Replay
from orchestrator.contracts.task import TaskSpec
from orchestrator.contracts.values import JSON

if TYPE_CHECKING:
    from orchestrator.events import Event


class StateAccess(Protocol):
    """The shared blackboard of a run (tools `state_get`, `state_set`, `state_list`)."""

    async def get(self, key: str) -> JSON: ...

    async def set(self, key: str, value: JSON) -> None: ...

    async def list(self, prefix: str = "") -> dict[str, JSON]: ...


CallFn = Callable[[TaskSpec, dict[str, Any]], Awaitable[LLMResponse]]
"""The engine's dispatcher: rate limits, budgets, global backoff and retries around `LLM.create`.
It emits the call events itself (one per attempt, with request, response, latency, request id)."""

Emit = Callable[["Event"], None]


@dataclass(slots=True)
class Delegated:
    """What a `Task` call answers the model: the child's final text, or an error it can read."""

    text: str
    is_error: bool = False


class Delegate(Protocol):
    """The engine's side of the `Task`/`Agent` tool: each call runs a child task of the run."""

    def agents(self) -> dict[str, str | None]:
        """The agents a `subagent_type` may name, with their descriptions."""
        ...

    async def __call__(
        self, parent: TaskSpec, number: int, tool_input: dict[str, Any]
    ) -> Delegated: ...


@dataclass(slots=True)
class WorkerContext:
    """What the engine lends a worker for one task. Nothing else of the engine is reachable."""

    call: CallFn
    state: StateAccess
    emit: Emit
    approve: ApproveFn | None = None  # a tool call its step's `approve:` names waits on this
    delegate: Delegate | None = None  # runs `Task`/`Agent` calls as child tasks
    replay: Replay | None = None  # this task's recorded calls, on resume (contracts/replay.py)
