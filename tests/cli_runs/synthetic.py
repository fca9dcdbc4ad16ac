"""Synthetic runs (events as the engine emits them), written through the real `StoreWriter`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from orchestrator import events as ev
from orchestrator.store import Store

SONNET = "claude-sonnet-5-5"
UNPRICED = "claude-unknown-1"
SYSTEM = "You are a planner. Split questions well."
PROMPT = "Split into 3 sub-questions: why is the sky blue?"
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "notes.md"}}
PLAN_OUTPUT = {"subtasks": ["scattering", "wavelengths", "eyes"]}


def fill(db: str, events: Iterable[ev.Event]) -> None:
    """Write events through the store's own writer, as the engine does."""

    async def write() -> None:
        store = Store.open(db)
        try:
            async with store.writer() as writer:
                for event in events:
                    writer.send(event)
                await writer.flush()
        finally:
            store.close()

    asyncio.run(write())


def _call(
    run_id: str,
    call_id: str,
    task_id: str,
    step_id: str,
    *,
    ts: float,
    request: dict[str, Any],
    response: dict[str, Any] | None,
    model: str = SONNET,
    cost: float | None = 0.001,
    status: str = "succeeded",
    error: str | None = None,
    attempt: int = 1,
) -> ev.CallFinished:
    usage = dict(response["usage"]) if response else {}
    return ev.CallFinished(
        run_id=run_id,
        ts=ts,
        call_id=call_id,
        task_id=task_id,
        step_id=step_id,
        model=model,
        attempt=attempt,
        request=request,
        response=response,
        status=status,
        error=error,
        http_status=None if status == "succeeded" else 529,
        request_id=f"req_{call_id}",
        latency_s=0.5,
        usage=usage,
        cost_usd=cost if status == "succeeded" else 0.0,
    )


def run_started(run_id: str, t0: float, workflow: str = "research") -> ev.RunStarted:
    return ev.RunStarted(
        run_id=run_id,
        ts=t0,
        workflow_name=workflow,
        workflow_path=f"workflows/{workflow}.yaml",
        workflow_snapshot="version: 1\n",
        workflow_hash="abc",
        inputs={"question": "why is the sky blue?"},
        workspace="/tmp/ws",
        pid=12345,
    )


def plan_step(run_id: str, t0: float) -> list[ev.Event]:
    """A single-task agent step whose worker reads a file (a tool loop) and answers JSON."""
    task = f"tp{run_id}"
    base = {
        "model": SONNET,
        "max_tokens": 1024,
        "system": [{"type": "text", "text": SYSTEM}],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    user = {"role": "user", "content": PROMPT}
    reply1 = {
        "content": [{"type": "text", "text": "Let me check my notes."}, TOOL_USE],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 100, "output_tokens": 20},
    }
    reply2 = {
        "content": [
            {"type": "text", "text": '{"subtasks": ["scattering", "wavelengths", "eyes"]}'}
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 150, "output_tokens": 30, "cache_read_input_tokens": 50},
    }
    second = {
        **base,
        "messages": [
            user,
            {"role": "assistant", "content": reply1["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Rayleigh!"}
                ],
            },
        ],
    }
    return [
        ev.StepStarted(run_id=run_id, ts=t0 + 0.1, step_id="plan", kind="agent"),
        ev.TaskStarted(
            run_id=run_id,
            ts=t0 + 0.1,
            task_id=task,
            step_id="plan",
            key="plan",
            agent="planner",
            model=SONNET,
            system=SYSTEM,
            prompt=PROMPT,
        ),
        _call(
            run_id,
            f"c1{run_id}",
            task,
            "plan",
            ts=t0 + 1,
            request={**base, "messages": [user]},
            response=reply1,
        ),
        ev.ToolCalled(
            run_id=run_id,
            ts=t0 + 1.1,
            task_id=task,
            step_id="plan",
            tool="Read",
            input={"file_path": "notes.md"},
            output_preview="Rayleigh!",
        ),
        _call(run_id, f"c2{run_id}", task, "plan", ts=t0 + 2, request=second, response=reply2),
        ev.TaskFinished(
            run_id=run_id,
            ts=t0 + 2,
            task_id=task,
            step_id="plan",
            status="succeeded",
            output=PLAN_OUTPUT,
            usage={"input_tokens": 250, "output_tokens": 50, "cache_read_input_tokens": 50},
            cost_usd=0.002,
            turns=2,
        ),
        ev.StepFinished(
            run_id=run_id, ts=t0 + 2, step_id="plan", status="succeeded", output=PLAN_OUTPUT
        ),
    ]


