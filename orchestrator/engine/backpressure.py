"""Run-wide backpressure: per-model rate limits, adaptive concurrency and the overload pause.

Hundreds of workers must not discover the API's limits one by one. Everything here is shared by
the whole run and consulted by the dispatcher before each call:

- `TokenBucket`s per model for requests, input tokens (estimated before sending, corrected by
  usage) and output tokens (reserved from `max_tokens`, refunded by usage), refilled per minute and
  recalibrated from `anthropic-ratelimit-*` headers when the API sends them.
- `AdaptiveConcurrency`: calls in flight; halved on 429, grown back by one per window of
  successes (AIMD), never above the run's concurrency.
- `OverloadGate`: when overload or 5xx errors cluster, every worker waits out one shared pause
  instead of each hammering the API on its own schedule.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from orchestrator.config import RateLimits
from orchestrator.contracts import RateLimitInfo

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """A bucket of `capacity` units refilled continuously at `capacity` per minute.

    A request larger than the capacity is allowed once the bucket is full, so one oversized call
    cannot wait forever.
    """

    def __init__(self, capacity: float, clock: Clock) -> None:
        self.capacity = max(1.0, float(capacity))
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._stamp
        self._stamp = now
        if elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.capacity / 60.0)

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` can be taken (0 if now)."""
        self._refill()
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) * 60.0 / self.capacity

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount

    def give(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)

    def recalibrate(self, limit: int | None, remaining: int | None) -> None:
        if limit:
            self.capacity = float(limit)
        if remaining is not None:
            self._refill()
            self.level = min(self.level, float(remaining))


@dataclass
class ModelLimiter:
    """Requests, input tokens and output tokens per minute for one model."""

    requests: TokenBucket
    input_tokens: TokenBucket
    output_tokens: TokenBucket
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    @classmethod
    def from_limits(cls, limits: RateLimits, clock: Clock) -> ModelLimiter:
        return cls(
            requests=TokenBucket(limits.requests, clock),
            input_tokens=TokenBucket(limits.input_tokens, clock),
            output_tokens=TokenBucket(limits.output_tokens, clock),
        )

    async def acquire(self, input_estimate: int, max_tokens: int, sleep: Sleep) -> float:
        """Wait until the call fits; returns the seconds waited. Callers queue in order."""
        waited = 0.0
        async with self.lock:
            while True:
                delay = max(
                    self.requests.wait_time(1),
                    self.input_tokens.wait_time(input_estimate),
                    self.output_tokens.wait_time(max_tokens),
                )
                if delay <= 0:
                    break
                await sleep(delay)
                waited += delay
            self.requests.take(1)
            self.input_tokens.take(input_estimate)
            self.output_tokens.take(max_tokens)
        return waited

    def settle(
        self, input_estimate: int, max_tokens: int, input_used: int, output_used: int
    ) -> None:
        """Correct the reservation with what the API reported."""
        self.input_tokens.give(input_estimate - input_used)
        self.output_tokens.give(max_tokens - output_used)

    def calibrate(self, info: RateLimitInfo | None) -> None:
        if info is None:
            return
        self.requests.recalibrate(info.requests_limit, info.requests_remaining)
        self.input_tokens.recalibrate(info.input_tokens_limit, info.input_tokens_remaining)
        self.output_tokens.recalibrate(info.output_tokens_limit, info.output_tokens_remaining)


class AdaptiveConcurrency:
    """Calls in flight across the run, lowered on 429 and grown back slowly (AIMD).

    Like TCP, one cut per round: the 429s that a burst of calls in flight all receive at once
    halve the window once, not once each (which would take 200 down to 1 in a blink)."""

    def __init__(self, maximum: int, clock: Clock = time.monotonic, cooldown_s: float = 1.0):
        self.maximum = max(1, maximum)
        self.limiter = anyio.CapacityLimiter(self.maximum)
        self._credit = 0.0
        self._clock = clock
        self._cooldown_s = cooldown_s
        self._last_cut = -math.inf

    @property
    def current(self) -> int:
        return int(self.limiter.total_tokens)

    def on_rate_limited(self) -> bool:
        """Halve the window, at most once per cooldown; True if it changed."""
        now = self._clock()
        self._credit = 0.0
        if now - self._last_cut < self._cooldown_s:
            return False
        new = max(1, self.current // 2)
        if new != self.current:
            self._last_cut = now
            self.limiter.total_tokens = new
            return True
        return False

    def on_success(self) -> bool:
        """Grow by one after a window's worth of successes; True if it changed."""
        if self.current >= self.maximum:
            return False
        self._credit += 1.0 / self.current
        if self._credit >= 1.0:
            self._credit = 0.0
            self.limiter.total_tokens = min(self.maximum, self.current + 1)
            return True
        return False


class OverloadGate:
    """A shared pause: opened when `cluster` overload/5xx errors arrive within `window` seconds."""

    def __init__(self, *, cluster: int, pause_s: float, clock: Clock, window_s: float = 10.0):
        self.cluster = max(1, cluster)
        self.pause_s = pause_s
        self.window_s = window_s
        self._clock = clock
        self._recent: deque[float] = deque()
        self.paused_until = 0.0

    def record_overload(self) -> float:
        """Note one overload error; returns the pause (seconds) if this one opened a pause."""
        now = self._clock()
        self._recent.append(now)
        while self._recent and self._recent[0] < now - self.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.cluster and now >= self.paused_until:
            self.paused_until = now + self.pause_s
            self._recent.clear()
            return self.pause_s
        return 0.0

    def remaining(self) -> float:
        return max(0.0, self.paused_until - self._clock())


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    # the exponent is capped: thousands of attempts within a long horizon must not overflow
    ceiling = min(cap, base * math.pow(2.0, min(max(0, attempt - 1), 64)))
    return rand() * ceiling
