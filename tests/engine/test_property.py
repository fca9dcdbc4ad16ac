"""Property test of the scheduler: random DAGs, fan-outs, routing and injected failures.

Each example builds a workflow of 3-8 steps with random dependencies (agent steps, fan-outs of
0-6 items with random `on_item_error` and `concurrency`, merges, `when` false), random failures
(permanent, or failing once then succeeding) and random retries, and runs it on the real engine
with a fake worker that sleeps a tiny, key-derived time and tracks what is in flight.

Checked for every example:
- every step ends in exactly one terminal StepFinished, with the status the rules of DESIGN.md
  give (dependents of a failed step cancelled, all-skipped dependencies skip, `when` false skips,
  `on_item_error: skip` drops failed items);
- a task key starts once, and the worker runs it again only after a TaskRetried for it, exactly
  as many times as the failure and the retries allow;
- the run-wide concurrency limit, and each fan-out's own, is never exceeded;
- cancelled at a random point (as Ctrl-C does), the run ends `cancelled` with every step finished
  once and every started task finished once.
"""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.config import load_settings
from orchestrator.contracts import TaskResult, TaskSpec, WorkerContext
from orchestrator.engine import Engine, RunRequest
from orchestrator.errors import TaskFailed
from orchestrator.events import StepFinished, TaskFinished, TaskRetried, TaskStarted
from orchestrator.testing import FakeLLM
from orchestrator.workflow import load_workflow

TERMINAL = {"succeeded", "failed", "skipped", "cancelled"}
_TMP = Path(tempfile.mkdtemp(prefix="orchestrate-property-"))
SETTINGS = load_settings(environ={}, cwd=_TMP, overrides={"engine": {"heartbeat": "1s"}})


@dataclass
class StepPlan:
    id: str
    kind: str  # agent | fanout | merge
    deps: list[str]
    items: int = 0
    when_false: bool = False
    on_item_error: str = "fail"
    concurrency: int | None = None
    source: str | None = None  # merge: the fan-out it reduces


