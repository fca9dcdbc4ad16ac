"""The official Python SDK against the simulator, call by call, as the Messages API documents them.

Each test is one thing a client author relies on: a reply's shape, a tool round trip, thinking
blocks, cache accounting, streaming events, the Models and Batches APIs, and the error paths with
their status codes and error bodies.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import anyio
import httpx2 as httpx
import jsonschema
import pydantic
import pytest

MODEL = "claude-sonnet-5-5"
PROMPT = [{"role": "user", "content": "Summarise the state of solar power in Spain, briefly."}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "Local time in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
BOTH = "Call get_weather and get_time for Lisbon."
LONG = "Background that every request shares, kept stable for caching. " * 80  # ~1280 tokens


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def error_body(exc: anthropic.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["request_id"] == exc.request_id and str(exc.request_id).startswith("req_")
    return body


# -- create ---------------------------------------------------------------------------------------


async def test_text_reply_has_the_documented_shape(sim, clients):
    msg = await clients(sim).messages.create(model=MODEL, max_tokens=300, messages=PROMPT)
    assert msg.type == "message" and msg.role == "assistant" and msg.model == MODEL
    assert msg.id.startswith("msg_")
    assert [b.type for b in msg.content] == ["text"]
    assert "solar power in Spain" in msg.content[0].text
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


async def test_system_prompt_is_seen_by_rules(sim_factory, clients):
    from orchestrator.sim import Rule

    sim = sim_factory(rules=[Rule(system="pirate", text="Arr.")])
    client = clients(sim)
    pirate = await client.messages.create(
        model=MODEL, max_tokens=50, system="You are a pirate.", messages=PROMPT
    )
    plain = await client.messages.create(model=MODEL, max_tokens=50, messages=PROMPT)
    assert pirate.content[0].text == "Arr."  # type: ignore[union-attr]
    assert plain.content[0].text != "Arr."  # type: ignore[union-attr]


async def test_a_mid_conversation_system_message_is_accepted(sim_factory, clients):
    from orchestrator.sim import Rule

    sim = sim_factory(rules=[Rule(system="terse mode", text="Ok.")])
    messages: Any = [
        {"role": "user", "content": "Hello"},
        {"role": "system", "content": "From here on, terse mode."},
        {"role": "user", "content": "Tell me about solar power."},
    ]
    msg = await clients(sim).messages.create(model=MODEL, max_tokens=50, messages=messages)
    assert msg.content[0].text == "Ok."  # type: ignore[union-attr]


async def test_a_leading_system_message_is_400(sim, clients):
    messages: Any = [{"role": "system", "content": "Be brief."}, *PROMPT]
    with pytest.raises(anthropic.BadRequestError) as info:
        await clients(sim).messages.create(model=MODEL, max_tokens=50, messages=messages)
    assert "messages.0.role" in error_body(info.value)["error"]["message"]


async def test_tool_round_trip(sim, clients):
    client = clients(sim)
    messages: list[Any] = ask("What is the weather in Lisbon? Use get_weather.")
    first = await client.messages.create(
        model=MODEL, max_tokens=500, messages=messages, tools=[WEATHER, TIME]
    )
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]  # a preamble under `auto`
    call = first.content[1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.id.startswith("toolu_")
    jsonschema.validate(call.input, WEATHER["input_schema"])
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}],
        },
    ]
    final = await client.messages.create(
        model=MODEL, max_tokens=500, messages=messages, tools=[WEATHER, TIME]
    )
    assert final.stop_reason == "end_turn"
    assert [b.type for b in final.content] == ["text"]
    assert "1 tool result" in final.content[0].text  # type: ignore[union-attr]


async def test_forced_tool_choice_starts_with_the_tool(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=500,
        messages=PROMPT,  # names no tool
        tools=[WEATHER, TIME],
        tool_choice={"type": "tool", "name": "get_time"},
    )
    assert msg.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "name", None)) for b in msg.content] == [("tool_use", "get_time")]


async def test_tool_choice_any_calls_a_tool_without_preamble(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL, max_tokens=500, messages=PROMPT, tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert [b.type for b in msg.content] == ["tool_use"]


async def test_tool_choice_none_answers_in_text_even_when_a_tool_is_named(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=500,
        messages=ask(BOTH),
        tools=[WEATHER, TIME],
        tool_choice={"type": "none"},
    )
    assert msg.stop_reason == "end_turn"
    assert [b.type for b in msg.content] == ["text"]


async def test_parallel_tool_use_and_disabling_it(sim, clients):
    client = clients(sim)
    parallel = await client.messages.create(
        model=MODEL, max_tokens=500, messages=ask(BOTH), tools=[TIME, WEATHER]
    )
    names = [b.name for b in parallel.content if b.type == "tool_use"]
    assert names == ["get_weather", "get_time"]  # in the order the prompt names them
    single = await client.messages.create(
        model=MODEL,
        max_tokens=500,
        messages=ask(BOTH),
        tools=[TIME, WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert [b.name for b in single.content if b.type == "tool_use"] == ["get_weather"]


async def test_structured_output_via_output_config(sim, clients):
    schema = {
        "type": "object",
        "required": ["city", "days"],
        "additionalProperties": False,
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
        },
    }
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=500,
        messages=PROMPT,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    jsonschema.validate(json.loads(msg.content[0].text), schema)  # type: ignore[union-attr]


class Forecast(pydantic.BaseModel):
    city: str
    highs: list[int]
    windy: bool


async def test_messages_parse_returns_the_model(sim, clients):
    parsed = await clients(sim).messages.parse(
        model=MODEL, max_tokens=500, messages=PROMPT, output_format=Forecast
    )
    assert isinstance(parsed.parsed_output, Forecast)


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"}]
)
async def test_thinking_blocks_come_first_with_a_signature(sim, clients, thinking):
    msg = await clients(sim).messages.create(
        model=MODEL, max_tokens=4096, messages=PROMPT, thinking=thinking
    )
    assert [b.type for b in msg.content] == ["thinking", "text"]
    block = msg.content[0]
    assert block.type == "thinking" and block.thinking and block.signature


async def test_thinking_disabled_is_accepted(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL, max_tokens=400, messages=PROMPT, thinking={"type": "disabled"}
    )
    assert [b.type for b in msg.content] == ["text"]


async def test_thinking_can_be_passed_back_with_tool_results(sim, clients):
    client = clients(sim)
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    messages: list[Any] = ask("Use get_weather for Oslo.")
    first = await client.messages.create(
        model=MODEL, max_tokens=2000, messages=messages, tools=[WEATHER], thinking=thinking
    )
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    call = first.content[-1]
    assert call.type == "tool_use"
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id}]},
    ]
    final = await client.messages.create(
        model=MODEL, max_tokens=2000, messages=messages, tools=[WEATHER], thinking=thinking
    )
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("thinking", "max_tokens", "message"),
    [
        ({"type": "enabled", "budget_tokens": 512}, 4096, "greater than or equal to 1024"),
        ({"type": "enabled", "budget_tokens": 2048}, 2048, "must be greater than"),
        ({"type": "enabled"}, 4096, "budget_tokens: Field required"),
        ({"type": "sometimes"}, 4096, "thinking: Input tag"),
    ],
)
async def test_bad_thinking_settings_are_400(sim, clients, thinking, max_tokens, message):
    with pytest.raises(anthropic.BadRequestError) as info:
        await clients(sim).messages.create(
            model=MODEL, max_tokens=max_tokens, messages=PROMPT, thinking=thinking
        )
    assert message in error_body(info.value)["error"]["message"]


async def test_thinking_with_a_forced_tool_is_400(sim, clients):
    with pytest.raises(anthropic.BadRequestError, match="tool_choice forces tool use"):
        await clients(sim).messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=PROMPT,
            tools=[WEATHER],
            tool_choice={"type": "any"},
            thinking={"type": "adaptive"},
        )


# -- prompt caching -------------------------------------------------------------------------------


async def test_block_level_cache_control_writes_then_reads(sim, clients):
    client = clients(sim)
    system: Any = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    first = await client.messages.create(
        model=MODEL, max_tokens=100, system=system, messages=ask("One?")
    )
    second = await client.messages.create(
        model=MODEL, max_tokens=100, system=system, messages=ask("Two?")
    )
    assert first.usage.cache_creation_input_tokens == len(LONG) // 4
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == len(LONG) // 4
    assert second.usage.cache_creation_input_tokens == 0


async def test_automatic_caching_marks_the_last_block(sim, clients):
    client = clients(sim)
    history: list[Any] = ask(LONG)
    first = await client.messages.create(
        model=MODEL, max_tokens=100, messages=history, cache_control={"type": "ephemeral"}
    )
    written = first.usage.cache_creation_input_tokens
    assert written > 1024
    assert first.usage.input_tokens == 0  # everything up to the last block is the cached prefix
    history += [
        {"role": "assistant", "content": first.content[0].text},  # type: ignore[union-attr]
        {"role": "user", "content": "And the next step?"},
    ]
    second = await client.messages.create(
        model=MODEL, max_tokens=100, messages=history, cache_control={"type": "ephemeral"}
    )
    assert second.usage.cache_read_input_tokens == written  # the breakpoint moved forward
    assert second.usage.cache_creation_input_tokens > 0


async def test_a_prefix_under_the_model_minimum_is_not_cached(sim, clients):
    client = clients(sim)
    short: Any = [{"type": "text", "text": "Short. " * 100, "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        msg = await client.messages.create(
            model=MODEL, max_tokens=50, system=short, messages=PROMPT
        )
        assert msg.usage.cache_creation_input_tokens == 0
        assert msg.usage.cache_read_input_tokens == 0
    # 1280 tokens is enough for sonnet (1024) but not for Haiku 4.5 (4096)
    system: Any = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    haiku = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=50, system=system, messages=PROMPT
    )
    assert haiku.usage.cache_creation_input_tokens == 0


@pytest.mark.sim(latency_s=1.0, jitter=0.0)
async def test_simultaneous_first_requests_all_pay_the_write(sim, clients):
    """As on the API: a prefix is readable only once the response that wrote it has begun."""
    client = clients(sim)
    system: Any = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    usages: list[Any] = []

    async def one(i: int) -> None:
        msg = await client.messages.create(
            model=MODEL, max_tokens=50, system=system, messages=ask(f"Question {i}?")
        )
        usages.append(msg.usage)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(one, i)
    assert sim.log.max_in_flight == 10  # the premise: all ten were in flight together
    assert all(u.cache_creation_input_tokens == len(LONG) // 4 for u in usages)
    assert all(u.cache_read_input_tokens == 0 for u in usages)
    later = await client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=ask("After?")
    )
    assert later.usage.cache_read_input_tokens == len(LONG) // 4
    assert later.usage.cache_creation_input_tokens == 0


async def test_more_than_four_breakpoints_is_400(sim, clients):
    marked: Any = [
        {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
        for i in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        await clients(sim).messages.create(
            model=MODEL, max_tokens=50, system=marked, messages=PROMPT
        )
    assert "A maximum of 4 blocks with cache_control" in error_body(info.value)["error"]["message"]


async def test_max_tokens_zero_prewarms_the_cache(sim, clients):
    client = clients(sim)
    system: Any = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    warm = await client.messages.create(model=MODEL, max_tokens=0, system=system, messages=PROMPT)
    assert warm.content == [] and warm.stop_reason == "max_tokens"
    assert warm.usage.output_tokens == 0
    assert warm.usage.cache_creation_input_tokens > 0
    real = await client.messages.create(model=MODEL, max_tokens=100, system=system, messages=PROMPT)
    assert real.usage.cache_read_input_tokens == warm.usage.cache_creation_input_tokens


# -- streaming ------------------------------------------------------------------------------------


async def test_stream_events_and_final_message(sim, clients):
    client = clients(sim)
    async with client.messages.stream(model=MODEL, max_tokens=300, messages=PROMPT) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "text" in kinds and "content_block_delta" in kinds
    plain = await client.messages.create(model=MODEL, max_tokens=300, messages=PROMPT)
    assert [b.model_dump(include={"type", "text"}) for b in final.content] == [
        b.model_dump(include={"type", "text"}) for b in plain.content
    ]
    assert final.usage.output_tokens == plain.usage.output_tokens > 0


async def test_stream_tool_input_arrives_as_input_json_deltas(sim, clients):
    client = clients(sim)
    deltas: list[str] = []
    async with client.messages.stream(
        model=MODEL, max_tokens=300, messages=ask(BOTH), tools=[WEATHER, TIME]
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas.append(event.delta.partial_json)
        final = await stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert "".join(deltas) == "".join(json.dumps(c.input) for c in calls)


async def test_stream_thinking_and_signature_deltas(sim, clients):
    client = clients(sim)
    seen: list[str] = []
    async with client.messages.stream(
        model=MODEL,
        max_tokens=3000,
        messages=PROMPT,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                seen.append(event.delta.type)
        final = await stream.get_final_message()
    assert "thinking_delta" in seen and "signature_delta" in seen
    assert seen.index("signature_delta") < seen.index("text_delta")
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature and thinking.thinking


@pytest.mark.sim(faults={"stream_error": 1.0})
async def test_stream_error_event_raises_overloaded(sim, clients):
    client = clients(sim)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=300, messages=PROMPT) as stream:
            async for _ in stream:
                pass
    assert "overloaded_error" in str(info.value.body)
    plain = await client.messages.create(model=MODEL, max_tokens=300, messages=PROMPT)
    assert plain.stop_reason == "end_turn"  # stream faults leave plain requests alone
    assert sim.log.count(fault="stream_error") == 1


@pytest.mark.sim(faults={"stream_cut": 1.0})
async def test_cut_stream_ends_before_message_stop(sim):
    body = {"model": MODEL, "max_tokens": 300, "messages": PROMPT, "stream": True}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.base_url}/v1/messages", json=body, headers={"x-api-key": "k"}
        )
    assert response.status_code == 200  # a complete HTTP response, an incomplete stream
    events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert "message_stop" not in events and "message_delta" not in events
    assert sim.log.count(fault="stream_cut") == 1


# -- count_tokens, batches, models ----------------------------------------------------------------


async def test_count_tokens_matches_usage(sim, clients):
    client = clients(sim)
    counted = await client.messages.count_tokens(
        model=MODEL, messages=PROMPT, system="Be brief.", tools=[WEATHER]
    )
    msg = await client.messages.create(
        model=MODEL, max_tokens=50, messages=PROMPT, system="Be brief.", tools=[WEATHER]
    )
    assert counted.input_tokens == msg.usage.input_tokens > 0


async def test_batches_create_retrieve_results_list_cancel(sim, clients):
    client = clients(sim)

    def item(custom_id: str, **params: Any) -> Any:
        return {
            "custom_id": custom_id,
            "params": {"model": MODEL, "max_tokens": 100, "messages": PROMPT, **params},
        }

    batch = await client.messages.batches.create(
        requests=[item("ok"), item("bad-model", model="claude-nope-1")]
    )
    assert batch.processing_status == "in_progress"
    done = await client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    assert (done.request_counts.succeeded, done.request_counts.errored) == (1, 1)
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert results["ok"].type == "succeeded"
    assert results["bad-model"].type == "errored"
    assert results["bad-model"].error.error.type == "not_found_error"  # type: ignore[union-attr]
    other = await client.messages.batches.create(requests=[item("x")])
    cancelled = await client.messages.batches.cancel(other.id)
    assert cancelled.processing_status == "canceling"
    listed = [b.id async for b in client.messages.batches.list()]
    assert listed == [other.id, batch.id]


async def test_models_list_and_retrieve(sim, clients):
    client = clients(sim)
    everything = [m async for m in client.models.list()]
    ids = [m.id for m in everything]
    assert {"claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-4-5"} <= set(ids)
    assert ids.index("claude-opus-5-5") < ids.index("claude-opus-4-6")  # newest first
    assert all(m.type == "model" and m.display_name.startswith("Claude ") for m in everything)
    page = await client.models.list(limit=2)
    assert [m.id for m in page.data] == ids[:2]
    assert page.has_more and page.first_id == ids[0] and page.last_id == ids[1]
    after = await client.models.list(limit=2, after_id=ids[1])
    assert [m.id for m in after.data] == ids[2:4]
    before = await client.models.list(limit=5, before_id=ids[3])
    assert [m.id for m in before.data] == ids[:3] and not before.has_more
    one = await client.models.retrieve("claude-sonnet-4-6")
    assert one.id == "claude-sonnet-4-6" and one.display_name == "Claude Sonnet 4.6"
    assert one.lifecycle == "active"
    assert (await client.models.retrieve("claude-sonnet-4-5")).lifecycle == "deprecated"
    with pytest.raises(anthropic.NotFoundError) as info:
        await client.models.retrieve("claude-nope-1")
    assert error_body(info.value)["error"] == {
        "type": "not_found_error",
        "message": "model: claude-nope-1",
    }


@pytest.mark.sim(models=["my-finetune"])
async def test_extra_models_are_served(sim, clients):
    client = clients(sim)
    msg = await client.messages.create(model="my-finetune", max_tokens=50, messages=PROMPT)
    assert msg.model == "my-finetune"
    assert "my-finetune" in [m.id async for m in client.models.list()]


async def test_a_dated_snapshot_of_a_known_model_is_served(sim, clients):
    msg = await clients(sim).messages.create(
        model="claude-sonnet-4-6-20260101", max_tokens=50, messages=PROMPT
    )
    assert msg.model == "claude-sonnet-4-6-20260101"


# -- error paths ----------------------------------------------------------------------------------


async def test_unknown_model_is_404_not_found(sim, clients):
    with pytest.raises(anthropic.NotFoundError) as info:
        await clients(sim).messages.create(model="claude-nope-1", max_tokens=50, messages=PROMPT)
    assert info.value.status_code == 404
    assert error_body(info.value)["error"] == {
        "type": "not_found_error",
        "message": "model: claude-nope-1",
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"messages": PROMPT}, "max_tokens: Field required"),
        ({"max_tokens": 50, "messages": []}, "at least one message"),
        ({"max_tokens": 50, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"max_tokens": 10**6, "messages": PROMPT}, "maximum allowed number of output tokens"),
    ],
)
async def test_invalid_requests_are_400_with_the_error_body(sim, clients, params, message):
    client = clients(sim)
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.post(
            "/v1/messages", body={"model": MODEL, **params}, cast_to=anthropic.types.Message
        )
    assert info.value.status_code == 400
    body = error_body(info.value)
    assert body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]


async def test_an_orphan_tool_use_is_400(sim, clients):
    messages: Any = [
        *ask("Use get_weather."),
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
        },
        {"role": "user", "content": "Never mind."},
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        await clients(sim).messages.create(
            model=MODEL, max_tokens=50, messages=messages, tools=[WEATHER]
        )
    assert error_body(info.value)["error"]["message"].startswith(
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "toolu_1."
    )


async def test_a_tool_result_without_its_tool_use_is_400(sim, clients):
    messages: Any = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]},
    ]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        await clients(sim).messages.create(model=MODEL, max_tokens=50, messages=messages)


async def test_unknown_paths_and_methods_get_unique_request_ids(sim, clients):
    client = clients(sim)
    ids = set()
    for _ in range(2):
        with pytest.raises(anthropic.NotFoundError) as info:
            await client.get("/v1/nope", cast_to=object)
        ids.add(error_body(info.value)["request_id"])
    async with httpx.AsyncClient() as http:
        wrong = await http.delete(f"{sim.base_url}/v1/messages", headers={"x-api-key": "k"})
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    ids.add(wrong.json()["request_id"])
    assert len(ids) == 3 and all(i.startswith("req_sim") for i in ids)


async def test_root_answers_get_and_head(sim):
    async with httpx.AsyncClient() as http:
        got = await http.get(sim.base_url + "/")
        head = await http.head(sim.base_url + "/")
    assert got.status_code == head.status_code == 200
    assert got.json()["ok"] is True
    assert head.content == b""


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"child": {"$ref": "#"}}},
        {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#"}},
            },
        },
        {"type": "object", "required": ["child"], "properties": {"child": {"$ref": "#"}}},
    ],
)
async def test_self_referencing_schemas_get_a_finite_answer(sim, clients, schema):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=2000,
        messages=PROMPT,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    value = json.loads(msg.content[0].text)  # type: ignore[union-attr]
    assert isinstance(value, dict)
    if "child" not in schema.get("required", []):  # the last one has no finite instance
        jsonschema.validate(value, schema)
