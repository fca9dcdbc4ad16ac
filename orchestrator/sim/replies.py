"""What the simulated model says: validation, scripted rules, generated replies, token usage.

Pure functions of a request body, the config and a seeded RNG, plus two small pieces of state
owned by the app: how often each rule has fired and which prompt-cache prefixes were written.
A reply depends only on (seed, request content), never on arrival order, so a run is repeatable;
`stream` and `metadata` are left out of that content so streamed and plain replies agree.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.config import Rule, SimConfig
from orchestrator.sim.schema import generate

_IMAGE_CHARS = 6000  # what an image or document block counts as (about 1500 tokens)
_QUOTE_CHARS = 80
_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
_SENTENCES = (
    "The main point is stated first and supported by the evidence at hand.",
    "Two factors matter most: scope and the quality of the inputs.",
    "A short list of next steps follows from this.",
    "Trade-offs are noted where the answer depends on context.",
    "Open questions remain and are flagged for follow-up.",
    "The result is consistent with the earlier findings.",
)
_HASHED_KEYS = (
    "model",
    "system",
    "messages",
    "tools",
    "tool_choice",
    "output_config",
    "output_format",
    "max_tokens",
    "stop_sequences",
)


class RequestError(Exception):
    """A request the real API would reject: becomes an error response with this status/type."""

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.kind = kind


def validate_message_request(body: Any, *, count_only: bool = False) -> None:
    """The basic checks the Messages API makes, with messages in its style."""
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
        if max_tokens < 1:
            raise RequestError("max_tokens: Input should be greater than or equal to 1")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise RequestError("messages: Input should be a valid list")
    if not messages:
        raise RequestError("messages: at least one message is required")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RequestError(f"messages.{i}: Input should be a valid dictionary")
        if msg.get("role") not in ("user", "assistant"):
            raise RequestError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = msg.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise RequestError(f"messages.{i}.content: Input should be a valid string or list")
        for j, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise RequestError(f"messages.{i}.content.{j}: each block needs a 'type'")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RequestError("system: Input should be a valid string or list of text blocks")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise RequestError("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise RequestError(f"tools.{i}.name: Field required")
            if _is_client_tool(tool) and not isinstance(tool.get("input_schema"), dict):
                raise RequestError(f"tools.{i}.custom.input_schema: Field required")


# -- reading a request -------------------------------------------------------------------------


def _is_client_tool(tool: dict[str, Any]) -> bool:
    return tool.get("type") in (None, "custom")


def _block_text(block: Any) -> str:
    """The text a content block contributes to the prompt, as the token estimate sees it."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return json.dumps(block, sort_keys=True)
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"{block.get('name', '')} {json.dumps(block.get('input', {}), sort_keys=True)}"
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            return "\n".join(_block_text(b) for b in content)
        return str(content)
    if kind in ("image", "document"):
        return "#" * _IMAGE_CHARS
    if kind == "thinking":
        return str(block.get("thinking", ""))
    clean = {k: v for k, v in block.items() if k != "cache_control"}
    return json.dumps(clean, sort_keys=True)


