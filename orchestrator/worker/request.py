"""Building the Messages API request of one task.

The prefix shared by every item of a fan-out (tool definitions, then the system prompt, then the
`context` block) comes first and, when the task has a `cache_ttl`, carries `cache_control`
breakpoints (three of the API's four), so items after the first read it from the prompt cache.
Only the per-item prompt differs between requests of one fan-out step.
"""

from __future__ import annotations

from typing import Any

from orchestrator.contracts import TaskSpec

STREAM_ABOVE_MAX_TOKENS = 16000
JSON_INSTRUCTION = "Reply with only a JSON value: no prose before or after it, no code fences."


def should_stream(spec: TaskSpec) -> bool:
    """Explicit `spec.stream`, else stream long replies (the engine sets `stream` from configs)."""
    if spec.stream is not None:
        return spec.stream
    return spec.max_tokens > STREAM_ABOVE_MAX_TOKENS


def _cache_control(spec: TaskSpec) -> dict[str, str]:
    assert spec.cache_ttl is not None
    return {"type": "ephemeral", "ttl": spec.cache_ttl}


def first_user_content(spec: TaskSpec) -> list[dict[str, Any]]:
    """[context block (cacheable), prompt] -- the prompt asks for JSON when output is `json`."""
    content: list[dict[str, Any]] = []
    if spec.context:
        block: dict[str, Any] = {"type": "text", "text": spec.context}
        if spec.cache_ttl:
            block["cache_control"] = _cache_control(spec)
        content.append(block)
    prompt = spec.prompt
    if spec.output == "json":
        prompt = f"{prompt}\n\n{JSON_INSTRUCTION}"
    content.append({"type": "text", "text": prompt})
    return content


def base_request(spec: TaskSpec, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Every request parameter of the task except `messages`."""
    request: dict[str, Any] = {"model": spec.model, "max_tokens": spec.max_tokens}
    if spec.system:
        if spec.cache_ttl:
            request["system"] = [
                {"type": "text", "text": spec.system, "cache_control": _cache_control(spec)}
            ]
        else:
            request["system"] = spec.system
    if tools:
        tools = list(tools)
        if spec.cache_ttl:
            tools[-1] = {**tools[-1], "cache_control": _cache_control(spec)}
        request["tools"] = tools
    if isinstance(spec.output, dict):
        request["output_config"] = {"format": {"type": "json_schema", "schema": spec.output}}
    request["extra_headers"] = {
        "X-Orchestrate-Step": spec.step_id,
        "X-Orchestrate-Task": spec.key,
        "X-Orchestrate-Agent": spec.agent or "",
    }
    if should_stream(spec):
        request["stream"] = True
    return request
