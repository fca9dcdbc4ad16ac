"""Runs of workflows whose agents start agents, in-process on the simulator (the real SDK path).

`lead_run(workflow, rules)` starts a simulator scripted with `rules` (the lead's `Task` calls),
runs the workflow through the real engine and client (`make_harness`, tests/_support/harness.py),
records it in a SQLite store under `tmp_path` and returns the outcome, every event and the
simulator's request log.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.engine import RunOutcome
from orchestrator.events import Event, TaskFinished, TaskStarted
from orchestrator.sim import SimConfig, SimServer
from orchestrator.sim.config import Rule
from orchestrator.store import Store
from tests._support.harness import SimHarness

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


def lead_workflow(limits: str = "") -> str:
    """A lead that may delegate to the agents above, under `limits` (a line of YAML)."""
    return f"""\
version: 1
name: lead
{limits}
{AGENTS}
steps:
  - id: lead
    agent: lead
    prompt: Research the history of tea.
outputs:
  report: "{{{{ steps.lead.output }}}}"
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


@pytest.fixture
def lead_run(tmp_path: Path, make_harness: Callable[..., SimHarness]) -> Callable[..., LeadRun]:
    """`lead_run(workflow, rules, *, latency_s=0.0, resume=None, run_id=None, **request)`."""

    def run(
        workflow: str, rules: list[dict[str, Any]], *, latency_s: float = 0.0, **request: Any
    ) -> LeadRun:
        scripted = [Rule(**r, name=f"rule {i}") for i, r in enumerate(rules)]
        harness = make_harness(SimConfig(rules=scripted, latency_s=latency_s))
        harness.db = tmp_path / "state.db"
        outcome = anyio.run(functools.partial(harness.run, workflow, **request))
        return LeadRun(outcome, harness.events, harness.sim, harness.db)

    return run
