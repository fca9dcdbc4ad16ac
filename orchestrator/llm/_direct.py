"""The default transport: Messages requests POSTed straight over one aiohttp session.

With hundreds of workers the client's CPU per call bounds throughput, and most of it was the
SDK building each request (copying the parameters, validating them, building httpx2 URL, header
and request models) before its aiohttp transport sent the same bytes. Here the body is encoded
once (orjson) and sent with the headers the SDK sends (`sdk_headers`: version, auth,
user agent), and a streamed reply is put together from its events as the SDK's stream helper
does. The SDK itself is not imported: it costs ~45 MB and 1-2 s of CPU per process.

Invariants:
- Only Messages requests go this way; the Batches API stays on the SDK.
- aiohttp's exceptions reach the caller as they are (`_errors.translate_error` classifies them as
  the SDK's aiohttp transport would); an error status comes back as (status, headers, body) for
  `_errors.translate_status`, the function the SDK's own status errors go through.
- `sdk_headers` equals what the installed SDK sends for these names
  (`tests/llm/test_direct_path.py`); `API_VERSION` is the SDK's `anthropic-version`.
- The session is created on first use, inside the running event loop, and closed by `aclose`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import aiohttp

# Parameters the SDK takes that are not part of the request body.
_NOT_BODY = frozenset({"extra_headers", "extra_body", "extra_query", "timeout"})


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, with orjson (a request body is encoded once per call, 10,000 times in
    a large fan-out); what orjson refuses (an integer over 64 bits) goes through `json`."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """`json.loads`, through orjson when it can (see `dumps`); raises `ValueError` as json does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # what orjson refuses and json reads (a huge int), or its error


# The Messages API version the SDK this project is built against sends (anthropic._constants).
API_VERSION = "2026-10-21"


def sdk_headers(api_key: str) -> dict[str, str]:
    """The headers the SDK's `AsyncAnthropic` sends with every request that matter to the API:
    content negotiation, its user agent, the API version and the key (as a bearer token)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        sdk = version("anthropic")
    except PackageNotFoundError:  # pragma: no cover - it is a dependency
        sdk = "unknown"
    return {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": f"AsyncAnthropic/Python {sdk}",
        "anthropic-version": API_VERSION,
        "Authorization": f"Bearer {api_key}",
    }


class DirectPost:
    def __init__(
        self, *, url: str, headers: Mapping[str, str], max_connections: int, timeout_s: float
    ) -> None:
        self.url = url
        self._headers = dict(headers)
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(10.0, self._timeout_s), sock_read=self._timeout_s
        )
        # HTTPS_PROXY and friends are honoured, as the SDK's transport does; without them
        # trust_env stays off, since it also re-reads ~/.netrc (in a thread) for every request.
        proxied = any(
            os.environ.get(name)
            for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=proxied, auto_decompress=True
        )
        return self._session

    async def post(self, params: dict[str, Any]) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of one POST /v1/messages; raises aiohttp's errors."""
        data = self._encode(params)
        session = self._session or self._open()
        async with session.post(self.url, data=data, headers=self._with(params)) as response:
            return response.status, response.headers, await response.read()

    async def stream(
        self, params: dict[str, Any], on_delta: Callable[[str], None] | None
    ) -> tuple[int, Mapping[str, str], bytes | Stream]:
        """(status, headers, body or the read stream) of one streamed POST /v1/messages: an
        error status gives its body; a 2xx gives the stream's events, read to the end and put
        together as the SDK's stream helper would (`Stream`)."""
        session = self._session or self._open()
        request = session.post(
            self.url, data=self._encode({**params, "stream": True}), headers=self._with(params)
        )
        async with request as response:
            if response.status >= 400:
                return response.status, response.headers, await response.read()
            stream = Stream(on_delta)
            async for line in response.content:
                stream.feed(line)
                if stream.error is not None:  # the SDK stops at an error event too
                    break
            return response.status, response.headers, stream

    def _encode(self, params: dict[str, Any]) -> bytes:
        body = {k: v for k, v in params.items() if k not in _NOT_BODY}
        extra_body = params.get("extra_body")
        if extra_body:
            body.update(extra_body)
        return dumps(body)

    def _with(self, params: dict[str, Any]) -> dict[str, str]:
        extra = params.get("extra_headers")
        return {**self._headers, **extra} if extra else self._headers

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Stream:
    """A Messages SSE stream put together into the final message, as the SDK's stream helper
    does: blocks opened by `content_block_start`, grown by their deltas (text, tool input JSON,
    thinking, signature, citations), `message_delta`'s stop reason and usage merged in.
    `stopped` only once `message_stop` arrived; `error` holds an `error` event's body. Deltas are
    kept as lists and joined when their block stops: a long reply is thousands of deltas."""

    def __init__(self, on_delta: Callable[[str], None] | None) -> None:
        self._on_delta = on_delta
        self._event = ""
        self._data: list[str] = []
        self._parts: dict[tuple[int, str], list[str]] = {}  # (block index, field) -> deltas
        self.message: dict[str, Any] | None = None
        self.events = 0
        self.stopped = False
        self.error: dict[str, Any] | None = None

    def feed(self, raw: bytes) -> None:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if self._data:
                self._dispatch(self._event, "\n".join(self._data))
            self._event, self._data = "", []
        elif line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            self._event = line[6:].strip()

    def _dispatch(self, name: str, data: str) -> None:
        event = loads(data)
        kind = event.get("type", name)
        self.events += 1
        if kind == "message_start":
            self.message = dict(event["message"])
            self.message["content"] = list(self.message.get("content") or [])
        elif kind == "error":
            self.error = event
        elif self.message is None:
            return  # ping and the like before the message: nothing to add to
        elif kind == "content_block_start":
            self.message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            self._delta(int(event["index"]), event["delta"])
        elif kind == "content_block_stop":
            self._close(int(event["index"]))
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            for key in ("stop_reason", "stop_sequence", "container"):
                if key in delta:
                    self.message[key] = delta[key]
            usage = {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            self.message["usage"] = {**(self.message.get("usage") or {}), **usage}
        elif kind == "message_stop":
            self.stopped = True

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        kind = delta.get("type")
        if kind == "text_delta":
            self._parts.setdefault((index, "text"), []).append(delta["text"])
            if self._on_delta is not None:
                self._on_delta(delta["text"])
        elif kind == "input_json_delta":
            self._parts.setdefault((index, "input"), []).append(delta.get("partial_json", ""))
        elif kind == "thinking_delta":
            self._parts.setdefault((index, "thinking"), []).append(delta["thinking"])
        elif kind == "signature_delta":
            assert self.message is not None
            self.message["content"][index]["signature"] = delta["signature"]
        elif kind == "citations_delta":
            assert self.message is not None
            block = self.message["content"][index]
            block.setdefault("citations", []).append(delta["citation"])

    def _close(self, index: int) -> None:
        assert self.message is not None
        block = self.message["content"][index]
        for field in ("text", "thinking", "input"):
            parts = self._parts.pop((index, field), None)
            if parts is None:
                continue
            joined = "".join(parts)
            if field == "input":
                block["input"] = json.loads(joined) if joined else {}
            else:
                block[field] = block.get(field, "") + joined
