"""A fan-out's shared prefix on the simulator (cache timing on) and on FakeLLM: who writes the
cache, who reads it, which TTL the marks ask for, and what `runs show` says of it."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.engine.warmup import choose_ttl, expected_step_s
from orchestrator.events import CallFinished
from orchestrator.sim import SimConfig
from orchestrator.ui.tables import cache_line

CONTEXT = "Background every item shares. " * 700  # ~21,000 characters: ~5,000 tokens

FANOUT = """
version: 1
name: warm
defaults: {max_tokens: %(max_tokens)d, model: %(model)s}
limits: {concurrency: %(concurrency)d}
inputs:
  background: {type: string}
steps:
  - id: each
    for_each: "{{ range(%(n)d) | list }}"
    system: You answer briefly.
    context: "{{ inputs.background }}"
    prompt: "item {{ item }}"
outputs:
  n: "{{ steps.each.output | length }}"
"""


def workflow(n: int, *, concurrency: int = 20, max_tokens: int = 100, model: str = "sonnet") -> str:
    return FANOUT % {"n": n, "concurrency": concurrency, "max_tokens": max_tokens, "model": model}


async def test_one_item_writes_the_shared_prefix_and_the_rest_read_it(make_harness: Any) -> None:
    # Every item is in flight at once (concurrency 20), and the simulator makes a write readable
    # only once the response that wrote it has begun: without the hold all 20 would write.
    h = make_harness(
        SimConfig(latency_s=0.05, cache_after_response_start=True), cache={"hold": "60s"}
    )
    outcome = await h.run(workflow(20), {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    entries = [e for e in h.sim.log.entries if e.step == "each"]
    assert len(entries) == 20
    usages = [e.usage or {} for e in entries]
    writers = [u for u in usages if u.get("cache_creation_input_tokens")]
    readers = [u for u in usages if u.get("cache_read_input_tokens")]
    assert len(writers) == 1
    assert len(readers) == 19
    prefix = writers[0]["cache_creation_input_tokens"]
    assert prefix >= 5000
    assert all(u["cache_read_input_tokens"] == prefix for u in readers)
    # the first request to arrive is the one that wrote
    assert (entries[0].usage or {}).get("cache_creation_input_tokens") == prefix
    # and the store's record of every call says the same
    recorded = [e.usage for e in h.of(CallFinished) if e.step_id == "each"]
    assert sum(u["cache_read_input_tokens"] for u in recorded) == 19 * prefix


async def test_a_prefix_below_the_models_minimum_is_not_marked(fake_harness: Any) -> None:
    # ~2,000 tokens: above Sonnet's 1,024-token minimum, below Opus's 4,096
    background = CONTEXT[:8000]
    for model, marked in (("sonnet", True), ("opus", False)):
        h = fake_harness()
        outcome = await h.run(workflow(3, model=model), {"background": background})
        assert outcome.status == "succeeded", outcome.error
        for request in h.llm.find(step="each"):
            content = request.body["messages"][0]["content"]
            assert ("cache_control" in content[0]) is marked, model
            assert request.body["system"] == [{"type": "text", "text": "You answer briefly."}]


async def test_a_long_fanout_marks_its_prefix_for_an_hour(fake_harness: Any) -> None:
    # 40 items two at a time, each reply up to 2,000 tokens: ~13 min expected, past the 5m TTL
    h = fake_harness()
    outcome = await h.run(workflow(40, concurrency=2, max_tokens=2000), {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    for request in h.llm.find(step="each"):
        assert request.body["messages"][0]["content"][0]["cache_control"]["ttl"] == "1h"


async def test_a_short_fanout_keeps_the_5m_ttl(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(workflow(4), {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    for request in h.llm.find(step="each"):
        assert request.body["messages"][0]["content"][0]["cache_control"]["ttl"] == "5m"


async def test_a_ttl_set_in_configs_is_kept(fake_harness: Any) -> None:
    h = fake_harness(cache={"ttl": "5m"})
    outcome = await h.run(workflow(40, concurrency=2, max_tokens=2000), {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    ttls = {r.body["messages"][0]["content"][0]["cache_control"]["ttl"] for r in h.llm.find()}
    assert ttls == {"5m"}


@pytest.mark.parametrize(
    "configured, expected_s, ttl",
    [("auto", 299.0, "5m"), ("auto", 301.0, "1h"), ("auto", None, "5m"), ("1h", 1.0, "1h")],
)
def test_ttl_choice(configured: str, expected_s: float | None, ttl: str) -> None:
    assert choose_ttl(configured, expected_s)[0] == ttl


def test_expected_duration_counts_rounds_of_the_pool() -> None:
    assert expected_step_s(200, 200, 1000) == expected_step_s(1, 1, 1000)
    assert expected_step_s(400, 200, 1000) == 2 * expected_step_s(200, 200, 1000)


def test_runs_show_says_which_ttl_and_how_much_was_read() -> None:
    short = {"cache_creation_input_tokens": 5000, "cache_read_input_tokens": 995000}
    line = cache_line({**short, "cache_creation_5m_input_tokens": 5000})
    assert line is not None and "5m TTL" in line and "99.5%" in line
    line = cache_line({**short, "cache_creation_1h_input_tokens": 5000})
    assert line is not None and "1h TTL" in line and "outlast 5 min" in line
    assert cache_line({"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}) is None
