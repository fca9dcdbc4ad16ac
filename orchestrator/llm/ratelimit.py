"""Reading the Messages API's rate-limit headers.

The engine's dispatcher adapts its concurrency from these numbers and honours `retry-after` on
429/529, so they are parsed here once, at the boundary, into plain data. Pure functions, no SDK.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from orchestrator.contracts import RateLimitInfo

_PREFIX = "anthropic-ratelimit-"
_FIELDS = {
    "requests-limit": "requests_limit",
    "requests-remaining": "requests_remaining",
    "input-tokens-limit": "input_tokens_limit",
    "input-tokens-remaining": "input_tokens_remaining",
    "output-tokens-limit": "output_tokens_limit",
    "output-tokens-remaining": "output_tokens_remaining",
}


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _lowered(headers: Mapping[str, str]) -> Mapping[str, str]:
    # httpx2.Headers is already case-insensitive; a plain dict (tests, the store) may not be.
    if isinstance(headers, dict):
        return {k.lower(): v for k, v in headers.items()}
    return headers


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (preferred) or `retry-after` (seconds or a date)."""
    headers = _lowered(headers)
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0)


def read_ratelimit(headers: Mapping[str, str]) -> RateLimitInfo:
    """`anthropic-ratelimit-*` and `retry-after*` headers -> `RateLimitInfo` (absent = None)."""
    headers = _lowered(headers)
    info = RateLimitInfo(retry_after=retry_after(headers))
    for suffix, name in _FIELDS.items():
        value = _int(headers.get(_PREFIX + suffix))
        if value is not None:
            setattr(info, name, value)
    return info


def has_ratelimit(info: RateLimitInfo) -> bool:
    """True when the response carried at least one rate-limit number."""
    return any(
        value is not None
        for value in (
            info.requests_limit,
            info.requests_remaining,
            info.input_tokens_limit,
            info.input_tokens_remaining,
            info.output_tokens_limit,
            info.output_tokens_remaining,
            info.retry_after,
        )
    )
