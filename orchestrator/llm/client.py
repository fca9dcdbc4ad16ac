"""`AnthropicLLM`: the engine's `LLM`, over one `anthropic.AsyncAnthropic` per run.

Invariants:
- `anthropic` is imported when a client is built, never when this module is imported: the SDK
  costs seconds of CPU to import and most CLI commands never call the API.
- The SDK never retries (`max_retries=0`): the engine's dispatcher owns retries, so a storm of
  429/529 across hundreds of workers is handled once, globally.
- Every SDK error is translated into `RetryableError`/`FatalError` (see `_errors.py`); the API key
  never appears in an error, a log line or an `LLMResponse`.
- A streamed reply is complete only when `message_stop` arrives: a stream that ends cleanly before
  it (a proxy or load balancer cutting it) is a `RetryableError`, never a reply without a
  stop_reason.
- Connection refused (or a host name that does not resolve) before this client has ever reached
  the server is a `FatalError` naming the URL tried: it is a wrong `ANTHROPIC_BASE_URL`, and
  retrying it toward the 15-minute horizon only hides that. Once any call got an HTTP response,
  the same error is retryable (a server restarting).
- Responses are returned as plain JSON dicts, decoded with orjson instead of being built
  into SDK models and dumped again: the client's per-call CPU is what bounds throughput with
  hundreds of workers.
- The default transport, `direct`, sends Messages requests over aiohttp itself (`_direct.py`)
  with the headers the SDK sends, and does not import the SDK at all unless the Batches API is
  used (the SDK costs ~45 MB and 1-2 s of CPU per process; schemas are rewritten by `_schema.py`,
  checked equal to the SDK's rewrite). Error responses are classified by the same function the
  SDK's exceptions go through (`_errors.translate_status`), so a status means the same on every
  transport. `aiohttp` and `httpx` send through the SDK (`engine.transport`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.contracts import BatchItem, LLMResponse
from orchestrator.errors import FatalError, LLMError, RetryableError, UsageError
from orchestrator.llm._direct import DirectPost, loads, sdk_headers
from orchestrator.llm._errors import (
    decode_body,
    redact,
    translate_error,
    translate_status,
    unreachable_reason,
)
from orchestrator.llm._schema import transform_schema
from orchestrator.llm.ratelimit import has_ratelimit, read_ratelimit
from orchestrator.llm.usage import usage_from_message

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

    from orchestrator.config import Settings

SIMULATOR_API_KEY = "sk-orchestrate-simulator"
NO_KEY_MESSAGE = (
    "no Anthropic API key: set ANTHROPIC_API_KEY,"
    " or run with --simulate to use the built-in simulator"
)
TRANSPORTS = ("direct", "aiohttp", "httpx")
DEFAULT_BASE_URL = "https://api.anthropic.com"


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def normalise_message(body: dict[str, Any]) -> dict[str, Any]:
    """A message body without null fields, at the levels the SDK models define (the message, its
    usage and its content blocks); tool inputs are left exactly as the model wrote them."""
    out = _drop_none(body)
    usage = out.get("usage")
    if isinstance(usage, dict):
        out["usage"] = _drop_none(usage)
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_drop_none(b) if isinstance(b, dict) else b for b in content]
    return out


def _decode(data: bytes, secrets: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = loads(data)
    except ValueError as exc:  # a truncated or garbled body: worth another try
        message = redact(f"unreadable response body: {exc}", secrets)
        raise RetryableError(message=message, kind="server") from None
    if not isinstance(body, dict):
        raise RetryableError(message="response body is not a JSON object", kind="server")
    return normalise_message(body)


@functools.cache
def _sdk_params() -> frozenset[str]:
    """The keyword arguments `messages.create` and `messages.stream` take in this SDK."""
    from anthropic.resources.messages import AsyncMessages

    names = set(inspect.signature(AsyncMessages.create).parameters)
    names |= set(inspect.signature(AsyncMessages.stream).parameters)
    return frozenset(names - {"self", "stream"})


class _SchemaAdapter:
    """Rewrites `output_config.format.schema` into the subset the API accepts (`_schema.py`, the
    SDK's rewrite: `additionalProperties: false`, unsupported constraints moved into the
    description). The worker still validates replies against the original schema, so nothing the
    user asked for is lost. Cached by the schema's canonical JSON."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any] | None] = {}

    def __call__(self, schema: dict[str, Any]) -> dict[str, Any]:
        key = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
        if key not in self._cache:
            try:
                self._cache[key] = transform_schema(schema)
            except (ValueError, TypeError, AttributeError, KeyError, AssertionError):
                self._cache[key] = None  # one it cannot rewrite (`type: [a, b]`) goes as written
        return self._cache[key] or schema


