"""Backpressure with a fake clock: no sleeping, no wall-clock assertions (budgets: tests/budget)."""

from __future__ import annotations

import pytest

from orchestrator.engine.backpressure import (
    AdaptiveConcurrency,
    OverloadGate,
    TokenBucket,
    full_jitter,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_per_minute() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    bucket.take(60)
    assert bucket.wait_time(30) == pytest.approx(30.0)
    clock.now = 30
    assert bucket.wait_time(30) == 0.0


def test_token_bucket_recalibrates_from_headers() -> None:
    bucket = TokenBucket(1000, Clock())
    bucket.recalibrate(limit=50, remaining=10)
    assert bucket.capacity == 50
    assert bucket.wait_time(10) == 0.0
    assert bucket.wait_time(11) > 0


def test_adaptive_concurrency_halves_and_recovers_slowly() -> None:
    clock = Clock()
    window = AdaptiveConcurrency(16, clock)
    assert window.on_rate_limited()
    assert window.current == 8
    clock.now = 2
    window.on_rate_limited()
    assert window.current == 4
    for _ in range(3):
        window.on_success()
    assert window.current == 4  # not yet a full window of successes
    window.on_success()
    assert window.current == 5
    for _ in range(1000):
        window.on_success()
    assert window.current == 16  # never above the run's concurrency


def test_a_burst_of_429s_halves_the_window_once() -> None:
    clock = Clock()
    window = AdaptiveConcurrency(200, clock)
    for _ in range(50):  # fifty calls in flight all answered 429 at once
        window.on_rate_limited()
    assert window.current == 100
    clock.now = 1.5  # the next round of 429s cuts again
    assert window.on_rate_limited()
    assert window.current == 50


def test_overload_gate_opens_one_shared_pause_when_errors_cluster() -> None:
    clock = Clock()
    gate = OverloadGate(cluster=3, pause_s=10, clock=clock)
    assert gate.record_overload() == 0
    clock.now = 1
    assert gate.record_overload() == 0
    clock.now = 2
    assert gate.record_overload() == 10
    assert gate.remaining() == pytest.approx(10)
    clock.now = 20
    assert gate.remaining() == 0


def test_overload_gate_ignores_spread_out_errors() -> None:
    clock = Clock()
    gate = OverloadGate(cluster=3, pause_s=10, clock=clock, window_s=5)
    for t in (0, 6, 12, 18):
        clock.now = t
        assert gate.record_overload() == 0


def test_full_jitter_is_bounded_by_cap() -> None:
    assert full_jitter(1, 1.0, 60, lambda: 1.0) == 1.0
    assert full_jitter(4, 1.0, 60, lambda: 1.0) == 8.0
    assert full_jitter(30, 1.0, 60, lambda: 1.0) == 60
    assert full_jitter(3, 1.0, 60, lambda: 0.0) == 0.0
