"""In-process fakes for tests: `FakeLLM`, a scripted Messages API with no server and no SDK.

`FakeLLM` implements the same `LLM` and `BatchLLM` protocols as `orchestrator.llm.AnthropicLLM`
(see `orchestrator.contracts.llm`), so an `Engine` built on it runs exactly as on the real
client, dispatcher, budgets and retries included; only the HTTP round trip is gone. Use it where
a test is about the engine or a worker; use the simulator (`orchestrator.sim`) where it is about
the real SDK path (requests on the wire, headers, streaming, error translation).

    llm = FakeLLM()
    llm.on(Reply.json({"topics": ["a", "b"]}), step="plan")
    llm.on(Reply.rate_limited(retry_after=0.5), step="research", times=2)   # then falls through
    llm.on(lambda req: Reply.text(req.prompt.upper()), prompt=r"^shout")
    engine = Engine(settings=..., llm=llm, emit=events.append)
    ...
    assert llm.count(step="research") == 4 and llm.max_in_flight <= 8

Rules are tried in the order given; the first whose conditions all hold and whose `times` is not
used up answers. `step` and `key` are regular expressions matched against the whole
`X-Orchestrate-Step` / `X-Orchestrate-Task` header the worker sends; `prompt` is searched in the
last user text; `turn` is the 1-based assistant turn. With no rule matching, a plain request gets
a text reply quoting its prompt, and a structured-output request fails with a `FatalError` that
says which step needs a rule (a fake cannot invent schema-valid JSON that a test could rely on).

Errors are raised as the client raises them: `RetryableError` (429 with `retry_after`, 529,
5xx) and `FatalError`, fresh each time. Usage is what the reply says, or counted from the text
(about four characters a token) so budgets and costs behave. This module imports no `anthropic`
and starts no thread: a test on it is fast and cannot leak a server.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from orchestrator.contracts import (
    BatchItem,
    CallFn,
    LLMResponse,
    RateLimitInfo,
    TaskSpec,
    Usage,
)
from orchestrator.errors import FatalError, LLMError, RetryableError

__all__ = ["FakeLLM", "FakeRequest", "Reply", "Responder"]

_CHARS_PER_TOKEN = 4
_QUOTE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: content blocks and a stop reason, or an error to raise."""

    content: tuple[dict[str, Any], ...] = ()
    stop_reason: str = "end_turn"
    usage: Usage | None = None  # None: counted from the request and the reply
    error: LLMError | None = None
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()  # given ids when sent
    delay_s: float = 0.0  # held this much longer than the fake's `latency_s`

    def after(self, seconds: float) -> Reply:
        """This reply, held `seconds` before it is sent (to keep a call in flight)."""
        return dataclasses.replace(self, delay_s=seconds)

    @classmethod
    def text(cls, text: str, *, stop_reason: str = "end_turn", usage: Usage | None = None) -> Reply:
        return cls(content=({"type": "text", "text": text},), stop_reason=stop_reason, usage=usage)

    @classmethod
    def json(cls, value: Any, *, usage: Usage | None = None) -> Reply:
        """A structured-output reply: the value's JSON as the reply text, as the API sends it."""
        return cls.text(json.dumps(value, ensure_ascii=False), usage=usage)

    @classmethod
    def tool_use(
        cls, *calls: tuple[str, dict[str, Any]], text: str = "", usage: Usage | None = None
    ) -> Reply:
        """A turn that calls client tools: `Reply.tool_use(("Read", {"file_path": "a.txt"}))`."""
        content = ({"type": "text", "text": text},) if text else ()
        return cls(content=content, stop_reason="tool_use", usage=usage, tool_calls=calls)

    @classmethod
    def message(cls, body: dict[str, Any]) -> Reply:
        """Exactly this message body's content, stop reason and usage (tool ids kept)."""
        usage = body.get("usage")
        return cls(
            content=tuple(body.get("content") or ()),
            stop_reason=body.get("stop_reason") or "end_turn",
            usage=Usage.from_dict(usage) if usage is not None else None,
        )

    @classmethod
    def failure(cls, error: LLMError) -> Reply:
        """Raise `error` (a `RetryableError` or `FatalError`) instead of answering."""
        return cls(error=error)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 0.0, message: str = "rate limited") -> Reply:
        return cls.failure(
            RetryableError(
                message=message,
                status=429,
                error_type="rate_limit_error",
                kind="rate_limit",
                retry_after=retry_after,
            )
        )

    @classmethod
    def overloaded(cls, message: str = "Overloaded") -> Reply:
        return cls.failure(
            RetryableError(
                message=message, status=529, error_type="overloaded_error", kind="overloaded"
            )
        )

    @classmethod
    def server_error(cls, message: str = "Internal server error") -> Reply:
        return cls.failure(
            RetryableError(message=message, status=500, error_type="api_error", kind="server")
        )

    @classmethod
    def fatal(
        cls, message: str, *, status: int = 400, error_type: str = "invalid_request_error"
    ) -> Reply:
        return cls.failure(FatalError(message=message, status=status, error_type=error_type))