class AnthropicLLM:
    """The Messages API for one run. Implements `orchestrator.contracts.LLM`.

    `transport`: "direct" (default: Messages requests over aiohttp, around the SDK; see the
    module's notes), "aiohttp" (the SDK on its aiohttp transport) or "httpx" (the SDK's default
    transport, about half as fast per call). The connection pool is sized to `max_connections`,
    which should be the run's concurrency.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        max_connections: int = 100,
        transport: str = "direct",
        timeout_s: float = 600.0,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        self._api_key = api_key
        self._secrets = (api_key,)
        self.base_url = base_url
        self.transport = transport
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        # As the SDK resolves it: the argument, else ANTHROPIC_BASE_URL, else the public API.
        self._base = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self._adapt_schema = _SchemaAdapter()
        self._sdk: AsyncAnthropic | None = None
        self._direct: DirectPost | None = None
        if transport == "direct":
            self._direct = DirectPost(
                url=f"{self._base}/v1/messages",
                headers=sdk_headers(api_key),
                max_connections=max_connections,
                timeout_s=timeout_s,
            )
        else:
            self._sdk = self._make_sdk()
        # Set once any request got an HTTP response (success or API error): the URL is right.
        self._reached_server = False

    def _make_sdk(self) -> AsyncAnthropic:
        import anthropic
        import httpx2

        limits = httpx2.Limits(
            max_connections=self._max_connections, max_keepalive_connections=self._max_connections
        )
        timeout = httpx2.Timeout(self._timeout_s, connect=min(10.0, self._timeout_s))
        http_client: httpx2.AsyncClient
        if self.transport in ("aiohttp", "direct"):
            http_client = anthropic.DefaultAioHttpClient(limits=limits, timeout=timeout)
        else:
            http_client = anthropic.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
        return anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self._base,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )

    @property
    def _client(self) -> AsyncAnthropic:
        """The SDK's client: built with this one on the SDK transports, on first use (the Batches
        API) on the direct one."""
        if self._sdk is None:
            self._sdk = self._make_sdk()
        return self._sdk

    def __repr__(self) -> str:  # never show the key
        return f"AnthropicLLM(base_url={self.base_url!r}, transport={self.transport!r})"

    def _params(self, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        params = dict(request)
        stream = bool(params.pop("stream", False))
        # Through the SDK, a parameter this SDK version has no argument for (a client such as
        # Claude Code, through the runtime's proxy, sends newer ones) goes to the API as sent, in
        # the body. The direct path sends every parameter as sent anyway.
        if self._direct is None:
            extra = {k: params.pop(k) for k in list(params) if k not in _sdk_params()}
            if extra:
                params["extra_body"] = {**params.get("extra_body", {}), **extra}
        output_config = params.get("output_config")
        if isinstance(output_config, dict):
            fmt = output_config.get("format")
            if isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict):
                fmt = {**fmt, "schema": self._adapt_schema(fmt["schema"])}
                params["output_config"] = {**output_config, "format": fmt}
        return params, stream

    def _url(self) -> str:
        """The API's URL as tried, without any user:password part."""
        parts = urllib.parse.urlsplit(self._base)
        if "@" in parts.netloc:
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        return urllib.parse.urlunsplit(parts)

    def _translate(self, exc: BaseException) -> LLMError:
        if getattr(exc, "status_code", None) is not None:  # the SDK's APIStatusError
            self._reached_server = True
        error = translate_error(exc, secrets=self._secrets)
        reason = unreachable_reason(exc)
        if isinstance(error, RetryableError) and reason and not self._reached_server:
            where = redact(self._url(), self._secrets)
            return FatalError(
                message=(
                    f"cannot reach the Messages API at {where}: {reason}, and it has not "
                    "answered any request of this run (check ANTHROPIC_BASE_URL, or unset it "
                    "to use https://api.anthropic.com)"
                )
            )
        return error

    async def create(
        self,
        request: dict[str, Any],
        *,
        stream: bool = False,
        on_delta: Callable[[str], None] | None = None,
    ) -> LLMResponse:
        """Send one Messages API request; no retries. Raises `RetryableError` or `FatalError`.

        `request` holds Messages API parameters (and may hold `extra_headers`). A request key
        `"stream": True` is taken out and means the same as `stream=True`: the request is
        streamed (over aiohttp directly, or through the SDK's streaming helper on httpx) and the
        final message is assembled from the events, so the result has the same shape either
        way. `on_delta`, when streaming, receives each text delta as it arrives (live views; it
        must not block).
        """
        params, stream_key = self._params(request)
        started = time.perf_counter()
        headers: Mapping[str, str]
        try:
            if (stream or stream_key) and self._direct is not None:
                status, headers, got = await self._direct.stream(params, on_delta)
                self._reached_server = True
                if isinstance(got, bytes):
                    raise self._status_error(status, headers, got)
                if got.error is not None:
                    raise self._stream_error(status, headers, got.error)
                if not got.stopped or got.message is None:
                    where = "mid-message" if got.events else "before any event"
                    raise RetryableError(
                        message=(
                            f"the response stream ended {where}, without message_stop: "
                            "the reply is incomplete"
                        ),
                        kind="connection",
                    )
                message = normalise_message(got.message)
            elif stream or stream_key:
                async with self._client.messages.stream(**params) as events:
                    self._reached_server = True
                    seen = 0
                    stopped = False
                    async for event in events:
                        seen += 1
                        stopped = stopped or event.type == "message_stop"
                        if on_delta is not None and event.type == "text":
                            on_delta(event.text)
                    if not stopped:
                        where = "mid-message" if seen else "before any event"
                        raise RetryableError(
                            message=(
                                f"the response stream ended {where}, without message_stop: "
                                "the reply is incomplete"
                            ),
                            kind="connection",
                        )
                    final = await events.get_final_message()
                    headers = events.response.headers
                message = normalise_message(final.model_dump(mode="json", exclude_none=True))
            elif self._direct is not None:
                status, headers, data = await self._direct.post(params)
                self._reached_server = True
                if status >= 400:
                    raise self._status_error(status, headers, data)
                message = _decode(data, self._secrets)
            else:
                raw = await self._client.messages.with_raw_response.create(**params)
                self._reached_server = True
                headers = raw.headers
                message = _decode(await raw.read(), self._secrets)
        except LLMError:
            raise
        except Exception as exc:
            raise self._translate(exc) from None
        latency = time.perf_counter() - started
        ratelimit = read_ratelimit(headers)
        return LLMResponse(
            message=message,
            usage=usage_from_message(message),
            request_id=headers.get("request-id"),
            latency_s=latency,
            ratelimit=ratelimit if has_ratelimit(ratelimit) else None,
        )

    # --- Message Batches ---------------------------------------------------------------------

    async def batch_create(self, requests: list[tuple[str, dict[str, Any]]]) -> str:
        """Submit `(custom_id, request)` pairs as one batch; returns the batch id."""
        items = []
        for custom_id, request in requests:
            params, _ = self._params(request)
            params.pop("extra_headers", None)
            params.update(params.pop("extra_body", {}))  # a batch item is the body itself
            items.append({"custom_id": custom_id, "params": params})
        try:
            batch = await self._client.messages.batches.create(requests=items)  # type: ignore[arg-type]
        except Exception as exc:
            raise self._translate(exc) from None
        return str(batch.id)

    async def batch_status(self, batch_id: str) -> str:
        """`in_progress`, `canceling` or `ended`."""
        try:
            batch = await self._client.messages.batches.retrieve(batch_id)
        except Exception as exc:
            raise self._translate(exc) from None
        return str(batch.processing_status)

    async def batch_results(self, batch_id: str) -> dict[str, BatchItem]:
        """Every item of an ended batch by custom id."""
        out: dict[str, BatchItem] = {}
        try:
            decoder = await self._client.messages.batches.results(batch_id)
            async for item in decoder:
                result = item.result
                if result.type == "succeeded":
                    message = normalise_message(
                        result.message.model_dump(mode="json", exclude_none=True)
                    )
                    out[item.custom_id] = BatchItem(
                        status="succeeded", message=message, usage=usage_from_message(message)
                    )
                elif result.type == "errored":
                    error = result.error.error
                    out[item.custom_id] = BatchItem(
                        status="errored",
                        error=f"{getattr(error, 'type', 'error')}: {getattr(error, 'message', '')}",
                    )
                else:
                    out[item.custom_id] = BatchItem(status=str(result.type))
        except Exception as exc:
            raise self._translate(exc) from None
        return out

    def _status_error(self, status: int, headers: Mapping[str, str], data: bytes) -> LLMError:
        """An error response of the direct path, classified as through the SDK."""
        return translate_status(status, headers, decode_body(data), secrets=self._secrets)

    def _stream_error(
        self, status: int, headers: Mapping[str, str], body: dict[str, Any]
    ) -> LLMError:
        """An `error` event inside a 200 stream, classified as the SDK's stream helper raises it."""
        return translate_status(status, headers, body, secrets=self._secrets)

    async def aclose(self) -> None:
        if self._direct is not None:
            await self._direct.aclose()
        if self._sdk is not None:
            await self._sdk.close()


def make_llm(
    settings: Settings,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    simulate: bool = False,
    concurrency: int = 50,
    environ: Mapping[str, str] = os.environ,
) -> AnthropicLLM:
    """The run's client from settings and the environment (`ANTHROPIC_API_KEY`,
    `ANTHROPIC_BASE_URL`). With `simulate=True` it talks to the simulator at `base_url` with a
    dummy key; without a key otherwise it is a `UsageError` that names both ways out."""
    if simulate:
        if not base_url:
            raise ValueError("simulate=True needs the simulator's base_url")
        key = api_key or SIMULATOR_API_KEY
    else:
        key = api_key or environ.get("ANTHROPIC_API_KEY", "").strip()
        if not key:
            raise UsageError(NO_KEY_MESSAGE)
        base_url = base_url or environ.get("ANTHROPIC_BASE_URL") or None
    return AnthropicLLM(
        api_key=key,
        base_url=base_url,
        max_connections=max(1, concurrency),
        transport=settings.engine.transport,
        timeout_s=settings.engine.timeout,
    )
