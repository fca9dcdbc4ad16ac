"""What goes into a run and what comes out of it: the engine's public data.

`RunRequest` is one run to execute (a fresh one, or a resumed one with its `ResumeState`);
`RunOutcome` is how it ended. The CLI builds the first from flags and the store, and reads the
second for the exit code; library users do the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.contracts import RecordedCall
from orchestrator.ids import new_id
from orchestrator.states import RunStatus, exit_code
from orchestrator.workflow import Workflow


@dataclass
class PriorTask:
    """A task that succeeded in an earlier attempt at this run: resume reuses its output."""

    output: Any
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = 0.0


@dataclass
class ResumeState:
    """What a resumed run starts from (read from the store by the CLI)."""

    tasks: dict[str, PriorTask] = field(default_factory=dict)  # task key -> what it produced
    state: dict[str, Any] = field(default_factory=dict)  # the shared blackboard
    batches: dict[str, list[str]] = field(default_factory=dict)  # step path -> batch ids
    # task key -> the calls its conversation made before the process ended (call-level replay)
    conversations: dict[str, list[RecordedCall]] = field(default_factory=dict)
    spent_usd: float = 0.0
    spent_tokens: int = 0
    # step path as run -> (dollars, tokens) its calls spent: the step budgets go on from there
    spent_by_step: dict[str, tuple[float, int]] = field(default_factory=dict)


@dataclass
class RunRequest:
    """One run. The limits given here override the workflow's `limits:` (flags win)."""

    workflow: Workflow
    inputs: dict[str, Any]
    workspace: Path
    run_id: str = field(default_factory=new_id)
    resume: ResumeState | None = None
    concurrency: int | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_workers: int | None = None


@dataclass
class RunOutcome:
    run_id: str
    status: RunStatus
    outputs: dict[str, Any] | None
    error: str | None

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)
