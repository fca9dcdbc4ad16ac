"""One worker's conversation, rebuilt from the Messages API calls the store kept.

Each call holds the full request (system, messages, tools, output_config) and, when it
succeeded, the response (content blocks, stop_reason, usage). A turn is one call: the assistant's
text and tool calls come from its response; the tool results (and any repair message the worker
sent back) come from the messages the *next* successful request appended. Failed attempts stay in
the transcript as turns with an error and no reply, so retries are visible.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from orchestrator.contracts import Usage
from orchestrator.ui import _format as fmt


def block_text(content: Any) -> str:
    """The text of a message `content` (a string or a list of blocks) or of a `system` value."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "\n".join(p for p in parts if p)
    return str(content)


def _blocks(content: Any) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, Mapping)]
    return []


def _tool_names(tools: Any) -> list[str]:
    if not isinstance(tools, list):
        return []
    return [str(t.get("name") or t.get("type") or "?") for t in tools if isinstance(t, Mapping)]


def _output_schema(request: Mapping[str, Any]) -> Any:
    config = request.get("output_config") or request.get("output_format")
    if isinstance(config, Mapping):
        fmt_ = config.get("format", config)
        if isinstance(fmt_, Mapping):
            return fmt_.get("schema", fmt_)
    return None


def _field(call: Any, name: str, default: Any = None) -> Any:
    if isinstance(call, Mapping):
        return call.get(name, default)
    return getattr(call, name, default)


