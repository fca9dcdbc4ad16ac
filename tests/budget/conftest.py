"""Runs on `FakeLLM` with the real engine, dispatcher and budgets; every event kept.

`h = budget_harness(llm, virtual_time=False, **settings)`; `await h.run(text, **request)`;
`h.of(EventType)`; `h.spent()` sums what the calls cost, as the history records it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from orchestrator.config import Settings, load_settings
from orchestrator.engine import Engine, RunOutcome, RunRequest
from orchestrator.events import CallFinished, Event
from orchestrator.testing import FakeLLM
from orchestrator.workflow import load_workflow

FAST = {
    "retry": {"base_delay": "10ms", "max_delay": "100ms", "overload_pause": "50ms"},
    "engine": {"heartbeat": "50ms"},
}


class VirtualClock:
    """Engine time that passes only when the engine waits (right for one task at a time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


@dataclass
class BudgetHarness:
    tmp: Path
    settings: Settings
    llm: FakeLLM
    clock: VirtualClock | None = None
    events: list[Event] = field(default_factory=list)

    def write(self, text: str, name: str = "wf.yaml") -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text))
        return path

    async def run(
        self, text: str | Path, inputs: dict[str, Any] | None = None, **request: Any
    ) -> RunOutcome:
        path = text if isinstance(text, Path) else self.write(text)
        workflow = load_workflow(path, settings=self.settings)
        timing: dict[str, Any] = {}
        if self.clock is not None:
            timing = {"clock": self.clock, "sleep": self.clock.sleep}
        engine = Engine(settings=self.settings, llm=self.llm, emit=self.events.append, **timing)
        workspace = self.tmp / "workspace"
        workspace.mkdir(exist_ok=True)
        with anyio.fail_after(60):  # a hang is a failure with a message, not a CI timeout
            return await engine.run(
                RunRequest(
                    workflow=workflow,
                    inputs=workflow.coerce_inputs(inputs or {}),
                    workspace=workspace,
                    **request,
                )
            )

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def spent(self, step: str | None = None) -> float:
        return sum(
            e.cost_usd or 0.0
            for e in self.of(CallFinished)
            if step is None or e.step_id == step or e.step_id.startswith(step + ".")
        )


@pytest.fixture
def budget_harness(tmp_path: Path) -> Callable[..., BudgetHarness]:
    def factory(
        llm: FakeLLM | None = None, *, virtual_time: bool = False, **settings: Any
    ) -> BudgetHarness:
        overrides = {k: {**FAST.get(k, {}), **settings.get(k, {})} for k in {*FAST, *settings}}
        return BudgetHarness(
            tmp=tmp_path,
            settings=load_settings(environ={}, cwd=tmp_path, overrides=overrides),
            llm=llm if llm is not None else FakeLLM(),
            clock=VirtualClock() if virtual_time else None,
        )

    return factory
