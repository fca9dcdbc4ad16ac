"""A run's budget, on FakeLLM: a concurrent run spends what it allows, and never more."""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.engine import PriorTask, ResumeState
from orchestrator.events import CallFinished, TaskFinished, TaskStarted
from orchestrator.testing import FakeLLM

# sonnet: $3 / $15 a million tokens. A call's worst case is ~$0.0016 (100 output tokens and a
# few dozen of input); what it costs is ~$0.0002 (FakeLLM answers in a few tokens).
FANOUT = """
version: 1
name: spend
defaults: {model: sonnet, max_tokens: 100}
limits: {concurrency: 10}
steps:
  - id: each
    for_each: "{{ range(%d) | list }}"
    prompt: "item {{ item }}"
"""
BUDGET = 0.02


class FirstWave(FakeLLM):
    """Holds the first `size` calls until all of them have arrived: the run's concurrency is
    then seen in `max_in_flight` on any host, with no timing."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.arrived = 0
        self.full = anyio.Event()

    async def create(self, request: dict[str, Any], **kwargs: Any) -> Any:
        self.arrived += 1
        if self.arrived == self.size:
            self.full.set()
        if self.arrived <= self.size:
            await self.full.wait()
        return await super().create(request, **kwargs)


async def test_a_concurrency_10_run_reaches_most_of_its_budget_and_never_exceeds_it(
    fake_harness: Any,
) -> None:
    h = fake_harness(FirstWave(10))
    outcome = await h.run(FANOUT % 400, max_cost_usd=BUDGET)
    assert outcome.status == "budget_exceeded", outcome.error
    assert outcome.exit_code == 3
    spent = h.spent()
    assert spent <= BUDGET
    assert spent >= 0.8 * BUDGET, f"stopped at {spent / BUDGET:.0%} of the budget"
    assert h.llm.max_in_flight == 10, "the run kept its concurrency while it could"
    # the message gives the real amounts, not the reservation alone
    error = outcome.error or ""
    assert "spent and" in error and "reserved by calls in flight" in error
    assert "remaining of max_cost_usd $0.02" in error
    finished = [e for e in h.of(TaskFinished) if e.status == "succeeded"]
    assert len(finished) == len(h.of(CallFinished)) > 60


async def test_the_stop_leaves_at_most_one_calls_worst_case_unspent(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    outcome = await h.run(FANOUT % 400, max_cost_usd=BUDGET)
    assert outcome.status == "budget_exceeded"
    worst = 100 * 15 / 1e6 + 200 * 3 / 1e6  # max_tokens of output and a generous input
    assert BUDGET - h.spent() < worst


async def test_a_budget_the_run_fits_in_does_not_stop_it(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    outcome = await h.run(FANOUT % 30, max_cost_usd=BUDGET)
    # 30 worst cases ($0.048) would not fit at once; what the calls cost ($0.007) does
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.count() == 30


async def test_a_token_budget_at_concurrency_10_reaches_most_of_it(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    outcome = await h.run(FANOUT % 400, max_tokens=5_000)
    assert outcome.status == "budget_exceeded", outcome.error
    used = sum(e.usage["input_tokens"] + e.usage["output_tokens"] for e in h.of(CallFinished))
    assert 0.8 * 5_000 <= used <= 5_000
    assert "--max-tokens" in (outcome.error or "")


async def test_resume_with_a_larger_budget_finishes_the_run(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    first = await h.run(FANOUT % 120, max_cost_usd=BUDGET)
    assert first.status == "budget_exceeded"
    keys = {e.task_id: e.key for e in h.of(TaskStarted)}
    done = {
        keys[e.task_id]: PriorTask(output=e.output)
        for e in h.of(TaskFinished)
        if e.status == "succeeded"
    }
    spent = h.spent()
    h.events.clear()
    h.llm.requests.clear()
    second = await h.run(
        FANOUT % 120,
        resume=ResumeState(tasks=done, spent_usd=spent),
        run_id=first.run_id,
        max_cost_usd=1.0,
    )
    assert second.status == "succeeded", second.error
    assert h.llm.count() == 120 - len(done)
