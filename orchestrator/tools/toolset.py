"""The set of tools granted to one worker, and the only way the worker runs them.

`build_toolset` turns a step's `tools:` list into a `Toolset`; unknown names are a `UsageError`
(bad input, exit 2) found before any model call. `Toolset.execute` never raises for a tool-level
failure: unknown tool, arguments that break the schema, escapes from the workspace, missing files,
timeouts and exceptions in Python tools all come back as `ToolOutcome(is_error=True)` with a
message the model can act on. Bash is granted only when named. Entries may be Claude Code
permission rules (`Bash(git diff:*)`, `Read(src/**)`) or `{Tool: {allow: [...], max_calls: N}}`:
the tool is granted, and every call is checked against its rules and cap first
(`permissions.py`); a call outside them is a tool error and never runs.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from orchestrator.contracts import BUILTIN_TOOL_NAMES, DELEGATE_TOOLS, SERVER_TOOLS, StateAccess
from orchestrator.environment import SandboxPolicy, parse_sandbox
from orchestrator.errors import ToolError, UsageError
from orchestrator.tool_names import (
    mcp_tool_parts,
    split_rule,
    tool_entry_problem,
    unknown_tool_message,
)
from orchestrator.tools.base import Tool, ToolOutcome, input_problems, truncate
from orchestrator.tools.bash import bash_tool
from orchestrator.tools.delegate import delegate_tool
from orchestrator.tools.files import file_tools
from orchestrator.tools.permissions import Permissions
from orchestrator.tools.python import python_tool
from orchestrator.tools.state import state_tools
from orchestrator.tools.workspace import Workspace

# Server tools run inside the API; the worker only declares them. The newest non-beta versions
# in the anthropic SDK this project pins.
SERVER_TOOL_PARAMS: dict[str, dict[str, Any]] = {
    "WebSearch": {"type": "web_search_20260318", "name": "web_search"},
    "WebFetch": {"type": "web_fetch_20260318", "name": "web_fetch"},
}
assert set(SERVER_TOOL_PARAMS) == set(SERVER_TOOLS)


class Toolset:
    """Client tools the worker runs, plus server tools declared to the API."""

    def __init__(
        self,
        client_tools: Sequence[Tool],
        server_tools: Sequence[dict[str, Any]] = (),
        *,
        max_output_chars: int = 30000,
        permissions: Permissions | None = None,
    ) -> None:
        self._permissions = permissions
        self._tools = {tool.name: tool for tool in client_tools}
        self._validators = {
            tool.name: Draft202012Validator(tool.input_schema) for tool in client_tools
        }
        self._server = [dict(param) for param in server_tools]
        self._max_output_chars = max_output_chars

    @property
    def names(self) -> list[str]:
        """Every tool name as the model sees it (client tools, then server tools)."""
        return [*self._tools, *(param["name"] for param in self._server)]

    def api_tools(self) -> list[dict[str, Any]]:
        """The Messages API `tools` parameter (fresh copies: callers may add cache_control)."""
        params = [tool.api_param() for tool in self._tools.values()] + self._server
        return copy.deepcopy(params)

    def is_client_tool(self, name: str) -> bool:
        return name in self._tools

    async def execute(self, name: str, tool_input: dict[str, Any]) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None:
            return ToolOutcome(self._unknown_tool_message(name), is_error=True)
        if not isinstance(tool_input, dict):
            return ToolOutcome(
                f"{name}: arguments must be a JSON object, got {type(tool_input).__name__}",
                is_error=True,
            )
        problems = input_problems(self._validators[name], tool_input)
        if problems:
            return ToolOutcome(f"{name}: invalid arguments: {'; '.join(problems)}", is_error=True)
        refused = self._permissions.check(name, tool_input) if self._permissions else None
        if refused is not None:
            return ToolOutcome(f"{name}: {refused}", is_error=True)
        try:
            result = await tool.handler(tool_input)
        except ToolError as exc:
            outcome = ToolOutcome(f"{name}: {exc.message}", is_error=True)
        except Exception as exc:  # a tool bug must not kill the worker; the model sees it
            outcome = ToolOutcome(f"{name} failed: {type(exc).__name__}: {exc}", is_error=True)
        else:
            outcome = result if isinstance(result, ToolOutcome) else ToolOutcome(result)
        outcome.content = truncate(outcome.content, self._max_output_chars)
        return outcome

    def _unknown_tool_message(self, name: str) -> str:
        if any(param["name"] == name for param in self._server):
            return f"'{name}' is a server tool: the API runs it, not the worker"
        available = ", ".join(self.names) or "none"
        hint = _did_you_mean(name, list(self._tools))
        return f"unknown tool '{name}'{hint}; tools granted to this worker: {available}"


def build_toolset(
    tools: Sequence[str | Mapping[str, Any]],
    *,
    workspace: Path,
    state: StateAccess,
    max_output_chars: int = 30000,
    sandbox: SandboxPolicy | Mapping[str, Any] | None = None,
    mcp: Sequence[Tool] = (),
    agents: Mapping[str, str | None] | None = None,
) -> Toolset:
    """The tools a step grants: built-in names, permission rules, `{Tool: {allow, max_calls}}`
    limits, or `{"python": "pkg.mod:fn"}` entries. `mcp__...` entries name MCP servers' tools:
    the caller starts the servers (`orchestrator.tools.mcp.mcp_tools`) and passes them as `mcp`.

    `sandbox`: the step's resolved `sandbox:` setting (a `SandboxPolicy` or its dict, as a
    `TaskSpec` carries it); Bash runs under it. Default: `auto`. `agents`: the names (and
    descriptions) a `Task`/`Agent` call may start, shown in that tool's definition."""
    try:
        policy = parse_sandbox(sandbox)
    except ValueError as exc:
        raise UsageError(f"sandbox: {exc}") from None
    root = Path(os.path.realpath(workspace))
    if not root.is_dir():
        raise UsageError(f"workspace '{workspace}' is not a directory")
    ws = Workspace(root)
    builtins: dict[str, Tool] = {}
    client: dict[str, Tool] = {}
    server: dict[str, dict[str, Any]] = {}
    python_refs: dict[str, str] = {}

    def builtin(name: str) -> Tool:
        if not builtins:
            builtins.update(file_tools(ws, max_output_chars))
            builtins.update(state_tools(state))
            builtins["Bash"] = bash_tool(str(root), max_output_chars, policy)
        return builtins[name]

    for entry in tools:
        if isinstance(entry, str) and mcp_tool_parts(entry) is not None:
            continue  # provided by `mcp`
        if isinstance(entry, str) or (
            isinstance(entry, Mapping)
            and len(entry) == 1
            and next(iter(entry)) in BUILTIN_TOOL_NAMES
        ):
            problem = tool_entry_problem(dict(entry) if isinstance(entry, Mapping) else entry)
            if problem is not None and isinstance(entry, str) and split_rule(entry)[1] is None:
                problem = None  # a plain name: reported below with the list of built-ins
            if problem is not None:
                raise UsageError(f"tool entry {entry!r}: {problem}")
            name = split_rule(entry)[0] if isinstance(entry, str) else str(next(iter(entry)))
            if name in SERVER_TOOL_PARAMS:
                server[name] = SERVER_TOOL_PARAMS[name]
            elif name in DELEGATE_TOOLS:
                client[name] = delegate_tool(name, agents or {})
            elif name in BUILTIN_TOOL_NAMES:
                client[name] = builtin(name)
            else:
                known = ", ".join(BUILTIN_TOOL_NAMES)
                raise UsageError(
                    f"{unknown_tool_message(name)}; built-in tools are {known}, "
                    "or use {python: 'package.module:function'}"
                )
        elif isinstance(entry, Mapping) and set(entry) == {"python"}:
            ref = str(entry["python"])
            tool = python_tool(ref)
            if tool.name in BUILTIN_TOOL_NAMES:
                raise UsageError(
                    f"python tool '{ref}': its name '{tool.name}' is a built-in tool's name"
                )
            previous = python_refs.get(tool.name)
            if previous is not None and previous != ref:
                raise UsageError(
                    f"python tools '{previous}' and '{ref}' would both be named '{tool.name}'"
                )
            python_refs[tool.name] = ref
            client[tool.name] = tool
        else:
            raise UsageError(
                f"tool entry {entry!r} is neither a tool name "
                "nor {python: 'package.module:function'}"
            )
    for tool in mcp:
        client[tool.name] = tool
    return Toolset(
        list(client.values()),
        list(server.values()),
        max_output_chars=max_output_chars,
        permissions=Permissions(tools, root),
    )


def _did_you_mean(name: str, candidates: list[str]) -> str:
    by_lower = {c.lower(): c for c in candidates}
    if name.lower() in by_lower:
        return f" (did you mean '{by_lower[name.lower()]}'?)"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
