"""Data and protocols that cross package boundaries.

A worker is a function of a serialisable `TaskSpec` that returns a `TaskResult`; it reaches the
outside world only through the `WorkerContext` the engine hands it (a call function that owns rate
limits, budgets and retries; the shared state; an event sink). Keeping these plain and picklable is
what lets a future Ray executor run workers elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestrator.events import Event

JSON = Any  # a JSON-compatible value: dict, list, str, int, float, bool or None

CLIENT_TOOLS = (
    "Read",
    "Write",
    "Edit",
    "Glob",
    "Grep",
    "Bash",
    "state_get",
    "state_set",
    "state_list",
)
SERVER_TOOLS = ("WebSearch", "WebFetch")  # passed to the API as its server tools
BUILTIN_TOOL_NAMES = CLIENT_TOOLS + SERVER_TOOLS


@dataclass(slots=True)
class Usage:
    """Token usage as the API reports it. `cache_creation_input_tokens` = 5m + 1h parts."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens
        self.cache_creation_5m_input_tokens += other.cache_creation_5m_input_tokens
        self.cache_creation_1h_input_tokens += other.cache_creation_1h_input_tokens

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_5m_input_tokens": self.cache_creation_5m_input_tokens,
            "cache_creation_1h_input_tokens": self.cache_creation_1h_input_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}
        return cls(**{k: int(data.get(k) or 0) for k in cls.__dataclass_fields__})


@dataclass(slots=True, kw_only=True)
class TaskSpec:
    """Everything one worker needs, rendered and resolved. Serialisable (see `to_dict`)."""

    run_id: str
    task_id: str
    step_id: str  # the step's path, e.g. "research" or "polish.draft"
    key: str  # deterministic: step path, iteration, index, item hash; resume matches on it
    index: int | None = None  # fan-out item index
    agent: str | None = None
    model: str  # a full model id (aliases already resolved)
    system: str | None = None  # agent body + step `system`
    prompt: str  # the rendered user prompt
    context: str | None = None  # a block shared by every item of a fan-out (cacheable prefix)
    max_tokens: int = 2048
    tools: list[str | dict[str, str]] = field(default_factory=list)  # names, or {"python": "m:f"}
    output: str | dict[str, Any] | None = None  # None/"text", "json", or a JSON Schema
    max_turns: int = 20
    retries: int = 3  # repair attempts for output that fails its schema
    timeout_s: float | None = None
    workspace: str = "."
    cache_ttl: str | None = None  # "5m" | "1h" | None: mark the shared prefix with cache_control
    stream: bool | None = None  # None: decide from max_tokens
    runtime: str = "api"  # "api" (orchestrator/worker) | "claude-code" (orchestrator/runtimes)
    mcp_servers: dict[str, Any] = field(default_factory=dict)  # Claude Code's .mcp.json shape

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(slots=True, kw_only=True)
class TaskResult:
    """What a worker returns. `output` is text, parsed JSON, or schema-valid JSON."""

    output: JSON
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0  # None when a model had no price in configs
    turns: int = 0
    calls: int = 0
    stop_reason: str | None = None


@dataclass(slots=True, kw_only=True)
class RateLimitInfo:
    """What the `anthropic-ratelimit-*` headers said, when the API sent them."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    input_tokens_limit: int | None = None
    input_tokens_remaining: int | None = None
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    retry_after: float | None = None


@dataclass(slots=True, kw_only=True)
class LLMResponse:
    """One successful Messages API response, as plain data."""

    message: dict[str, Any]  # the JSON body: id, model, content blocks, stop_reason, usage
    usage: Usage
    request_id: str | None = None
    latency_s: float = 0.0
    ratelimit: RateLimitInfo | None = None
    cost_usd: float | None = None  # set by the engine's dispatcher from configs prices


class LLM(Protocol):
    """The Messages API as the engine sees it (implemented in `orchestrator/llm`).

    `create` sends one request (a dict of Messages API parameters) with no retry of its own and
    raises `RetryableError` or `FatalError`. Streaming is the implementation's choice when
    `stream=True`; the result is the same final message either way.
    """

    async def create(self, request: dict[str, Any], *, stream: bool = False) -> LLMResponse: ...

    async def aclose(self) -> None: ...


class StateAccess(Protocol):
    """The shared blackboard of a run (tools `state_get`, `state_set`, `state_list`)."""

    async def get(self, key: str) -> JSON: ...

    async def set(self, key: str, value: JSON) -> None: ...

    async def list(self, prefix: str = "") -> dict[str, JSON]: ...


@dataclass(slots=True, kw_only=True)
class BatchItem:
    """One result of a Message Batch: `succeeded` (with message and usage), `errored`,
    `canceled` or `expired`."""

    status: str
    message: dict[str, Any] | None = None
    usage: Usage | None = None
    error: str | None = None


class BatchLLM(LLM, Protocol):
    """An `LLM` that also speaks the Message Batches API (the real client does)."""

    async def batch_create(self, requests: list[tuple[str, dict[str, Any]]]) -> str: ...

    async def batch_status(self, batch_id: str) -> str: ...

    async def batch_results(self, batch_id: str) -> dict[str, BatchItem]: ...


CallFn = Callable[[TaskSpec, dict[str, Any]], Awaitable[LLMResponse]]
"""The engine's dispatcher: rate limits, budgets, global backoff and retries around `LLM.create`.
It emits the call events itself (one per attempt, with request, response, latency, request id)."""

Emit = Callable[["Event"], None]


@dataclass(slots=True)
class WorkerContext:
    """What the engine lends a worker for one task. Nothing else of the engine is reachable."""

    call: CallFn
    state: StateAccess
    emit: Emit
