"""Prompt-cache accounting: which prefixes a request reads from the cache and which it writes.

Breakpoints are the blocks marked `cache_control` (and, with a top-level `cache_control`, the
last cacheable block). A request reads the longest prefix already cached that ends at a
breakpoint or at one of the 20 blocks before one (the API's lookback, which lets an automatic
breakpoint move forward as a conversation grows), and writes the rest up to its last breakpoint.
A prefix shorter than the model's minimum is not cached at all.
Writes are returned as pending: the app commits them when the response that wrote them begins,
as the API does, so requests that arrive together all pay the write. Keys hash the model and the
prefix, so the cache is per model. Touched only from the server's loop: no lock.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.replies import count_input_tokens, output_tokens, segments

_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
_LOOKBACK_BLOCKS = 20


@dataclass(slots=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    pending: list[tuple[str, float]] = field(default_factory=list)  # (key, ttl seconds) to commit


@dataclass
class PromptCache:
    """Prefixes written by earlier requests (by hash of model + prefix), with their expiry."""

    entries: dict[str, tuple[float, float]] = field(default_factory=dict)  # key: (expiry, ttl)

    def account(self, body: dict[str, Any], minimum: int = 0) -> CacheUsage:
        """Tokens this request reads from and writes to the cache. Reads refresh their entry at
        once; writes are in `pending` until `commit`."""
        now = time.monotonic()
        digest = hashlib.sha256(str(body.get("model")).encode())
        prefixes: list[tuple[int, str]] = []  # (chars so far, prefix hash) after each block
        marks: list[tuple[int, str]] = []  # (block index, ttl) of each breakpoint
        chars = 0
        for i, (text, ttl) in enumerate(segments(body)):
            digest.update(text.encode())
            digest.update(b"\x00")
            chars += len(text)
            prefixes.append((chars, digest.hexdigest()))
            if ttl is not None:
                marks.append((i, ttl))
        usage = CacheUsage()
        hit = -1  # the block the longest cached prefix ends at
        for index, _ in marks:
            for i in range(index, max(-1, index - _LOOKBACK_BLOCKS - 1), -1):
                if i > hit and self.entries.get(prefixes[i][1], (0.0, 0.0))[0] > now:
                    hit = i
                    break
        start = 0
        if hit >= 0:
            start, key = prefixes[hit]
            usage.read = start // 4
            ttl_s = self.entries[key][1]
            self.entries[key] = (now + ttl_s, ttl_s)  # a hit refreshes it
        breakpoints = [
            (prefixes[i][0], prefixes[i][1], ttl)
            for i, ttl in marks
            if i > hit and prefixes[i][0] // 4 >= minimum
        ]
        for end, key, ttl in breakpoints:
            written = (end - start) // 4
            if ttl == "1h":
                usage.write_1h += written
            else:
                usage.write_5m += written
            usage.pending.append((key, _TTL_SECONDS.get(ttl, 300.0)))
            start = end
        return usage

    def commit(self, usage: CacheUsage) -> None:
        """Make a request's writes readable (its response has begun)."""
        now = time.monotonic()
        for key, ttl_s in usage.pending:
            expiry, longest = self.entries.get(key, (0.0, 0.0))
            self.entries[key] = (max(expiry, now + ttl_s), max(longest, ttl_s))
        usage.pending.clear()


def usage_for(
    body: dict[str, Any], content: list[dict[str, Any]], cached: CacheUsage, *, tier: str
) -> dict[str, Any]:
    """The `usage` object: cache reads and writes carved out of the input tokens."""
    total = count_input_tokens(body)
    written = cached.write_5m + cached.write_1h
    return {
        "input_tokens": max(0, total - cached.read - written),
        "output_tokens": output_tokens(content) if content else 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cached.write_5m,
            "ephemeral_1h_input_tokens": cached.write_1h,
        },
        "service_tier": tier,
    }
