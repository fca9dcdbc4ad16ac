"""Clients of the real SDK pointed at the `sim` fixture, over httpx or aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import pytest

from orchestrator.sim import SimServer


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., anthropic.AsyncAnthropic]]:
    """`make(sim, transport="httpx", **kwargs)`: an AsyncAnthropic with no SDK retries."""
    made: list[anthropic.AsyncAnthropic] = []

    def make(sim: SimServer, transport: str = "httpx", **kwargs: Any) -> anthropic.AsyncAnthropic:
        options: dict[str, Any] = {"api_key": "sk-test", "max_retries": 0, "timeout": 10.0}
        if transport == "aiohttp":
            options["http_client"] = anthropic.DefaultAioHttpClient()
        options.update(kwargs)
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
