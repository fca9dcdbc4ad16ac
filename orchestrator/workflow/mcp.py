"""`mcp_servers:`: MCP servers by name, in the shape of Claude Code's `.mcp.json` `mcpServers`.

A server is either a command (`command`, optional `args` list and `env` mapping; `type: stdio`
may be written) or a remote one (`type: http` or `sse`, `url`, optional `headers`). The same
shape is accepted on a workflow (every agent step gets those servers), an agent (inline or front
matter) and a step; names meet by precedence step > agent > workflow. Values are passed to Claude
Code as written (it expands `${VAR}` from its own environment, which holds no secret of this one).
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.names import did_you_mean

__all__ = ["mcp_problems", "merge_servers"]

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_COMMAND_KEYS = ("type", "command", "args", "env")
_REMOTE_KEYS = ("type", "url", "headers")
_TYPES = ("stdio", "http", "sse")


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def mcp_problems(value: Any) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with an `mcp_servers` value: (path below the key, message) pairs."""
    if not isinstance(value, dict):
        return [((), "must be a mapping of server name -> {command, args, env} or {type, url}")]
    if "mcpServers" in value:
        return [(("mcpServers",), "write the servers themselves here, without 'mcpServers:'")]
    problems: list[tuple[tuple[str, ...], str]] = []
    for name, server in value.items():
        at = (str(name),)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append((at, f"server name {name!r} must be letters, digits, '-' or '_'"))
            continue
        if not isinstance(server, dict):
            problems.append((at, f"server '{name}' must be a mapping (command, args, env)"))
            continue
        kind = server.get("type", "stdio" if "command" in server else None)
        if kind not in _TYPES:
            hint = did_you_mean(kind, _TYPES) if isinstance(kind, str) else ""
            problems.append(
                (at, f"server '{name}' needs a 'command', or 'type: http|sse' and a 'url'{hint}")
            )
            continue
        allowed = _COMMAND_KEYS if kind == "stdio" else _REMOTE_KEYS
        for key in server:
            if key not in allowed:
                problems.append(
                    (
                        (*at, key),
                        f"server '{name}': unknown key '{key}'{did_you_mean(key, allowed)}",
                    )
                )
        if kind == "stdio":
            if not isinstance(server.get("command"), str) or not server["command"].strip():
                problems.append((at, f"server '{name}': 'command' must be a non-empty string"))
            args = server.get("args", [])
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                problems.append(
                    ((*at, "args"), f"server '{name}': 'args' must be a list of strings")
                )
            if "env" in server and not _strings(server["env"]):
                problems.append(((*at, "env"), f"server '{name}': 'env' must map names to strings"))
        else:
            if not isinstance(server.get("url"), str) or not server["url"].strip():
                problems.append((at, f"server '{name}': 'url' must be a non-empty string"))
            if "headers" in server and not _strings(server["headers"]):
                problems.append(
                    ((*at, "headers"), f"server '{name}': 'headers' must map names to strings")
                )
    return problems


def merge_servers(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Servers from the widest layer to the narrowest; a later layer's name wins."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer or {})
    return out
