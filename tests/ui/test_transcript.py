"""A worker's conversation rebuilt from its calls: a tool loop, a retry, structured output."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from orchestrator.ui.transcript import build_transcript, render_transcript

SYSTEM = [{"type": "text", "text": "You are a careful researcher.", "cache_control": {}}]
PROMPT = "Find the answer in notes.txt"
USER = {"role": "user", "content": PROMPT}
TOOL_USE = {
    "type": "tool_use",
    "id": "toolu_1",
    "name": "Read",
    "input": {"file_path": "notes.txt"},
}
REPLY_1 = {
    "content": [{"type": "text", "text": "Let me read the notes."}, TOOL_USE],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 100, "output_tokens": 20},
}
REPLY_2 = {
    "content": [{"type": "text", "text": '{"answer": "42"}'}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 150, "output_tokens": 10, "cache_read_input_tokens": 90},
}


def tool_loop_calls() -> list[dict[str, Any]]:
    base = {
        "model": "claude-sonnet-5-5",
        "system": SYSTEM,
        "tools": [{"name": "Read", "input_schema": {}}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    second = {
        **base,
        "messages": [
            USER,
            {"role": "assistant", "content": REPLY_1["content"]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "the answer is 42"}],
                    }
                ],
            },
        ],
    }
    return [
        {
            "id": "call1",
            "attempt": 1,
            "request": {**base, "messages": [USER]},
            "response": REPLY_1,
            "status": "succeeded",
            "latency_s": 1.5,
            "usage": REPLY_1["usage"],
            "cost_usd": 0.001,
        },
        {
            "id": "call2",
            "attempt": 1,
            "request": second,
            "response": None,
            "status": "retryable_error",
            "error": "HTTP 529 overloaded",
            "latency_s": 0.2,
            "usage": {},
            "cost_usd": 0.0,
        },
        {
            "id": "call3",
            "attempt": 2,
            "request": second,
            "response": REPLY_2,
            "status": "succeeded",
            "latency_s": 0.9,
            "usage": REPLY_2["usage"],
            "cost_usd": 0.002,
        },
    ]


def test_build_transcript_of_a_tool_loop() -> None:
    task = {"id": "t1", "label": "research[0]", "status": "succeeded", "output": {"answer": "42"}}
    tr = build_transcript(tool_loop_calls(), task=task)
    assert tr["system"] == "You are a careful researcher."
    assert tr["prompt"] == PROMPT
    assert tr["tools"] == ["Read"]
    assert tr["output_schema"] == {"type": "object"}
    first, failed, last = tr["turns"]
    assert first["text"] == "Let me read the notes."
    assert first["tool_calls"] == [
        {
            "id": "toolu_1",
            "name": "Read",
            "input": {"file_path": "notes.txt"},
            "server": False,
            "result": "the answer is 42",
            "is_error": False,
        }
    ]
    assert failed["status"] == "retryable_error" and failed["error"] == "HTTP 529 overloaded"
    assert last["text"] == '{"answer": "42"}' and last["stop_reason"] == "end_turn"
    assert tr["output"] == {"answer": "42"}
    assert tr["usage"]["input_tokens"] == 250 and tr["usage"]["cache_read_input_tokens"] == 90
    assert abs(tr["cost_usd"] - 0.003) < 1e-12


def test_render_transcript_reads_in_order() -> None:
    task = {"id": "t1", "label": "research[0]", "status": "succeeded", "output": {"answer": "42"}}
    console = Console(record=True, width=120, force_terminal=False)
    console.print(render_transcript(build_transcript(tool_loop_calls(), task=task)))
    text = console.export_text()
    order = [
        "task research[0] (t1) · succeeded",
        "System",
        "You are a careful researcher.",
        "User",
        PROMPT,
        "call 1 · attempt 1",
        "Let me read the notes.",
        "Tool call Read  (toolu_1)",
        '"file_path": "notes.txt"',
        "Tool result",
        "the answer is 42",
        "call 2 · attempt 1",
        "retryable_error: HTTP 529 overloaded",
        "call 3 · attempt 2",
        '{"answer": "42"}',
        "Output",
        '"answer": "42"',
        "total: 3 calls · 250 in · 30 out · 0 cache write · 90 cache read · $0.0030",
    ]
    pos = 0
    for piece in order:
        found = text.find(piece, pos)
        assert found >= 0, f"{piece!r} missing after position {pos}:\n{text}"
        pos = found + len(piece)


def test_markup_in_content_is_shown_verbatim() -> None:
    calls = tool_loop_calls()[:1]
    calls[0]["request"]["messages"] = [{"role": "user", "content": "use [bold]x[/bold] literally"}]
    console = Console(record=True, width=120)
    console.print(render_transcript(build_transcript(calls)))
    assert "use [bold]x[/bold] literally" in console.export_text()
