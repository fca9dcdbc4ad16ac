"""Token usage from a Messages API response body, read in full (cache writes split by TTL)."""

from __future__ import annotations

from typing import Any

from orchestrator.contracts import Usage


def _n(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def usage_from_message(message: dict[str, Any]) -> Usage:
    """The `usage` object of a message body as `Usage`; missing numbers are zero."""
    usage = message.get("usage") or {}
    split = usage.get("cache_creation") or {}
    return Usage(
        input_tokens=_n(usage.get("input_tokens")),
        output_tokens=_n(usage.get("output_tokens")),
        cache_creation_input_tokens=_n(usage.get("cache_creation_input_tokens")),
        cache_read_input_tokens=_n(usage.get("cache_read_input_tokens")),
        cache_creation_5m_input_tokens=_n(split.get("ephemeral_5m_input_tokens")),
        cache_creation_1h_input_tokens=_n(split.get("ephemeral_1h_input_tokens")),
    )
