"""Failed requests -> the engine's `RetryableError` / `FatalError`: SDK exceptions, the direct
transport's aiohttp exceptions, and error responses read by the direct transport.

Nothing of the SDK crosses this boundary: not its types, not its request objects (which hold the
Authorization header), not the API key. The classification decides the engine's backoff policy,
so it keys on the HTTP status first and the API's `error.type` second (an error sent mid-stream
arrives with status 200 and only a type).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterable, Mapping

from orchestrator.errors import FatalError, LLMError, RetryableError
from orchestrator.llm.ratelimit import retry_after

_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-]{8,}")
REDACTED = "[redacted]"

_RETRYABLE_TYPES = {
    "rate_limit_error": "rate_limit",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
    "api_error": "server",
}

_HINTS = {
    401: "check ANTHROPIC_API_KEY",
    403: "the API key lacks permission for this request",
    404: "check the model id in the workflow or configs",
    413: "the request is too large: shorten the prompt or context",
}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret and anything shaped like an Anthropic key replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _KEY_PATTERN.sub(REDACTED, text)


def _body_message(body: object) -> str | None:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return None


def _status_kind(status: int, error_type: str | None, should_retry: str | None) -> str | None:
    """The retry kind for a status error, or None when another try will not help."""
    if status == 429:
        return "rate_limit"
    if status == 529:
        return "overloaded"
    if error_type in _RETRYABLE_TYPES:
        return _RETRYABLE_TYPES[error_type]
    if status == 408:
        return "timeout"
    if status == 409 or status >= 500:
        return "server"
    if should_retry == "true":
        return "server"
    if 200 <= status < 400:
        # An `error` event inside a 200 stream whose type we do not know: transient by nature.
        return "server"
    return None


# getaddrinfo's "no such name" answers; EAI_AGAIN (a DNS server not answering) is transient.
_NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def unreachable_reason(exc: BaseException) -> str | None:
    """ "connection refused" or "host name not found" when that is what the transport's chain of
    causes says (the SDK wraps it two or three levels deep), else None."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        error = stack.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, socket.gaierror) and error.errno in _NO_SUCH_HOST:
            return "host name not found"
        for linked in (error.__cause__, error.__context__, getattr(error, "os_error", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return None


def decode_body(data: bytes) -> object:
    """An error response's body: its JSON, or its text when it is not JSON (as the SDK keeps it)."""
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _error_field(body: object, name: str) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    value = error.get(name) if isinstance(error, Mapping) else None
    return value if isinstance(value, str) else None


def translate_status(
    status: int, headers: Mapping[str, str], body: object, *, secrets: Iterable[str] = ()
) -> LLMError:
    """Classify an error response (or an `error` event inside a 200 stream) by its status, its
    body's `error.type` and its headers (`retry-after`, `x-should-retry`, `request-id`)."""
    error_type = _error_field(body, "type")
    request_id = headers.get("request-id")
    message = _error_field(body, "message") or _body_message(body) or f"HTTP {status} from the API"
    message = redact(message, secrets)
    kind = _status_kind(status, error_type, headers.get("x-should-retry"))
    if kind is not None:
        return RetryableError(
            message=message,
            status=status,
            error_type=error_type,
            request_id=request_id,
            kind=kind,
            retry_after=retry_after(headers),
        )
    hint = _HINTS.get(status)
    return FatalError(
        message=f"{message} ({hint})" if hint else message,
        status=status,
        error_type=error_type,
        request_id=request_id,
    )


def _connection_error(exc: BaseException, secrets: tuple[str, ...]) -> RetryableError:
    cause = exc.__cause__ or exc.__context__
    detail = str(cause or exc).strip() or type(cause or exc).__name__
    return RetryableError(message=redact(f"connection error: {detail}", secrets), kind="connection")


def _translate_aiohttp(exc: BaseException, secrets: tuple[str, ...]) -> LLMError | None:
    """An exception of the direct transport (aiohttp, or the loop's timeout), classified as the
    SDK's aiohttp transport would have it; None when it is not one."""
    import aiohttp

    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return RetryableError(message="request timed out", kind="timeout")
    if isinstance(exc, aiohttp.ClientError):
        return RetryableError(
            message=redact(f"connection error: {str(exc).strip() or type(exc).__name__}", secrets),
            kind="connection",
        )
    return None


def translate_error(exc: BaseException, *, secrets: Iterable[str] = ()) -> LLMError:
    """Classify an exception raised during one request: by the direct transport (aiohttp), or by
    the SDK or its transport. The SDK is imported only for an exception that came from it."""
    secrets = tuple(secrets)
    if isinstance(exc, LLMError):
        return exc
    origin = type(exc).__module__.partition(".")[0]
    if origin == "aiohttp" or isinstance(exc, TimeoutError):
        translated = _translate_aiohttp(exc, secrets)
        if translated is not None:
            return translated
    if origin not in ("anthropic", "httpx2", "httpcore2"):
        return FatalError(message=redact(f"{type(exc).__name__}: {exc}", secrets))

    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return RetryableError(message="request timed out", kind="timeout")
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return _connection_error(exc, secrets)
    if isinstance(exc, anthropic.APIStatusError):
        return translate_status(exc.status_code, exc.response.headers, exc.body, secrets=secrets)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return RetryableError(
            message="the API sent a response that could not be read",
            status=exc.status_code,
            kind="server",
        )
    return FatalError(message=redact(f"{type(exc).__name__}: {exc}", secrets))
