"""The worker's side of replay, without a process to kill: a conversation handed its recorded
calls takes the recorded responses and tool results in order, asks the model only from the first
call with no recorded answer, and goes live with a warning naming the task when a request
differs from the recorded one."""

from __future__ import annotations

from typing import Any

from orchestrator.contracts import RecordedCall, Replay, Usage, WorkerContext
from orchestrator.events import Warning as WarningEvent
from orchestrator.worker import run_worker
from tests.worker.worker_fakes import (
    FakeTools,
    MemoryState,
    Outcome,
    ScriptedCall,
    spec,
    text_message,
    tool_message,
)

TURNS = 5


def script() -> list[dict[str, Any]]:
    turns = [tool_message((f"toolu_{t}", "count", {"n": t})) for t in range(1, TURNS)]
    return [*turns, text_message("done")]


def tools() -> FakeTools:
    async def count(tool_input: dict[str, Any]) -> Outcome:
        return Outcome(f"counted {tool_input['n']}")

    return FakeTools({"count": count})


async def first_run() -> list[RecordedCall]:
    """Every call of an uninterrupted run, as the store would hold it."""
    call = ScriptedCall(*script())
    result = await run_worker(
        spec(), WorkerContext(call=call, state=MemoryState(), emit=lambda e: None), tools=tools()
    )
    assert result.output == "done"
    return [
        RecordedCall(request=r.body, response=msg, usage=Usage(input_tokens=10, output_tokens=5))
        for r, msg in zip(call.llm.requests, script(), strict=True)
    ]


async def test_replay_asks_only_for_the_calls_it_has_no_answer_to() -> None:
    recorded = await first_run()
    kept = 3  # calls 1..3 were answered before the process ended
    live = ScriptedCall(*script()[kept:])
    used = tools()
    events: list[Any] = []
    ctx = WorkerContext(
        call=live, state=MemoryState(), emit=events.append, replay=Replay(recorded[:kept])
    )
    result = await run_worker(spec(), ctx, tools=used)
    assert result.output == "done"
    assert len(live.llm.requests) == TURNS - kept
    # turns 1-2's tools answered from the record; turn 3's result was never recorded: it runs
    assert used.calls == [("count", {"n": n}) for n in range(kept, TURNS)]
    assert result.turns == TURNS
    assert not [e for e in events if isinstance(e, WarningEvent)]


async def test_recorded_tool_results_spare_the_tools_of_a_cut_turn() -> None:
    recorded = await first_run()
    kept = 3
    # what the store attaches: turn 3's tool result, recorded as the tool ended
    third = recorded[kept].request["messages"][-1]["content"]
    last = recorded[kept - 1]
    with_results = [*recorded[: kept - 1], RecordedCall(**{**_fields(last), "tool_results": third})]
    live = ScriptedCall(*script()[kept:])
    used = tools()
    ctx = WorkerContext(
        call=live, state=MemoryState(), emit=lambda e: None, replay=Replay(with_results)
    )
    assert (await run_worker(spec(), ctx, tools=used)).output == "done"
    assert used.calls == [("count", {"n": n}) for n in range(kept + 1, TURNS)]


async def test_a_changed_request_stops_the_replay_with_a_warning() -> None:
    recorded = await first_run()
    live = ScriptedCall(*script())
    events: list[Any] = []
    ctx = WorkerContext(call=live, state=MemoryState(), emit=events.append, replay=Replay(recorded))
    changed = spec(prompt="Research another topic.")
    assert (await run_worker(changed, ctx, tools=tools())).output == "done"
    assert len(live.llm.requests) == TURNS  # nothing was taken from the record
    (warning,) = [e for e in events if isinstance(e, WarningEvent)]
    assert "research/0" in warning.message and "request 1 differs" in warning.message


def _fields(call: RecordedCall) -> dict[str, Any]:
    return {
        "request": call.request,
        "response": call.response,
        "usage": call.usage,
        "cost_usd": call.cost_usd,
    }
