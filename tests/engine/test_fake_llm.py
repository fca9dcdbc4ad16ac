"""`orchestrator.testing.FakeLLM`: the in-process LLM the engine tests run on."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import pytest

from orchestrator.contracts import TaskSpec, Usage
from orchestrator.errors import FatalError, RetryableError
from orchestrator.testing import FakeLLM, Reply


def request(step: str = "s", prompt: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        "extra_headers": {"X-Orchestrate-Step": step, "X-Orchestrate-Task": f"{step}/0"},
        **extra,
    }


def test_importing_it_does_not_import_the_sdk() -> None:
    code = "import sys, orchestrator.testing; print('anthropic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


async def test_rules_match_in_order_and_fall_through_when_used_up() -> None:
    llm = FakeLLM()
    llm.on(Reply.text("first"), step="plan", times=1)
    llm.on(Reply.text("by prompt"), prompt=r"^item \d$")
    llm.on(Reply.text("plan again"), step="plan")
    texts = []
    for step, prompt in (("plan", "x"), ("plan", "x"), ("each", "item 3"), ("each", "other")):
        response = await llm.create(request(step, prompt))
        texts.append(response.message["content"][0]["text"])
    assert texts == ["first", "plan again", "by prompt", "Answer to: other"]
    assert llm.count(step="plan") == 2 and llm.find(step="each")[0].prompt == "item 3"


async def test_replies_carry_json_tool_calls_and_usage() -> None:
    llm = FakeLLM()
    llm.queue(
        Reply.json({"n": 1}, usage=Usage(input_tokens=7, output_tokens=3)),
        Reply.tool_use(("Read", {"file_path": "a"}), ("Grep", {"pattern": "b"}), text="Looking."),
    )
    first = await llm.create(request())
    assert first.message["content"] == [{"type": "text", "text": '{"n": 1}'}]
    assert first.usage == Usage(input_tokens=7, output_tokens=3)
    assert first.message["usage"]["input_tokens"] == 7
    second = await llm.create(request())
    assert second.message["stop_reason"] == "tool_use"
    uses = [b for b in second.message["content"] if b["type"] == "tool_use"]
    assert [u["name"] for u in uses] == ["Read", "Grep"] and len({u["id"] for u in uses}) == 2
    assert second.usage.input_tokens > 0 and second.usage.output_tokens > 0  # counted


async def test_errors_are_raised_fresh_every_time() -> None:
    llm = FakeLLM(default=Reply.rate_limited(retry_after=2.5))
    caught = []
    for _ in range(2):
        with pytest.raises(RetryableError) as info:
            await llm.create(request())
        caught.append(info.value)
    assert caught[0] is not caught[1]
    assert (caught[0].status, caught[0].kind, caught[0].retry_after) == (429, "rate_limit", 2.5)


async def test_an_unscripted_structured_request_fails_naming_the_step() -> None:
    schema = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    with pytest.raises(FatalError, match="no reply for the structured-output request of step"):
        await FakeLLM().create(request("plan", output_config=schema))


async def test_latency_overlaps_calls_and_in_flight_is_tracked() -> None:
    llm = FakeLLM(latency_s=0.05)
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(llm.create, request())
    assert (llm.max_in_flight, llm.in_flight, llm.count()) == (4, 0, 4)


async def test_batches_answer_by_the_same_rules_and_can_be_held() -> None:
    llm = FakeLLM().on(Reply.fatal("nope"), prompt="bad").on(Reply.text("ok"))
    llm.hold_batches()
    batch = await llm.batch_create([("a", request(prompt="good")), ("b", request(prompt="bad"))])
    assert await llm.batch_status(batch) == "in_progress"
    llm.release_batches()
    assert await llm.batch_status(batch) == "ended"
    results = await llm.batch_results(batch)
    assert results["a"].status == "succeeded" and results["a"].message is not None
    assert results["b"].status == "errored" and "nope" in (results["b"].error or "")
    assert llm.count(batch=True) == 2 and llm.batches[batch].polls == 2
    with pytest.raises(FatalError, match="not found"):
        await llm.batch_status("msgbatch_unknown")


async def test_call_fn_prices_each_call_and_records_what_the_worker_sent() -> None:
    llm = FakeLLM()
    call = llm.call_fn(cost_usd=0.02)
    spec = TaskSpec(run_id="r", task_id="t", step_id="s", key="s", model="m", prompt="p")
    response = await call(spec, {**request(), "stream": True})
    assert response.cost_usd == 0.02
    assert llm.requests[0].stream and llm.requests[0].body["stream"] is True