def build_transcript(
    calls: Sequence[Any], *, task: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A JSON-ready transcript from a task's calls (records or dicts, in the order made).

    Keys: task, system, prompt, tools, output_schema, turns[], output, usage, cost_usd,
    cost_unknown. Each turn: call_id, attempt, status, error, model, request_id, latency_s,
    stop_reason, usage, cost_usd, text, tool_calls[{id, name, input, result, is_error}],
    server_results[], followups[] (user text sent after the turn, e.g. a repair request).
    """
    requests = [_field(c, "request") or {} for c in calls]
    first = requests[0] if requests else {}
    first_messages = first.get("messages") or []
    prompt = ""
    if first_messages and isinstance(first_messages[0], Mapping):
        prompt = block_text(first_messages[0].get("content"))
    succeeded = [
        i
        for i, c in enumerate(calls)
        if _field(c, "response") is not None and _field(c, "status", "succeeded") == "succeeded"
    ]
    next_ok = dict(itertools.pairwise(succeeded))

    total = Usage()
    cost = 0.0
    cost_unknown = False
    turns: list[dict[str, Any]] = []
    for i, call in enumerate(calls):
        request = requests[i]
        response = _field(call, "response")
        usage = _usage_of(call, response)
        total.add(usage)
        call_cost = _field(call, "cost_usd")
        if call_cost is None:
            cost_unknown = cost_unknown or response is not None
        else:
            cost += float(call_cost)
        turn: dict[str, Any] = {
            "call_id": _field(call, "id") or _field(call, "call_id"),
            "attempt": _field(call, "attempt"),
            "status": _field(call, "status", "succeeded"),
            "error": _field(call, "error"),
            "model": _field(call, "model") or request.get("model"),
            "request_id": _field(call, "request_id"),
            "latency_s": _field(call, "latency_s"),
            "stop_reason": response.get("stop_reason") if isinstance(response, Mapping) else None,
            "usage": usage.to_dict(),
            "cost_usd": call_cost,
            "text": "",
            "tool_calls": [],
            "server_results": [],
            "followups": [],
        }
        if isinstance(response, Mapping):
            _fill_reply(turn, response)
        if i in next_ok:
            _attach_results(turn, request, requests[next_ok[i]])
        turns.append(turn)

    return {
        "task": dict(task) if task is not None else None,
        "system": block_text(first.get("system")) or None,
        "prompt": prompt,
        "tools": _tool_names(first.get("tools")),
        "output_schema": _output_schema(first),
        "turns": turns,
        "output": (task or {}).get("output"),
        "usage": total.to_dict(),
        "cost_usd": None if cost_unknown and not cost else cost,
        "cost_unknown": cost_unknown,
    }


def _usage_of(call: Any, response: Any) -> Usage:
    usage = _field(call, "usage")
    if not usage and isinstance(response, Mapping):
        usage = response.get("usage")
    return Usage.from_dict(dict(usage) if isinstance(usage, Mapping) else None)


def _fill_reply(turn: dict[str, Any], response: Mapping[str, Any]) -> None:
    texts = []
    for block in _blocks(response.get("content")):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind in ("tool_use", "server_tool_use"):
            turn["tool_calls"].append(
                {
                    "id": block.get("id"),
                    "name": block.get("name"),
                    "input": block.get("input"),
                    "server": kind == "server_tool_use",
                    "result": None,
                    "is_error": False,
                }
            )
        elif isinstance(kind, str) and kind.endswith("_tool_result"):
            turn["server_results"].append({"tool_use_id": block.get("tool_use_id"), "type": kind})
    turn["text"] = "\n".join(t for t in texts if t)


def _attach_results(
    turn: dict[str, Any], request: Mapping[str, Any], next_request: Mapping[str, Any]
) -> None:
    before = len(request.get("messages") or [])
    added = (next_request.get("messages") or [])[before:]
    by_id = {c["id"]: c for c in turn["tool_calls"]}
    for message in added:
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        for block in _blocks(message.get("content")):
            if block.get("type") == "tool_result":
                call = by_id.get(block.get("tool_use_id"))
                if call is not None:
                    call["result"] = block_text(block.get("content"))
                    call["is_error"] = bool(block.get("is_error"))
            elif block.get("type") == "text" and block.get("text"):
                turn["followups"].append(str(block["text"]))


# --- rendering -------------------------------------------------------------------------------


def _indent(text: str, style: str = "") -> Text:
    body = "\n".join("  " + line for line in (text or "").splitlines()) or "  (empty)"
    return Text(body, style=style)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def render_transcript(transcript: Mapping[str, Any]) -> RenderableType:
    """The transcript as a person reads it: system, prompt, then each call's reply and tools."""
    parts: list[RenderableType] = []
    task = transcript.get("task") or {}
    title = "transcript"
    if task:
        label = task.get("label") or task.get("step_id") or ""
        title = f"task {label} ({task.get('id')}) · {task.get('status')}"
    parts.append(Rule(Text(title, style="bold")))
    if transcript.get("system"):
        parts += [Text("System", style="bold magenta"), _indent(transcript["system"], "dim")]
    parts += [Text("User", style="bold blue"), _indent(transcript.get("prompt") or "")]
    if transcript.get("tools"):
        parts.append(Text("Tools: " + ", ".join(transcript["tools"]), style="dim"))
    for n, turn in enumerate(transcript.get("turns") or [], 1):
        parts.extend(_render_turn(n, turn))
    output = transcript.get("output")
    if output is not None:
        parts += [Text("Output", style="bold green"), _indent(_json_text(output))]
    usage = transcript.get("usage") or {}
    parts.append(Rule(style="dim"))
    parts.append(
        Text(
            f"total: {len(transcript.get('turns') or [])} calls · "
            f"{fmt.tokens(usage.get('input_tokens', 0))} in · "
            f"{fmt.tokens(usage.get('output_tokens', 0))} out · "
            f"{fmt.tokens(usage.get('cache_creation_input_tokens', 0))} cache write · "
            f"{fmt.tokens(usage.get('cache_read_input_tokens', 0))} cache read · "
            + fmt.dollars(transcript.get("cost_usd"), unknown=bool(transcript.get("cost_unknown")))
        )
    )
    return Group(*parts)


def _render_turn(n: int, turn: Mapping[str, Any]) -> Iterable[RenderableType]:
    usage = turn.get("usage") or {}
    head = [f"call {n}"]
    if turn.get("attempt") is not None:
        head.append(f"attempt {turn['attempt']}")
    if turn.get("model"):
        head.append(str(turn["model"]))
    head.append(fmt.duration(turn.get("latency_s")))
    head.append(
        f"{fmt.tokens(usage.get('input_tokens', 0))} in / "
        f"{fmt.tokens(usage.get('output_tokens', 0))} out"
    )
    if usage.get("cache_read_input_tokens") or usage.get("cache_creation_input_tokens"):
        head.append(
            f"cache {fmt.tokens(usage.get('cache_creation_input_tokens', 0))} write / "
            f"{fmt.tokens(usage.get('cache_read_input_tokens', 0))} read"
        )
    head.append(fmt.dollars(turn.get("cost_usd")))
    if turn.get("stop_reason"):
        head.append(f"stop {turn['stop_reason']}")
    yield Rule(Text(" · ".join(head), style="dim"), style="dim")
    if turn.get("status") != "succeeded":
        yield Text(f"  {turn.get('status')}: {turn.get('error') or 'no reply'}", style="red")
        return
    if turn.get("text"):
        yield Text("Assistant", style="bold green")
        yield _indent(turn["text"])
    for call in turn.get("tool_calls") or []:
        kind = "Server tool" if call.get("server") else "Tool call"
        yield Text.assemble(
            (f"{kind} ", "bold yellow"),
            (str(call.get("name")), "yellow"),
            (f"  ({call.get('id')})", "dim"),
        )
        yield _indent(_json_text(call.get("input")), "yellow")
        if call.get("result") is not None:
            style = "red" if call.get("is_error") else "bold cyan"
            yield Text("Tool error" if call.get("is_error") else "Tool result", style=style)
            yield _indent(call["result"])
    for text in turn.get("followups") or []:
        yield Text("User", style="bold blue")
        yield _indent(text)


def print_transcript(console: Console, transcript: Mapping[str, Any]) -> None:
    console.print(render_transcript(transcript))
