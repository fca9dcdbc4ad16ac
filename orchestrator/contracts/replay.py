"""Call-level replay: a task resumed mid-conversation reads its recorded calls back in order.

A resumed run hands a task that was in flight when its process ended (running, cancelled,
waiting: never one that failed, which starts afresh) the calls its conversation already made,
as `RecordedCall`s read from the store. The worker asks `Replay.answer(request)` before each
model call: while the request it would send is the recorded one at the same position, the
recorded response comes back and nothing is sent; the tool results of a replayed turn come from
the recorded request that followed it, or, when the process ended before that request was
answered, from the results recorded as the tools finished (`tool_results`), so no tool that
finished runs again. The first
request with no recorded response, or one that differs from the recorded one (the workflow or an
agent file changed), ends the replay: from there the task is live. A `Replay` serves one
conversation: a retried attempt starts fresh (`claim`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.contracts.usage import Usage

# Not part of what the model is asked: transport choices and our own routing headers.
_VOLATILE = ("extra_headers", "stream", "metadata")


def request_fingerprint(request: dict[str, Any]) -> str:
    """A request as the model sees it, as one comparable string. Cache marks are left out: the
    TTL a prefix asks for can differ between processes (a loop's measured period starts again
    on resume) and the model's answer does not depend on it."""
    kept = {k: _unmarked(v) for k, v in request.items() if k not in _VOLATILE}
    return json.dumps(kept, sort_keys=True, default=str, ensure_ascii=False)


def _unmarked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One succeeded Messages API call of a task, as the store holds it."""

    request: dict[str, Any]
    response: dict[str, Any]
    usage: Usage
    cost_usd: float | None = 0.0
    # the `tool_result` blocks recorded for this response's tool calls (some, when cut short)
    tool_results: list[dict[str, Any]] | None = None


def tool_use_ids(blocks: Any) -> list[str]:
    """The ids of the `tool_use` blocks of a message's content, in order."""
    if not isinstance(blocks, list):
        return []
    return [str(b.get("id")) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]


class Replay:
    """The recorded calls of one task's conversation, consumed in order (see the module doc)."""

    __slots__ = ("_calls", "_claimed", "_next", "diverged_at", "replayed")

    def __init__(self, calls: Sequence[RecordedCall]) -> None:
        self._calls = list(calls)
        self._next = 0
        self._claimed = False
        self.replayed = 0  # recorded responses handed back instead of a model call
        self.diverged_at: int | None = None  # 0-based position of the first differing request

    def __len__(self) -> int:
        return len(self._calls)

    def claim(self) -> bool:
        """True once: the first conversation replays, a retried attempt goes live at once."""
        first = not self._claimed
        self._claimed = True
        return first

    @property
    def active(self) -> bool:
        return self.diverged_at is None and self._next < len(self._calls)

    def answer(self, request: dict[str, Any]) -> RecordedCall | None:
        """The recorded call at this position when `request` is the one recorded there, else
        None (and the replay is over; `diverged_at` tells whether it was a difference)."""
        if not self.active:
            return None
        recorded = self._calls[self._next]
        if request_fingerprint(request) != request_fingerprint(recorded.request):
            self.diverged_at = self._next
            return None
        self._next += 1
        self.replayed += 1
        return recorded

    def tool_results(self, uses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The `tool_result` blocks the recorded conversation answered `uses` with, by tool use
        id: all of them from the next recorded request, else those recorded as each tool ended
        (a turn cut short by the kill has some). A call missing here never finished: it runs."""
        if self.diverged_at is not None or self._next == 0:
            return {}
        ids = [str(use.get("id")) for use in uses]
        if self._next < len(self._calls):
            messages = self._calls[self._next].request.get("messages") or []
            content = messages[-1].get("content") if messages else None
            if messages and messages[-1].get("role") == "user" and _answers(content, ids):
                assert isinstance(content, list)
                return {str(b["tool_use_id"]): dict(b) for b in content}
        recorded = self._calls[self._next - 1].tool_results or []
        return {
            str(b.get("tool_use_id")): dict(b) for b in recorded if str(b.get("tool_use_id")) in ids
        }


def _answers(content: Any, ids: list[str]) -> bool:
    """Whether `content` is exactly one `tool_result` per id, in order."""
    if not isinstance(content, list):
        return False
    return [
        str(b.get("tool_use_id"))
        if isinstance(b, dict) and b.get("type") == "tool_result"
        else None
        for b in content
    ] == ids
