"""The Message Batches API through the SDK: create, poll, results, cancel, list, delete."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import jsonschema
import pytest

from orchestrator.sim import Rule, SimConfig

MODEL = "claude-sonnet-5-5"
SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def request(custom_id: str, prompt: str, **params: Any) -> Any:
    return {
        "custom_id": custom_id,
        "params": {
            "model": MODEL,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": prompt}],
            **params,
        },
    }


async def test_batch_end_to_end(sim, clients):
    client = clients(sim)
    batch = await client.messages.batches.create(
        requests=[
            request("a", "First question"),
            request(
                "b", "Second", output_config={"format": {"type": "json_schema", "schema": SCHEMA}}
            ),
            request("c", "Broken", max_tokens=10**7),  # over the model's output limit
        ]
    )
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3
    assert batch.results_url is None
    with pytest.raises(anthropic.BadRequestError, match="still processing"):
        await client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)

    done = await client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    assert done.ended_at is not None
    assert done.results_url == f"{sim.base_url}/v1/messages/batches/{batch.id}/results"
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 2, 1)

    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded"
    assert "First question" in results["a"].message.content[0].text
    assert results["a"].message.usage.service_tier == "batch"
    assert results["b"].type == "succeeded"
    jsonschema.validate(json.loads(results["b"].message.content[0].text), SCHEMA)
    assert results["c"].type == "errored"
    assert results["c"].error.error.type == "invalid_request_error"

    listed = [b.id async for b in client.messages.batches.list()]
    assert listed == [batch.id]
    deleted = await client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(batch.id)


async def test_batch_cancel(sim, clients):
    client = clients(sim)
    batch = await client.messages.batches.create(requests=[request("a", "x"), request("b", "y")])
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 2
    results = [r.result.type async for r in await client.messages.batches.results(batch.id)]
    assert results == ["canceled", "canceled"]


@pytest.mark.sim(latency_s=30)
async def test_batch_stays_in_progress_for_the_simulated_latency(sim, clients):
    client = clients(sim)
    batch = await client.messages.batches.create(requests=[request("a", "x")])
    again = await client.messages.batches.retrieve(batch.id)
    assert again.processing_status == "in_progress"


async def test_batch_rules_and_validation(sim_factory, clients):
    sim = sim_factory(SimConfig(rules=[Rule(prompt="boom", error={"status": 500})]))
    client = clients(sim)
    with pytest.raises(anthropic.BadRequestError, match="duplicate"):
        await client.messages.batches.create(requests=[request("a", "x"), request("a", "y")])
    batch = await client.messages.batches.create(
        requests=[request("a", "boom"), request("b", "ok")]
    )
    await client.messages.batches.retrieve(batch.id)
    results = {
        r.custom_id: r.result.type async for r in await client.messages.batches.results(batch.id)
    }
    assert results == {"a": "errored", "b": "succeeded"}
    assert sim.log.count(path="/v1/messages/batches") == 2