@dataclass(slots=True)
class FakeRequest:
    """One request as the fake received it (a deep copy: later changes by the caller are not
    seen)."""

    body: dict[str, Any]
    stream: bool = False
    batch: bool = False

    @property
    def headers(self) -> dict[str, str]:
        extra = self.body.get("extra_headers") or {}
        return {str(k).lower(): str(v) for k, v in extra.items()}

    @property
    def step(self) -> str:
        return self.headers.get("x-orchestrate-step", "")

    @property
    def key(self) -> str:
        return self.headers.get("x-orchestrate-task", "")

    @property
    def agent(self) -> str:
        return self.headers.get("x-orchestrate-agent", "")

    @property
    def prompt(self) -> str:
        """The last user text of the conversation (tool results are not text)."""
        for message in reversed(self.body.get("messages") or []):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                text = content
            else:
                text = "\n".join(
                    str(b.get("text", ""))
                    for b in content or []
                    if isinstance(b, dict) and b.get("type") == "text"
                )
            if text.strip():
                return text
        return ""

    @property
    def turn(self) -> int:
        """The 1-based assistant turn this request asks for."""
        return 1 + sum(1 for m in self.body.get("messages") or [] if m.get("role") == "assistant")

    @property
    def schema(self) -> dict[str, Any] | None:
        fmt = (self.body.get("output_config") or {}).get("format") or {}
        schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
        return schema if isinstance(schema, dict) else None


Responder = Reply | Callable[[FakeRequest], Reply]


@dataclass(slots=True)
class _Rule:
    reply: Responder
    step: str | None = None
    key: str | None = None
    prompt: str | None = None
    turn: int | None = None
    times: int | None = None
    used: int = 0

    def matches(self, request: FakeRequest) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if self.step is not None and not re.fullmatch(self.step, request.step):
            return False
        if self.key is not None and not re.fullmatch(self.key, request.key):
            return False
        if self.prompt is not None and not re.search(self.prompt, request.prompt):
            return False
        return self.turn is None or self.turn == request.turn


@dataclass(slots=True)
class _Batch:
    requests: list[tuple[str, FakeRequest]]
    polls: int = 0


def _tokens(chars: int) -> int:
    return chars // _CHARS_PER_TOKEN + 1


def _input_chars(body: dict[str, Any]) -> int:
    return len(json.dumps([body.get("system"), body.get("messages"), body.get("tools")]))


def _default_reply(request: FakeRequest) -> Reply:
    if request.schema is not None:
        raise FatalError(
            message=(
                f"FakeLLM has no reply for the structured-output request of step "
                f"'{request.step}'; script one: llm.on(Reply.json(...), step={request.step!r})"
            ),
            status=400,
            error_type="invalid_request_error",
        )
    quote = " ".join(request.prompt.split())
    if len(quote) > _QUOTE_CHARS:
        quote = quote[: _QUOTE_CHARS - 3] + "..."
    return Reply.text(f"Answer to: {quote}")


