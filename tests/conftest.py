"""Shared fixtures: the Messages API simulator on a free loopback port.

def test_x(sim):                    # default SimConfig
    client = AsyncAnthropic(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    ...; assert sim.log.count(task="t1") == 1

@pytest.mark.sim(latency_s=0.05, faults={"429": 0.5})   # kwargs of SimConfig
def test_y(sim): ...

def test_z(sim_factory):            # several servers, or a config built in the test
    a = sim_factory(SimConfig(seed=1)); b = sim_factory(seed=2)

def test_e(fake_harness):           # the real engine in-process (tests/_support/harness.py)
    h = fake_harness(); outcome = await h.run("version: 1 ..."); h.llm.count(...)

def test_f(make_harness):           # the same through the real SDK client on a simulator
    h = make_harness(SimConfig(seed=1)); await h.run(...); h.sim.log.find(...)

def test_g(sim, gate_factory):      # a proxy in front of `sim` that holds chosen requests
    gate = gate_factory(sim, by_key("fan[5]:"))   # tests/_support/gate.py
    ...; gate.wait_held(); gate.release()
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Ray (tests/ray) reads its authentication settings once, when a process first imports it, and
# any test module may be the first: a cluster the tests start and the drivers that join it share
# one token of their own (not ~/.ray/auth_token, which any other local Ray may replace), set here
# before anything imports Ray. Only Ray reads these variables.
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_AUTH_MODE", "token")

if TYPE_CHECKING:
    from orchestrator.sim import SimConfig, SimServer
    from tests._support.gate import Gate, Hold
    from tests._support.harness import FakeHarness, SimHarness


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim(**kwargs): SimConfig for the `sim` fixture")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project directory to run the CLI in (`tests/_support/cli.py`): the working
    directory, with no ANTHROPIC_* or ORCHESTRATE_* variable of the host's."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "ORCHESTRATE_")):
            monkeypatch.delenv(name)
    return tmp_path


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


@pytest.fixture
def fake_harness(tmp_path: Path) -> Callable[..., FakeHarness]:
    """`factory(llm=None, *, virtual_time=False, **settings) -> FakeHarness` in `tmp_path`: the
    engine on FakeLLM, one FakeLLM for every run of the harness."""
    from tests._support import harness

    return lambda *args, **kwargs: harness.fake_harness(tmp_path, *args, **kwargs)


@pytest.fixture
def make_harness(
    tmp_path: Path, sim_factory: Callable[..., SimServer]
) -> Callable[..., SimHarness]:
    """`factory(config=None, **settings) -> SimHarness` in `tmp_path`: the engine and the real
    client on a started simulator (stopped after the test)."""
    from tests._support import harness

    def factory(config: SimConfig | None = None, **settings: Any) -> SimHarness:
        return harness.sim_harness(tmp_path, sim_factory(config), **settings)

    return factory


@pytest.fixture
def gate_factory() -> Iterator[Callable[[SimServer | str, Hold], Gate]]:
    """`factory(sim_or_url, hold) -> Gate`, started in front of it; closed after the test (which
    drops whatever it still holds)."""
    from tests._support.gate import Gate

    gates: list[Gate] = []

    def factory(upstream: SimServer | str, hold: Hold) -> Gate:
        gate = Gate(upstream if isinstance(upstream, str) else upstream.base_url, hold)
        gates.append(gate)
        return gate

    yield factory
    for gate in gates:
        gate.close()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for one test module: initdb + pg_ctl from the machine's
    PostgreSQL in a temporary folder, on loopback only, run as `nobody` when the tests run as
    root (PostgreSQL refuses root). Skips where the server binaries are absent."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed here")
    root = Path(tempfile.mkdtemp(prefix="orchestrate-pg-"))
    root.chmod(0o777)
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    port = _free_port()
    data = root / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
        cwd=root,
    )
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
        cwd=root,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
