"""A read-only issue tracker as a stdio MCP server: the server of workflows/mcp_tools.yaml.

Tools: `search_issues(label, state)` lists matching issues, one a line; `get_issue(number)` gives
one issue's text, or a tool error for a number the tracker does not have. The issues are a fixed
list below, so a run is repeatable.

It uses only the standard library, so it runs under any `python3` whichever environment
orchestrate is installed in. It speaks the subset of MCP a tools-only server needs: JSON-RPC 2.0,
one message a line on stdin/stdout (the stdio transport), answering `initialize` (with the
protocol version the client asked for), `ping`, `tools/list` and `tools/call`, and ignoring
notifications. A server with more to do (resources, prompts, progress) is better written with the
`mcp` SDK's `MCPServer` (tests/tools/test_mcp.py has one) or installed from a registry.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ISSUES = [
    {"number": 101, "label": "bug", "state": "closed", "title": "Resume re-ran finished tasks"},
    {"number": 102, "label": "bug", "state": "closed", "title": "Crash on an empty fan-out list"},
    {"number": 103, "label": "bug", "state": "open", "title": "Progress bar flickers on resize"},
    {"number": 104, "label": "feature", "state": "closed", "title": "Per-step cost budgets"},
    {"number": 105, "label": "feature", "state": "closed", "title": "MCP tools for API workers"},
    {"number": 106, "label": "feature", "state": "open", "title": "A web view of live runs"},
    {"number": 107, "label": "docs", "state": "closed", "title": "Explain resume in the README"},
]

TOOLS = [
    {
        "name": "search_issues",
        "description": "List the tracker's issues with a label and a state, one a line.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["bug", "feature", "docs"]},
                "state": {"type": "string", "enum": ["open", "closed"]},
            },
            "required": ["label", "state"],
        },
    },
    {
        "name": "get_issue",
        "description": "Read one issue by its number.",
        "inputSchema": {
            "type": "object",
            "properties": {"number": {"type": "integer", "minimum": 101, "maximum": 107}},
            "required": ["number"],
        },
    },
]


def line(issue: dict[str, Any]) -> str:
    return f"#{issue['number']} [{issue['label']}, {issue['state']}] {issue['title']}"


def call(name: str, args: dict[str, Any]) -> tuple[str, bool]:
    """A tool's text and whether it is an error (which the model reads as a tool error)."""
    if name == "search_issues":
        wanted = (args.get("label"), args.get("state"))
        found = [line(i) for i in ISSUES if (i["label"], i["state"]) == wanted]
        return "\n".join(found) or "no matching issues", False
    if name == "get_issue":
        for issue in ISSUES:
            if issue["number"] == args.get("number"):
                return line(issue), False
        return f"no issue #{args.get('number')}", True
    return f"unknown tool {name!r}", True


def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "tracker", "version": "1.0"},
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        text, is_error = call(str(params.get("name")), params.get("arguments") or {})
        return {"content": [{"type": "text", "text": text}], "isError": is_error}
    raise LookupError(method)


def main() -> None:
    for raw in sys.stdin:
        if not raw.strip():
            continue
        message = json.loads(raw)
        if "id" not in message:  # a notification (`notifications/initialized`): no reply
            continue
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        try:
            reply["result"] = answer(str(message.get("method")), message.get("params") or {})
        except LookupError as unknown:
            reply["error"] = {"code": -32601, "message": f"method not found: {unknown}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
