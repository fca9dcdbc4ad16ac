"""MCP servers' tools for API workers, through the `mcp` Python SDK (the `mcp` extra).

A step (or its agent, or the workflow) declares `mcp_servers:` in the shape of Claude Code's
`.mcp.json` and grants their tools by Claude Code's names: `mcp__<server>__<tool>` for one tool,
`mcp__<server>` for all of a server's tools. Claude Code workers hand the servers to Claude Code;
API workers get them here.

Each task starts the servers it names and stops them when it ends, as each Claude Code process
does: a server's state (an open browser, a scratch database) is never shared between workers,
so isolated contexts stay isolated. A server runs in the task's workspace with the environment
the SDK passes by default (HOME, PATH, LOGNAME, SHELL, TERM, USER) plus its own `env:`, so no API
key reaches it. It is the workflow author's command, like a `run:` step, but it runs outside the
bubblewrap sandbox: servers commonly need the network. Its stderr goes to a temporary file whose
tail is quoted when it fails to start.

Tool results become the text of a `tool_result`; a result the server marks `isError`, and a
protocol error, reach the model as a tool error. A server that does not start, or lacks a granted
tool, fails the task with a message naming the server, what it offers and how to fix the step.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from orchestrator.errors import TaskFailed, ToolError
from orchestrator.tool_names import mcp_tool_parts
from orchestrator.tools.base import Tool, ToolOutcome

__all__ = ["START_TIMEOUT_S", "mcp_tools"]

START_TIMEOUT_S = 60.0  # starting a server (npx may download it) and listing its tools
_STDERR_TAIL = 1500


@asynccontextmanager
async def mcp_tools(
    granted: Sequence[str],
    servers: Mapping[str, Any],
    *,
    cwd: Path,
    start_timeout_s: float = START_TIMEOUT_S,
) -> AsyncIterator[list[Tool]]:
    """Start the servers the `granted` `mcp__...` names refer to, and yield their tools as
    client tools; every server stops when the block ends."""
    wanted: dict[str, set[str] | None] = {}  # server -> tool names, None: all of them
    for name in granted:
        parts = mcp_tool_parts(name)
        if parts is None:
            continue
        server, tool = parts
        if tool is None:
            wanted[server] = None
        elif server not in wanted or wanted[server] is not None:
            wanted.setdefault(server, set()).add(tool)  # type: ignore[union-attr]
    missing = [s for s in wanted if s not in servers]
    if missing:
        declared = ", ".join(sorted(servers)) or "none"
        raise TaskFailed(
            f"tools name MCP server {', '.join(repr(s) for s in missing)}, which is not in "
            f"mcp_servers (declared: {declared}); add it to the step's, agent's or workflow's "
            "mcp_servers"
        )
    try:
        from mcp import ClientSession  # noqa: F401  (checked here: the extra may be missing)
    except ImportError:
        raise TaskFailed(
            "MCP tools for API workers need the mcp package: pip install 'orchestrate[mcp]' "
            "(or use runtime: claude-code, which runs MCP servers itself)"
        ) from None
    try:
        async with AsyncExitStack() as stack:
            tools: list[Tool] = []
            for server, names in wanted.items():
                session = await _start(stack, server, servers[server], cwd, start_timeout_s)
                tools.extend(await _server_tools(session, server, names, start_timeout_s))
            yield tools
    except BaseExceptionGroup as group:
        # The SDK's task groups wrap whatever ends the block (a TaskFailed of the conversation,
        # a Waiting, a cancellation): the engine must see the exception itself.
        leaf = _sole(group)
        if leaf is None:
            raise
        raise leaf from None


async def _start(
    stack: AsyncExitStack, server: str, config: Any, cwd: Path, timeout_s: float
) -> Any:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    if not isinstance(config, Mapping):
        raise TaskFailed(f"MCP server '{server}': expected a mapping, got {config!r}")
    kind = config.get("type", "stdio")
    if kind == "stdio" or (kind is None and "command" in config):
        params = StdioServerParameters(
            command=str(config["command"]),
            args=[str(a) for a in config.get("args", [])],
            env={str(k): str(v) for k, v in (config.get("env") or {}).items()} or None,
            cwd=str(cwd),
        )
        errlog = stack.enter_context(
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        )
        transport = stdio_client(params, errlog=errlog)
    elif kind in ("http", "streamable-http"):
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        errlog = None
        headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        client = await stack.enter_async_context(create_mcp_http_client(headers=headers or None))
        transport = streamable_http_client(str(config["url"]), http_client=client)
    else:
        raise TaskFailed(
            f"MCP server '{server}': type {kind!r} is not supported for API workers "
            "(stdio or http); runtime: claude-code supports what Claude Code supports"
        )
    try:
        # the transport and the session hold task groups for the task's whole life: only the
        # handshake runs under the timeout's cancel scope
        streams = await stack.enter_async_context(transport)
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        with anyio.fail_after(timeout_s):
            await session.initialize()
    except TimeoutError:
        raise TaskFailed(
            f"MCP server '{server}' did not start within {timeout_s:.0f}s{_tail(errlog)}"
        ) from None
    except Exception as exc:  # a missing command, a crash at start, a protocol mismatch
        raise TaskFailed(
            f"MCP server '{server}' failed to start: {type(exc).__name__}: {exc}{_tail(errlog)}"
        ) from None
    return session


async def _server_tools(
    session: Any, server: str, names: set[str] | None, timeout_s: float
) -> list[Tool]:
    with anyio.fail_after(timeout_s):
        listed = (await session.list_tools()).tools
    offered = {tool.name: tool for tool in listed}
    unknown = sorted(names - set(offered)) if names is not None else []
    if unknown:
        shown = ", ".join(f"mcp__{server}__{n}" for n in sorted(offered)) or "none"
        raise TaskFailed(
            f"MCP server '{server}' has no tool {', '.join(repr(n) for n in unknown)}; "
            f"it offers: {shown}"
        )
    chosen = [offered[n] for n in sorted(offered) if names is None or n in names]
    return [_tool(session, server, spec) for spec in chosen]


def _tool(session: Any, server: str, spec: Any) -> Tool:
    remote = str(spec.name)

    async def handler(arguments: dict[str, Any]) -> ToolOutcome:
        try:
            result = await session.call_tool(remote, arguments)
        except Exception as exc:  # the server's protocol error, or a server that died
            raise ToolError(f"MCP server '{server}': {type(exc).__name__}: {exc}") from None
        return ToolOutcome(_text(result), is_error=bool(getattr(result, "is_error", False)))

    schema = spec.input_schema if isinstance(spec.input_schema, dict) else {"type": "object"}
    return Tool(
        name=f"mcp__{server}__{remote}",
        description=str(spec.description or f"{remote} (MCP server {server})"),
        input_schema=schema,
        handler=handler,
    )


def _text(result: Any) -> str:
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(block.text))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}]")
        else:
            dump = block.model_dump(mode="json") if hasattr(block, "model_dump") else block
            parts.append(json.dumps(dump, default=str))
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, default=str))
    return "\n".join(parts)


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception a group carries (cancellations aside, when something else is there)."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        elif not any(exc is seen for seen in leaves):
            leaves.append(exc)
    cancelled = anyio.get_cancelled_exc_class()
    real = [e for e in leaves if not isinstance(e, cancelled)] or leaves
    return real[0] if len(real) == 1 else None


def _tail(errlog: Any) -> str:
    if errlog is None:
        return ""
    try:
        errlog.flush()
        errlog.seek(max(0, os.fstat(errlog.fileno()).st_size - _STDERR_TAIL))
        text = errlog.read().strip()
    except (OSError, ValueError):
        return ""
    return f"; its stderr ends: {text}" if text else ""
