"""Which tool entries a step may name: one check shared by the workflow loader and the toolset.

A leaf (it imports only `contracts` and `names`), so validating a workflow never imports the tools
themselves. The loader reports these problems at the entry's line and column; `build_toolset`
raises them as `UsageError`; both say the same words.

An entry is a built-in tool's name (`Read`), a Claude Code permission rule (`Bash(git diff:*)`,
`Read(src/**)`: the tool, limited to what the rule matches; `orchestrator/tools/permissions.py`
does the matching), `{python: "pkg.mod:fn"}`, or `{Tool: {allow: [rules], max_calls: N}}` (the
tool limited to those rules and to N calls per worker).
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.contracts import BUILTIN_TOOL_NAMES
from orchestrator.names import did_you_mean

__all__ = [
    "MCP_TOOL_PATTERN",
    "PYTHON_TOOL_PATTERN",
    "RULE_TOOLS",
    "entry_tool_names",
    "is_python_tool_ref",
    "mcp_tool_parts",
    "split_rule",
    "split_tool_list",
    "tool_entry_problem",
    "unknown_tool_message",
]

# `{python: "package.module:function"}`: a dotted module path, a colon, a function name.
PYTHON_TOOL_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
_PYTHON_TOOL = re.compile(PYTHON_TOOL_PATTERN)
_RULE = re.compile(r"^\s*([A-Za-z_]\w*)\((.*)\)\s*$", re.DOTALL)
# The tools a rule's specifier can limit: a command for Bash, paths for the file tools. Server
# tools (WebFetch, WebSearch) run inside the API, where no rule of ours reaches.
RULE_TOOLS = ("Bash", "Read", "Write", "Edit", "Glob", "Grep")
_LIMIT_KEYS = ("allow", "max_calls")


MCP_TOOL_PATTERN = r"^mcp__([A-Za-z0-9_-]+?)(?:__([A-Za-z0-9_.-]+))?$"
_MCP = re.compile(MCP_TOOL_PATTERN)


def mcp_tool_parts(name: str) -> tuple[str, str | None] | None:
    """`mcp__files__read` -> ("files", "read"); `mcp__files` -> ("files", None): every tool of
    the server (Claude Code's names for MCP tools); None for a name that is not an MCP tool's."""
    match = _MCP.match(name.strip())
    return None if match is None else (match.group(1), match.group(2))


def unknown_tool_message(name: str) -> str | None:
    """None when `name` is a built-in tool, else `unknown tool 'X'` with a "did you mean"."""
    if name in BUILTIN_TOOL_NAMES:
        return None
    return f"unknown tool '{name}'{did_you_mean(name, BUILTIN_TOOL_NAMES)}"


def is_python_tool_ref(target: object) -> bool:
    """True for the target of a python tool, `package.module:function`."""
    return isinstance(target, str) and _PYTHON_TOOL.match(target) is not None


def split_rule(entry: str) -> tuple[str, str | None]:
    """`Bash(git diff:*)` -> ("Bash", "git diff:*"); `Read` -> ("Read", None). `Bash(*)` and
    `Bash()` mean every command, as a bare `Bash` does (Claude Code's reading)."""
    match = _RULE.match(entry)
    if match is None:
        return entry.strip(), None
    spec = match.group(2).strip()
    return match.group(1), (None if spec in ("", "*") else spec)


def split_tool_list(text: str) -> list[str]:
    """A front matter's comma string, split on commas outside a rule's parentheses."""
    out: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    out.append(current)
    return [part.strip() for part in out if part.strip()]


def _rule_problem(entry: str) -> str | None:
    if mcp_tool_parts(entry) is not None:
        return None  # an MCP server's tool; `mcp_servers:` provides it at run time
    name, spec = split_rule(entry)
    problem = unknown_tool_message(name)
    if problem is not None:
        return problem
    if spec is not None and name not in RULE_TOOLS:
        return (
            f"'{entry}': a rule can limit {', '.join(RULE_TOOLS)}; {name} runs inside the API "
            f"or has no argument a rule could match, so grant it as plain '{name}'"
        )
    if spec is not None and name == "Bash" and ":*" in spec and not spec.endswith(":*"):
        return f"'{entry}': ':*' may only end a Bash rule (a prefix: 'Bash(git diff:*)')"
    return None


def tool_entry_problem(entry: Any) -> str | None:
    """What is wrong with one entry of a `tools:` list, or None when it is fine."""
    if isinstance(entry, str):
        return _rule_problem(entry)
    if not isinstance(entry, dict) or len(entry) != 1:
        return (
            f"a tool is a built-in name ({', '.join(BUILTIN_TOOL_NAMES)}), a rule such as "
            "'Bash(git diff:*)', {python: 'package.module:function'} or "
            "{Tool: {allow: [rules], max_calls: N}}"
        )
    ((name, value),) = entry.items()
    if name == "python":
        if not is_python_tool_ref(value):
            return f"a python tool is {{python: 'package.module:function'}}, got {value!r}"
        return None
    problem = unknown_tool_message(str(name))
    if problem is not None:
        return problem
    if not isinstance(value, dict):
        return f"'{name}': expected {{allow: [rules], max_calls: N}}, got {value!r}"
    for key in value:
        if key not in _LIMIT_KEYS:
            return f"'{name}': unknown key '{key}'{did_you_mean(str(key), _LIMIT_KEYS)}"
    allow = value.get("allow")
    if allow is not None:
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            return f"'{name}': 'allow' must be a list of rules such as '{name}(...)' or specifiers"
        for rule in allow:
            tool, spec = split_rule(rule)
            if spec is None and tool != name:  # a bare specifier: `allow: ["git diff:*"]`
                rule = f"{name}({rule})"
                tool = name
            if tool != name:
                return f"'{name}': rule '{rule}' is for {tool}, not {name}"
            problem = _rule_problem(rule)
            if problem is not None:
                return problem
    cap = value.get("max_calls")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        return f"'{name}': 'max_calls' must be a positive integer, got {cap!r}"
    return None


def entry_tool_names(entry: Any) -> list[str]:
    """The built-in tools an (already checked) entry grants: `Bash(x)` -> ["Bash"]."""
    if isinstance(entry, str):
        return [split_rule(entry)[0]]
    if isinstance(entry, dict) and len(entry) == 1:
        name = next(iter(entry))
        return [] if name == "python" else [str(name)]
    return []
