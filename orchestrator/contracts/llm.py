"""The Messages API as the engine sees it: plain-data responses and two protocols.

`LLM` is what every client implements (`orchestrator.llm.AnthropicLLM`, the in-process
`orchestrator.testing.FakeLLM`). `BatchLLM` adds the Message Batches API; it is
`runtime_checkable`, so the engine asks `isinstance(llm, BatchLLM)` before a `batch: true` step
instead of probing for a method by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard, runtime_checkable

from orchestrator.contracts.usage import Usage


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


@runtime_checkable
class LLM(Protocol):
    """The Messages API as the engine sees it (implemented in `orchestrator/llm`).

    `create` sends one request (a dict of Messages API parameters) with no retry of its own and
    raises `RetryableError` or `FatalError`. Streaming is the implementation's choice when
    `stream=True`; the result is the same final message either way.
    """

    async def create(
        self,
        request: dict[str, Any],
        *,
        stream: bool = False,
        on_delta: Callable[[str], None] | None = None,  # streamed text, as it arrives
    ) -> LLMResponse: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True, kw_only=True)
class BatchItem:
    """One result of a Message Batch: `succeeded` (with message and usage), `errored`,
    `canceled` or `expired`."""

    status: str
    message: dict[str, Any] | None = None
    usage: Usage | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """An answer to use (anything else is sent again online)."""
        return self.status == "succeeded" and self.message is not None


@runtime_checkable
class BatchLLM(LLM, Protocol):
    """An `LLM` that also speaks the Message Batches API (the real client does).

    `batch_create` submits `(custom_id, request)` pairs and returns the batch id;
    `batch_status` is `in_progress`, `canceling` or `ended`; `batch_results` maps custom ids to
    items once ended. An unknown or expired batch raises `FatalError`."""

    async def batch_create(self, requests: list[tuple[str, dict[str, Any]]]) -> str: ...

    async def batch_status(self, batch_id: str) -> str: ...

    async def batch_results(self, batch_id: str) -> dict[str, BatchItem]: ...


def supports_batches(llm: LLM) -> TypeGuard[BatchLLM]:
    """Whether `llm` can take a `batch: true` step."""
    return isinstance(llm, BatchLLM)
