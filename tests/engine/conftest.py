"""Two ways to run workflows in-process, both with the real engine and every event kept:

- `fake_harness`: on `orchestrator.testing.FakeLLM` (no server, no SDK): for what the engine
  decides and does. Script replies with `h.llm.on(...)`; count calls with `h.llm.count(...)`.
- `make_harness`: on the simulator over loopback, through the real SDK client: for what must
  hold on the wire (the examples, cache accounting, tokens as the API reported them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config import Settings, load_settings
from orchestrator.contracts import LLM
from orchestrator.engine import Engine, ResumeState, RunOutcome, RunRequest
from orchestrator.events import Event
from orchestrator.llm import make_llm
from orchestrator.sim import SimConfig, SimServer
from orchestrator.testing import FakeLLM
from orchestrator.workflow import load_workflow

FAST = {
    "retry": {"base_delay": "10ms", "max_delay": "100ms", "overload_pause": "50ms"},
    "engine": {"heartbeat": "50ms"},
}


def fast_settings(tmp: Path, **settings: Any) -> Settings:
    overrides = {k: {**FAST.get(k, {}), **settings.get(k, {})} for k in {*FAST, *settings}}
    return load_settings(environ={}, cwd=tmp, overrides=overrides)


class VirtualClock:
    """Engine time that passes only when the engine waits: a wait returns at once and moves
    the clock on. Right for one task at a time (concurrent waits would add up)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


@dataclass
class Harness:
    tmp: Path
    settings: Settings
    new_llm: Callable[[], Awaitable[LLM]]
    events: list[Event] = field(default_factory=list)
    clock: VirtualClock | None = None

    def write(self, text: str, name: str = "wf.yaml") -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text))
        return path

    async def run(
        self,
        text: str | Path,
        inputs: dict[str, Any] | None = None,
        *,
        resume: ResumeState | None = None,
        run_id: str | None = None,
        engine_hook: Any = None,
        **request: Any,
    ) -> RunOutcome:
        path = text if isinstance(text, Path) else self.write(text)
        workflow = load_workflow(path, settings=self.settings)
        llm = await self.new_llm()
        timing: dict[str, Any] = {}
        if self.clock is not None:
            timing = {"clock": self.clock, "sleep": self.clock.sleep}
        engine = Engine(settings=self.settings, llm=llm, emit=self.events.append, **timing)
        if engine_hook is not None:
            engine_hook(engine)
        workspace = self.tmp / "workspace"
        workspace.mkdir(exist_ok=True)
        extra: dict[str, Any] = {"run_id": run_id} if run_id else {}
        try:
            with anyio.fail_after(60):  # a hang is a failure with a message, not a CI timeout
                return await engine.run(
                    RunRequest(
                        workflow=workflow,
                        inputs=workflow.coerce_inputs(inputs or {}),
                        workspace=workspace,
                        resume=resume,
                        **extra,
                        **request,
                    )
                )
        finally:
            await llm.aclose()

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class FakeHarness(Harness):
    llm: FakeLLM = field(default_factory=FakeLLM)


@pytest.fixture
def fake_harness(tmp_path: Path) -> Callable[..., FakeHarness]:
    """`factory(llm=None, virtual_time=False, **settings) -> FakeHarness`; one FakeLLM for
    every run of the harness (so a resumed run sees the batches the first one submitted)."""

    def factory(
        llm: FakeLLM | None = None, *, virtual_time: bool = False, **settings: Any
    ) -> FakeHarness:
        fake = llm if llm is not None else FakeLLM()

        async def same() -> LLM:
            return fake

        return FakeHarness(
            tmp=tmp_path,
            settings=fast_settings(tmp_path, **settings),
            new_llm=same,
            clock=VirtualClock() if virtual_time else None,
            llm=fake,
        )

    return factory


@dataclass
class SimHarness(Harness):
    sim: SimServer = field(default=None)  # type: ignore[assignment]


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., SimHarness]]:
    servers: list[SimServer] = []

    def factory(config: SimConfig | None = None, **settings: Any) -> SimHarness:
        sim = SimServer(config or SimConfig())
        sim.start()
        servers.append(sim)
        resolved = fast_settings(tmp_path, **settings)

        async def real_client() -> LLM:
            return make_llm(resolved, simulate=True, base_url=sim.base_url)

        return SimHarness(tmp=tmp_path, settings=resolved, new_llm=real_client, sim=sim)

    yield factory
    for sim in servers:
        sim.stop()
