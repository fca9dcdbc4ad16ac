"""The simulator through the real SDK: replies, structured output, tools, streaming, usage."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import anyio
import httpx2 as httpx
import jsonschema
import pytest

from orchestrator.sim import SimConfig

MODEL = "claude-sonnet-5-5"
USER = [{"role": "user", "content": "Summarise the state of solar power in Spain, briefly."}]
READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "offset": {"type": "integer"}},
        "required": ["file_path"],
    },
}
LOOKUP_TOOL = {
    "name": "lookup",
    "description": "Look a term up",
    "input_schema": {
        "type": "object",
        "properties": {
            "term": {"type": "string", "minLength": 3},
            "limit": {"type": "integer", "minimum": 1, "maximum": 3},
        },
        "required": ["term", "limit"],
        "additionalProperties": False,
    },
}
SCHEMA = {
    "type": "object",
    "required": ["verdict", "items", "meta"],
    "additionalProperties": False,
    "properties": {
        "verdict": {"enum": ["pass", "fail"]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 2},
        "meta": {
            "type": "object",
            "required": ["score"],
            "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
        },
    },
    "$defs": {
        "item": {
            "type": "object",
            "required": ["title", "tags"],
            "properties": {
                "title": {"type": "string", "minLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            },
        }
    },
}


def comparable(message: Any) -> dict[str, Any]:
    """A message as plain data, minus what differs between otherwise equal replies."""
    data: dict[str, Any] = message.model_dump(exclude_none=True)
    data.pop("id")
    for block in data["content"]:
        block.pop("parsed_output", None)
    return data


async def test_text_reply_quotes_the_prompt(sim, clients, transport):
    client = clients(sim, transport)
    msg = await client.messages.create(model=MODEL, max_tokens=500, messages=USER)
    assert msg.stop_reason == "end_turn"
    assert msg.model == MODEL
    assert msg.id.startswith("msg_")
    [block] = msg.content
    assert block.type == "text"
    assert "Summarise the state of solar power" in block.text
    assert msg.usage.input_tokens >= 1
    assert msg.usage.output_tokens == len(block.text) // 4


async def test_system_blocks_and_metadata_are_accepted(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=200,
        system=[{"type": "text", "text": "You are terse."}],
        metadata={"user_id": "u1"},
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    )
    assert msg.content[0].type == "text"


@pytest.mark.parametrize(
    "schema",
    [
        SCHEMA,
        {"type": "array", "items": {"type": "integer"}, "minItems": 7},
        {
            "type": "object",
            "required": ["choice"],
            "properties": {
                "choice": {
                    "anyOf": [
                        {"type": "string", "format": "email"},
                        {"type": "object", "required": ["n"], "properties": {"n": {"const": 3}}},
                    ]
                }
            },
        },
        {
            "type": "object",
            "required": ["tree"],
            "properties": {"tree": {"$ref": "#/definitions/node"}},
            "definitions": {
                "node": {
                    "type": "object",
                    "required": ["name", "children"],
                    "properties": {
                        "name": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                    },
                }
            },
        },
    ],
    ids=["nested-ref-enum", "min-items", "any-of", "recursive"],
)
async def test_structured_output_fits_the_schema(sim, clients, schema):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=4000,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert msg.stop_reason == "end_turn"
    [block] = msg.content
    value = json.loads(block.text)
    jsonschema.validate(value, schema)


@pytest.mark.sim(list_len=3)
async def test_list_len_sets_array_length(sim, clients):
    schema = {"type": "object", "required": ["xs"], "properties": {"xs": {"type": "array"}}}
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=1000,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert len(json.loads(msg.content[0].text)["xs"]) == 3


async def test_tool_use_then_final_answer(sim, clients, transport):
    client = clients(sim, transport)
    tools: Any = [READ_TOOL, LOOKUP_TOOL]
    messages: list[Any] = [
        {"role": "user", "content": "Use Read on the notes, then lookup the terms; answer in JSON."}
    ]
    first = await client.messages.create(
        model=MODEL,
        max_tokens=1000,
        messages=messages,
        tools=tools,
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
    )
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["Read", "lookup"]  # the tools the prompt names, in order
    for call in calls:
        assert call.id.startswith("toolu_")
        if call.name == "Read":
            assert call.input == {"file_path": "README.md"}
        else:
            jsonschema.validate(call.input, LOOKUP_TOOL["input_schema"])
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": c.id, "content": "file text"} for c in calls
            ],
        },
    ]
    final = await client.messages.create(
        model=MODEL,
        max_tokens=1000,
        messages=messages,
        tools=tools,
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
    )
    assert final.stop_reason == "end_turn"
    jsonschema.validate(json.loads(final.content[0].text), SCHEMA)


async def test_tools_the_prompt_does_not_name_are_not_called(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL, max_tokens=500, messages=USER, tools=[READ_TOOL, LOOKUP_TOOL]
    )
    assert msg.stop_reason == "end_turn"
    assert [b.type for b in msg.content] == ["text"]
    assert "solar power in Spain" in msg.content[0].text


async def test_server_tools_are_not_called(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=500,
        messages=USER,
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    )
    assert msg.stop_reason == "end_turn"


@pytest.mark.sim(tool_calls=False)
async def test_tool_calls_can_be_turned_off(sim, clients):
    client = clients(sim)
    msg = await client.messages.create(
        model=MODEL, max_tokens=500, messages=USER, tools=[READ_TOOL]
    )
    assert msg.stop_reason == "end_turn"
    forced = await client.messages.create(
        model=MODEL,
        max_tokens=500,
        messages=USER,
        tools=[READ_TOOL, LOOKUP_TOOL],
        tool_choice={"type": "tool", "name": "lookup"},
    )
    assert [b.name for b in forced.content if b.type == "tool_use"] == ["lookup"]


@pytest.mark.parametrize("kind", ["text", "tools", "json"])
async def test_stream_gives_the_same_message(sim, clients, transport, kind):
    client = clients(sim, transport)
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 1000, "messages": USER}
    if kind == "tools":
        params["tools"] = [READ_TOOL, LOOKUP_TOOL]
        params["messages"] = [{"role": "user", "content": "Read the file, then lookup a term."}]
    if kind == "json":
        params["output_config"] = {"format": {"type": "json_schema", "schema": SCHEMA}}
    plain = await client.messages.create(**params)
    async with client.messages.stream(**params) as stream:
        events = [event.type async for event in stream]
        streamed = await stream.get_final_message()
    assert comparable(streamed) == comparable(plain)
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "content_block_start" in events and "content_block_stop" in events


async def test_raw_sse_event_sequence(sim):
    body = {"model": MODEL, "max_tokens": 100, "messages": USER, "stream": True}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.base_url}/v1/messages", json=body, headers={"x-api-key": "k"}
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 1
    assert "content_block_delta" in names


async def test_same_seed_same_reply_other_seed_differs(sim_factory, clients):
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1000,
        "messages": USER,
        "tools": [LOOKUP_TOOL],
    }
    a = await clients(sim_factory(seed=7)).messages.create(**params)
    b = await clients(sim_factory(seed=7)).messages.create(**params)
    c = await clients(sim_factory(seed=8)).messages.create(**params)
    assert comparable(a) == comparable(b)
    assert comparable(a) != comparable(c)


async def test_count_tokens(sim, clients):
    client = clients(sim)
    short = await client.messages.count_tokens(model=MODEL, messages=USER)
    long = await client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "word " * 400}]
    )
    assert short.input_tokens >= 1
    assert long.input_tokens == pytest.approx(2000 / 4, rel=0.05)
    msg = await client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert msg.usage.input_tokens == short.input_tokens


async def test_max_tokens_and_stop_sequences_cut_the_text(sim, clients):
    client = clients(sim)
    cut = await client.messages.create(model=MODEL, max_tokens=3, messages=USER)
    assert cut.stop_reason == "max_tokens"
    assert len(cut.content[0].text) == 12
    stopped = await client.messages.create(
        model=MODEL, max_tokens=500, messages=USER, stop_sequences=["solar"]
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "solar"
    assert "solar" not in stopped.content[0].text


async def test_prompt_cache_writes_then_reads(sim, clients):
    client = clients(sim)
    context = "Shared context. " * 300  # 4800 characters: 1200 tokens, over sonnet's 1024 minimum
    system: Any = [
        {"type": "text", "text": "You are a researcher."},
        {"type": "text", "text": context, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]

    def ask(question: str) -> Any:
        return client.messages.create(
            model=MODEL,
            max_tokens=200,
            system=system,
            messages=[{"role": "user", "content": question}],
        )

    first = await ask("Question one?")
    second = await ask("Question two, longer?")
    prefix = (len("You are a researcher.") + len(context)) // 4
    assert first.usage.cache_creation_input_tokens == prefix
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == prefix
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix
    assert second.usage.cache_creation_input_tokens == 0
    assert 0 < second.usage.input_tokens < 20
    other_model = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system=system,
        messages=[{"role": "user", "content": "Question one?"}],
    )
    assert other_model.usage.cache_read_input_tokens == 0  # the cache is per model


async def test_cache_breakpoint_in_messages_adds_a_5m_write(sim, clients):
    client = clients(sim)
    system: Any = [{"type": "text", "text": "S" * 4400, "cache_control": {"type": "ephemeral"}}]
    turn: Any = {
        "role": "user",
        "content": [{"type": "text", "text": "D" * 800, "cache_control": {"type": "ephemeral"}}],
    }
    first = await client.messages.create(model=MODEL, max_tokens=50, system=system, messages=[turn])
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == (4400 + 800) // 4
    turn2: Any = {"role": "user", "content": [{"type": "text", "text": "E" * 800}]}
    second = await client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=[turn2]
    )
    assert second.usage.cache_read_input_tokens == 1100
    assert second.usage.input_tokens == 200


# A small input-token limit and a long prompt: the bucket refills 100 tokens a second, so the
# ~2,000 this request takes are still missing from the header however slow the host is.
@pytest.mark.sim(rate_limits={"requests": 4000, "input_tokens": 6000, "output_tokens": 400_000})
async def test_rate_limit_headers(sim, clients):
    prompt = [{"role": "user", "content": "Summarise the state of solar power. " * 220}]
    raw = await clients(sim).messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=prompt
    )
    headers = raw.headers
    assert headers["request-id"].startswith("req_")
    assert raw.request_id == headers["request-id"]
    assert headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "3999"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "6000"
    assert int(headers["anthropic-ratelimit-input-tokens-remaining"]) < 5000
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "400000"
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")


@pytest.mark.sim(rate_limits={"requests": 2}, retry_after_s=0.5)
async def test_rate_limit_is_enforced(sim, clients):
    client = clients(sim)
    for _ in range(2):
        await client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert info.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert 25 <= int(info.value.response.headers["retry-after"]) <= 30  # refills 2/min
    assert sim.log.count(fault="rate_limit") == 1


async def test_missing_key_is_401(sim):
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.base_url}/v1/messages",
            json={"model": MODEL, "max_tokens": 10, "messages": USER},
        )
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert body["request_id"] == response.headers["request-id"]


async def test_sdk_without_auth_header_gets_authentication_error(sim, clients):
    client = clients(sim, default_headers={"Authorization": anthropic.Omit()})
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 10, "messages": USER}, "model: Field required"),
        ({"model": MODEL, "messages": USER}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 10}, "messages: Field required"),
        ({"model": MODEL, "max_tokens": -1, "messages": USER}, "greater than or equal to 0"),
        ({"model": MODEL, "max_tokens": 10, "messages": []}, "at least one message"),
        (
            {"model": MODEL, "max_tokens": 10, "messages": [{"role": "bot", "content": "x"}]},
            "messages.0.role",
        ),
    ],
)
async def test_invalid_requests_are_400(sim, body, message):
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.base_url}/v1/messages", json=body, headers={"x-api-key": "k"}
        )
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"]["type"] == "invalid_request_error"
    assert message in payload["error"]["message"]
    assert payload["request_id"].startswith("req_")


async def test_sdk_maps_400_and_404(sim, clients):
    client = clients(sim)
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=[])
    with pytest.raises(anthropic.NotFoundError):
        await client.get("/v1/nope", cast_to=object)


async def test_log_counts_by_task_and_step(sim, clients):
    client = clients(sim)
    for task, step in [("t1", "plan"), ("t2", "research"), ("t2", "research")]:
        await client.messages.create(
            model=MODEL,
            max_tokens=100,
            messages=USER,
            extra_headers={"X-Orchestrate-Task": task, "X-Orchestrate-Step": step},
        )
    await client.messages.count_tokens(model=MODEL, messages=USER)
    log = sim.log
    assert log.count() == 3
    assert log.count(task="t2") == 2
    assert log.count(step="plan") == 1
    assert log.count(status=200) == 3
    assert log.count(path="/v1/messages/count_tokens") == 1
    assert log.count(path=None) == 4
    entry = log.entries[0]
    assert entry.body is not None and entry.body["max_tokens"] == 100
    assert entry.headers["x-orchestrate-task"] == "t1"
    assert entry.method == "POST"
    log.clear()
    assert log.count(path=None) == 0


@pytest.mark.sim(latency_s=0.2, jitter=0.0)
async def test_latency_and_max_in_flight(sim, clients):
    client = clients(sim)
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(lambda: client.messages.create(model=MODEL, max_tokens=50, messages=USER))
    elapsed = anyio.current_time() - started
    assert sim.log.max_in_flight == 6
    assert sim.log.in_flight == 0
    assert 0.2 <= elapsed < 1.0  # concurrent, not serial
    assert all(e.latency_s == pytest.approx(0.2) for e in sim.log.entries)


def test_sync_client_works_too(sim):
    with anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0) as client:
        msg = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert msg.stop_reason == "end_turn"


def test_config_in_python():
    with pytest.raises(ValueError, match="unknown fault"):
        SimConfig(faults={"418": 0.5})


async def test_sdk_parse_with_a_pydantic_model(sim, clients):
    from pydantic import BaseModel

    class Item(BaseModel):
        title: str
        score: int

    class Out(BaseModel):
        verdict: str
        items: list[Item]

    msg = await clients(sim).messages.parse(
        model=MODEL, max_tokens=2000, messages=USER, output_format=Out
    )
    assert isinstance(msg.parsed_output, Out)
    assert len(msg.parsed_output.items) == 5


async def test_prompt_asking_for_json_gets_json_text(sim, clients):
    msg = await clients(sim).messages.create(
        model=MODEL,
        max_tokens=500,
        messages=[{"role": "user", "content": "Reply with JSON only: list three risks."}],
    )
    assert json.loads(msg.content[0].text)["prompt"].startswith("Reply with JSON only")
