"""Which TTL a step's marked prefix asks for, decided each time the step starts.

The rule itself is pure (`warmup.choose_ttl`); this module gathers what it needs from the run: a
fan-out's expected duration, the period of the loop a step repeats in (`warmup.LoopPeriod`,
expected from the loop body's steps here, measured once the step has run twice), and the
period of the workflow's `schedule:`. A 1h choice made by `cache.ttl: auto` is told once per
step (`CacheTtlChosen`, stored with the run), so `runs show`'s cache line can say why.
Expected durations lean long on purpose (see warmup.py): every step of a body counts, in
sequence, a nested loop at its `max_iterations`, a step skipped by `when` as if it ran.
"""

from __future__ import annotations

import re

from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import Scope
from orchestrator.engine.resolve import TaskSettings, task_settings
from orchestrator.engine.warmup import choose_ttl, expected_step_s
from orchestrator.errors import OrchestrateError
from orchestrator.events import CacheTtlChosen
from orchestrator.workflow import Step, Workflow

__all__ = ["expected_period_s", "has_prefix", "step_ttl"]

_INDEX = re.compile(r"\[\d+\]")


def _expected_s(run: RunContext, step: Step, workflow: Workflow) -> float:
    """Seconds one run of `step` is expected to take (0 where nothing says: a person, a
    command; the measured period catches those from the loop's second iteration on)."""
    if step.kind == "agent":
        try:
            resolved = task_settings(step, workflow, run.settings)
        except OrchestrateError:  # an unknown agent: the step fails when it runs
            return 0.0
        return expected_step_s(1, 1, resolved.max_tokens)  # a fan-out: one round at least
    if step.kind == "loop" and step.loop is not None:
        cap = step.loop.max_iterations
        times = cap if isinstance(cap, int) else 1
        return times * sum(_expected_s(run, s, workflow) for s in step.loop.steps)
    if step.kind == "group" and step.group is not None:
        return sum(_expected_s(run, s, workflow) for s in step.group.steps)
    if step.kind == "workflow" and step.sub is not None:
        return sum(_expected_s(run, s, step.sub) for s in step.sub.steps)
    return 0.0


def expected_period_s(run: RunContext, loop: Step, workflow: Workflow) -> float | None:
    """Seconds one iteration of `loop` is expected to take (its body runs in order)."""
    assert loop.loop is not None
    return sum(_expected_s(run, s, workflow) for s in loop.loop.steps) or None


def has_prefix(resolved: TaskSettings, step: Step) -> bool:
    """Whether the step's requests carry anything to mark: tools, a system prompt, `context`."""
    return bool(resolved.tools or resolved.system or step.context is not None)


def step_ttl(run: RunContext, scope: Scope, path: str, *, expected_s: float | None = None) -> str:
    """The TTL the marks of the step at `path` ask for as it starts now (once per start: a
    loop's measured period counts from this call)."""
    period, measured = scope.loop.starting(path) if scope.loop is not None else (None, False)
    configured = run.settings.cache.ttl
    ttl, why = choose_ttl(
        configured,
        expected_s,
        loop_period_s=period,
        measured=measured,
        schedule_s=run.repeats_every_s,
    )
    step = _INDEX.sub("", path)  # told once for every item of a fan-out of loops
    if ttl == "1h" and configured == "auto" and step not in run.ttls_told:
        run.ttls_told.add(step)
        run.emit(CacheTtlChosen(run_id=run.run_id, step_id=step, ttl=ttl, why=why))
    return ttl
