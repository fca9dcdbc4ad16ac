"""A tiny Messages API stand-in on loopback (starlette + uvicorn in a thread).

Independent of `orchestrator/sim` on purpose: these tests pin the SDK boundary (headers, errors,
SSE) with canned replies chosen per request by the `x-test-scenario` header.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [
        {"type": "text", "text": "Hello there."},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a.txt"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "output_tokens": 34,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 200,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    },
}

RATELIMIT_HEADERS = {
    "request-id": "req_ok_1",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-input-tokens-limit": "2000000",
    "anthropic-ratelimit-input-tokens-remaining": "1999000",
    "anthropic-ratelimit-output-tokens-limit": "400000",
    "anthropic-ratelimit-output-tokens-remaining": "399000",
}


def _error(status: int, error_type: str, message: str, **headers: str) -> Response:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return JSONResponse(body, status_code=status, headers={"request-id": "req_err_1", **headers})


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream_events(error_midway: bool, cut: bool = False) -> AsyncIterator[bytes]:
    """The reply as SSE; `cut`: everything but `message_stop`, then a clean end of the body."""
    start = {**MESSAGE, "content": [], "stop_reason": None}
    start["usage"] = {**MESSAGE["usage"], "output_tokens": 1}
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    for piece in ("Hello", " there."):
        yield _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
    if error_midway:
        yield _sse(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
        return
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    tool = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}
    yield _sse(
        "content_block_start", {"type": "content_block_start", "index": 1, "content_block": tool}
    )
    yield _sse(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"file_path": "a.txt"}'},
        },
    )
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 1})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 34},
        },
    )
    if cut:
        return
    yield _sse("message_stop", {"type": "message_stop"})


async def _no_events() -> AsyncIterator[bytes]:
    return
    yield b""


@dataclass
class FakeAPI:
    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)


def app(api: FakeAPI) -> Starlette:
    async def messages(request: Request) -> Response:
        body = await request.json()
        api.requests.append({"headers": dict(request.headers), "body": body})
        scenario = request.headers.get("x-test-scenario", "ok")
        if scenario == "429":
            return _error(
                429,
                "rate_limit_error",
                "Number of request tokens exceeded",
                **{"retry-after-ms": "1500", "retry-after": "2"},
            )
        if scenario == "429-seconds":
            return _error(429, "rate_limit_error", "Too many requests", **{"retry-after": "7"})
        if scenario == "529":
            return _error(529, "overloaded_error", "Overloaded")
        if scenario == "500":
            return _error(500, "api_error", "Internal server error")
        if scenario == "400":
            return _error(400, "invalid_request_error", "max_tokens: must be at least 1")
        if scenario == "401":
            key = request.headers.get("x-api-key") or request.headers.get("authorization", "")
            return _error(401, "authentication_error", f"invalid x-api-key {key}")
        if scenario == "404":
            return _error(404, "not_found_error", "model: claude-nope")
        if scenario == "slow":
            await asyncio.sleep(3)
        if scenario == "garbage":
            return Response(b"{not json", media_type="application/json", headers=RATELIMIT_HEADERS)
        if scenario == "stream-empty":
            return StreamingResponse(
                _no_events(), media_type="text/event-stream", headers=RATELIMIT_HEADERS
            )
        if body.get("stream"):
            return StreamingResponse(
                _stream_events(scenario == "stream-error", cut=scenario == "stream-cut"),
                media_type="text/event-stream",
                headers=RATELIMIT_HEADERS,
            )
        return JSONResponse(MESSAGE, headers=RATELIMIT_HEADERS)

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])
