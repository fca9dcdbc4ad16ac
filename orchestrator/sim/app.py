"""The simulator's HTTP face: the Messages API routes, on Starlette.

Per request, in the order the real API would: authentication (401), validation (400, 404 for an
unknown model), an injected fault drawn from an RNG seeded by (seed, request number), rate limits
(429), the prompt-cache lookup, latency, then a scripted or generated reply, plain JSON or SSE.
The cache writes of a reply become readable when its response starts. A `disconnect` fault starts
the response and returns without finishing it, which makes uvicorn drop the connection: the
client sees a broken transfer, never a hang. `stream_error` ends a stream with an `error` event,
`stream_cut` ends it cleanly before `message_stop`. Everything runs on the server's single event
loop, so the app's state (rule counters, prompt cache, rate-limit buckets, batches) needs no
lock; only the `RequestLog`, read from other threads, has one.

It is over 600 lines because it is the route table of the whole API surface (messages, tokens,
batches, models) in one place; the checks, cache, replies and models are modules of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orchestrator.sim.cache import CacheUsage, PromptCache, usage_for
from orchestrator.sim.config import FAULT_KINDS, SimConfig
from orchestrator.sim.log import LoggedRequest, RequestLog
from orchestrator.sim.models import Catalog
from orchestrator.sim.ratelimit import RateLimiter, rfc3339
from orchestrator.sim.replies import (
    Conversation,
    Reply,
    RequestError,
    RuleBook,
    count_input_tokens,
    make_reply,
    message_id,
)
from orchestrator.sim.validate import validate_message_request

ABORT_LOG_MESSAGE = "ASGI callable returned without completing response."
"""What uvicorn logs when a `disconnect` fault abandons a response; the server filters it out."""

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_FAULT_ERRORS = {
    "429": (429, "rate_limit_error", "Number of requests exceeds your rate limit (simulated)."),
    "529": (529, "overloaded_error", "Overloaded (simulated)."),
    "500": (500, "api_error", "Internal server error (simulated)."),
}
_STREAM_ERROR = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded (simulated, mid-stream)."},
}
_TEXT_CHUNK = 24
_JSON_CHUNK = 32
_MODELS_PAGE_MAX = 1000


def _now_iso(ts: float | None = None) -> str:
    return rfc3339(time.time() if ts is None else ts)


class SimResponse(Response):
    """A complete body, or SSE chunks; optionally abandoned part way (the disconnect fault).

    `on_start` runs once the status line is sent (the response "has begun"), `on_done` at the end.
    """

    def __init__(
        self,
        status: int,
        *,
        body: bytes = b"",
        chunks: list[bytes] | None = None,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
        abort: bool = False,
        send_body: bool = True,
    ) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self._chunks = chunks
        self._extra = dict(headers or {})
        self._media = media_type
        self._abort = abort
        self._send_body = send_body
        self.on_start: Callable[[], None] | None = None
        self.on_done: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._send(send)
        finally:
            if self.on_done is not None:
                self.on_done()

    async def _send(self, send: Send) -> None:
        headers = {"content-type": self._media, **self._extra}
        if self._chunks is None:
            headers["content-length"] = str(len(self.body))
        else:
            headers["cache-control"] = "no-cache"
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": self.status_code, "headers": raw})
        if self.on_start is not None:
            self.on_start()
        if not self._send_body:  # HEAD: the headers of a GET, no body
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if self._chunks is None:
            if self._abort:  # half the promised body, then drop the connection
                half = self.body[: len(self.body) // 2]
                await send({"type": "http.response.body", "body": half, "more_body": True})
                return
            await send({"type": "http.response.body", "body": self.body, "more_body": False})
            return
        chunks = self._chunks[: max(1, len(self._chunks) // 2)] if self._abort else self._chunks
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await anyio.lowlevel.checkpoint()  # let the client read as it goes
        if self._abort:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class _Batch:
    id: str
    requests: list[dict[str, Any]]
    created_at: float
    created_mono: float
    status: str = "in_progress"  # in_progress | canceling | ended
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self, base_url: str) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.status == "ended":
            counts.update(self.counts)
        else:
            counts["processing"] = len(self.requests)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": counts,
            "created_at": _now_iso(self.created_at),
            "expires_at": _now_iso(self.created_at + 86400),
            "ended_at": _now_iso(self.ended_at) if self.ended_at else None,
            "cancel_initiated_at": (
                _now_iso(self.cancel_initiated_at) if self.cancel_initiated_at else None
            ),
            "archived_at": None,
            "results_url": (
                f"{base_url}/v1/messages/batches/{self.id}/results"
                if self.status == "ended"
                else None
            ),
        }


class _SimState:
    """Everything the app remembers between requests. Touched only from the server's loop."""

    def __init__(self, config: SimConfig, log: RequestLog) -> None:
        self.config = config
        self.log = log
        self.rules = RuleBook(config.rules)
        self.cache = PromptCache()
        self.catalog = Catalog(config.models)
        self.requests_seen = 0  # /v1/messages requests, numbering the fault draws
        self.limiter = RateLimiter(config.rate_limits)
        self.batches: dict[str, _Batch] = {}
        self.ids = random.Random(f"{config.seed}/ids")

    def new_id(self, prefix: str) -> str:
        return prefix + "".join(self.ids.choice("0123456789abcdef") for _ in range(24))

    # -- messages

    def account(self, body: dict[str, Any]) -> CacheUsage:
        """The prompt-cache reads and (pending) writes of a validated request."""
        model = self.catalog.find(str(body.get("model")))
        return self.cache.account(body, model.cache_minimum if model is not None else 0)

    def answer(
        self,
        body: dict[str, Any],
        headers: dict[str, str],
        cached: CacheUsage,
        *,
        tier: str = "standard",
    ) -> dict[str, Any]:
        """The complete message for a validated request (raises RequestError for rule errors)."""
        conv = Conversation.of(body)
        rule = self.rules.match(conv, headers)
        reply: Reply = make_reply(body, conv, self.config, rule)
        return {
            "id": message_id(self.ids),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": usage_for(body, reply.content, cached, tier=tier),
        }