@dataclass
class Plan:
    steps: list[StepPlan]
    concurrency: int
    retries: int
    fail_always: set[tuple[str, int | None]] = field(default_factory=set)
    fail_once: set[tuple[str, int | None]] = field(default_factory=set)

    def yaml(self) -> str:
        steps: list[dict[str, Any]] = []
        for s in self.steps:
            body: dict[str, Any] = {"id": s.id}
            if s.deps:
                body["needs"] = list(s.deps)
            if s.when_false:
                body["when"] = "{{ false }}"
            if s.kind == "merge":
                body.update({"merge": "concat", "from": s.source})
            else:
                body["prompt"] = f"Do {s.id}" + (" for {{ item }}" if s.kind == "fanout" else "")
            if s.kind == "fanout":
                body["for_each"] = [f"{s.id}-item-{i}" for i in range(s.items)]
                body["on_item_error"] = s.on_item_error
                if s.concurrency is not None:
                    body["concurrency"] = s.concurrency
            steps.append(body)
        return yaml.safe_dump(
            {
                "version": 1,
                "name": "prop",
                "defaults": {"retries": self.retries},
                "limits": {"concurrency": self.concurrency},
                "steps": steps,
            },
            sort_keys=False,
        )

    def units(self, s: StepPlan) -> list[int | None]:
        return [None] if s.kind == "agent" else list(range(s.items))

    def unit_fails(self, unit: tuple[str, int | None]) -> bool:
        return unit in self.fail_always or (unit in self.fail_once and self.retries == 0)

    def invocations(self, unit: tuple[str, int | None]) -> int:
        if unit in self.fail_always:
            return self.retries + 1
        if unit in self.fail_once:
            return min(2, self.retries + 1)
        return 1

    def expected(self) -> dict[str, str]:
        """Each step's status by DESIGN.md's rules, computed in file (= topological) order."""
        status: dict[str, str] = {}
        for s in self.steps:
            deps = [status[d] for d in s.deps]
            if any(d in ("failed", "cancelled") for d in deps):
                status[s.id] = "cancelled"
            elif deps and all(d == "skipped" for d in deps):
                status[s.id] = "skipped"
            elif s.when_false:
                status[s.id] = "skipped"
            elif s.kind == "merge":
                status[s.id] = "succeeded"
            else:
                failed = [u for u in self.units(s) if self.unit_fails((s.id, u))]
                fatal = failed and (s.kind == "agent" or s.on_item_error == "fail")
                status[s.id] = "failed" if fatal else "succeeded"
        return status


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = draw(st.integers(3, 8))
    steps: list[StepPlan] = []
    for i in range(n):
        sid = f"s{i}"
        earlier = [s.id for s in steps]
        fanouts = [s.id for s in steps if s.kind == "fanout"]
        kinds = ["agent", "fanout"] + (["merge"] if fanouts else [])
        kind = draw(st.sampled_from(kinds))
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        when_false = draw(st.integers(0, 5)) == 0
        step = StepPlan(id=sid, kind=kind, deps=deps, when_false=when_false)
        if kind == "fanout":
            step.items = draw(st.integers(0, 6))
            step.on_item_error = draw(st.sampled_from(["fail", "skip"]))
            step.concurrency = draw(st.one_of(st.none(), st.integers(1, 3)))
        if kind == "merge":
            step.source = draw(st.sampled_from(fanouts))
            if step.source not in step.deps:
                step.deps.append(step.source)
        steps.append(step)
    plan = Plan(steps=steps, concurrency=draw(st.integers(1, 4)), retries=draw(st.integers(0, 2)))
    units = [(s.id, u) for s in steps if s.kind != "merge" for u in plan.units(s)]
    if units:
        chosen = draw(st.lists(st.sampled_from(units), unique=True, max_size=6))
        for unit in chosen:
            target = plan.fail_always if draw(st.booleans()) else plan.fail_once
            target.add(unit)
    return plan


@dataclass
class Probe:
    """The fake worker: records each invocation in the event stream, in order."""

    plan: Plan
    events: list[Any]
    in_flight: int = 0
    peak: int = 0
    step_in_flight: dict[str, int] = field(default_factory=dict)
    step_peak: dict[str, int] = field(default_factory=dict)
    attempts: dict[tuple[str, int | None], int] = field(default_factory=dict)

    async def __call__(self, spec: TaskSpec, ctx: WorkerContext) -> TaskResult:
        unit = (spec.step_id, spec.index)
        self.events.append(("invoke", spec.task_id, spec.key))
        self.attempts[unit] = self.attempts.get(unit, 0) + 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        here = self.step_in_flight.get(spec.step_id, 0) + 1
        self.step_in_flight[spec.step_id] = here
        self.step_peak[spec.step_id] = max(self.step_peak.get(spec.step_id, 0), here)
        try:
            await anyio.sleep((zlib.crc32(spec.key.encode()) % 4) / 1000)
            if unit in self.plan.fail_always or (
                unit in self.plan.fail_once and self.attempts[unit] == 1
            ):
                raise TaskFailed(f"injected failure in {spec.key}")
            return TaskResult(output=f"out:{spec.key}", text=f"out:{spec.key}")
        finally:
            self.in_flight -= 1
            self.step_in_flight[spec.step_id] -= 1


async def _no_wait(_: float) -> None:
    await anyio.sleep(0)


