"""Claude Code subagent files that grant the delegation tool load as they are, under either name,
and the tool the model sees lists the agents it may start."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.tools import build_toolset
from orchestrator.workflow import load_workflow
from orchestrator.workflow.agents import load_agent_file


@pytest.mark.parametrize("tool", ["Task", "Agent"])
def test_an_agent_file_granting_the_tool_loads_without_a_warning(tmp_path: Path, tool: str) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "lead.md").write_text(
        f"---\nname: lead\ndescription: Leads.\ntools: Read, {tool}\n---\nYou lead.\n"
    )
    (agents / "helper.md").write_text("---\nname: helper\ndescription: Helps.\n---\nYou help.\n")
    agent, warnings = load_agent_file(agents / "lead.md")
    assert agent.tools == ["Read", tool]
    assert warnings == []
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: w\nsteps:\n  - id: lead\n    agent: lead\n    prompt: Go.\n"
    )
    workflow = load_workflow(tmp_path / "wf.yaml", settings=load_settings(environ={}, cwd=tmp_path))
    assert not [w for w in workflow.warnings if "not available" in w.message]


def test_the_tool_definition_lists_the_agents(tmp_path: Path) -> None:
    class NoState:
        async def get(self, key: str) -> None: ...
        async def set(self, key: str, value: object) -> None: ...
        async def list(self, prefix: str = "") -> dict[str, object]:
            return {}

    toolset = build_toolset(
        ["Task"],
        workspace=tmp_path,
        state=NoState(),
        agents={"researcher": "Researches one question.", "citer": None},
    )
    (param,) = toolset.api_tools()
    assert param["name"] == "Task"
    assert param["input_schema"]["required"] == ["description", "prompt", "subagent_type"]
    assert param["input_schema"]["properties"]["subagent_type"]["enum"] == ["citer", "researcher"]
    assert "- researcher: Researches one question." in param["description"]
