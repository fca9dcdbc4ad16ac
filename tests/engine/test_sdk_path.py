"""The engine on the real SDK client against the simulator: what only the wire can show.

Most engine tests run on FakeLLM; these keep the path through `orchestrator.llm` honest: the
prompt cache the simulator accounts for shows up in the recorded usage, and the tokens recorded
are exactly what the API reported.
"""

from __future__ import annotations

from typing import Any

from orchestrator.events import CallFinished

FANOUT = """
version: 1
name: cached
defaults: {max_tokens: 100}
limits: {concurrency: 1}
steps:
  - id: each
    for_each: "{{ range(%d) | list }}"
    system: You answer briefly.
    context: "%s"
    prompt: "item {{ item }}"
"""
# Over the model's minimum cacheable prefix (1,024 tokens at 4 characters a token): below it the
# API, and the simulator, cache nothing. One item at a time: as on the API, items sent together
# would all write the prefix before any could read it.
BACKGROUND = "Shared background for every item: the quick brown fox. " * 80


async def test_the_shared_prefix_is_written_once_then_read_from_the_cache(
    make_harness: Any,
) -> None:
    h = make_harness()
    outcome = await h.run(FANOUT % (4, BACKGROUND))
    assert outcome.status == "succeeded", outcome.error
    for entry in h.sim.log.find(step="each"):
        assert entry.body is not None
        assert entry.body["messages"][0]["content"][0]["cache_control"]["ttl"] == "5m"
    usage = [c.usage for c in h.of(CallFinished)]
    assert usage[0]["cache_creation_input_tokens"] > 0
    assert usage[0]["cache_creation_5m_input_tokens"] == usage[0]["cache_creation_input_tokens"]
    assert all(u["cache_read_input_tokens"] > 0 for u in usage[1:])


async def test_tokens_recorded_equal_what_the_api_reported(make_harness: Any) -> None:
    h = make_harness()
    outcome = await h.run(FANOUT % (4, BACKGROUND))
    assert outcome.status == "succeeded"
    reported = 0
    for entry in h.sim.log.find(status=200):
        assert entry.usage is not None
        reported += entry.usage["input_tokens"] + entry.usage["output_tokens"]
    recorded = sum(c.usage["input_tokens"] + c.usage["output_tokens"] for c in h.of(CallFinished))
    assert reported and recorded == reported