# -- response helpers ---------------------------------------------------------------------------


def _json(
    status: int, payload: Any, request_id: str, headers: dict[str, str] | None = None
) -> SimResponse:
    return SimResponse(
        status,
        body=json.dumps(payload).encode(),
        headers={"request-id": request_id, **(headers or {})},
    )


def _error(
    status: int,
    message: str,
    request_id: str,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
) -> SimResponse:
    payload = {
        "type": "error",
        "error": {"type": kind or _ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": request_id,
    }
    return _json(status, payload, request_id, headers)


def _retry_headers(seconds: float) -> dict[str, str]:
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(int(seconds * 1000)),
    }


def _sse_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def sse_chunks(message: dict[str, Any]) -> list[bytes]:
    """The SSE events for a message, exactly as the Messages API streams them."""
    event = _sse_event

    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    out = [event("message_start", {"type": "message_start", "message": start})]
    out.append(event("ping", {"type": "ping"}))
    for index, block in enumerate(message["content"]):
        opening: dict[str, Any]
        if block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            text = str(block.get("thinking", ""))
            deltas = [
                {"type": "thinking_delta", "thinking": text[i : i + _TEXT_CHUNK]}
                for i in range(0, len(text), _TEXT_CHUNK)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "tool_use":
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            text = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": text[i : i + _JSON_CHUNK]}
                for i in range(0, len(text), _JSON_CHUNK)
            ]
        else:
            opening = {"type": "text", "text": ""}
            text = str(block.get("text", ""))
            deltas = [
                {"type": "text_delta", "text": text[i : i + _TEXT_CHUNK]}
                for i in range(0, len(text), _TEXT_CHUNK)
            ]
        out.append(
            event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        out.extend(
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": d},
            )
            for d in deltas
        )
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    final_usage = {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
    }
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    out.append(
        event("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    )
    out.append(event("message_stop", {"type": "message_stop"}))
    return out


# -- routes -------------------------------------------------------------------------------------

Handler = Callable[[Request, Any, LoggedRequest], Awaitable[SimResponse]]


def _route(state: _SimState, handler: Handler, *, auth: bool = True) -> Callable[..., Any]:
    """Wrap a handler: log the request, count it in flight, check the key, map RequestError."""

    async def endpoint(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.body()
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        entry = LoggedRequest(
            ts=time.time(),
            method=request.method,
            path=request.url.path,
            body=body if isinstance(body, dict) else None,
            headers=headers,
            step=headers.get("x-orchestrate-step"),
            task=headers.get("x-orchestrate-task"),
            agent=headers.get("x-orchestrate-agent"),
            request_id=state.new_id("req_sim"),
            stream=isinstance(body, dict) and body.get("stream") is True,
        )
        rid = entry.request_id or ""
        state.log.add(entry)
        state.log.enter()
        try:
            if auth and not (headers.get("x-api-key") or headers.get("authorization")):
                response = _error(
                    401,
                    "x-api-key header is required (or Authorization: Bearer <key>)",
                    rid,
                )
            elif bad_json:
                response = _error(400, "request body is not valid JSON", rid)
            else:
                try:
                    response = await handler(request, body, entry)
                except RequestError as exc:
                    response = _error(exc.status, str(exc), rid, kind=exc.kind)
        except BaseException:
            state.log.leave()
            raise
        entry.status = response.status_code
        response.on_done = state.log.leave
        return response

    return endpoint


def create_app(config: SimConfig, log: RequestLog | None = None) -> Starlette:
    """The simulator as an ASGI app. `log` (created when omitted) is at `app.state.log`."""
    state = _SimState(config, log if log is not None else RequestLog())

    async def messages(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        rid = entry.request_id or ""
        validate_message_request(body, state.catalog)
        n = state.requests_seen
        state.requests_seen += 1
        draw = random.Random(f"{config.seed}/fault/{n}")
        roll = draw.random()
        fault = None
        for kind in FAULT_KINDS:
            p = config.faults.get(kind, 0.0)
            if roll < p:
                fault = kind
                break
            roll -= p
        delay = config.latency_s * (1 + config.jitter * (2 * draw.random() - 1))
        entry.latency_s = delay
        if fault in _FAULT_ERRORS:
            entry.fault = fault
            status, kind, text = _FAULT_ERRORS[str(fault)]
            extra = _retry_headers(config.retry_after_s) if status == 429 else {}
            return _error(status, text, rid, kind=kind, headers=extra)
        wait = state.limiter.acquire(count_input_tokens(body))
        if wait is not None:
            entry.fault = "rate_limit"
            headers = {**state.limiter.headers(), **_retry_headers(wait)}
            return _error(
                429,
                "This request would exceed your organization's rate limit (simulated).",
                rid,
                kind="rate_limit_error",
                headers=headers,
            )
        cached = state.account(body)  # looked up on arrival; the latency is the model at work
        if not config.cache_after_response_start:
            state.cache.commit(cached)
        if delay > 0:
            await anyio.sleep(delay)
        message = state.answer(body, entry.headers, cached)
        state.limiter.spend_output(message["usage"]["output_tokens"])
        headers = {"request-id": rid, **state.limiter.headers()}
        if fault in ("stream_error", "stream_cut") and not entry.stream:
            fault = None  # stream faults leave plain requests alone
        abort = fault == "disconnect"
        if fault is not None:
            entry.fault = fault
        else:
            entry.usage = dict(message["usage"])
        response: SimResponse
        if entry.stream:
            chunks = sse_chunks(message)
            if fault == "stream_error":  # some content, then the error event, then the end
                chunks = [*chunks[:4], _sse_event("error", _STREAM_ERROR)]
            elif fault == "stream_cut":  # a clean end before message_delta / message_stop
                chunks = chunks[: max(1, min(len(chunks) - 2, len(chunks) // 2))]
            response = SimResponse(
                200,
                chunks=chunks,
                headers=headers,
                media_type="text/event-stream; charset=utf-8",
                abort=abort,
            )
        else:
            body_bytes = json.dumps(message).encode()
            response = SimResponse(200, body=body_bytes, headers=headers, abort=abort)
        response.on_start = lambda: state.cache.commit(cached)
        return response

    async def count_tokens(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        validate_message_request(body, state.catalog, count_only=True)
        return _json(200, {"input_tokens": count_input_tokens(body)}, entry.request_id or "")

    async def models_list(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        query = request.query_params
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise RequestError("limit: Input should be a valid integer") from None
        if not 1 <= limit <= _MODELS_PAGE_MAX:
            raise RequestError(f"limit: Input should be between 1 and {_MODELS_PAGE_MAX}")
        if "after_id" in query and "before_id" in query:
            raise RequestError("after_id and before_id cannot both be given")
        page = state.catalog.page(
            limit=limit, after_id=query.get("after_id"), before_id=query.get("before_id")
        )
        return _json(200, page, entry.request_id or "")

    async def models_get(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        model_id = request.path_params["model_id"]
        model = state.catalog.find(model_id)
        if model is None:
            raise RequestError(f"model: {model_id}", status=404, kind="not_found_error")
        return _json(200, model.to_json(), entry.request_id or "")

    async def root(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        payload = json.dumps({"service": "orchestrate Messages API simulator", "ok": True})
        return SimResponse(
            200,
            body=payload.encode(),
            headers={"request-id": entry.request_id or ""},
            send_body=request.method != "HEAD",
        )

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def batch_create(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise RequestError("requests: Field required (a non-empty list)")
        seen: set[str] = set()
        for i, item in enumerate(requests):
            if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
                raise RequestError(f"requests.{i}.custom_id: Field required")
            if not isinstance(item.get("params"), dict):
                raise RequestError(f"requests.{i}.params: Field required")
            if item["custom_id"] in seen:
                raise RequestError(f"requests.{i}.custom_id: duplicate {item['custom_id']!r}")
            seen.add(item["custom_id"])
        batch = _Batch(
            id=state.new_id("msgbatch_sim"),
            requests=requests,
            created_at=time.time(),
            created_mono=time.monotonic(),
        )
        state.batches[batch.id] = batch
        return _json(200, batch.to_json(base_url(request)), entry.request_id or "")

    def find_batch(request: Request) -> _Batch:
        batch = state.batches.get(request.path_params["batch_id"])
        if batch is None:
            raise RequestError(
                f"message batch {request.path_params['batch_id']!r} not found",
                status=404,
                kind="not_found_error",
            )
        return batch

    def finish(batch: _Batch) -> None:
        """Process every request of a batch (no faults, no latency) and end it."""
        counts = {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for item in batch.requests:
            result: dict[str, Any]
            if batch.status == "canceling":
                result = {"type": "canceled"}
            else:
                try:
                    params = item["params"]
                    validate_message_request(params, state.catalog)
                    cached = state.account(params)
                    state.cache.commit(cached)
                    message = state.answer(params, {}, cached, tier="batch")
                    result = {"type": "succeeded", "message": message}
                except RequestError as exc:
                    err = {"type": exc.kind, "message": str(exc)}
                    result = {
                        "type": "errored",
                        "error": {"type": "error", "error": err, "request_id": None},
                    }
            counts[result["type"]] += 1
            batch.results.append({"custom_id": item["custom_id"], "result": result})
        batch.counts = counts
        batch.status = "ended"
        batch.ended_at = time.time()

    async def batch_get(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        batch = find_batch(request)
        if batch.status == "canceling" or (
            batch.status == "in_progress"
            and time.monotonic() - batch.created_mono >= config.latency_s
        ):
            finish(batch)
        return _json(200, batch.to_json(base_url(request)), entry.request_id or "")

    async def batch_list(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        data = [b.to_json(base_url(request)) for b in reversed(state.batches.values())]
        page = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        return _json(200, page, entry.request_id or "")

    async def batch_cancel(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        batch = find_batch(request)
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = time.time()
        return _json(200, batch.to_json(base_url(request)), entry.request_id or "")

    async def batch_delete(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        batch = find_batch(request)
        if batch.status != "ended":
            raise RequestError("cannot delete a batch that is still processing; cancel it first")
        del state.batches[batch.id]
        payload = {"id": batch.id, "type": "message_batch_deleted"}
        return _json(200, payload, entry.request_id or "")

    async def batch_results(request: Request, body: Any, entry: LoggedRequest) -> SimResponse:
        batch = find_batch(request)
        if batch.status != "ended":
            raise RequestError(f"message batch {batch.id!r} is still processing")
        lines = "".join(json.dumps(r) + "\n" for r in batch.results)
        return SimResponse(
            200,
            body=lines.encode(),
            headers={"request-id": entry.request_id or ""},
            media_type="application/x-jsonl",
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = "Not found" if status == 404 else "Method not allowed"
        return _error(
            status, f"{message}: {request.method} {request.url.path}", state.new_id("req_sim")
        )

    def route(path: str, handler: Handler, method: str, *, auth: bool = True) -> Route:
        return Route(path, _route(state, handler, auth=auth), methods=[method])

    routes = [
        route("/v1/messages", messages, "POST"),
        route("/v1/messages/count_tokens", count_tokens, "POST"),
        route("/v1/messages/batches", batch_create, "POST"),
        route("/v1/messages/batches", batch_list, "GET"),
        route("/v1/messages/batches/{batch_id}", batch_get, "GET"),
        route("/v1/messages/batches/{batch_id}", batch_delete, "DELETE"),
        route("/v1/messages/batches/{batch_id}/cancel", batch_cancel, "POST"),
        route("/v1/messages/batches/{batch_id}/results", batch_results, "GET"),
        route("/v1/models", models_list, "GET"),
        route("/v1/models/{model_id:path}", models_get, "GET"),
        route("/", root, "GET", auth=False),  # Starlette answers HEAD for a GET route
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.log = state.log
    app.state.sim = state
    return app


STOP_MESSAGE = "the simulator is stopping"


class AbortFilter(logging.Filter):
    """Drops uvicorn's complaint about the responses a `disconnect` fault abandons on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == ABORT_LOG_MESSAGE:
            return False
        # requests still sleeping out their latency when the server stops are cancelled on
        # purpose (see server.py); that is not an error worth a traceback
        return not _is_stop(record.exc_info[1] if record.exc_info else None)


def _is_stop(exc: BaseException | None) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_stop(inner) for inner in exc.exceptions)
    return isinstance(exc, asyncio.CancelledError) and STOP_MESSAGE in str(exc.args)
