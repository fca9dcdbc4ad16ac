"""`RunContext`: what a step handler may use of the run it is part of.

The scheduler builds one per run and passes it to every handler (see `engine/registry.py`).
A handler reads the run's settings and limits, starts tasks through `tasks` inside `task_slots`,
claims them against `limits.max_workers` with `claim_tasks`, walks nested steps with `walk`, and
emits events; it holds no state of its own between calls. Nothing here speaks HTTP or SQL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from orchestrator.config import Settings
from orchestrator.contracts import LLM, Emit, People, TaskResult, TaskSpec, WorkerContext
from orchestrator.engine.attempts import Stop, TaskRunner
from orchestrator.engine.backpressure import Sleep
from orchestrator.engine.dispatch import Dispatcher
from orchestrator.engine.plan import Scope, StepResult, over_max_workers
from orchestrator.engine.resolve import RunLimits
from orchestrator.engine.state import SharedState
from orchestrator.engine.worktrees import Worktrees
from orchestrator.workflow import Step

WorkerFn = Callable[[TaskSpec, WorkerContext], Awaitable[TaskResult]]
"""A runtime: runs one task to its result (`orchestrator.worker.run_worker` by default)."""

Walk = Callable[[list[Step], Scope], Awaitable[dict[str, StepResult]]]
# (step path, scope, kind, total tasks or None): emits StepStarted for a kind that announces itself
Announce = Callable[[str, Scope, str, int | None], None]


@dataclass(slots=True, kw_only=True)
class RunContext:
    run_id: str
    settings: Settings
    limits: RunLimits
    emit: Emit
    workspace: Path
    llm: LLM
    dispatcher: Dispatcher
    state: SharedState
    worker: WorkerFn
    worker_ctx: WorkerContext  # what online workers get: calls through the dispatcher
    tasks: TaskRunner
    stop: Stop
    sleep: Sleep
    walk: Walk  # run a list of steps in a scope to their results (loops, sub-workflows)
    announce: Announce
    prior_batches: dict[str, list[str]] = field(default_factory=dict)  # step path -> batch ids
    people: People | None = None  # who answers questions (kinds/ask.py); None: no one
    budget_approved: bool = False  # a person let the run go past limits.ask_above_usd
    tasks_created: int = 0
    sandbox_warned: bool = False  # the unsandboxed-`run:` warning is given once per run
    clock: Callable[[], float] = time.monotonic  # the engine's (tests inject a virtual one)
    repeats_every_s: float | None = None  # the workflow's `schedule:` period (cache TTLs)
    ttls_told: set[str] = field(default_factory=set)  # steps whose 1h TTL was explained
    task_slots: anyio.CapacityLimiter = field(init=False)
    # `isolation: worktree` and `merge: branches`; touches git only once a step needs it
    worktrees: Worktrees = field(init=False)

    def __post_init__(self) -> None:
        self.task_slots = anyio.CapacityLimiter(self.limits.concurrency)
        runs_dir = Path(self.settings.engine.runs_dir).resolve()
        self.worktrees = Worktrees(
            workspace=self.workspace, run_id=self.run_id, root=runs_dir / self.run_id / "worktrees"
        )

    def claim_tasks(self, count: int, *, fanout: bool) -> str | None:
        """Count `count` new tasks against `limits.max_workers`; or, if that would break the
        limit, claim none and return why."""
        problem = over_max_workers(
            self.tasks_created, count, self.limits.max_workers, fanout=fanout
        )
        if problem is None:
            self.tasks_created += count
        return problem
