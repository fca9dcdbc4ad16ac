"""The worker's conversation loop against a scripted call function (no network)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from worker_fakes import (
    FakeTools,
    Outcome,
    ScriptedCall,
    context,
    spec,
    text_message,
    tool_message,
)

from orchestrator import events as ev
from orchestrator.errors import FatalError, LLMError, RetryableError, TaskFailed
from orchestrator.events import ToolCalled
from orchestrator.testing import Reply
from orchestrator.worker import run_worker

SCHEMA = {
    "type": "object",
    "required": ["subtasks"],
    "properties": {"subtasks": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
}


async def test_text_output_returns_final_text_and_sums_usage() -> None:
    call = ScriptedCall(text_message("The answer."))
    ctx, _ = context(call)
    result = await run_worker(spec(), ctx)
    assert result.output == "The answer."
    assert result.text == "The answer."
    assert result.stop_reason == "end_turn"
    assert (result.turns, result.calls) == (1, 1)
    assert result.usage.input_tokens == 10 and result.usage.output_tokens == 5
    assert result.cost_usd == pytest.approx(0.01)


async def test_request_shape_without_cache() -> None:
    call = ScriptedCall(text_message("ok"))
    ctx, _ = context(call)
    await run_worker(spec(system="You research.", context="Shared notes."), ctx)
    (request,) = call.requests
    assert request["model"] == "claude-sonnet-5-5"
    assert request["max_tokens"] == 2048
    assert request["system"] == "You research."
    assert request["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Shared notes."},
                {"type": "text", "text": "Research the topic."},
            ],
        }
    ]
    assert request["extra_headers"] == {
        "X-Orchestrate-Step": "research",
        "X-Orchestrate-Task": "research/0",
        "X-Orchestrate-Agent": "researcher",
    }
    assert "tools" not in request and "output_config" not in request and "stream" not in request


async def test_cache_control_marks_tools_system_and_context() -> None:
    call = ScriptedCall(text_message("ok"))
    ctx, _ = context(call)

    async def noop(_: dict[str, Any]) -> Outcome:
        return Outcome("")

    tools = FakeTools({"Read": noop, "Grep": noop})
    task = spec(system="You research.", context="Shared notes.", cache_ttl="1h", agent=None)
    await run_worker(task, ctx, tools=tools)
    (request,) = call.requests
    marker = {"type": "ephemeral", "ttl": "1h"}
    assert "cache_control" not in request["tools"][0]
    assert request["tools"][-1]["cache_control"] == marker
    assert request["system"] == [{"type": "text", "text": "You research.", "cache_control": marker}]
    context_block, prompt_block = request["messages"][0]["content"]
    assert context_block["cache_control"] == marker
    assert "cache_control" not in prompt_block
    assert request["extra_headers"]["X-Orchestrate-Agent"] == ""
    # the toolset's own definitions are not modified
    assert all("cache_control" not in t for t in tools.api_tools())


async def test_tool_loop_runs_tools_and_answers_in_order() -> None:
    async def read(args: dict[str, Any]) -> Outcome:
        return Outcome(f"contents of {args['file_path']}")

    async def grep(args: dict[str, Any]) -> Outcome:
        return Outcome("no match", is_error=True)

    tools = FakeTools({"Read": read, "Grep": grep})
    call = ScriptedCall(
        tool_message(
            ("tu_1", "Read", {"file_path": "a.txt"}),
            ("tu_2", "Grep", {"pattern": "x"}),
            text="Let me look.",
        ),
        text_message("Done."),
    )
    ctx, events = context(call)
    result = await run_worker(spec(tools=["Read", "Grep"]), ctx, tools=tools)
    assert result.output == "Done."
    assert (result.turns, result.calls) == (2, 2)
    assert result.usage.input_tokens == 20
    second = call.requests[1]["messages"]
    assert second[1]["role"] == "assistant"
    assert second[1]["content"][0] == {"type": "text", "text": "Let me look."}
    assert second[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "tu_1", "content": "contents of a.txt"},
            {"type": "tool_result", "tool_use_id": "tu_2", "content": "no match", "is_error": True},
        ],
    }
    tool_events = [e for e in events if isinstance(e, ToolCalled)]
    assert sorted((e.tool, e.is_error) for e in tool_events) == [("Grep", True), ("Read", False)]
    assert all(e.task_id == "task1" and e.step_id == "research" for e in tool_events)
    # the first request as sent is not changed by the conversation growing afterwards
    assert len(call.requests[0]["messages"]) == 1


async def test_tools_of_one_turn_run_concurrently() -> None:
    # Each tool waits for the other to have started: only concurrent execution can finish.
    started = {"A": anyio.Event(), "B": anyio.Event()}

    def waiting(me: str, other: str) -> Any:
        async def handler(_: dict[str, Any]) -> Outcome:
            started[me].set()
            await started[other].wait()
            return Outcome(me)

        return handler

    tools = FakeTools({"A": waiting("A", "B"), "B": waiting("B", "A")})
    call = ScriptedCall(tool_message(("t1", "A", {}), ("t2", "B", {})), text_message("ok"))
    ctx, _ = context(call)
    with anyio.fail_after(5):
        await run_worker(spec(tools=["A", "B"]), ctx, tools=tools)
    results = call.requests[1]["messages"][2]["content"]
    assert [r["content"] for r in results] == ["A", "B"]


async def test_unknown_tool_and_crashing_tool_become_error_results() -> None:
    async def boom(_: dict[str, Any]) -> Outcome:
        raise RuntimeError("disk on fire")

    tools = FakeTools({"Read": boom})
    call = ScriptedCall(
        tool_message(("t1", "Read", {}), ("t2", "Bash", {"command": "rm -rf /"})),
        text_message("ok"),
    )
    ctx, _ = context(call)
    await run_worker(spec(tools=["Read"]), ctx, tools=tools)
    results = call.requests[1]["messages"][2]["content"]
    assert results[0]["is_error"] and "disk on fire" in results[0]["content"]
    assert results[1]["is_error"] and "unknown tool 'Bash'" in results[1]["content"]


async def test_pause_turn_sends_the_assistant_content_back() -> None:
    paused = {
        "content": [{"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}}],
        "stop_reason": "pause_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    call = ScriptedCall(paused, text_message("Found it."))
    ctx, _ = context(call)
    result = await run_worker(spec(), ctx)
    assert result.output == "Found it."
    assert call.requests[1]["messages"][-1] == {"role": "assistant", "content": paused["content"]}


async def test_max_turns_reached_fails_the_task() -> None:
    async def read(_: dict[str, Any]) -> Outcome:
        return Outcome("more")

    tools = FakeTools({"Read": read})
    call = ScriptedCall(*[tool_message((f"t{i}", "Read", {})) for i in range(3)])
    ctx, _ = context(call)
    with pytest.raises(TaskFailed, match="reached max_turns=3 without a final answer"):
        await run_worker(spec(max_turns=3, tools=["Read"]), ctx, tools=tools)
    assert len(call.requests) == 3


async def test_max_tokens_with_text_output_returns_the_text_and_warns() -> None:
    call = ScriptedCall(text_message("A long ans", stop_reason="max_tokens"))
    ctx, events = context(call)
    result = await run_worker(spec(max_tokens=100), ctx)
    assert result.output == "A long ans"
    assert result.stop_reason == "max_tokens"
    (warning,) = [e for e in events if isinstance(e, ev.Warning)]
    assert "max_tokens=100" in warning.message


@pytest.mark.parametrize("output", ["json", SCHEMA])
async def test_max_tokens_with_json_output_fails(output: Any) -> None:
    call = ScriptedCall(text_message('{"subtasks": ["a", "b', stop_reason="max_tokens"))
    ctx, _ = context(call)
    with pytest.raises(TaskFailed, match=r"cut off at max_tokens=64; raise max_tokens"):
        await run_worker(spec(output=output, max_tokens=64), ctx)


async def test_schema_output_sends_output_config_and_returns_parsed_json() -> None:
    call = ScriptedCall(text_message(json.dumps({"subtasks": ["a", "b"]})))
    ctx, _ = context(call)
    result = await run_worker(spec(output=SCHEMA), ctx)
    assert result.output == {"subtasks": ["a", "b"]}
    assert call.requests[0]["output_config"] == {
        "format": {"type": "json_schema", "schema": SCHEMA}
    }


async def test_schema_repair_succeeds_after_one_invalid_reply() -> None:
    call = ScriptedCall(
        text_message('{"subtasks": []}'),
        text_message('{"subtasks": ["only one"]}'),
    )
    ctx, _ = context(call)
    result = await run_worker(spec(output=SCHEMA, max_turns=1), ctx)
    assert result.output == {"subtasks": ["only one"]}
    assert (result.turns, result.calls) == (1, 2)
    repair = call.requests[1]["messages"]
    assert repair[1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": '{"subtasks": []}'}],
    }
    assert repair[2]["role"] == "user"
    assert repair[2]["content"].startswith(
        "Your reply did not match the required JSON Schema: $.subtasks: "
    )
    assert repair[2]["content"].endswith("Reply again with only the corrected JSON.")


async def test_schema_repair_exhausted_fails_naming_the_last_error() -> None:
    call = ScriptedCall(
        text_message("not json at all"),
        text_message('{"subtasks": "a"}'),
        text_message("{}"),
    )
    ctx, _ = context(call)
    with pytest.raises(TaskFailed) as info:
        await run_worker(spec(output=SCHEMA, retries=2), ctx)
    message = str(info.value)
    assert "'subtasks' is a required property" in message
    assert "after 2 repair attempts" in message
    assert len(call.requests) == 3
    assert "not valid JSON" in call.requests[1]["messages"][-1]["content"]


async def test_json_output_asks_for_json_and_tolerates_fences() -> None:
    call = ScriptedCall(text_message('```json\n[1, 2, {"a": null}]\n```'))
    ctx, _ = context(call)
    result = await run_worker(spec(output="json"), ctx)
    assert result.output == [1, 2, {"a": None}]
    prompt = call.requests[0]["messages"][0]["content"][-1]["text"]
    assert prompt.startswith("Research the topic.") and "JSON" in prompt
    assert "output_config" not in call.requests[0]


async def test_stream_flag_goes_in_the_request() -> None:
    for task, expected in (
        (spec(max_tokens=32000), True),
        (spec(max_tokens=32000, stream=False), None),
        (spec(stream=True), True),
    ):
        call = ScriptedCall(text_message("ok"))
        ctx, _ = context(call)
        await run_worker(task, ctx)
        assert call.requests[0].get("stream") is expected


async def test_cost_is_none_when_any_call_has_no_price() -> None:
    call = ScriptedCall(text_message("ok"), cost=None)
    ctx, _ = context(call)
    result = await run_worker(spec(), ctx)
    assert result.cost_usd is None


@pytest.mark.parametrize(
    "error",
    [
        RetryableError(message="overloaded", kind="overloaded"),
        FatalError(message="bad", status=400),
    ],
)
async def test_errors_from_the_call_function_propagate(error: LLMError) -> None:
    ctx, _ = context(ScriptedCall(Reply.failure(error)))
    with pytest.raises(type(error)):
        await run_worker(spec(), ctx)


async def test_refusal_fails_the_task() -> None:
    ctx, _ = context(ScriptedCall(text_message("", stop_reason="refusal")))
    with pytest.raises(TaskFailed, match="refusal"):
        await run_worker(spec(), ctx)


async def test_concurrent_workers_keep_separate_conversations() -> None:
    async def run(n: int) -> list[dict[str, Any]]:
        call = ScriptedCall(text_message(f"answer {n}"))
        ctx, _ = context(call)
        result = await run_worker(spec(prompt=f"item {n}", key=f"research/{n}"), ctx)
        assert result.output == f"answer {n}"
        return call.requests

    seen: dict[int, list[dict[str, Any]]] = {}

    async def record(n: int) -> None:
        seen[n] = await run(n)

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(record, n)
    for n, requests in seen.items():
        assert requests[0]["messages"][0]["content"][-1]["text"] == f"item {n}"


async def test_tool_use_stop_without_tool_blocks_is_a_final_answer() -> None:
    message = text_message("Nothing to run.", stop_reason="tool_use")
    ctx, _ = context(ScriptedCall(message))
    result = await run_worker(spec(), ctx)
    assert result.output == "Nothing to run." and result.calls == 1


async def test_a_tool_call_in_a_step_without_tools_gets_an_error_result() -> None:
    call = ScriptedCall(tool_message(("t1", "Read", {})), text_message("ok"))
    ctx, _ = context(call)
    await run_worker(spec(), ctx)
    (result,) = call.requests[1]["messages"][2]["content"]
    assert result["is_error"] and "grants no tools" in result["content"]
