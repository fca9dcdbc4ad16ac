"""`batch: true`: fan-out items through the Message Batches API, priced at batch rates."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.contracts import LLMResponse, Usage
from orchestrator.engine import ResumeState
from orchestrator.events import BatchSubmitted, CallFinished, StepFinished, TaskFinished
from orchestrator.events import Warning as WarningEvent
from orchestrator.testing import FakeLLM, Reply

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


def scoring(llm: FakeLLM | None = None) -> FakeLLM:
    """Item i scores 1 + i % 5 (after the rules `llm` already has)."""
    return (llm or FakeLLM()).on(
        lambda req: Reply.json({"score": 1 + int(req.prompt.split()[-1]) % 5}), step="each"
    )


async def test_batch_step_end_to_end(fake_harness: Any) -> None:
    h = fake_harness(scoring(), **FAST_BATCH)
    outcome = await h.run(BATCH % (6, ""))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"scores": [1, 2, 3, 4, 5, 1]}
    assert len(h.llm.batches) == 1  # one batch for all six
    assert h.llm.count(batch=False) == 0  # nothing online
    calls = h.of(CallFinished)
    assert len(calls) == 6 and all(c.batch for c in calls)
    assert [s.requests for s in h.of(BatchSubmitted)] == [6]


async def test_batch_calls_cost_the_batch_price(fake_harness: Any) -> None:
    h = fake_harness(scoring(), **FAST_BATCH)
    outcome = await h.run(BATCH % (2, ""))
    assert outcome.status == "succeeded"
    for call in h.of(CallFinished):
        full = h.settings.cost_usd(call.model, Usage.from_dict(call.usage))
        assert full is not None
        assert call.cost_usd == pytest.approx(full * 0.5)


async def test_tool_turns_go_out_as_further_batch_rounds(fake_harness: Any) -> None:
    llm = FakeLLM()
    llm.on(Reply.tool_use(("state_list", {})), step="each", turn=1)
    llm.on(Reply.json({"score": 4}), step="each")
    h = fake_harness(llm, **FAST_BATCH)
    outcome = await h.run(BATCH % (3, "tools: [state_list]"))
    assert outcome.status == "succeeded", outcome.error
    assert len(h.of(BatchSubmitted)) == 2  # round 1 asks for the tool, round 2 answers
    assert all(e.status == "succeeded" for e in h.of(TaskFinished))


async def test_an_errored_batch_item_is_sent_online(fake_harness: Any) -> None:
    llm = scoring(FakeLLM().queue(Reply.server_error()))  # one item of the batch errors
    h = fake_harness(llm, **FAST_BATCH)
    outcome = await h.run(BATCH % (3, ""))
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.count(batch=True) == 3 and h.llm.count(batch=False) == 1
    assert any("sending it online" in w.message for w in h.of(WarningEvent))


async def test_resume_polls_the_same_batch_instead_of_submitting_again(
    fake_harness: Any,
) -> None:
    h = fake_harness(scoring(), **FAST_BATCH)
    h.llm.hold_batches()  # the batch stays in progress until released
    wf = h.write(BATCH % (4, ""))
    engines: list[Any] = []

    async def cancel_after_submit() -> None:
        while not h.of(BatchSubmitted):
            await anyio.sleep(0.005)
        engines[0].cancel("killed while the batch was processing")

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_after_submit)
        first = await h.run(wf, engine_hook=engines.append)
    assert first.status == "cancelled"
    batch_id = h.of(BatchSubmitted)[0].batch_id
    polls = h.llm.batches[batch_id].polls
    h.events.clear()
    h.llm.release_batches()
    second = await h.run(wf, resume=ResumeState(batches={"each": [batch_id]}), run_id=first.run_id)
    assert second.status == "succeeded", second.error
    assert list(h.llm.batches) == [batch_id]  # no new batch
    assert h.llm.batches[batch_id].polls > polls  # polled the old one
    assert second.outputs == {"scores": [1, 2, 3, 4]}


async def test_a_batch_the_api_no_longer_knows_is_resubmitted(fake_harness: Any) -> None:
    h = fake_harness(scoring(), **FAST_BATCH)
    outcome = await h.run(BATCH % (2, ""), resume=ResumeState(batches={"each": ["msgbatch_gone"]}))
    assert outcome.status == "succeeded", outcome.error
    assert len(h.llm.batches) == 1
    assert any("msgbatch_gone cannot be read" in w.message for w in h.of(WarningEvent))


class OnlineOnly:
    """An LLM without the Batches API."""

    def __init__(self) -> None:
        self.inner = FakeLLM()

    async def create(self, request: dict[str, Any], *, stream: bool = False) -> LLMResponse:
        return await self.inner.create(request, stream=stream)

    async def aclose(self) -> None:
        pass


async def test_a_batch_step_needs_a_client_with_the_batches_api(fake_harness: Any) -> None:
    h = fake_harness(**FAST_BATCH)
    online = OnlineOnly()

    async def client() -> Any:
        return online

    h.new_llm = client
    outcome = await h.run(BATCH % (2, ""))
    assert outcome.status == "failed"
    [step] = h.of(StepFinished)
    assert step.error == "step 'each': batch: true needs a client with the Batches API"
    assert online.inner.count() == 0
