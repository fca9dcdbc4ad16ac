from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator.events import (
    CallFinished,
    CallRetried,
    Event,
    Heartbeat,
    RunFinished,
    RunStarted,
    StateSet,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskRetried,
    TaskStarted,
    ToolCalled,
)
from orchestrator.ids import new_id
from orchestrator.store import Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".orchestrate" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store.open(str(db_path))
    yield s
    s.close()


@dataclass
class SyntheticRun:
    """A whole run's events: a planner, a fan-out with a retried and a failed item, shared state,
    a two-iteration loop, heartbeats and a retried call."""

    run_id: str
    events: list[Event] = field(default_factory=list)
    tasks: dict[str, str] = field(default_factory=dict)  # key -> task id
    calls: list[CallFinished] = field(default_factory=list)

    def usage_totals(self) -> dict[str, float]:
        totals = {"input": 0, "output": 0, "cache_write": 0, "cache_read": 0, "cost": 0.0}
        for c in self.calls:
            totals["input"] += c.usage.get("input_tokens", 0)
            totals["output"] += c.usage.get("output_tokens", 0)
            totals["cache_write"] += c.usage.get("cache_creation_input_tokens", 0)
            totals["cache_read"] += c.usage.get("cache_read_input_tokens", 0)
            totals["cost"] += c.cost_usd or 0.0
        return totals


def synthetic_run(
    *,
    items: int = 3,
    start: float | None = None,
    workflow: str = "research-report",
    unknown_cost_model: str | None = None,
    finish: str | None = "succeeded",
) -> SyntheticRun:
    t = time.time() - 60 if start is None else start
    run = SyntheticRun(run_id=new_id())
    rid = run.run_id
    ev = run.events

    def tick() -> float:
        nonlocal t
        t += 0.01
        return t

    def task(
        step: str,
        key: str,
        *,
        model: str = "claude-sonnet-4-5",
        index: int | None = None,
        iteration: int | None = None,
        status: str = "succeeded",
        output: object = "ok",
        retried: bool = False,
        cache_read: int = 0,
    ) -> str:
        tid = new_id()
        run.tasks[key] = tid
        ev.append(
            TaskStarted(
                run_id=rid,
                ts=tick(),
                task_id=tid,
                step_id=step,
                key=key,
                index=index,
                iteration=iteration,
                agent="researcher",
                model=model,
                system="You research.",
                prompt=f"prompt for {key}",
            )
        )
        attempts = 1
        if retried:
            attempts = 2
            ev.append(
                TaskRetried(
                    run_id=rid,
                    ts=tick(),
                    task_id=tid,
                    step_id=step,
                    attempt=2,
                    error="timed out after 5m",
                    wait_s=1.0,
                )
            )
        usage = {
            "input_tokens": 100,
            "output_tokens": 40,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": cache_read,
        }
        cost = None if model == unknown_cost_model else 0.002
        call = CallFinished(
            run_id=rid,
            ts=tick(),
            call_id=new_id(),
            task_id=tid,
            step_id=step,
            model=model,
            attempt=1,
            request={"model": model, "max_tokens": 1024, "messages": [{"role": "user"}]},
            response={"id": "msg_x", "content": [{"type": "text", "text": str(output)}]},
            request_id="req_" + tid[-6:],
            http_status=200,
            latency_s=0.2,
            usage=usage,
            cost_usd=cost,
        )
        ev.append(call)
        run.calls.append(call)
        ev.append(
            ToolCalled(run_id=rid, ts=tick(), task_id=tid, step_id=step, tool="Read", input={})
        )
        ev.append(
            TaskFinished(
                run_id=rid,
                ts=tick(),
                task_id=tid,
                step_id=step,
                status=status,
                output=output if status == "succeeded" else None,
                error=None if status == "succeeded" else "model never produced valid JSON",
                usage=usage,
                cost_usd=cost,
                attempts=attempts,
                turns=1,
            )
        )
        return tid

    ev.append(
        RunStarted(
            run_id=rid,
            ts=tick(),
            workflow_name=workflow,
            workflow_path=f"workflows/{workflow}.yaml",
            workflow_snapshot="version: 1\nname: research-report\n",
            workflow_hash="sha256:abc",
            inputs={"question": "why?", "parts": items},
            workspace="/tmp/ws",
            pid=4242,
            limits={"concurrency": 50},
        )
    )
    ev.append(StepStarted(run_id=rid, ts=tick(), step_id="plan", kind="agent"))
    ev.append(
        CallRetried(
            run_id=rid,
            ts=tick(),
            task_id="",
            step_id="plan",
            attempt=1,
            kind="overloaded",
            error="HTTP 529",
            wait_s=2.0,
            http_status=529,
        )
    )
    subtasks = [f"part {i}" for i in range(items)]
    task("plan", "plan", output={"subtasks": subtasks}, model="claude-opus-4-1")
    ev.append(
        StepFinished(run_id=rid, ts=tick(), step_id="plan", status="succeeded", output=subtasks)
    )
    ev.append(Heartbeat(run_id=rid, ts=tick()))
    ev.append(
        StepStarted(run_id=rid, ts=tick(), step_id="research", kind="fanout", total_tasks=items)
    )
    outputs = []
    for i in range(items):
        failed = i == items - 1 and items > 1
        out = f"finding {i}"
        task(
            "research",
            f"research[{i}]",
            index=i,
            model="claude-haiku-4-5",
            status="failed" if failed else "succeeded",
            output=out,
            retried=i == 0,
            cache_read=200,
        )
        ev.append(StateSet(run_id=rid, ts=tick(), key=f"finding.{i}", value={"i": i}))
        outputs.append(None if failed else out)
    ev.append(
        StepFinished(run_id=rid, ts=tick(), step_id="research", status="succeeded", output=outputs)
    )
    ev.append(StepStarted(run_id=rid, ts=tick(), step_id="polish", kind="loop"))
    for it in (1, 2):
        ev.append(
            StepStarted(run_id=rid, ts=tick(), step_id="polish.draft", kind="agent", iteration=it)
        )
        task("polish.draft", f"polish.draft@{it}", iteration=it, output=f"draft {it}")
        ev.append(
            StepFinished(
                run_id=rid,
                ts=tick(),
                step_id="polish.draft",
                status="succeeded",
                output=f"draft {it}",
                iteration=it,
            )
        )
    ev.append(
        StepFinished(
            run_id=rid,
            ts=tick(),
            step_id="polish",
            status="succeeded",
            output={"draft": "draft 2"},
            iterations=2,
        )
    )
    ev.append(StateSet(run_id=rid, ts=tick(), key="finding.0", value={"i": 0, "final": True}))
    ev.append(Heartbeat(run_id=rid, ts=tick()))
    if finish is not None:
        ev.append(RunFinished(run_id=rid, ts=tick(), status=finish, outputs={"report": "draft 2"}))
    return run


@pytest.fixture
def make_run() -> Callable[..., SyntheticRun]:
    return synthetic_run
