"""Workflows run in-process with the real engine, every event kept (the `fake_harness` and
`make_harness` fixtures of tests/conftest.py are built on these).

- `FakeHarness`: on `orchestrator.testing.FakeLLM` (no server, no SDK): for what the engine
  decides and does. Script replies with `h.llm.on(...)`; count calls with `h.llm.count(...)`.
- `SimHarness`: on the simulator over loopback, through the real SDK client: for what must hold
  on the wire (the examples, cache accounting, tokens as the API reported them).

Settings are the packaged defaults with fast retries and heartbeats (`fast_settings`), never the
host's environment. A run works in the workflow's `workspace:` where it declares one (resolved
as the CLI does), else in `tmp/workspace`. With `db` set, a run is also recorded in that SQLite
store through the store's single writer, as the CLI records it, so a test can read it back.
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from orchestrator.config import Settings, load_settings
from orchestrator.contracts import LLM
from orchestrator.engine import Engine, ResumeState, RunOutcome, RunRequest
from orchestrator.events import CallFinished, Event
from orchestrator.llm import make_llm
from orchestrator.sim import SimServer
from orchestrator.store import Store
from orchestrator.testing import FakeLLM
from orchestrator.workflow import load_workflow

FAST = {
    "retry": {"base_delay": "10ms", "max_delay": "100ms", "overload_pause": "50ms"},
    "engine": {"heartbeat": "50ms"},
}

# A hang is a failure with a message, not a CI timeout; a bound, not a speed requirement.
RUN_TIMEOUT_S = 60


def fast_settings(tmp: Path, **settings: Any) -> Settings:
    """The packaged settings with `FAST` merged under `settings` (a section's keys, by section)."""
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
    db: Path | None = None  # record every run in this SQLite store as well

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
        workspace = self.workspace(workflow.workspace, path)
        extra: dict[str, Any] = {"run_id": run_id} if run_id else {}
        run = RunRequest(
            workflow=workflow,
            inputs=workflow.coerce_inputs(inputs or {}),
            workspace=workspace,
            resume=resume,
            **extra,
            **request,
        )
        store = Store.open(str(self.db)) if self.db is not None else None
        llm = await self.new_llm()
        try:
            if store is None:
                return await self._run(llm, run, self.events.append, engine_hook)
            async with store.writer() as writer:

                def emit(event: Event) -> None:
                    self.events.append(event)
                    writer.send(event)

                return await self._run(llm, run, emit, engine_hook)
        finally:
            await llm.aclose()
            if store is not None:
                store.close()

    def workspace(self, declared: str | None, path: Path) -> Path:
        """The workflow's `workspace:` (relative to its file), as the CLI resolves it; else a
        folder in `tmp`."""
        # an absolute `declared` stays itself
        workspace = (path.parent / declared).resolve() if declared else self.tmp / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        return workspace

    async def _run(
        self, llm: LLM, run: RunRequest, emit: Callable[[Event], None], engine_hook: Any
    ) -> RunOutcome:
        timing: dict[str, Any] = {}
        if self.clock is not None:
            timing = {"clock": self.clock, "sleep": self.clock.sleep}
        engine = Engine(settings=self.settings, llm=llm, emit=emit, **timing)
        if engine_hook is not None:
            engine_hook(engine)
        with anyio.fail_after(RUN_TIMEOUT_S):
            return await engine.run(run)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def spent(self, step: str | None = None) -> float:
        """What the calls cost (of `step` and the steps inside it), as the history records it."""
        return sum(
            e.cost_usd or 0.0
            for e in self.of(CallFinished)
            if step is None or e.step_id == step or e.step_id.startswith(step + ".")
        )


@dataclass
class FakeHarness(Harness):
    llm: FakeLLM = field(default_factory=FakeLLM)


@dataclass
class SimHarness(Harness):
    sim: SimServer = field(default=None)  # type: ignore[assignment]


H = TypeVar("H", bound=FakeHarness)


def fake_harness(
    tmp: Path,
    llm: FakeLLM | None = None,
    *,
    virtual_time: bool = False,
    kind: type[H] = FakeHarness,  # type: ignore[assignment]
    **settings: Any,
) -> H:
    """A harness on one FakeLLM for every run (so a resumed run sees the batches the first one
    submitted)."""
    fake = llm if llm is not None else FakeLLM()

    async def same() -> LLM:
        return fake

    return kind(
        tmp=tmp,
        settings=fast_settings(tmp, **settings),
        new_llm=same,
        clock=VirtualClock() if virtual_time else None,
        llm=fake,
    )


def sim_harness(tmp: Path, sim: SimServer, **settings: Any) -> SimHarness:
    """A harness whose every run gets a new real client on the started simulator `sim`."""
    resolved = fast_settings(tmp, **settings)

    async def real_client() -> LLM:
        return make_llm(resolved, simulate=True, base_url=sim.base_url)

    return SimHarness(tmp=tmp, settings=resolved, new_llm=real_client, sim=sim)
