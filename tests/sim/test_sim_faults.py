"""Injected faults reach the SDK as the exceptions a real outage would raise."""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import pytest

from orchestrator.sim import SimConfig

MODEL = "claude-sonnet-5-5"
USER = [{"role": "user", "content": "Hello"}]


@pytest.mark.sim(faults={"429": 1.0}, retry_after_s=2.5)
async def test_429_is_rate_limit_error_with_retry_after(sim, clients, transport):
    with pytest.raises(anthropic.RateLimitError) as info:
        await clients(sim, transport).messages.create(model=MODEL, max_tokens=10, messages=USER)
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "3"
    assert err.response.headers["retry-after-ms"] == "2500"
    assert isinstance(err.body, dict)
    assert err.body["error"]["type"] == "rate_limit_error"
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert sim.log.count(status=429, fault="429") == 1


@pytest.mark.sim(faults={"529": 1.0})
async def test_529_is_overloaded(sim, clients, transport):
    with pytest.raises(anthropic.InternalServerError) as info:
        await clients(sim, transport).messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert info.value.status_code == 529
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.sim(faults={"500": 1.0})
async def test_500_is_api_error(sim, clients):
    with pytest.raises(anthropic.InternalServerError) as info:
        await clients(sim).messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert info.value.status_code == 500
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "api_error"


@pytest.mark.sim(faults={"529": 1.0})
async def test_faults_apply_to_streams_before_they_start(sim, clients):
    client = clients(sim)
    with pytest.raises(anthropic.InternalServerError):
        async with client.messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
            await stream.get_final_message()


@pytest.mark.sim(faults={"disconnect": 1.0})
async def test_disconnect_is_connection_error(sim, clients, transport):
    client = clients(sim, transport)
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert sim.log.count(fault="disconnect") == 1


@pytest.mark.sim(faults={"disconnect": 1.0})
async def test_disconnect_mid_stream_raises_not_hangs(sim, clients, transport):
    """Once a stream has started, the SDK lets the transport's error through: with both
    transports it is an `httpx2.TransportError` (RemoteProtocolError / ReadError)."""
    client = clients(sim, transport)
    with pytest.raises((anthropic.APIConnectionError, httpx.TransportError)):
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
            await stream.get_final_message()
    assert sim.log.count(fault="disconnect") == 1


@pytest.mark.sim(faults={"disconnect": 1.0})
async def test_server_survives_disconnects(sim, clients):
    client = clients(sim)
    for _ in range(3):
        with pytest.raises(anthropic.APIConnectionError):
            await client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert sim.log.count(fault="disconnect") == 3
    assert sim.log.in_flight == 0


async def test_fault_draws_are_deterministic_and_near_their_rate(sim_factory, clients):
    def outcomes(seed: int) -> list[int]:
        return [e.status for e in servers[seed].log.entries]

    faults = SimConfig.parse_faults("429=0.2,529=0.1,500=0.1")
    servers = {seed: sim_factory(SimConfig(seed=seed, faults=faults)) for seed in (1, 2)}
    again = sim_factory(SimConfig(seed=1, faults=faults))
    for server in [*servers.values(), again]:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for i in range(60):
                body = {"model": MODEL, "max_tokens": 10, "messages": USER, "metadata": {"i": i}}
                await http.post("/v1/messages", json=body, headers={"x-api-key": "k"})
    assert outcomes(1) == [e.status for e in again.log.entries]
    assert outcomes(1) != outcomes(2)
    statuses = outcomes(1) + outcomes(2)
    assert 10 <= statuses.count(429) <= 40
    assert statuses.count(200) >= 50


@pytest.mark.sim(faults={"429": 1.0})
async def test_count_tokens_and_batches_are_not_faulted(sim, clients):
    count = await clients(sim).messages.count_tokens(model=MODEL, messages=USER)
    assert count.input_tokens >= 1