def _api_usage(usage: Usage) -> dict[str, Any]:
    """`usage` as the Messages API spells it in a response body."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_5m_input_tokens,
            "ephemeral_1h_input_tokens": usage.cache_creation_1h_input_tokens,
        },
    }


class FakeLLM:
    """A scripted, in-memory `LLM` and `BatchLLM`. See the module docstring for the rules.

    `latency_s` holds every call that long (on the event loop's clock), so calls overlap and
    `max_in_flight` shows how many the engine let out at once. `default` answers what no rule
    matches. `ratelimit` is returned with every response, as the API's `anthropic-ratelimit-*`
    headers would be.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        default: Responder = _default_reply,
        ratelimit: RateLimitInfo | None = None,
    ) -> None:
        self.latency_s = latency_s
        self.default = default
        self.ratelimit = ratelimit
        self.requests: list[FakeRequest] = []  # online and batched, in arrival order
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False
        self.batches: dict[str, _Batch] = {}
        self._rules: list[_Rule] = []
        self._ids = 0
        self._batch_gate: anyio.Event | None = None

    # --- scripting -----------------------------------------------------------------------

    def on(
        self,
        reply: Responder,
        *,
        step: str | None = None,
        key: str | None = None,
        prompt: str | None = None,
        turn: int | None = None,
        times: int | None = None,
    ) -> FakeLLM:
        """Answer matching requests with `reply` (or `reply(request)`); returns self."""
        for name, pattern in (("step", step), ("key", key), ("prompt", prompt)):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"FakeLLM.on: {name} is not a valid regex ({exc})") from None
        self._rules.append(_Rule(reply, step, key, prompt, turn, times))
        return self

    def queue(self, *replies: Responder) -> FakeLLM:
        """Answer the next requests with these replies, one each, in order; returns self."""
        for reply in replies:
            self.on(reply, times=1)
        return self

    def hold_batches(self) -> None:
        """Keep every batch `in_progress` until `release_batches()` (to stop a run mid-batch)."""
        self._batch_gate = anyio.Event()

    def release_batches(self) -> None:
        if self._batch_gate is not None:
            self._batch_gate.set()

    # --- what happened -------------------------------------------------------------------

    def find(self, *, step: str | None = None, batch: bool | None = None) -> list[FakeRequest]:
        """The requests received (online and in batches), optionally for one step path."""
        return [
            r
            for r in self.requests
            if (step is None or r.step == step) and (batch is None or r.batch == batch)
        ]

    def count(self, *, step: str | None = None, batch: bool | None = None) -> int:
        return len(self.find(step=step, batch=batch))

    # --- the LLM protocol ----------------------------------------------------------------

    async def create(
        self,
        request: dict[str, Any],
        *,
        stream: bool = False,
        on_delta: Callable[[str], None] | None = None,
    ) -> LLMResponse:
        response = await self._answer(FakeRequest(copy.deepcopy(request), stream=stream))
        if stream and on_delta is not None:  # the whole text as one delta, as a short stream
            for block in response.message.get("content") or []:
                if block.get("type") == "text" and block.get("text"):
                    on_delta(block["text"])
        return response

    async def aclose(self) -> None:
        self.closed = True

    # --- the BatchLLM protocol -----------------------------------------------------------

    async def batch_create(self, requests: list[tuple[str, dict[str, Any]]]) -> str:
        await anyio.lowlevel.checkpoint()
        batch_id = f"msgbatch_fake_{self._next_id()}"
        received = [(cid, FakeRequest(copy.deepcopy(r), batch=True)) for cid, r in requests]
        self.requests.extend(r for _, r in received)
        self.batches[batch_id] = _Batch(received)
        return batch_id

    async def batch_status(self, batch_id: str) -> str:
        batch = self._batch(batch_id)
        batch.polls += 1
        await anyio.lowlevel.checkpoint()
        if self._batch_gate is not None and not self._batch_gate.is_set():
            return "in_progress"
        return "ended"

    async def batch_results(self, batch_id: str) -> dict[str, BatchItem]:
        batch = self._batch(batch_id)
        await anyio.lowlevel.checkpoint()
        results: dict[str, BatchItem] = {}
        for cid, request in batch.requests:
            try:
                reply = self._reply(request)
                if reply.error is not None:
                    raise reply.error
            except LLMError as exc:
                results[cid] = BatchItem(status="errored", error=str(exc))
                continue
            message, usage = self._render(reply, request)
            results[cid] = BatchItem(status="succeeded", message=message, usage=usage)
        return results

    # --- for worker tests ----------------------------------------------------------------

    def call_fn(self, *, cost_usd: float | None = 0.01) -> CallFn:
        """A `WorkerContext.call` straight to this fake (no dispatcher), each call priced at
        `cost_usd`: for testing a worker on its own. The request is recorded as the worker
        sent it, `stream` flag included."""

        async def call(spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
            received = FakeRequest(copy.deepcopy(request), stream=bool(request.get("stream")))
            response = await self._answer(received)
            response.cost_usd = cost_usd
            return response

        return call

    # --- internals -----------------------------------------------------------------------

    async def _answer(self, received: FakeRequest) -> LLMResponse:
        self.requests.append(received)
        reply = self._reply(received)  # matched before any await, like a server in order
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            wait = self.latency_s + reply.delay_s
            if wait > 0:
                await anyio.sleep(wait)
            else:
                await anyio.lowlevel.checkpoint()
        finally:
            self.in_flight -= 1
        message, usage = self._render(reply, received)
        return LLMResponse(
            message=message,
            usage=usage,
            request_id=f"req_fake_{self._next_id()}",
            latency_s=self.latency_s,
            ratelimit=self.ratelimit,
        )

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _batch(self, batch_id: str) -> _Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise FatalError(
                message=f"batch {batch_id} not found", status=404, error_type="not_found_error"
            )
        return batch

    def _reply(self, request: FakeRequest) -> Reply:
        """The reply for `request`, counted against its rule's `times`; raises its error."""
        responder = self.default
        for rule in self._rules:
            if rule.matches(request):
                rule.used += 1
                responder = rule.reply
                break
        reply = responder if isinstance(responder, Reply) else responder(request)
        if reply.error is not None and not request.batch:
            # a fresh copy per raise, so tracebacks and contexts never pile up on one object
            raise dataclasses.replace(reply.error)
        return reply

    def _render(self, reply: Reply, request: FakeRequest) -> tuple[dict[str, Any], Usage]:
        content = [dict(block) for block in reply.content]
        for name, tool_input in reply.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake_{self._next_id()}",
                    "name": name,
                    "input": copy.deepcopy(tool_input),
                }
            )
        usage = reply.usage
        if usage is None:
            usage = Usage(
                input_tokens=_tokens(_input_chars(request.body)),
                output_tokens=_tokens(len(json.dumps(content))),
            )
        message = {
            "id": f"msg_fake_{self._next_id()}",
            "type": "message",
            "role": "assistant",
            "model": request.body.get("model", ""),
            "content": content,
            "stop_reason": reply.stop_reason,
            "usage": _api_usage(usage),
        }
        return message, usage
