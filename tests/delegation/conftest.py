"""Runs of workflows whose agents start agents, in-process on the simulator (the real SDK path).

`lead_run(workflow, rules)` starts a simulator scripted with `rules` (the lead's `Task` calls),
runs the workflow through the real engine and client, records it in a SQLite store under
`tmp_path` and returns the outcome, every event and the simulator's request log.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config import load_settings
from orchestrator.engine import Engine, ResumeState, RunOutcome, RunRequest
from orchestrator.events import Event, TaskFinished, TaskStarted
from orchestrator.llm import make_llm
from orchestrator.sim import SimConfig, SimServer
from orchestrator.sim.config import Rule
from orchestrator.store import Store
from orchestrator.workflow import load_workflow

FAST = {
    "retry": {"base_delay": "10ms", "max_delay": "100ms", "overload_pause": "50ms"},
    "engine": {"heartbeat": "50ms"},
}

AGENTS = """\
agents:
  lead:
    description: Plans research and delegates it.
    system: You lead a research team.
    tools: [Task]
  researcher:
    description: Researches one sub-question.
    system: You research one question and answer in a paragraph.
    tools: []
  deep:
    description: A researcher that may delegate again.
    system: You research, delegating parts.
    tools: [Agent]
"""


def task_call(prompt: str, agent: str = "researcher", tool: str = "Task") -> dict[str, Any]:
    return {
        "name": tool,
        "input": {"description": prompt[:20], "prompt": prompt, "subagent_type": agent},
    }


@dataclass
class LeadRun:
    outcome: RunOutcome
    events: list[Event]
    sim: SimServer
    db: Path

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def started(self) -> dict[str, TaskStarted]:
        return {e.task_id: e for e in self.of(TaskStarted)}

    def finished(self) -> dict[str, TaskFinished]:
        return {e.task_id: e for e in self.of(TaskFinished)}

    def store(self) -> Store:
        return Store.open(str(self.db), readonly=True)


@dataclass
class Runner:
    tmp: Path
    servers: list[SimServer] = field(default_factory=list)

    def __call__(
        self,
        workflow: str,
        rules: list[dict[str, Any]],
        *,
        resume: ResumeState | None = None,
        run_id: str | None = None,
        latency_s: float = 0.0,
        **request: Any,
    ) -> LeadRun:
        path = self.tmp / "wf.yaml"
        path.write_text(textwrap.dedent(workflow))
        settings = load_settings(environ={}, cwd=self.tmp, overrides=FAST)
        loaded = load_workflow(path, settings=settings)
        scripted = [Rule(**r, name=f"rule {i}") for i, r in enumerate(rules)]
        sim = SimServer(SimConfig(rules=scripted, latency_s=latency_s))
        sim.start()
        self.servers.append(sim)
        db = self.tmp / "state.db"
        events: list[Event] = []
        workspace = self.tmp / "workspace"
        workspace.mkdir(exist_ok=True)

        async def main() -> RunOutcome:
            store = Store.open(str(db))
            llm = make_llm(settings, simulate=True, base_url=sim.base_url)
            try:
                async with store.writer() as writer:

                    def emit(event: Event) -> None:
                        events.append(event)
                        writer.send(event)

                    engine = Engine(settings=settings, llm=llm, emit=emit)
                    extra = {"run_id": run_id} if run_id else {}
                    with anyio.fail_after(60):
                        return await engine.run(
                            RunRequest(
                                workflow=loaded,
                                inputs=loaded.coerce_inputs({}),
                                workspace=workspace,
                                resume=resume,
                                **extra,
                                **request,
                            )
                        )
            finally:
                await llm.aclose()
                store.close()

        outcome = anyio.run(main)
        return LeadRun(outcome, events, sim, db)


@pytest.fixture
def lead_run(tmp_path: Path) -> Iterator[Callable[..., LeadRun]]:
    runner = Runner(tmp_path)
    yield runner
    for sim in runner.servers:
        sim.stop()
