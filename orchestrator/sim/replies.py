"""What the simulated model says: reading a request, scripted rules, generated replies.

Pure functions of a request body, the config and a seeded RNG, plus one small piece of state
owned by the app: how often each rule has fired. A reply depends only on (seed, request content),
never on arrival order, so a run is repeatable; `stream` and `metadata` are left out of that
content so streamed and plain replies agree. Tools are called when the prompt names them (or
`tool_choice` forces it), never at random, so a reply reads as an answer to its prompt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.sim.config import Rule, SimConfig
from orchestrator.sim.schema import generate

_IMAGE_CHARS = 6000  # what an image or document block counts as (about 1500 tokens)
_QUOTE_CHARS = 80
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
    "thinking",
)


class RequestError(Exception):
    """A request the real API would reject: becomes an error response with this status/type."""

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.kind = kind


# -- reading a request -------------------------------------------------------------------------


def is_client_tool(tool: dict[str, Any]) -> bool:
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


def cache_ttl(block: Any) -> str | None:
    """The TTL a block's `cache_control` asks for, or None when it has none."""
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return str(block["cache_control"].get("ttl") or "5m")
    return None


_UNCACHEABLE = ("thinking", "redacted_thinking")


def segments(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The prompt in cache order (tools, system, messages) as (text, cache ttl or None).

    A top-level `cache_control` (automatic caching) puts a breakpoint on the last cacheable block.
    """
    out: list[tuple[str, str | None]] = []
    for tool in body.get("tools") or []:
        clean = {k: v for k, v in tool.items() if k != "cache_control"}
        out.append((json.dumps(clean, sort_keys=True), cache_ttl(tool)))
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, None))
    elif isinstance(system, list):
        out.extend((_block_text(b), cache_ttl(b)) for b in system)
    last_cacheable = -1
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, str):
            out.append((f"{msg.get('role')}: {content}", None))
            last_cacheable = len(out) - 1
        elif isinstance(content, list):
            for block in content:
                out.append((_block_text(block), cache_ttl(block)))
                if not (isinstance(block, dict) and block.get("type") in _UNCACHEABLE):
                    last_cacheable = len(out) - 1
    auto = cache_ttl(body)
    if auto is not None and last_cacheable >= 0:
        text, ttl = out[last_cacheable]
        out[last_cacheable] = (text, ttl or auto)
    return out


def tokens(chars: int) -> int:
    return max(1, chars // 4)


def count_input_tokens(body: dict[str, Any]) -> int:
    return tokens(sum(len(text) for text, _ in segments(body)))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_block_text(b) for b in content)
    return ""


def _system_text(body: dict[str, Any]) -> str:
    """The top-level system prompt and any system-role messages later in the conversation."""
    parts = [_content_text(body.get("system"))]
    parts.extend(
        _content_text(m.get("content"))
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "system"
    )
    return "\n".join(p for p in parts if p)


_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.DOTALL)


def _prompt_text(content: Any) -> str:
    """What the person typed in a user turn: its text blocks, minus the `<system-reminder>`
    context a client such as Claude Code adds around it."""
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [
            str(b.get("text", ""))
            for b in content or []
            if isinstance(b, dict) and b.get("type") == "text"
        ]
    return "\n".join(t for t in (_REMINDER.sub("", t).strip() for t in texts) if t)


def _has_tool_results(msg: Any) -> bool:
    content = msg.get("content") if isinstance(msg, dict) else None
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


@dataclass(slots=True)
class Conversation:
    """The facts about a request that rules and replies look at."""

    last_user_text: str
    system: str
    turn: int  # 1-based number of the assistant turn being asked for
    tool_results: int  # tool_result blocks in the conversation
    answering_results: bool  # the last message hands tool results back
    client_tools: list[dict[str, Any]]
    schema: dict[str, Any] | None
    tool_choice: dict[str, Any]
    thinking: dict[str, Any] | None  # the request's `thinking`, when it is on

    @classmethod
    def of(cls, body: dict[str, Any]) -> Conversation:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        last_user = ""
        for msg in reversed(messages):
            if msg.get("role") != "user":
                continue
            last_user = _prompt_text(msg.get("content"))
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
        thinking = body.get("thinking")
        on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        return cls(
            last_user_text=last_user,
            system=_system_text(body),
            turn=1 + sum(1 for m in messages if m.get("role") == "assistant"),
            tool_results=sum(
                1
                for m in messages
                if isinstance(m.get("content"), list)
                for b in m["content"]
                if isinstance(b, dict) and b.get("type") == "tool_result"
            ),
            answering_results=bool(messages) and _has_tool_results(messages[-1]),
            client_tools=[t for t in body.get("tools") or [] if is_client_tool(t)],
            schema=schema,
            tool_choice=choice if isinstance(choice, dict) else {"type": "auto"},
            thinking=thinking if on else None,
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


def named_tools(conv: Conversation) -> list[dict[str, Any]]:
    """The offered client tools the prompt names (as a whole word), in the order it names them."""
    found: list[tuple[int, int, dict[str, Any]]] = []
    for i, tool in enumerate(conv.client_tools):
        name = str(tool.get("name", ""))
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", conv.last_user_text)
        if name and match:
            found.append((match.start(), i, tool))
    return [tool for _, _, tool in sorted(found, key=lambda f: (f[0], f[1]))]


def choose_tools(conv: Conversation, config: SimConfig) -> tuple[list[dict[str, Any]], bool]:
    """Which tools the reply calls, and whether `tool_choice` forced it (no text before).

    `auto`: the tools the last user turn names, never in answer to tool results (so a tool loop
    ends) and never with `tool_calls` off. `any`: those, or else the first tool. `tool`: that one.
    `none`: nothing. `disable_parallel_tool_use` keeps only the first.
    """
    tools = conv.client_tools
    choice = conv.tool_choice.get("type")
    if not tools or choice == "none":
        return [], False
    if choice == "tool":
        return [t for t in tools if t.get("name") == conv.tool_choice.get("name")][:1], True
    forced = choice == "any"
    picked: list[dict[str, Any]] = []
    if forced or (config.tool_calls and not conv.answering_results):
        picked = named_tools(conv)
    if forced and not picked:
        picked = tools[:1]
    if conv.tool_choice.get("disable_parallel_tool_use") is True:
        picked = picked[:1]
    return picked, forced


def _tool_calls(
    tools: list[dict[str, Any]], forced: bool, conv: Conversation, config: SimConfig, rng: Any
) -> Reply:
    content: list[dict[str, Any]] = []
    if not forced:  # a model says what it is about to do; a forced call starts with the tool
        content.append(
            {"type": "text", "text": f"I will use {', '.join(str(t['name']) for t in tools)}."}
        )
    for tool in tools:
        content.append(
            {
                "type": "tool_use",
                "id": _tool_id(rng),
                "name": tool["name"],
                "input": _tool_input(tool, conv, rng, config.list_len),
            }
        )
    return Reply(content, "tool_use")


def _thinking_block(conv: Conversation, body: dict[str, Any], seed: int) -> dict[str, Any]:
    """A short, deterministic chain of thought with a signature, as extended thinking returns."""
    thought = (
        f'The request: "{conv.quote}". '
        + ("Tools are available; " if conv.client_tools else "No tools are needed; ")
        + "answer directly and briefly."
    )
    digest = hashlib.sha256(f"{seed}\n{thought}\n{body.get('model')}".encode()).digest()
    signature = base64.b64encode(b"sim-signature:" + digest * 3).decode()
    omitted = conv.thinking is not None and conv.thinking.get("display") == "omitted"
    return {"type": "thinking", "thinking": "" if omitted else thought, "signature": signature}


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


def _truncate(reply: Reply, body: dict[str, Any], spent: int) -> Reply:
    """Apply `stop_sequences` and `max_tokens` (less `spent` on thinking) to a text reply."""
    if len(reply.content) != 1 or reply.content[0].get("type") != "text":
        return reply
    text = str(reply.content[0]["text"])
    for stop in body.get("stop_sequences") or []:
        at = text.find(stop) if isinstance(stop, str) and stop else -1
        if at >= 0:
            return Reply([{"type": "text", "text": text[:at]}], "stop_sequence", stop)
    limit = max(1, int(body.get("max_tokens") or 0) - spent) * 4
    if len(text) > limit:
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
    if body.get("max_tokens") == 0:  # pre-warming the cache: no output at all
        return Reply([], "max_tokens")
    thinking = _thinking_block(conv, body, config.seed) if conv.thinking is not None else None
    spent = output_tokens([thinking]) if thinking is not None else 0
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
    else:
        tools, forced = choose_tools(conv, config)
        if tools:
            reply = _tool_calls(tools, forced, conv, config, rng)
        else:
            text = _answer_text(conv, config, rng)
            reply = _truncate(Reply([{"type": "text", "text": text}], "end_turn"), body, spent)
    if thinking is not None:
        reply.content.insert(0, thinking)
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
        elif block.get("type") == "thinking":
            chars += len(str(block.get("thinking", ""))) or 40  # omitted thinking is still paid
    return tokens(chars)


def message_id(rng: random.Random) -> str:
    return "msg_sim" + "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(20))