def _segments(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The prompt in cache order (tools, system, messages) as (text, cache ttl or None)."""
    out: list[tuple[str, str | None]] = []

    def ttl_of(block: Any) -> str | None:
        if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
            return str(block["cache_control"].get("ttl") or "5m")
        return None

    for tool in body.get("tools") or []:
        clean = {k: v for k, v in tool.items() if k != "cache_control"}
        out.append((json.dumps(clean, sort_keys=True), ttl_of(tool)))
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, None))
    elif isinstance(system, list):
        out.extend((_block_text(b), ttl_of(b)) for b in system)
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, str):
            out.append((f"{msg.get('role')}: {content}", None))
        elif isinstance(content, list):
            out.extend((_block_text(b), ttl_of(b)) for b in content)
    return out


def tokens(chars: int) -> int:
    return max(1, chars // 4)


def count_input_tokens(body: dict[str, Any]) -> int:
    return tokens(sum(len(text) for text, _ in _segments(body)))


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, list):
        return "\n".join(_block_text(b) for b in system)
    return system if isinstance(system, str) else ""


@dataclass(slots=True)
class Conversation:
    """The facts about a request that rules and replies look at."""

    last_user_text: str
    system: str
    turn: int  # 1-based number of the assistant turn being asked for
    tool_results: int  # tool_result blocks in the conversation
    client_tools: list[dict[str, Any]]
    schema: dict[str, Any] | None
    tool_choice: dict[str, Any]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Conversation:
        messages = body.get("messages") or []
        last_user = ""
        tool_results = 0
        for msg in messages:
            content = msg.get("content")
            if isinstance(content, list):
                tool_results += sum(
                    1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
                )
        for msg in reversed(messages):
            if msg.get("role") != "user":
                continue
            content = msg.get("content")
            if isinstance(content, str):
                last_user = content
            else:
                texts = [
                    str(b.get("text", ""))
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "text"
                ]
                last_user = "\n".join(texts)
            if last_user.strip():
                break
        schema = None
        output_config = body.get("output_config")
        fmt = output_config.get("format") if isinstance(output_config, dict) else None
        if fmt is None:
            fmt = body.get("output_format")  # the older beta spelling
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
        choice = body.get("tool_choice")
        return cls(
            last_user_text=last_user,
            system=_system_text(body),
            turn=1 + sum(1 for m in messages if m.get("role") == "assistant"),
            tool_results=tool_results,
            client_tools=[t for t in body.get("tools") or [] if _is_client_tool(t)],
            schema=schema,
            tool_choice=choice if isinstance(choice, dict) else {"type": "auto"},
        )

    @property
    def quote(self) -> str:
        text = " ".join(self.last_user_text.split())
        return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3].rstrip() + "..."


def content_rng(seed: int, body: dict[str, Any]) -> random.Random:
    """The RNG for one reply: a function of the seed and what was asked, nothing else."""
    content = {k: body.get(k) for k in _HASHED_KEYS}
    digest = hashlib.sha256(
        f"{seed}\n{json.dumps(content, sort_keys=True, default=str)}".encode()
    ).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


# -- rules --------------------------------------------------------------------------------------


class RuleBook:
    """The scripted rules and how often each has fired (for `times`)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.used = [0] * len(rules)

    def match(self, conv: Conversation, headers: dict[str, str]) -> Rule | None:
        """The first rule that matches, counted as used. Called with no await in between."""
        for i, rule in enumerate(self.rules):
            if rule.times is not None and self.used[i] >= rule.times:
                continue
            if not _rule_matches(rule, conv, headers):
                continue
            self.used[i] += 1
            return rule
        return None


def _rule_matches(rule: Rule, conv: Conversation, headers: dict[str, str]) -> bool:
    if rule.step is not None and not re.fullmatch(rule.step, headers.get("x-orchestrate-step", "")):
        return False
    if rule.agent is not None and not re.fullmatch(
        rule.agent, headers.get("x-orchestrate-agent", "")
    ):
        return False
    if rule.prompt is not None and not re.search(rule.prompt, conv.last_user_text):
        return False
    if rule.system is not None and not re.search(rule.system, conv.system):
        return False
    return rule.turn is None or rule.turn == conv.turn


# -- prompt cache --------------------------------------------------------------------------------


@dataclass(slots=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0


@dataclass
class PromptCache:
    """Prefixes written by earlier requests (by hash of model + prefix), with their expiry."""

    entries: dict[str, float] = field(default_factory=dict)

    def account(self, body: dict[str, Any]) -> CacheUsage:
        """Tokens read from and written to the cache by this request; updates the cache."""
        segments = _segments(body)
        now = time.monotonic()
        digest = hashlib.sha256(str(body.get("model")).encode())
        breakpoints: list[tuple[int, str, str]] = []  # (chars so far, prefix hash, ttl)
        chars = 0
        for text, ttl in segments:
            digest.update(text.encode())
            digest.update(b"\x00")
            chars += len(text)
            if ttl is not None:
                breakpoints.append((chars, digest.hexdigest(), ttl))
        if not breakpoints:
            return CacheUsage()
        hit = -1
        for i, (_, key, _) in enumerate(breakpoints):
            if self.entries.get(key, 0.0) > now:
                hit = i
        usage = CacheUsage()
        start = 0
        if hit >= 0:
            start, key, ttl = breakpoints[hit]
            usage.read = start // 4
            self.entries[key] = now + _TTL_SECONDS.get(ttl, 300.0)  # a hit refreshes it
        for end, key, ttl in breakpoints[hit + 1 :]:
            written = (end - start) // 4
            if ttl == "1h":
                usage.write_1h += written
            else:
                usage.write_5m += written
            self.entries[key] = now + _TTL_SECONDS.get(ttl, 300.0)
            start = end
        return usage


# -- replies -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None = None


def _tool_id(rng: random.Random) -> str:
    return "toolu_sim" + "".join(rng.choice("0123456789abcdefghjkmnpqrstvwxyz") for _ in range(20))


def _known_tool_input(name: str, conv: Conversation, rng: random.Random) -> dict[str, Any] | None:
    """Arguments a model would plausibly pass to the built-in tools."""
    note = f"Notes on: {conv.quote}\n"
    key = f"note_{rng.randrange(16**6):06x}"
    known: dict[str, dict[str, Any]] = {
        "Read": {"file_path": "README.md"},
        "Glob": {"pattern": "**/*"},
        "Grep": {"pattern": "TODO"},
        "Write": {"file_path": "notes.md", "content": note},
        "Edit": {"file_path": "notes.md", "old_string": "Notes", "new_string": "Notes (edited)"},
        "Bash": {"command": "ls"},
        "state_set": {"key": key, "value": conv.quote},
        "state_get": {"key": key},
        "state_list": {"prefix": ""},
    }
    return known.get(name)


def _tool_input(tool: dict[str, Any], conv: Conversation, rng: random.Random, list_len: int) -> Any:
    schema = tool.get("input_schema") or {}
    known = _known_tool_input(str(tool.get("name")), conv, rng)
    if known is None:
        value = generate(schema, rng, list_len=list_len)
        return value if isinstance(value, dict) else {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    if isinstance(props, dict) and props:
        known = {k: v for k, v in known.items() if k in props}
        for name in schema.get("required", []):
            if name not in known and name in props:
                known[name] = generate(props[name], rng, list_len=list_len)
    return known


def _wants_tools(conv: Conversation, config: SimConfig) -> bool:
    if not conv.client_tools or conv.tool_results:
        return False  # after tool results come back, always answer: never loop
    choice = conv.tool_choice.get("type")
    if choice == "none":
        return False
    return choice in ("any", "tool") or config.tool_calls


def _generated_tool_calls(conv: Conversation, config: SimConfig, rng: random.Random) -> Reply:
    tools = conv.client_tools
    if conv.tool_choice.get("type") == "tool":
        named = [t for t in tools if t.get("name") == conv.tool_choice.get("name")]
        picked = named[:1] or tools[:1]
    else:
        count = min(len(tools), rng.choice((1, 2)))
        chosen = set(rng.sample(range(len(tools)), count))
        picked = [t for i, t in enumerate(tools) if i in chosen]
    text = f"I will use {', '.join(str(t['name']) for t in picked)} first."
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for tool in picked:
        content.append(
            {
                "type": "tool_use",
                "id": _tool_id(rng),
                "name": tool["name"],
                "input": _tool_input(tool, conv, rng, config.list_len),
            }
        )
    return Reply(content, "tool_use")


def _answer_text(conv: Conversation, config: SimConfig, rng: random.Random) -> str:
    if conv.schema is not None:
        return json.dumps(generate(conv.schema, rng, list_len=config.list_len))
    sentences = rng.sample(_SENTENCES, rng.randint(1, 3))
    if conv.tool_results:
        sentences.insert(0, f"Based on {conv.tool_results} tool result(s).")
    body = " ".join(sentences)
    if "JSON" in conv.last_user_text or "JSON" in conv.system:
        return json.dumps({"answer": body, "prompt": conv.quote})
    return f'Simulated reply to "{conv.quote}". {body}'


def _truncate(reply: Reply, body: dict[str, Any]) -> Reply:
    """Apply `stop_sequences` and `max_tokens` to a text reply, as the model would stop."""
    if len(reply.content) != 1 or reply.content[0].get("type") != "text":
        return reply
    text = str(reply.content[0]["text"])
    for stop in body.get("stop_sequences") or []:
        at = text.find(stop) if isinstance(stop, str) and stop else -1
        if at >= 0:
            return Reply([{"type": "text", "text": text[:at]}], "stop_sequence", stop)
    limit = int(body.get("max_tokens") or 0) * 4
    if limit and len(text) > limit:
        return Reply([{"type": "text", "text": text[:limit]}], "max_tokens")
    return reply


def make_reply(
    body: dict[str, Any], conv: Conversation, config: SimConfig, rule: Rule | None
) -> Reply:
    """The assistant content for a request: the matched rule's, or generated. Errors raise."""
    rng = content_rng(config.seed, body)
    kind = rule.reply_kind if rule is not None else None
    if rule is not None and kind == "error":
        err = rule.error or {}
        raise RequestError(
            str(err.get("message") or "scripted error"),
            status=int(err["status"]),
            kind=str(err.get("type") or "api_error"),
        )
    if rule is not None and kind == "text":
        reply = Reply([{"type": "text", "text": str(rule.text)}], "end_turn")
    elif rule is not None and kind == "json":
        reply = Reply([{"type": "text", "text": json.dumps(rule.json)}], "end_turn")
    elif rule is not None and kind == "tool_calls":
        content: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": str(call.get("id") or _tool_id(rng)),
                "name": call["name"],
                "input": call.get("input") or {},
            }
            for call in rule.tool_calls or []
        ]
        reply = Reply(content, "tool_use")
    elif _wants_tools(conv, config):
        reply = _generated_tool_calls(conv, config, rng)
    else:
        reply = _truncate(
            Reply([{"type": "text", "text": _answer_text(conv, config, rng)}], "end_turn"), body
        )
    if rule is not None and rule.stop_reason is not None:
        reply.stop_reason = rule.stop_reason
    return reply


def output_tokens(content: list[dict[str, Any]]) -> int:
    chars = 0
    for block in content:
        if block.get("type") == "text":
            chars += len(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            chars += len(str(block.get("name"))) + len(json.dumps(block.get("input", {})))
    return tokens(chars)


def usage_for(
    body: dict[str, Any], content: list[dict[str, Any]], cache: PromptCache, *, tier: str
) -> dict[str, Any]:
    """The `usage` object: cache reads and writes carved out of the input tokens."""
    total = count_input_tokens(body)
    cached = cache.account(body)
    written = cached.write_5m + cached.write_1h
    return {
        "input_tokens": max(0, total - cached.read - written),
        "output_tokens": output_tokens(content),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cached.write_5m,
            "ephemeral_1h_input_tokens": cached.write_1h,
        },
        "service_tier": tier,
    }


def message_id(rng: random.Random) -> str:
    return "msg_sim" + "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(20))
