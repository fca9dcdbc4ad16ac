"""The hot path: a non-streamed Messages request POSTed straight over one aiohttp session.

With hundreds of workers the client's CPU per call bounds throughput, and most of it was the
SDK building each request (copying the parameters, validating them, building httpx2 URL, header
and request models) before its aiohttp transport sent the same bytes. Here the body is encoded
once with `json.dumps` and sent with the headers the SDK itself would send (its
`default_headers`: version, auth, user agent), computed once per client.

Invariants:
- Only non-streamed `messages.create` goes this way; streaming and the Batches API stay on the SDK.
- Failures look exactly as they do through the SDK's aiohttp transport: aiohttp's exceptions
  are raised again as the httpx2 exceptions that transport maps them to (with the original as
  `__cause__`, so "connection refused" is still found), and an HTTP error status is made into
  the SDK's own `APIStatusError` by the caller, so `_errors.translate_error` classifies both.
- The session is created on first use, inside the running event loop, and closed by `aclose`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

# Parameters the SDK takes that are not part of the request body.
_NOT_BODY = frozenset({"extra_headers", "extra_body", "extra_query", "timeout"})


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
        """(status, headers, body) of one POST /v1/messages; raises httpx2 transport errors."""
        body = {k: v for k, v in params.items() if k not in _NOT_BODY}
        extra_body = params.get("extra_body")
        if extra_body:
            body.update(extra_body)
        headers = self._headers
        extra = params.get("extra_headers")
        if extra:
            headers = {**headers, **extra}
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        session = self._session or self._open()
        try:
            async with session.post(self.url, data=data, headers=headers) as response:
                return response.status, response.headers, await response.read()
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _as_httpx(exc: Exception) -> Exception:
    """aiohttp's exception as the httpx2 one the SDK's aiohttp transport would raise."""
    import aiohttp
    import httpx2

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx2.ConnectTimeout(message)
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return httpx2.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx2.TimeoutException(message)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx2.ProxyError(message)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx2.ReadError(message)
    if isinstance(exc, aiohttp.NonHttpUrlClientError | aiohttp.InvalidUrlClientError):
        return httpx2.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx2.ConnectError(message)
    if isinstance(exc, json.JSONDecodeError | TypeError | ValueError):
        return exc  # a request that cannot be encoded: the caller's bug, shown as is
    if isinstance(exc, aiohttp.ClientError):
        return httpx2.TransportError(message)
    return exc
