"""The direct transport (around the SDK) sends what the SDK would, and fails as the SDK would."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import FatalError, RetryableError
from orchestrator.llm import SIMULATOR_API_KEY, AnthropicLLM
from orchestrator.sim import Rule, SimConfig, SimServer

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 64,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Say hello."}],
    "metadata": {"user_id": "u-1"},
    "extra_headers": {"X-Orchestrate-Step": "greet"},
}
HEADERS = ("anthropic-version", "user-agent", "content-type", "x-orchestrate-step")


async def _send(transport: str, sim: SimServer, request: dict[str, Any]) -> Any:
    llm = AnthropicLLM(api_key=SIMULATOR_API_KEY, base_url=sim.base_url, transport=transport)
    try:
        return await llm.create(dict(request))
    finally:
        await llm.aclose()


async def test_the_direct_post_sends_the_sdks_body_and_headers() -> None:
    with SimServer(SimConfig(seed=1)) as sim:
        via_sdk = await _send("httpx", sim, REQUEST)
        direct = await _send("direct", sim, REQUEST)
        sdk_entry, direct_entry = sim.log.entries[-2:]
    assert direct_entry.body == sdk_entry.body
    for name in HEADERS:
        assert direct_entry.headers.get(name) == sdk_entry.headers.get(name), name
    auth = ("authorization", "x-api-key")
    assert [direct_entry.headers.get(h) for h in auth] == [sdk_entry.headers.get(h) for h in auth]
    assert direct.message["content"] == via_sdk.message["content"]
    assert direct.usage == via_sdk.usage
    assert direct.request_id and direct.request_id == direct_entry.request_id


@pytest.mark.parametrize(
    "rule, error, status",
    [
        (
            Rule(step="greet", error={"status": 429, "type": "rate_limit_error"}),
            RetryableError,
            429,
        ),
        (
            Rule(step="greet", error={"status": 529, "type": "overloaded_error"}),
            RetryableError,
            529,
        ),
        (
            Rule(step="greet", error={"status": 400, "type": "invalid_request_error"}),
            FatalError,
            400,
        ),
    ],
)
async def test_an_error_status_is_classified_as_through_the_sdk(
    rule: Rule, error: type[Exception], status: int
) -> None:
    caught: dict[str, Any] = {}
    for transport in ("httpx", "direct"):
        with SimServer(SimConfig(seed=1, rules=[rule])) as sim:
            with pytest.raises(error) as info:
                await _send(transport, sim, REQUEST)
        caught[transport] = info.value
    sdk, direct = caught["httpx"], caught["direct"]
    assert getattr(direct, "status", None) == getattr(sdk, "status", None) == status
    assert getattr(direct, "kind", None) == getattr(sdk, "kind", None)
    assert str(direct) == str(sdk)
    assert SIMULATOR_API_KEY not in str(direct)


TOOL = {
    "name": "lookup",
    "description": "Look a word up.",
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
}


@pytest.mark.parametrize(
    "extra",
    [
        {"messages": [{"role": "user", "content": "Write three sentences about rivers."}]},
        {
            "messages": [{"role": "user", "content": "Use the lookup tool for 'river'."}],
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": "lookup"},
        },
    ],
    ids=["text", "tool_use"],
)
async def test_a_streamed_reply_is_put_together_as_the_sdk_does(extra: dict[str, Any]) -> None:
    request = {**REQUEST, **extra, "stream": True}
    deltas: dict[str, list[str]] = {"httpx": [], "direct": []}
    replies = {}
    for transport in ("httpx", "direct"):
        with SimServer(SimConfig(seed=1)) as sim:
            llm = AnthropicLLM(
                api_key=SIMULATOR_API_KEY, base_url=sim.base_url, transport=transport
            )
            try:
                replies[transport] = await llm.create(
                    dict(request), on_delta=deltas[transport].append
                )
            finally:
                await llm.aclose()
    sdk, direct = replies["httpx"], replies["direct"]
    assert {k: v for k, v in direct.message.items() if k != "id"} == {
        k: v for k, v in sdk.message.items() if k != "id"
    }
    assert direct.usage == sdk.usage
    assert deltas["direct"] == deltas["httpx"]


def test_what_orjson_refuses_still_goes_through_json() -> None:
    """A tool input the model wrote with an integer over 64 bits is sent and read back whole,
    not refused (orjson handles 64-bit integers; `json` takes the rest)."""
    from orchestrator.llm._direct import dumps, loads

    big = 2**70
    assert dumps({"n": big, "s": "é"}) == f'{{"n":{big},"s":"é"}}'.encode()
    assert loads(f'{{"n": {big}}}'.encode()) == {"n": big}
    with pytest.raises(ValueError):
        loads(b"{not json")