def research_step(run_id: str, t0: float, *, fail: bool) -> list[ev.Event]:
    """A fan-out of 3: item 1 fails (when `fail`), item 2 uses a model without a price."""
    out: list[ev.Event] = [
        ev.StepStarted(run_id=run_id, ts=t0 + 3, step_id="research", kind="fanout", total_tasks=3)
    ]
    for i in range(3):
        out.append(
            ev.TaskStarted(
                run_id=run_id,
                ts=t0 + 3,
                task_id=f"tr{i}{run_id}",
                step_id="research",
                key=f"research[{i}]",
                index=i,
                model=UNPRICED if i == 2 else SONNET,
                prompt=f"Research {PLAN_OUTPUT['subtasks'][i]}",
            )
        )
    for i in range(3):
        task = f"tr{i}{run_id}"
        request = {
            "model": SONNET,
            "messages": [{"role": "user", "content": f"Research {PLAN_OUTPUT['subtasks'][i]}"}],
        }
        reply = {
            "content": [{"type": "text", "text": f"finding {i}"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 40, "output_tokens": 10, "cache_creation_input_tokens": 8},
        }
        if i == 1 and fail:
            out.append(
                ev.CallRetried(
                    run_id=run_id,
                    ts=t0 + 4,
                    task_id=task,
                    step_id="research",
                    attempt=1,
                    kind="overloaded",
                    error="HTTP 529 overloaded",
                    wait_s=2.0,
                    http_status=529,
                )
            )
            out.append(
                _call(
                    run_id,
                    f"c{i}r{run_id}",
                    task,
                    "research",
                    ts=t0 + 4,
                    request=request,
                    response=None,
                    status="fatal_error",
                    error="HTTP 400 invalid request",
                )
            )
            out.append(
                ev.TaskFinished(
                    run_id=run_id,
                    ts=t0 + 5,
                    task_id=task,
                    step_id="research",
                    status="failed",
                    error="HTTP 400 invalid request",
                    cost_usd=0.0,
                )
            )
            continue
        unpriced = i == 2
        out.append(
            _call(
                run_id,
                f"c{i}r{run_id}",
                task,
                "research",
                ts=t0 + 5,
                request=request,
                response=reply,
                model=UNPRICED if unpriced else SONNET,
                cost=None if unpriced else 0.0005,
            )
        )
        out.append(
            ev.TaskFinished(
                run_id=run_id,
                ts=t0 + 5,
                task_id=task,
                step_id="research",
                status="succeeded",
                output=f"finding {i}",
                usage=reply["usage"],
                cost_usd=None if unpriced else 0.0005,
                turns=1,
            )
        )
    out.append(
        ev.StepFinished(
            run_id=run_id,
            ts=t0 + 6,
            step_id="research",
            status="failed" if fail else "succeeded",
            error="1 of 3 items failed" if fail else None,
        )
    )
    return out


def full_run(
    run_id: str, t0: float, *, fail: bool = True, workflow: str = "research"
) -> list[ev.Event]:
    events: list[ev.Event] = [run_started(run_id, t0, workflow)]
    events += plan_step(run_id, t0)
    events += research_step(run_id, t0, fail=fail)
    events.append(
        ev.RunFinished(
            run_id=run_id,
            ts=t0 + 7,
            status="failed" if fail else "succeeded",
            outputs=None if fail else {"report": "the sky is blue"},
            error="step research failed" if fail else None,
        )
    )
    return events


def live_run(run_id: str, t0: float) -> list[ev.Event]:
    """A run still in progress (its heartbeat is fresh when t0 is now)."""
    return [
        run_started(run_id, t0, "live"),
        ev.Heartbeat(run_id=run_id, ts=t0),
        *plan_step(run_id, t0)[:2],
    ]


# Ids shaped like ULIDs; A and B share the prefix "01jcommon".
RUN_A = "01jcommon0000000000000000a"
RUN_B = "01jcommon0000000000000000b"
RUN_C = "01jzzzzzzz00000000000000c0"
