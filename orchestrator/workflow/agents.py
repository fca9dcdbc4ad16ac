"""Agent definitions in Claude Code's subagent format (Markdown with YAML front matter), where
a workflow finds them, and the loader pass that resolves every `agent:` a step names.

Files written for Claude Code must load unchanged: tools as a comma string or a list, `model:
inherit`, CRLF line endings, a BOM, keys this engine does not use (`color`, `permissionMode`...),
and front matter that strict YAML refuses only for an unquoted `: ` in a value (read as `key:
value` lines, with a warning). Front matter that is broken otherwise (a quote or a `[` list never
closed) is an error at its line: reading it loosely would silently change what the agent may do.
Tools that are not built-in (MCP tools, `TodoWrite`, `Task`) are dropped with a warning, since the
engine could not run them anyway; permission rules (`Bash(git diff:*)`) are kept. As in Claude
Code, a file with no `tools:` inherits a default set (`agents.default_tools` in the settings:
every built-in tool but Bash), `tools: []` grants none, a closing line of three or more dashes
ends the front matter, and a step names an agent by its file name or by any front-matter `name`
(`Python DevOps/CI-CD Expert`); two files giving one name is a warning naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from orchestrator.contracts.resources import resource_options
from orchestrator.errors import Diagnostic, SpecError
from orchestrator.names import did_you_mean
from orchestrator.tool_names import split_tool_list, tool_entry_problem
from orchestrator.workflow._context import LoadContext
from orchestrator.workflow._yaml import decode, parse_yaml
from orchestrator.workflow.fields import model_names_problem
from orchestrator.workflow.language import AGENT_FILE_KEYS, RUNTIMES
from orchestrator.workflow.language import AGENT_KEYS as _INLINE_KEYS
from orchestrator.workflow.mcp import mcp_problems
from orchestrator.workflow.models import AgentDef

__all__ = [
    "AGENT_KEYS",
    "agent_dirs",
    "agent_from_mapping",
    "find_agents",
    "load_agent_file",
    "parse_agent",
    "resolve_agents",
    "scan_agents",
]

AGENT_KEYS = AGENT_FILE_KEYS  # front matter; an inline `agents:` entry also has `system`
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)?-{3,}[ \t]*(?:\n|\Z)", re.DOTALL)
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


_UNCLOSED = {
    "while scanning a quoted scalar": "a quoted value that starts here is never closed",
    "while parsing a flow sequence": "a '[' list that starts here is never closed",
    "while parsing a flow mapping": "a '{' mapping that starts here is never closed",
}


def _refuse_unclosed(front: str, file: str) -> None:
    """Raise `SpecError` at the opening quote or bracket that YAML never saw closed: read as
    loose lines, its value would run on (a quoted `tools:` loses its first tool)."""
    try:
        yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        problem = _UNCLOSED.get(exc.context or "")
        mark = exc.context_mark
        if problem is None or mark is None:
            return
        # The front matter starts on line 2, after the opening `---`.
        message = f"invalid front matter: {problem} (close it, or remove it)"
        raise SpecError([Diagnostic(file, mark.line + 2, mark.column + 1, message)]) from None
    except yaml.YAMLError:
        return


def _split_tools(value: Any) -> list[str | dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return list(split_tool_list(str(value)))
    out: list[str | dict[str, Any]] = []
    for item in value:
        if isinstance(item, dict):
            out.append(item)
        elif str(item).strip():
            out.append(str(item).strip())
    return out


def valid_agent_name(name: str) -> bool:
    """Any name a front matter may give (`Python DevOps/CI-CD Expert`): one line of text."""
    return bool(name.strip()) and name == name.strip() and "\n" not in name and "\0" not in name


def inherit_tools(agent: AgentDef, default_tools: list[str]) -> AgentDef:
    """An agent whose file names no tools gets the default set, marked as inherited."""
    if agent.tools is not None:
        return agent
    return agent.model_copy(update={"tools": list(default_tools), "inherited_tools": True})


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
                _refuse_unclosed(front, file)
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
    allowed = _INLINE_KEYS if strict else AGENT_KEYS
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
    if isinstance(model, list):  # `model: [opus, sonnet]`: the first, then fallbacks
        listed = model_names_problem(model, "agent 'model'")
        if listed is not None:
            errors.append(Diagnostic(*where("model"), listed[1]))
            model = None
        else:
            model = [str(m).strip() for m in model]
            model = model[0] if len(model) == 1 else model
    elif model is not None and not isinstance(model, str):
        message = (
            "agent 'model' must be a model name (opus, sonnet, haiku, inherit or a model id) "
            "or a list of them ([opus, sonnet])"
        )
        errors.append(Diagnostic(*where("model"), message))
        model = None
    if isinstance(model, str):
        model = model.strip() or None
        if model == "inherit":
            model = None
    tools_raw = meta.get("tools")
    tools: list[str | dict[str, Any]] | None = None
    if isinstance(tools_raw, dict | bool):
        message = "agent 'tools' must be a comma-separated string or a list"
        errors.append(Diagnostic(*where("tools"), message))
    else:
        tools = _split_tools(tools_raw)
    runtime = meta.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        message = f"agent 'runtime' must be one of {', '.join(RUNTIMES)}, got {runtime!r}"
        errors.append(Diagnostic(*where("runtime"), message))
        runtime = None
    mcp_servers = meta.get("mcp_servers")
    for below, problem in mcp_problems(mcp_servers) if mcp_servers is not None else []:
        del below  # front matter positions are per key
        errors.append(Diagnostic(*where("mcp_servers"), f"agent 'mcp_servers': {problem}"))
        mcp_servers = None
    resources = meta.get("resources")
    if resources is not None:
        try:
            resource_options(resources)
        except ValueError as exc:
            errors.append(Diagnostic(*where("resources"), f"agent 'resources': {exc}"))
            resources = None
    if tools is not None:
        unknown = [t for t in tools if tool_entry_problem(t) is not None]
        if unknown:
            shown = ", ".join(str(t) for t in unknown)
            problems = "; ".join(dict.fromkeys(str(tool_entry_problem(t)) for t in unknown))
            message = f"tools not available in orchestrate, ignored: {shown} ({problems})"
            warnings.append(Diagnostic(*where("tools"), message, "warning"))
        tools = [t for t in tools if tool_entry_problem(t) is None]
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
        runtime=runtime,
        mcp_servers=dict(mcp_servers or {}),
        resources=dict(resources) if resources is not None else None,
        system=system,
        extra={} if strict else extra,
        path=path,
    )
    return agent, errors, warnings


def scan_agents(
    dirs: Iterable[str | Path], *, default_tools: list[str] | None = None
) -> tuple[dict[str, AgentDef], list[Diagnostic]]:
    """Every agent file in `dirs` (earlier directories win on a name clash, with a warning
    naming both files), and the problems found. Agents are keyed by their `name` (which
    defaults to the file name); with `default_tools`, a file with no `tools:` inherits them."""
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
            if default_tools is not None:
                agent = inherit_tools(agent, default_tools)
            first = agents.get(agent.name)
            if first is not None:
                problems.append(_same_name(agent.name, first, file))
                continue
            agents[agent.name] = agent
    return agents, problems


def _same_name(name: str, first: AgentDef, other: Path) -> Diagnostic:
    message = f"agent name '{name}' is given by {first.path} and by {other}; {first.path} is used"
    return Diagnostic(str(other), 1, 1, message, "warning")


def find_agents(dirs: Iterable[str | Path]) -> dict[str, AgentDef]:
    """Every loadable agent in `dirs` by name (for `orchestrate agents list`)."""
    return scan_agents(dirs)[0]


def agent_dirs(workflow_path: Path, cwd: Path | None = None) -> list[Path]:
    """Where `agent: NAME` is looked up, in order: beside the workflow, ./agents, .claude/agents,
    then (an addition) `agents/` beside the workflow's directory, so a project laid out as
    `workflows/` + `agents/` validates from any directory."""
    cwd = cwd or Path.cwd()
    here = workflow_path.resolve().parent
    dirs = [here / "agents", cwd / "agents", cwd / ".claude" / "agents", here.parent / "agents"]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def resolve_agents(ctx: LoadContext) -> None:
    """Every `agent:` a step names: an inline `agents:` entry, else a file in `agent_dirs`
    (by file name, then by front-matter `name`). A file loads once per `load_workflow`, however
    many steps or sub-workflows name it, so its warnings are reported once."""
    default_tools = ctx.settings.agents.default_tools
    for info, name, path in ctx.agent_refs:
        if name in ctx.resolved_agents:
            continue
        if not valid_agent_name(name):
            ctx.err(path, f"{info.label}: invalid agent name {name!r} (one line of text)")
            continue
        found, agent = _find_agent(ctx, name)
        if not found:
            hint = did_you_mean(name, _known_agent_names(ctx))
            searched = ", ".join(str(d) for d in agent_dirs(ctx.path))
            ctx.err(
                path,
                f"{info.label}: unknown agent '{name}'{hint} (looked in 'agents:' and {searched})",
            )
            continue
        if agent is None:
            continue  # the agent file is invalid; its own errors are reported
        if name not in ctx.inline_agents:
            agent = inherit_tools(agent, default_tools)
        ctx.resolved_agents[name] = agent
        ctx.refer_models(agent.model, path, f"{info.label}: agent '{name}' ({agent.path}) model")
    if ctx.dynamic_agents:
        _resolve_every_agent(ctx)


def _resolve_every_agent(ctx: LoadContext) -> None:
    """A step picks its agent at run time (`agent: "{{ item.agent }}"`): every agent that
    loads is made available; a file that does not load is a warning, and a step that picks it
    fails then, naming it."""
    found, problems = scan_agents(
        agent_dirs(ctx.path), default_tools=ctx.settings.agents.default_tools
    )
    for diag in problems:
        severity = "warning"
        ctx.warnings.append(Diagnostic(diag.file, diag.line, diag.col, diag.message, severity))
    for name, agent in {**found, **ctx.inline_agents}.items():
        ctx.resolved_agents.setdefault(name, agent)
    for agent in list(ctx.resolved_agents.values()):
        if agent.path is not None and agent.path.stem not in ctx.resolved_agents:
            ctx.resolved_agents[agent.path.stem] = agent  # also by file name


def _known_agent_names(ctx: LoadContext) -> list[str]:
    names = list(ctx.inline_agents)
    for directory in agent_dirs(ctx.path):
        if directory.is_dir():
            names.extend(p.stem for p in sorted(directory.glob("*.md")))
    return names


def _agent_file(ctx: LoadContext, file: Path) -> AgentDef | None:
    key = file.resolve()
    if key not in ctx.agent_cache:
        try:
            agent, warnings = load_agent_file(file)
            ctx.agent_cache[key] = (agent, warnings)
            ctx.warnings.extend(warnings)
        except SpecError as exc:
            ctx.agent_cache[key] = (None, exc.diagnostics)
            ctx.errors.extend(exc.diagnostics)
    return ctx.agent_cache[key][0]


def _find_agent(ctx: LoadContext, name: str) -> tuple[bool, AgentDef | None]:
    """(found, agent): found with no agent means the file exists but is invalid."""
    if name in ctx.inline_agents:
        return True, ctx.inline_agents[name]
    dirs = [d for d in agent_dirs(ctx.path) if d.is_dir()]
    by_file = "/" not in name and "\\" not in name and name not in (".", "..")
    for directory in dirs if by_file else []:
        file = directory / f"{name}.md"
        if file.is_file():
            return True, _agent_file(ctx, file)
    # Claude Code names agents by their front matter; the file name may differ.
    named: list[tuple[Path, AgentDef | None]] = []
    for directory in dirs:
        for file in sorted(directory.glob("*.md")):
            try:
                head = file.read_text("utf-8-sig", errors="replace")[:4000]
            except OSError:
                continue
            if re.search(rf"(?m)^name:\s*['\"]?{re.escape(name)}['\"]?\s*$", head):
                agent = _agent_file(ctx, file)
                if agent is None or agent.name == name:
                    named.append((file, agent))
    if not named:
        return False, None
    if len(named) > 1:
        files = " and ".join(str(file) for file, _ in named[:2])
        ctx.warnings.append(
            Diagnostic(
                str(named[1][0]),
                1,
                1,
                f"agent name '{name}' is given by {files}; {named[0][0]} is used",
                "warning",
            )
        )
    return True, named[0][1]
