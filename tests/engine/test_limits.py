"""Rate limits, retries, budgets, cost and prompt caching, on the simulator."""

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
from orchestrator.sim import Rule, SimConfig

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


async def test_a_fault_storm_ends_with_no_failed_task(make_harness: Any) -> None:
    faults = {"429": 0.15, "529": 0.1, "500": 0.05, "disconnect": 0.02}
    h = make_harness(SimConfig(faults=faults, seed=7, retry_after_s=0.01))
    outcome = await h.run(FANOUT % 20)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"n": 20}
    assert all(e.status == "succeeded" for e in h.of(TaskFinished))
    retried = h.of(CallRetried)
    assert retried, "the storm was retried"
    assert {"rate_limit", "overloaded"} <= {e.kind for e in retried}
    failed_attempts = [e for e in h.of(CallFinished) if e.status == "retryable_error"]
    assert len(failed_attempts) == len(retried)  # every failed attempt is in the history


async def test_429_lowers_concurrency_and_success_grows_it_back(make_harness: Any) -> None:
    # a burst of 429s at first, then calm
    burst = Rule(error={"status": 429, "type": "rate_limit_error", "message": "slow down"}, times=6)
    h = make_harness(SimConfig(rules=[burst]))
    outcome = await h.run(FANOUT % 80)
    assert outcome.status == "succeeded", outcome.error
    windows = [e.concurrency for e in h.of(RateLimited)]
    assert windows[0] == 4, "the burst halved the window (8), once"
    assert windows[-1] == 8, "successes grew it back to the run's concurrency"
    assert all(e.status == "succeeded" for e in h.of(TaskFinished))


async def test_overload_past_the_horizon_fails_the_task_with_the_api_message(
    make_harness: Any,
) -> None:
    h = make_harness(SimConfig(faults={"529": 1.0}), retry={"horizon": "1s"})
    outcome = await h.run("""
    version: 1
    name: down
    steps:
      - {id: only, prompt: hi}
    """)
    assert outcome.status == "failed"
    assert "overloaded" in (outcome.error or "").lower()
    assert len(h.of(CallRetried)) >= 2


async def test_a_tiny_budget_stops_the_run_and_resume_finishes_it(make_harness: Any) -> None:
    h = make_harness(SimConfig(latency_s=0.01))
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
    h.sim.log.clear()
    second = await h.run(
        wf,
        resume=ResumeState(tasks=prior, spent_usd=spent),
        run_id=first.run_id,
        max_cost_usd=5.0,
    )
    assert second.status == "succeeded", second.error
    assert second.outputs == {"n": 12}
    assert h.sim.log.count() == 12 - len(done)


async def test_a_token_budget_stops_the_run(make_harness: Any) -> None:
    h = make_harness()
    outcome = await h.run(FANOUT % 6, max_tokens=50)
    assert outcome.status == "budget_exceeded"
    assert h.sim.log.count() == 0  # max_tokens of output alone is over the budget


async def test_fanout_requests_mark_the_shared_prefix_for_caching(make_harness: Any) -> None:
    h = make_harness()
    # A prefix over the model's cache minimum (1024 tokens), and one item at a time: as on the
    # API, items sent together would all write the prefix before any could read it.
    background = "Shared background for every item: the quick brown fox. " * 80
    fanout = FANOUT.replace("limits: {concurrency: 8}", "limits: {concurrency: 1}").replace(
        '"Shared background for every item: the quick brown fox."', f'"{background}"'
    )
    outcome = await h.run(fanout % 5)
    assert outcome.status == "succeeded"
    bodies = [e.body for e in h.sim.log.find(step="each")]
    assert len(bodies) == 5
    for body in bodies:
        assert body is not None
        system = body["system"]
        assert system[-1]["cache_control"]["type"] == "ephemeral"
        first = body["messages"][0]["content"]
        assert "Shared background" in first[0]["text"]
        assert first[0]["cache_control"]["ttl"] == "5m"
        assert "cache_control" not in first[-1]  # the item's own prompt is not cached
    usage = [c.usage for c in h.of(CallFinished)]
    assert usage[0]["cache_creation_input_tokens"] > 0
    assert sum(u["cache_read_input_tokens"] for u in usage[1:]) > 0


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


async def test_unknown_model_has_unknown_cost_and_a_warning(make_harness: Any) -> None:
    h = make_harness(SimConfig(models=["claude-experimental-9"]))  # served, but not priced
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


async def test_a_failed_task_still_counts_the_tokens_it_used(make_harness: Any) -> None:
    h = make_harness(SimConfig(rules=[Rule(step="pick", json={"n": 5})]))
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
    assert task.status == "failed" and task.attempts == 2  # the task was tried again once
    calls = [c for c in h.of(CallFinished) if c.task_id == task.task_id]
    assert len(calls) == 4  # each attempt: the reply, then one repair
    assert task.usage["input_tokens"] == sum(c.usage["input_tokens"] for c in calls) > 0
    assert task.cost_usd == pytest.approx(sum(c.cost_usd or 0 for c in calls))