async def _execute(plan: Plan) -> tuple[Any, list[Any], Probe]:
    workflow = load_workflow(_TMP / "prop.yaml", text=plan.yaml(), settings=SETTINGS)
    events: list[Any] = []
    probe = Probe(plan, events)
    engine = Engine(
        settings=SETTINGS,
        llm=FakeLLM(),  # the fake worker never calls the model
        emit=events.append,
        worker=probe,
        sleep=_no_wait,
    )
    outcome = await engine.run(RunRequest(workflow=workflow, inputs={}, workspace=_TMP))
    return outcome, events, probe


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=plans())
def test_random_dags_end_well_formed(plan: Plan) -> None:
    outcome, events, probe = anyio.run(_execute, plan)
    expected = plan.expected()

    finished = [e for e in events if isinstance(e, StepFinished)]
    assert sorted(e.step_id for e in finished) == sorted(expected), "one StepFinished per step"
    assert all(e.status in TERMINAL for e in finished)
    assert {e.step_id: e.status for e in finished} == expected, plan.yaml()
    assert outcome.status == ("failed" if "failed" in expected.values() else "succeeded")

    # a key starts once; the worker reruns it only after a TaskRetried for that task
    started = [e for e in events if isinstance(e, TaskStarted)]
    keys = [e.key for e in started]
    assert len(keys) == len(set(keys)), "a task key started twice"
    seen: dict[str, int] = {}
    retried: dict[str, int] = {}
    for event in events:
        if isinstance(event, TaskRetried):
            retried[event.task_id] = retried.get(event.task_id, 0) + 1
        elif isinstance(event, tuple) and event[0] == "invoke":
            _, task_id, key = event
            seen[key] = seen.get(key, 0) + 1
            assert seen[key] <= 1 + retried.get(task_id, 0), f"{key} ran again without a retry"

    # exactly the work the plan calls for, on the steps that ran
    for s in plan.steps:
        if s.kind == "merge" or expected[s.id] in ("skipped", "cancelled"):
            assert all(unit[0] != s.id for unit in probe.attempts), f"{s.id} should not run"
            continue
        for u in plan.units(s):
            assert probe.attempts.get((s.id, u), 0) == plan.invocations((s.id, u)), (s.id, u)

    assert probe.peak <= plan.concurrency
    for s in plan.steps:
        if s.kind == "fanout" and s.concurrency is not None:
            assert probe.step_peak.get(s.id, 0) <= s.concurrency


async def _execute_and_cancel(plan: Plan, cancel_at: int) -> tuple[Any, list[Any], Probe]:
    workflow = load_workflow(_TMP / "prop.yaml", text=plan.yaml(), settings=SETTINGS)
    events: list[Any] = []
    probe = Probe(plan, events)
    engine = Engine(
        settings=SETTINGS,
        llm=FakeLLM(),
        emit=events.append,
        sleep=_no_wait,
    )

    async def worker(spec: TaskSpec, ctx: WorkerContext) -> TaskResult:
        if sum(probe.attempts.values()) + 1 == cancel_at:
            engine.cancel("SIGINT")  # as the CLI does on Ctrl-C, from inside a running task
        return await probe(spec, ctx)

    engine.worker = worker
    outcome = await engine.run(RunRequest(workflow=workflow, inputs={}, workspace=_TMP))
    return outcome, events, probe


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=plans(), cancel_at=st.integers(1, 12))
def test_cancelling_a_random_dag_leaves_every_step_and_task_finished(
    plan: Plan, cancel_at: int
) -> None:
    outcome, events, probe = anyio.run(_execute_and_cancel, plan, cancel_at)
    invoked = sum(probe.attempts.values())

    finished = [e for e in events if isinstance(e, StepFinished)]
    assert sorted(e.step_id for e in finished) == sorted(s.id for s in plan.steps)
    assert all(e.status in TERMINAL for e in finished)
    if invoked >= cancel_at:
        assert outcome.status == "cancelled"
    # every task that started was finished exactly once, whatever the cancellation interrupted
    started = {e.task_id for e in events if isinstance(e, TaskStarted)}
    ends = [e.task_id for e in events if isinstance(e, TaskFinished)]
    assert sorted(ends) == sorted(started)
    assert probe.peak <= plan.concurrency
