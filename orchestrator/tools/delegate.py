"""The delegation tool, `Task` (Claude Code's older name) and `Agent` (its newer one).

Claude Code's input shape: `description` (a few words for the person watching), `prompt` (the
child's whole task: it sees nothing else of the parent's conversation), `subagent_type` (the
name of an agent) and an optional `model` (sonnet, opus or haiku; the agent's own otherwise).
The tool is declared here; the worker hands each call to `WorkerContext.delegate`, which runs it
as a child task of the run and answers with the child's final text. With no engine to hand it
to (a worker run on its own), the call is an error the model reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.contracts import DELEGATE_TOOLS
from orchestrator.errors import ToolError
from orchestrator.tools.base import Tool, object_schema

__all__ = ["DELEGATE_TOOLS", "delegate_tool"]

MODEL_CHOICES = ("sonnet", "opus", "haiku")  # Claude Code's; aliases in configs/default.yaml
NO_ENGINE = "this worker runs outside an engine, so it cannot start other agents"

_DESCRIPTION = (
    "Start another agent on a self-contained task and get its final answer back. The agent "
    "starts with a fresh conversation: put everything it needs in `prompt`. Several calls in one "
    "turn run at the same time. Use it to split work that parts can do independently."
)


def _schema(agents: Mapping[str, str | None]) -> dict[str, Any]:
    kind: dict[str, Any] = {"type": "string", "description": "The agent to start."}
    if agents:
        kind["enum"] = sorted(agents)
    return object_schema(
        {
            "description": {"type": "string", "description": "A short (3-5 word) title."},
            "prompt": {"type": "string", "description": "The whole task for the agent."},
            "subagent_type": kind,
            "model": {
                "enum": list(MODEL_CHOICES),
                "description": "The agent's model, if not its own (optional).",
            },
        },
        ["description", "prompt", "subagent_type"],
    )


def describe_agents(agents: Mapping[str, str | None]) -> str:
    """`name: description` lines, as the tool's description and its errors list them."""
    if not agents:
        return "no agents are defined"
    return "\n".join(
        f"- {name}: {desc}" if desc else f"- {name}" for name, desc in sorted(agents.items())
    )


def delegate_tool(name: str, agents: Mapping[str, str | None]) -> Tool:
    """The `Task` or `Agent` tool, listing `agents` (the names `subagent_type` may take)."""
    assert name in DELEGATE_TOOLS

    async def outside_an_engine(tool_input: dict[str, Any]) -> str:
        raise ToolError(NO_ENGINE)

    description = f"{_DESCRIPTION}\n\nAgents available:\n{describe_agents(agents)}"
    return Tool(name, description, _schema(agents), outside_an_engine)
