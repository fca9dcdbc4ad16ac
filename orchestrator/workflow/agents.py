"""Agent definitions in Claude Code's subagent format: Markdown with YAML front matter.

Files written for Claude Code must load unchanged: tools as a comma string or a list, `model:
inherit`, CRLF line endings, a BOM, keys this engine does not use (`color`, `permissionMode`...).
Anything that is not fatal becomes a warning `Diagnostic`; tools that are not built-in (MCP tools,
`TodoWrite`, `Task`) are dropped with a warning, since the engine could not run them anyway.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from orchestrator.contracts import BUILTIN_TOOL_NAMES
from orchestrator.errors import Diagnostic, SpecError
from orchestrator.workflow._yaml import decode, parse_yaml
from orchestrator.workflow.models import AgentDef

__all__ = [
    "AGENT_KEYS",
    "agent_from_mapping",
    "did_you_mean",
    "find_agents",
    "load_agent_file",
    "parse_agent",
    "scan_agents",
]

AGENT_KEYS = ("name", "description", "model", "tools", "max_tokens")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)
_LOOSE_KEY = re.compile(r"^([A-Za-z_][\w-]*):(?:\s+(.*))?$")


def load_agent_file(path: str | Path) -> tuple[AgentDef, list[Diagnostic]]:
    """Load `agents/NAME.md`. Returns the agent and its warnings; raises `SpecError` on errors."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        message = f"cannot read agent file: {exc.strerror}"
        raise SpecError([Diagnostic(str(path), 1, 1, message)]) from None
    text, errors = decode(raw, str(path))
    if text is None:
        raise SpecError(errors)
    return parse_agent(text, path)


def _loose_front_matter(text: str) -> dict[str, Any]:
    """Claude Code accepts front matter that strict YAML refuses (an unquoted description with
    `: ` inside, examples on following lines): read it as `key: value` lines instead."""
    out: dict[str, Any] = {}
    key: str | None = None
    for line in text.split("\n"):
        match = _LOOSE_KEY.match(line)
        if match:
            key = match.group(1)
            out[key] = (match.group(2) or "").strip()
        elif key is not None:
            out[key] = f"{out[key]}\n{line}" if out[key] else line
    for name, value in out.items():
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name] = value
    return out


def _split_tools(value: Any) -> list[str] | None:
    if value is None:
        return None
    items: list[Any] = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def parse_agent(
    text: str, path: Path, *, name: str | None = None
) -> tuple[AgentDef, list[Diagnostic]]:
    """Parse the text of an agent file (already decoded, `\\n` line endings)."""
    file = str(path)
    warnings: list[Diagnostic] = []
    match = _FRONT.match(text)
    meta: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if match is None:
        message = "no front matter ('---' block); the whole file is the system prompt"
        warnings.append(Diagnostic(file, 1, 1, message, "warning"))
        body = text
    else:
        body = text[match.end() :]
        front = match.group(1) or ""
        if front.strip():
            data, pos, errors = parse_yaml(front, file)
            # The front matter starts on line 2, after the opening `---`.
            lines = {str(k[0]): v[0] + 1 for k, v in pos.keys.items() if len(k) == 1}
            if errors or not isinstance(data, dict):
                data = _loose_front_matter(front)
                if not data:
                    line = errors[0].line + 1 if errors else 2
                    message = "front matter must be a mapping of 'key: value' lines"
                    raise SpecError([Diagnostic(file, line, 1, message)])
                message = "front matter is not valid YAML; read it as 'key: value' lines"
                warnings.append(Diagnostic(file, 2, 1, message, "warning"))
            meta = data

    def where(key: str) -> tuple[str, int, int]:
        return file, lines.get(key, 2), 1

    agent, errors_out, more = agent_from_mapping(
        meta, default_name=name or path.stem, system=body.strip(), where=where, path=path
    )
    if errors_out:
        raise SpecError(errors_out)
    return agent, warnings + more


