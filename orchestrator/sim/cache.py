"""Prompt-cache accounting: which prefixes a request reads from the cache and which it writes.

Breakpoints are the blocks marked `cache_control` (and, with a top-level `cache_control`, the
last cacheable block); a request reads the longest marked prefix already cached and writes the
rest up to its last breakpoint. A prefix shorter than the model's minimum is not cached at all.
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


@dataclass(slots=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    pending: list[tuple[str, float]] = field(default_factory=list)  # (key, ttl seconds) to commit


@dataclass
class PromptCache:
    """Prefixes written by earlier requests (by hash of model + prefix), with their expiry."""

    entries: dict[str, float] = field(default_factory=dict)

    def account(self, body: dict[str, Any], minimum: int = 0) -> CacheUsage:
        """Tokens this request reads from and writes to the cache. Reads refresh their entry at
        once; writes are in `pending` until `commit`."""
        now = time.monotonic()
        digest = hashlib.sha256(str(body.get("model")).encode())
        breakpoints: list[tuple[int, str, str]] = []  # (chars so far, prefix hash, ttl)
        chars = 0
        for text, ttl in segments(body):
            digest.update(text.encode())
            digest.update(b"\x00")
            chars += len(text)
            if ttl is not None and chars // 4 >= minimum:
                breakpoints.append((chars, digest.hexdigest(), ttl))
        usage = CacheUsage()
        hit = -1
        for i, (_, key, _) in enumerate(breakpoints):
            if self.entries.get(key, 0.0) > now:
                hit = i
        start = 0
        if hit >= 0:
            start, key, ttl = breakpoints[hit]
            usage.read = start // 4
            self.entries[key] = now + _TTL_SECONDS.get(ttl, 300.0)  # a hit refreshes it
        for end, key, ttl in breakpoints[hit + 1 :]:
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
            self.entries[key] = max(self.entries.get(key, 0.0), now + ttl_s)
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
