"""The tools a worker may be granted, with Claude Code's names and argument shapes.

`build_toolset(tools, workspace=..., state=...)` resolves a step's `tools:` list into a `Toolset`:
`api_tools()` is the Messages API `tools` parameter, `execute(name, input)` runs a client tool and
always returns a `ToolOutcome` (errors included, never raised). File tools are confined to the
workspace; Bash is granted only when named; WebSearch/WebFetch are declared as API server tools.
"""

from orchestrator.tools.base import Tool, ToolOutcome
from orchestrator.tools.toolset import SERVER_TOOL_PARAMS, Toolset, build_toolset

__all__ = ["SERVER_TOOL_PARAMS", "Tool", "ToolOutcome", "Toolset", "build_toolset"]