def agent_from_mapping(
    meta: dict[str, Any],
    *,
    default_name: str,
    system: str,
    where: Callable[[str], tuple[str, int, int]],
    path: Path | None = None,
    strict: bool = False,
) -> tuple[AgentDef, list[Diagnostic], list[Diagnostic]]:
    """Front matter (or an inline `agents:` entry) -> (agent, errors, warnings). With `strict`
    (inline agents), unknown keys are errors; in files they are kept in `extra` with a warning."""
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    allowed = AGENT_KEYS + (("system",) if strict else ())
    agent_name = meta.get("name")
    if agent_name is None or agent_name == "":
        agent_name = default_name
    elif not isinstance(agent_name, str):
        errors.append(Diagnostic(*where("name"), "agent 'name' must be a string"))
        agent_name = str(agent_name)
    description = meta.get("description")
    if description is not None and not isinstance(description, str):
        description = str(description)
    model = meta.get("model")
    if model is not None and not isinstance(model, str):
        message = "agent 'model' must be a string (opus, sonnet, haiku, inherit or a model id)"
        errors.append(Diagnostic(*where("model"), message))
        model = None
    if isinstance(model, str):
        model = model.strip() or None
        if model == "inherit":
            model = None
    tools_raw = meta.get("tools")
    tools: list[str] | None = None
    if isinstance(tools_raw, dict | bool):
        message = "agent 'tools' must be a comma-separated string or a list"
        errors.append(Diagnostic(*where("tools"), message))
    else:
        tools = _split_tools(tools_raw)
    if tools is not None:
        unknown = [t for t in tools if t not in BUILTIN_TOOL_NAMES]
        if unknown:
            message = f"tools not available in orchestrate, ignored: {', '.join(unknown)}"
            warnings.append(Diagnostic(*where("tools"), message, "warning"))
        tools = [t for t in tools if t in BUILTIN_TOOL_NAMES]
    max_tokens = meta.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, str) and max_tokens.strip().isdigit():
            max_tokens = int(max_tokens)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            message = "agent 'max_tokens' must be a positive integer"
            errors.append(Diagnostic(*where("max_tokens"), message))
            max_tokens = None
    if strict and meta.get("system") is not None:
        system = str(meta["system"]).strip()
    extra = {str(k): v for k, v in meta.items() if k not in allowed}
    if extra and strict:
        for key in extra:
            errors.append(
                Diagnostic(*where(key), f"unknown agent key '{key}'{did_you_mean(key, allowed)}")
            )
    elif extra:
        message = "front-matter keys not used by orchestrate, kept and ignored: " + ", ".join(extra)
        warnings.append(Diagnostic(*where(next(iter(extra))), message, "warning"))
    agent = AgentDef(
        name=agent_name,
        description=description.strip() if isinstance(description, str) else None,
        model=model,
        tools=tools,
        max_tokens=max_tokens,
        system=system,
        extra={} if strict else extra,
        path=path,
    )
    return agent, errors, warnings


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def scan_agents(dirs: Iterable[str | Path]) -> tuple[dict[str, AgentDef], list[Diagnostic]]:
    """Every agent file in `dirs` (earlier directories win on a name clash), and the problems
    found. Agents are keyed by their `name` (which defaults to the file name)."""
    agents: dict[str, AgentDef] = {}
    problems: list[Diagnostic] = []
    for directory in dirs:
        directory = Path(directory)
        if not directory.is_dir():
            continue
        for file in sorted(directory.glob("*.md")):
            try:
                agent, warnings = load_agent_file(file)
            except SpecError as exc:
                problems.extend(exc.diagnostics)
                continue
            problems.extend(warnings)
            agents.setdefault(agent.name, agent)
    return agents, problems


def find_agents(dirs: Iterable[str | Path]) -> dict[str, AgentDef]:
    """Every loadable agent in `dirs` by name (for `orchestrate agents list`)."""
    return scan_agents(dirs)[0]
