"""`batch: true`: fan-out items through the Message Batches API, priced at batch rates."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.engine import ResumeState
from orchestrator.events import BatchSubmitted, CallFinished, TaskFinished
from orchestrator.sim import Rule, SimConfig

BATCH = """
version: 1
name: batched
defaults: {max_tokens: 200}
steps:
  - id: each
    for_each: "{{ range(%d) | list }}"
    batch: true
    %s
    prompt: "Rate item {{ item }}"
    output:
      type: object
      required: [score]
      properties: {score: {type: integer, minimum: 1, maximum: 5}}
outputs:
  scores: "{{ steps.each.output | map(attribute='score') | list }}"
"""

FAST_BATCH = {"batch": {"poll_interval": "10ms", "max_poll_interval": "50ms"}}


async def test_batch_step_end_to_end(make_harness: Any) -> None:
    h = make_harness(**FAST_BATCH)
    outcome = await h.run(BATCH % (6, ""))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    assert len(outcome.outputs["scores"]) == 6
    assert all(1 <= s <= 5 for s in outcome.outputs["scores"])
    assert h.sim.log.count(path="/v1/messages/batches") == 1  # one batch for all six
    assert h.sim.log.count(path="/v1/messages") == 0  # nothing online
    calls = h.of(CallFinished)
    assert len(calls) == 6 and all(c.batch for c in calls)
    submitted = h.of(BatchSubmitted)
    assert [s.requests for s in submitted] == [6]


async def test_batch_calls_cost_the_batch_price(make_harness: Any) -> None:
    h = make_harness(**FAST_BATCH)
    outcome = await h.run(BATCH % (2, ""))
    assert outcome.status == "succeeded"
    for call in h.of(CallFinished):
        from orchestrator.contracts import Usage

        full = h.settings.cost_usd(call.model, Usage.from_dict(call.usage))
        assert full is not None
        assert call.cost_usd == pytest.approx(full * 0.5)


async def test_tool_turns_go_out_as_further_batch_rounds(make_harness: Any) -> None:
    # the simulator calls a tool only when asked to: script it for each item's first turn
    call = Rule(turn=1, tool_calls=[{"name": "state_list", "input": {"prefix": ""}}])
    h = make_harness(SimConfig(rules=[call]), **FAST_BATCH)
    outcome = await h.run(BATCH % (3, "tools: [state_list]"))
    assert outcome.status == "succeeded", outcome.error
    submitted = h.of(BatchSubmitted)
    assert len(submitted) == 2  # round 1 asks for the tool, round 2 answers
    assert all(e.status == "succeeded" for e in h.of(TaskFinished))


async def test_resume_polls_the_same_batch_instead_of_submitting_again(
    make_harness: Any,
) -> None:
    h = make_harness(SimConfig(latency_s=0.4), **FAST_BATCH)
    wf = h.write(BATCH % (4, ""))
    engines: list[Any] = []

    async def cancel_after_submit() -> None:
        while not h.of(BatchSubmitted):
            await anyio.sleep(0.01)
        engines[0].cancel("killed while the batch was processing")

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_after_submit)
        first = await h.run(wf, engine_hook=engines.append)
    assert first.status == "cancelled"
    batch_id = h.of(BatchSubmitted)[0].batch_id
    h.events.clear()
    h.sim.log.clear()
    second = await h.run(wf, resume=ResumeState(batches={"each": [batch_id]}), run_id=first.run_id)
    assert second.status == "succeeded", second.error
    assert h.sim.log.count(path="/v1/messages/batches") == 0  # no new batch
    assert h.sim.log.count(path=f"/v1/messages/batches/{batch_id}") >= 1  # polled the old one
    assert second.outputs is not None
    assert len(second.outputs["scores"]) == 4


async def test_a_batch_the_api_no_longer_knows_is_resubmitted(make_harness: Any) -> None:
    h = make_harness(**FAST_BATCH)
    outcome = await h.run(BATCH % (2, ""), resume=ResumeState(batches={"each": ["msgbatch_gone"]}))
    assert outcome.status == "succeeded", outcome.error
    assert h.sim.log.count(path="/v1/messages/batches") == 1
