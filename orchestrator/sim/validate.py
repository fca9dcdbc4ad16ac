"""The checks the Messages API makes on a request, with its status codes and wording.

In the order the API applies them: the body's shape (400), the model (404 `model: <id>`), then
what depends on the model and on several fields together (max_tokens limit, thinking budget,
cache breakpoints, tool_use/tool_result pairing). Each failure raises `RequestError`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.sim.models import Catalog, ModelInfo
from orchestrator.sim.replies import RequestError, cache_ttl, is_client_tool

_MAX_BREAKPOINTS = 4
_MIN_THINKING_BUDGET = 1024
_THINKING_DOCS = (
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    "#max-tokens-and-context-window-size"
)


def validate_message_request(
    body: Any, catalog: Catalog | None = None, *, count_only: bool = False
) -> ModelInfo | None:
    """Raise `RequestError` as the API would; the model's facts when a catalog is given."""
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    required = ("model", "messages") if count_only else ("model", "max_tokens", "messages")
    for key in required:
        if key not in body:
            raise RequestError(f"{key}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise RequestError("model: Input should be a valid string")
    if not count_only:
        max_tokens = body["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise RequestError("max_tokens: Input should be a valid integer")
        if max_tokens < 0:  # 0 is allowed: it pre-warms the prompt cache
            raise RequestError("max_tokens: Input should be greater than or equal to 0")
    _check_messages(body["messages"])
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RequestError("system: Input should be a valid string or list of text blocks")
    _check_tools(body.get("tools"), body.get("tool_choice"))
    _check_thinking(body, count_only)
    _check_breakpoints(body)
    model = None
    if catalog is not None:
        model = catalog.find(body["model"])
        if model is None:
            raise RequestError(f"model: {body['model']}", status=404, kind="not_found_error")
        if not count_only and body["max_tokens"] > model.max_tokens:
            raise RequestError(
                f"max_tokens: {body['max_tokens']} > {model.max_tokens}, which is the maximum "
                f"allowed number of output tokens for {model.id}"
            )
    _check_tool_pairs(body["messages"])
    return model


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise RequestError("messages: Input should be a valid list")
    if not messages:
        raise RequestError("messages: at least one message is required")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RequestError(f"messages.{i}: Input should be a valid dictionary")
        role = msg.get("role")
        # a system message may come later in a conversation, never first
        if role not in ("user", "assistant") and not (role == "system" and i > 0):
            raise RequestError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = msg.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise RequestError(f"messages.{i}.content: Input should be a valid string or list")
        for j, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise RequestError(f"messages.{i}.content.{j}: each block needs a 'type'")


def _check_tools(tools: Any, choice: Any) -> None:
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise RequestError("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise RequestError(f"tools.{i}.name: Field required")
            if is_client_tool(tool) and not isinstance(tool.get("input_schema"), dict):
                raise RequestError(f"tools.{i}.custom.input_schema: Field required")
            names.add(tool["name"])
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise RequestError(
            "tool_choice: Input tag does not match any of the expected tags: "
            "'auto', 'any', 'tool', 'none'"
        )
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise RequestError("tool_choice.tool.name: Field required")
        if name not in names:
            raise RequestError(f"tool_choice: tool '{name}' was not found in tools")


def _check_thinking(body: dict[str, Any], count_only: bool) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "adaptive", "disabled"):
        raise RequestError(
            "thinking: Input tag does not match any of the expected tags: "
            "'enabled', 'adaptive', 'disabled'"
        )
    assert isinstance(thinking, dict)
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise RequestError("thinking.enabled.budget_tokens: Field required")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise RequestError("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < _MIN_THINKING_BUDGET:
            raise RequestError(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{_MIN_THINKING_BUDGET}"
            )
        if not count_only and body["max_tokens"] <= budget:
            raise RequestError(
                "`max_tokens` must be greater than `thinking.budget_tokens`. "
                f"Please consult our documentation at {_THINKING_DOCS}"
            )
    choice = body.get("tool_choice")
    if kind != "disabled" and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise RequestError("Thinking may not be enabled when tool_choice forces tool use.")


def _check_breakpoints(body: dict[str, Any]) -> None:
    found = sum(1 for tool in body.get("tools") or [] if cache_ttl(tool) is not None)
    system = body.get("system")
    if isinstance(system, list):
        found += sum(1 for block in system if cache_ttl(block) is not None)
    for msg in body["messages"]:
        content = msg.get("content")
        if isinstance(content, list):
            found += sum(1 for block in content if cache_ttl(block) is not None)
    if cache_ttl(body) is not None:
        found += 1  # automatic caching takes one of the slots
    if found > _MAX_BREAKPOINTS:
        raise RequestError(
            f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {found}."
        )


def _check_tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool_use is answered by a tool_result in the next message, and every tool_result
    answers a tool_use of the message before it."""
    for i, msg in enumerate(messages):
        if msg.get("role") != "assistant":
            continue
        uses = _ids(msg, "tool_use", "id")
        if not uses:
            continue
        following = messages[i + 1] if i + 1 < len(messages) else None
        answered = (
            _ids(following, "tool_result", "tool_use_id")
            if following is not None and following.get("role") == "user"
            else []
        )
        missing = [u for u in uses if u not in answered]
        if missing:
            raise RequestError(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
    for i, msg in enumerate(messages):
        results = _ids(msg, "tool_result", "tool_use_id") if msg.get("role") == "user" else []
        if not results:
            continue
        previous = messages[i - 1] if i > 0 else None
        uses = (
            _ids(previous, "tool_use", "id")
            if previous is not None and previous.get("role") == "assistant"
            else []
        )
        unexpected = [r for r in results if r not in uses]
        if unexpected:
            at = next(
                j
                for j, b in enumerate(msg["content"])
                if isinstance(b, dict) and str(b.get("tool_use_id")) == unexpected[0]
            )
            raise RequestError(
                f"messages.{i}.content.{at}: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {', '.join(unexpected)}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )


def _ids(msg: dict[str, Any], kind: str, key: str) -> list[str]:
    content = msg.get("content")
    if not isinstance(content, list):
        return []
    return [str(b.get(key)) for b in content if isinstance(b, dict) and b.get("type") == kind]
