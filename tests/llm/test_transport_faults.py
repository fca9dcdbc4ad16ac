"""Transport faults the client must classify right: a cut stream, a wrong base URL.

- A streamed reply that ends before `message_stop`, with the body ended cleanly (a proxy or load
  balancer cutting it), was accepted as a complete reply without a stop_reason. It is a
  `RetryableError` now.
- Connection refused before the client ever reached the server (a wrong `ANTHROPIC_BASE_URL`)
  was retried toward the 15-minute horizon. It is a `FatalError` that names the URL, never the
  key; once the server has answered, the same refusal is retryable (a restart).

`RawServer` is a loopback socket speaking just enough HTTP/1.1 to send scripted bytes, so a test
controls exactly where a body ends and when the port stops listening.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from llm_fake_api import MESSAGE, FakeAPI, _sse

from orchestrator.errors import FatalError, RetryableError
from orchestrator.llm import AnthropicLLM

API_KEY = "sk-ant-api03-TESTSECRET-transport-0123456789"
TRANSPORTS = ("aiohttp", "httpx")


def request(scenario: str = "ok", *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_headers": {"x-test-scenario": scenario},
        "stream": stream,
    }


def _no_key(error: BaseException) -> None:
    assert API_KEY not in str(error) and API_KEY not in repr(error)


class RawServer:
    """Answers each connection's request with the next scripted response, then closes it."""

    def __init__(self, responses: list[bytes]) -> None:
        self.responses = list(responses)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.served = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self.responses:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                _read_request(conn)
                conn.sendall(self.responses.pop(0))
                self.served += 1

    def stop_listening(self) -> None:
        """From now on a connect() to the port is refused."""
        self.sock.close()
        self._thread.join(timeout=30)


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _response(body: bytes, content_type: str, *, framed: bool = True) -> bytes:
    """`framed`: with Content-Length; else the body ends when the connection closes (legal
    HTTP/1.1, and a clean end as far as the client can tell)."""
    head = [b"HTTP/1.1 200 OK", f"content-type: {content_type}".encode(), b"request-id: req_raw"]
    head.append(f"content-length: {len(body)}".encode() if framed else b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _events_without_stop() -> bytes:
    start = {**MESSAGE, "content": [], "stop_reason": None}
    block = {"type": "text", "text": ""}
    delta = {"type": "text_delta", "text": "Hello"}
    return b"".join(
        [
            _sse("message_start", {"type": "message_start", "message": start}),
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            ),
            _sse(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            ),
        ]
    )


@pytest.fixture(params=TRANSPORTS)
async def llm(request: pytest.FixtureRequest, fake_api: FakeAPI) -> AsyncIterator[AnthropicLLM]:
    client = AnthropicLLM(
        api_key=API_KEY, base_url=fake_api.base_url, transport=request.param, timeout_s=5.0
    )
    yield client
    await client.aclose()


@pytest.fixture
def free_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


# --- (4) a stream cut before message_stop -----------------------------------------------------


async def test_a_stream_cut_before_message_stop_is_retryable(llm: AnthropicLLM) -> None:
    """Every event but `message_stop` (the stop_reason included), then a clean end of body."""
    with pytest.raises(RetryableError) as info:
        await llm.create(request("stream-cut", stream=True))
    assert "ended mid-message, without message_stop" in info.value.message
    assert info.value.kind == "connection"


async def test_a_stream_with_no_events_is_retryable(llm: AnthropicLLM) -> None:
    with pytest.raises(RetryableError) as info:
        await llm.create(request("stream-empty", stream=True))
    assert "ended before any event, without message_stop" in info.value.message


async def test_a_complete_stream_is_still_a_reply(llm: AnthropicLLM) -> None:
    response = await llm.create(request(stream=True))
    assert response.message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("framed", [True, False], ids=["content-length", "until-close"])
async def test_a_raw_stream_cut_mid_message_is_retryable(transport: str, framed: bool) -> None:
    server = RawServer([_response(_events_without_stop(), "text/event-stream", framed=framed)])
    llm = AnthropicLLM(api_key=API_KEY, base_url=server.base_url, transport=transport)
    try:
        with pytest.raises(RetryableError) as info:
            await llm.create(request(stream=True))
    finally:
        await llm.aclose()
        server.stop_listening()
    assert "ended mid-message, without message_stop" in info.value.message
    assert server.served == 1
    _no_key(info.value)


# --- (9) a wrong base URL ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_refused_before_any_answer_is_fatal_and_names_the_url(
    transport: str, free_port: int
) -> None:
    url = f"http://127.0.0.1:{free_port}"
    llm = AnthropicLLM(api_key=API_KEY, base_url=url, transport=transport)
    try:
        with pytest.raises(FatalError) as info:
            await llm.create(request())
    finally:
        await llm.aclose()
    message = str(info.value)
    assert url in message and "connection refused" in message
    assert "ANTHROPIC_BASE_URL" in message
    _no_key(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_refused_after_the_server_answered_is_retryable(transport: str) -> None:
    server = RawServer([_response(json.dumps(MESSAGE).encode(), "application/json")])
    llm = AnthropicLLM(api_key=API_KEY, base_url=server.base_url, transport=transport)
    try:
        first = await llm.create(request())
        assert first.message["id"] == MESSAGE["id"]
        server.stop_listening()
        with pytest.raises(RetryableError) as info:
            await llm.create(request())
    finally:
        await llm.aclose()
    assert info.value.kind == "connection"
    _no_key(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_api_error_counts_as_reached(transport: str) -> None:
    """A 529 proves the URL is right: a later refusal is a restart, worth retrying."""
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    overloaded = _response(body.encode(), "application/json").replace(b"200 OK", b"529 Overloaded")
    server = RawServer([overloaded])
    llm = AnthropicLLM(api_key=API_KEY, base_url=server.base_url, transport=transport)
    try:
        with pytest.raises(RetryableError) as first:
            await llm.create(request())
        assert first.value.status == 529
        server.stop_listening()
        with pytest.raises(RetryableError) as info:
            await llm.create(request())
    finally:
        await llm.aclose()
    assert info.value.kind == "connection"
