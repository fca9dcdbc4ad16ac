"""Shared fixtures: the Messages API simulator on a free loopback port.

def test_x(sim):                    # default SimConfig
    client = AsyncAnthropic(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    ...; assert sim.log.count(task="t1") == 1

@pytest.mark.sim(latency_s=0.05, faults={"429": 0.5})   # kwargs of SimConfig
def test_y(sim): ...

def test_z(sim_factory):            # several servers, or a config built in the test
    a = sim_factory(SimConfig(seed=1)); b = sim_factory(seed=2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from orchestrator.sim import SimConfig, SimServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim(**kwargs): SimConfig for the `sim` fixture")


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    """`factory(config=None, **simconfig_kwargs) -> SimServer`, started; stopped after the test."""
    from orchestrator.sim import SimConfig, SimServer

    servers: list[SimServer] = []

    def factory(config: SimConfig | None = None, **kwargs: Any) -> SimServer:
        server = SimServer(config if config is not None else SimConfig(**kwargs))
        server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def sim(request: pytest.FixtureRequest, sim_factory: Callable[..., SimServer]) -> SimServer:
    """A started simulator (`base_url`, `log`); configure it with `@pytest.mark.sim(...)`."""
    marker = request.node.get_closest_marker("sim")
    return sim_factory(**(marker.kwargs if marker else {}))
