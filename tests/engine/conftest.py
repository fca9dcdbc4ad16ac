"""Run workflows in-process on the simulator: the real SDK path, the real engine, events kept."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings, load_settings
from orchestrator.engine import Engine, ResumeState, RunOutcome, RunRequest
from orchestrator.events import Event
from orchestrator.llm import make_llm
from orchestrator.sim import SimConfig, SimServer
from orchestrator.workflow import load_workflow

FAST = {
    "retry": {"base_delay": "10ms", "max_delay": "100ms", "overload_pause": "50ms"},
    "engine": {"heartbeat": "50ms"},
}


@dataclass
class Harness:
    tmp: Path
    sim: SimServer
    settings: Settings
    events: list[Event] = field(default_factory=list)

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
        llm = make_llm(self.settings, simulate=True, base_url=self.sim.base_url)
        engine = Engine(settings=self.settings, llm=llm, emit=self.events.append)
        if engine_hook is not None:
            engine_hook(engine)
        workspace = self.tmp / "workspace"
        workspace.mkdir(exist_ok=True)
        extra: dict[str, Any] = {"run_id": run_id} if run_id else {}
        try:
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


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Any]:
    servers: list[SimServer] = []

    def factory(config: SimConfig | None = None, **settings: Any) -> Harness:
        sim = SimServer(config or SimConfig())
        sim.start()
        servers.append(sim)
        overrides = {k: {**FAST.get(k, {}), **settings.get(k, {})} for k in {*FAST, *settings}}
        return Harness(
            tmp=tmp_path,
            sim=sim,
            settings=load_settings(environ={}, cwd=tmp_path, overrides=overrides),
        )

    yield factory
    for sim in servers:
        sim.stop()
