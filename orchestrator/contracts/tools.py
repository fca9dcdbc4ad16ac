"""The names of the built-in tools (Claude Code's names, so subagent files work unchanged).

The workflow loader checks `tools:` against these, the toolset builds them, and the worker sends
the server tools to the API as they are.
"""

from __future__ import annotations

CLIENT_TOOLS = (
    "Read",
    "Write",
    "Edit",
    "Glob",
    "Grep",
    "Bash",
    "state_get",
    "state_set",
    "state_list",
)
SERVER_TOOLS = ("WebSearch", "WebFetch")  # passed to the API as its server tools
# The delegation tool, under Claude Code's old and new names: the engine runs each call as a child
# task (orchestrator/engine/delegation.py); the worker hands such calls to `WorkerContext.delegate`.
DELEGATE_TOOLS = ("Task", "Agent")
BUILTIN_TOOL_NAMES = CLIENT_TOOLS + SERVER_TOOLS + DELEGATE_TOOLS
