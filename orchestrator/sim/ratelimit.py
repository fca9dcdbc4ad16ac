"""Per-minute rate limits as the API applies them: token buckets that refill continuously.

Each limit (requests, input tokens, output tokens) is a bucket holding up to `limit`, refilled
at `limit / 60` per second. A request needs one request and its input tokens; output tokens are
taken after the reply (a bucket may go below zero, and then blocks until it refills). So a
client that exceeds a limit waits about as long as the real API would tell it to, not a minute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

_HEADER_NAMES = {
    "requests": "requests",
    "input_tokens": "input-tokens",
    "output_tokens": "output-tokens",
}


def rfc3339(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class _Bucket:
    limit: int
    level: float
    updated: float

    @property
    def rate(self) -> float:
        return self.limit / 60.0

    def refill(self, now: float) -> None:
        self.level = min(float(self.limit), self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (at most the whole bucket) is available; 0 when it is."""
        missing = min(amount, float(self.limit)) - self.level
        return 0.0 if missing <= 0 else missing / self.rate


class RateLimiter:
    """The buckets of one simulator. `limits` maps requests/input_tokens/output_tokens to a
    per-minute limit; a missing limit is unlimited and sends no headers."""

    def __init__(self, limits: dict[str, int], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        now = clock()
        self.buckets = {
            name: _Bucket(limit=int(limit), level=float(limit), updated=now)
            for name, limit in limits.items()
            if limit is not None and name in _HEADER_NAMES
        }

    def _refill(self) -> float:
        now = self.clock()
        for bucket in self.buckets.values():
            bucket.refill(now)
        return now

    def acquire(self, input_tokens: int) -> float | None:
        """Take one request and its input tokens; or, without taking anything, the seconds to
        wait when a limit would be exceeded."""
        self._refill()
        need = {"requests": 1.0, "input_tokens": float(input_tokens), "output_tokens": 1.0}
        wait = max(
            (b.wait_for(need[name]) for name, b in self.buckets.items()),
            default=0.0,
        )
        if wait > 0:
            return wait
        for name in ("requests", "input_tokens"):
            if name in self.buckets:
                self.buckets[name].level -= need[name]
        return None

    def spend_output(self, output_tokens: int) -> None:
        if "output_tokens" in self.buckets:
            self._refill()
            self.buckets["output_tokens"].level -= output_tokens

    def headers(self) -> dict[str, str]:
        """`anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}`."""
        self._refill()
        wall = time.time()
        out: dict[str, str] = {}
        for name, bucket in self.buckets.items():
            prefix = f"anthropic-ratelimit-{_HEADER_NAMES[name]}"
            full_in = (bucket.limit - bucket.level) / bucket.rate if bucket.rate else 0.0
            out[f"{prefix}-limit"] = str(bucket.limit)
            out[f"{prefix}-remaining"] = str(max(0, math.floor(bucket.level)))
            out[f"{prefix}-reset"] = rfc3339(wall + max(0.0, full_in))
        return out
