"""Rate limits, retries, budgets and cost, on FakeLLM (the dispatcher is the real one)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.config import load_settings
from orchestrator.contracts import Usage
from orchestrator.engine import PriorTask, ResumeState
from orchestrator.events import (
    CallFinished,
    CallRetried,
    RateLimited,
    TaskFinished,
    TaskStarted,
)
from orchestrator.events import Warning as WarningEvent
from orchestrator.testing import FakeLLM, Reply

FANOUT = """
version: 1
name: storm
defaults: {max_tokens: 100}
limits: {concurrency: 8}
steps:
  - id: each
    for_each: "{{ range(%d) | list }}"
    system: You answer briefly.
    context: "Shared background for every item: the quick brown fox."
    prompt: "item {{ item }}"
outputs:
  n: "{{ steps.each.output | length }}"
"""


async def test_a_fault_storm_ends_with_no_failed_task(fake_harness: Any) -> None:
    llm = FakeLLM()
    # every item meets a 429, a 529 and a 500 (items 0-4 twice over) before its answer
    llm.on(Reply.rate_limited(retry_after=0.01), prompt=r"item [0-4]$", times=5)
    for reply in (Reply.rate_limited(retry_after=0.01), Reply.overloaded(), Reply.server_error()):
        llm.on(reply, times=20)
    h = fake_harness(llm)
    outcome = await h.run(FANOUT % 20)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"n": 20}
    assert all(e.status == "succeeded" for e in h.of(TaskFinished))
    retried = h.of(CallRetried)
    assert len(retried) == 65
    assert {e.kind for e in retried} == {"rate_limit", "overloaded", "server"}
    failed_attempts = [e for e in h.of(CallFinished) if e.status == "retryable_error"]
    assert len(failed_attempts) == len(retried)  # every failed attempt is in the history
    assert all(e.http_status in (429, 529, 500) for e in failed_attempts)


async def test_429_lowers_concurrency_and_success_grows_it_back(fake_harness: Any) -> None:
    # a burst of 429s at first, then calm
    h = fake_harness(FakeLLM().on(Reply.rate_limited(retry_after=0.01), times=6))
    outcome = await h.run(FANOUT % 80)
    assert outcome.status == "succeeded", outcome.error
    windows = [e.concurrency for e in h.of(RateLimited)]
    assert windows[0] == 4, "the burst halved the window (8), once"
    assert windows[-1] == 8, "successes grew it back to the run's concurrency"
    assert all(e.status == "succeeded" for e in h.of(TaskFinished))


async def test_overload_past_the_horizon_fails_the_task_with_the_api_message(
    fake_harness: Any,
) -> None:
    # engine time is virtual here: the 30 s of backoff pass without waiting for them
    h = fake_harness(
        FakeLLM(default=Reply.overloaded()), virtual_time=True, retry={"horizon": "30s"}
    )
    outcome = await h.run("""
    version: 1
    name: down
    steps:
      - {id: only, prompt: hi}
    """)
    assert outcome.status == "failed"
    assert "overloaded" in (outcome.error or "").lower()
    retried = h.of(CallRetried)
    assert len(retried) >= 2
    assert h.clock is not None and h.clock.now >= 30  # it gave up at the horizon, not before
    assert len(h.of(CallFinished)) == len(retried) + 1


async def test_a_tiny_budget_stops_the_run_and_resume_finishes_it(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM(latency_s=0.01))
    wf = h.write(FANOUT % 12)
    first = await h.run(wf, max_cost_usd=0.005)
    assert first.status == "budget_exceeded"
    assert first.exit_code == 3
    assert "max_cost_usd" in (first.error or "")
    done = {e.task_id: e for e in h.of(TaskFinished) if e.status == "succeeded"}
    assert 0 < len(done) < 12, "some calls were made, then none"
    spent = sum(e.cost_usd or 0 for e in h.of(CallFinished))
    assert spent <= 0.005
    keys = {e.task_id: e.key for e in h.of(TaskStarted)}
    prior = {keys[t]: PriorTask(output=e.output) for t, e in done.items()}
    h.events.clear()
    h.llm.requests.clear()
    second = await h.run(
        wf,
        resume=ResumeState(tasks=prior, spent_usd=spent),
        run_id=first.run_id,
        max_cost_usd=5.0,
    )
    assert second.status == "succeeded", second.error
    assert second.outputs == {"n": 12}
    assert h.llm.count() == 12 - len(done)


async def test_a_token_budget_stops_the_run(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(FANOUT % 6, max_tokens=50)
    assert outcome.status == "budget_exceeded"
    assert h.llm.count() == 0  # max_tokens of output alone is over the budget


async def test_fanout_requests_mark_the_shared_prefix_for_caching(fake_harness: Any) -> None:
    h = fake_harness(cache={"min_tokens": {"default": 0}})  # a short prefix, marked all the same
    outcome = await h.run(FANOUT % 5)
    assert outcome.status == "succeeded"
    bodies = [r.body for r in h.llm.find(step="each")]
    assert len(bodies) == 5
    for body in bodies:
        system = body["system"]
        assert system[-1]["cache_control"]["type"] == "ephemeral"
        first = body["messages"][0]["content"]
        assert "Shared background" in first[0]["text"]
        assert first[0]["cache_control"]["ttl"] == "5m"
        assert "cache_control" not in first[-1]  # the item's own prompt is not cached


async def test_caching_off_in_settings_sends_no_cache_control(fake_harness: Any) -> None:
    h = fake_harness(cache={"enabled": False})
    outcome = await h.run(FANOUT % 2)
    assert outcome.status == "succeeded"
    for request in h.llm.find(step="each"):
        assert request.body["system"] == "You answer briefly."
        assert all("cache_control" not in b for b in request.body["messages"][0]["content"])


def test_cost_arithmetic_matches_hand_computed_prices() -> None:
    settings = load_settings(environ={})
    usage = Usage(
        input_tokens=1_000,
        output_tokens=2_000,
        cache_creation_input_tokens=3_000,
        cache_read_input_tokens=4_000,
        cache_creation_5m_input_tokens=1_000,
        cache_creation_1h_input_tokens=2_000,
    )
    # claude-sonnet-5-5: $3 in, $15 out, $3.75 5m write, $6 1h write, $0.30 read per million
    expected = (1_000 * 3 + 2_000 * 15 + 1_000 * 3.75 + 2_000 * 6 + 4_000 * 0.30) / 1e6
    assert settings.cost_usd("claude-sonnet-5-5", usage) == pytest.approx(expected)
    assert settings.cost_usd("claude-sonnet-5-5", usage, batch=True) == pytest.approx(expected / 2)
    # no TTL breakdown: cache writes are priced as 5-minute writes
    plain = Usage(cache_creation_input_tokens=1_000_000)
    assert settings.cost_usd("claude-haiku-4-5", plain) == pytest.approx(1.25)


async def test_unknown_model_has_unknown_cost_and_a_warning(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run("""
    version: 1
    name: odd
    steps:
      - {id: a, prompt: hi, model: claude-experimental-9}
    """)
    assert outcome.status == "succeeded"
    assert [c.cost_usd for c in h.of(CallFinished)] == [None]
    assert [e.cost_usd for e in h.of(TaskFinished)] == [None]
    warnings = [w.message for w in h.of(WarningEvent)]
    assert any("claude-experimental-9" in w and "no price" in w for w in warnings)


async def test_a_failed_task_still_counts_the_tokens_it_used(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.json({"n": 5}), step="pick"))
    outcome = await h.run("""
    version: 1
    name: invalid
    steps:
      - id: pick
        prompt: pick a number
        retries: 1
        output: {type: object, required: [n], properties: {n: {type: integer, minimum: 100}}}
    """)
    assert outcome.status == "failed"
    [task] = h.of(TaskFinished)
    # One budget per task: the repair used `retries: 1`, so no second attempt follows.
    assert task.status == "failed" and task.attempts == 1
    calls = [c for c in h.of(CallFinished) if c.task_id == task.task_id]
    assert len(calls) == 2  # the reply, then one repair
    assert task.usage["input_tokens"] == sum(c.usage["input_tokens"] for c in calls) > 0
    assert task.cost_usd == pytest.approx(sum(c.cost_usd or 0 for c in calls))
