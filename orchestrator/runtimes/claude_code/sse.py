"""A whole Messages API response replayed as the server-sent events a streaming request expects.

The dispatcher returns one final message per call (it is what budgets, retries and the history
work on); Claude Code always asks for `stream: true`. So the proxy answers with the events the
API would have sent for that message: `message_start` (content empty, no stop reason),
`content_block_start`/`_delta`/`_stop` per block, `message_delta` (stop reason, usage),
`message_stop`. Replaying the message block by block gives a client exactly the content, ids and
usage of the message, which is what it keeps; only the timing of the tokens is lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def _block_events(index: int, block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    start = dict(block)
    if kind == "text":
        start["text"] = ""
        if block.get("text"):
            deltas.append({"type": "text_delta", "text": block["text"]})
    elif kind in _TOOL_BLOCKS:
        start["input"] = {}
        deltas.append(
            {"type": "input_json_delta", "partial_json": json.dumps(block.get("input") or {})}
        )
    elif kind == "thinking":
        start["thinking"] = ""
        start["signature"] = ""
        if block.get("thinking"):
            deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    # any other block (redacted thinking, server tool results) arrives whole in its start
    yield {"type": "content_block_start", "index": index, "content_block": start}
    for delta in deltas:
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def message_events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stream events of `message`, in the order the API sends them."""
    usage = dict(message.get("usage") or {})
    opening = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": min(1, int(usage.get("output_tokens") or 0))},
    }
    yield {"type": "message_start", "message": opening}
    for index, block in enumerate(message.get("content") or []):
        if isinstance(block, dict):
            yield from _block_events(index, block)
    yield {
        "type": "message_delta",
        "delta": {
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        },
        "usage": usage,
    }
    yield {"type": "message_stop"}


def encode(event: dict[str, Any]) -> bytes:
    """One event as SSE bytes: `event: <type>` and its JSON `data`."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def error_event(error_type: str, message: str) -> bytes:
    return encode({"type": "error", "error": {"type": error_type, "message": message}})
