from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from orchestrator.contracts import BUILTIN_TOOL_NAMES, CLIENT_TOOLS, StateAccess
from orchestrator.errors import UsageError
from orchestrator.tools import ToolOutcome, Toolset, build_toolset


def test_api_tools_shapes_with_server_tools(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(
        ["Read", "WebSearch", "WebFetch", "state_get"], workspace=workspace, state=state
    )
    tools = toolset.api_tools()
    client = [t for t in tools if "input_schema" in t]
    server = [t for t in tools if "type" in t]
    assert [t["name"] for t in client] == ["Read", "state_get"]
    for tool in client:
        assert set(tool) == {"name", "description", "input_schema"}
        assert tool["description"]
        assert tool["input_schema"]["type"] == "object"
    assert server == [
        {"type": "web_search_20260318", "name": "web_search"},
        {"type": "web_fetch_20260318", "name": "web_fetch"},
    ]
    assert toolset.names == ["Read", "state_get", "web_search", "web_fetch"]


def test_server_tools_are_not_client_tools(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(["WebSearch"], workspace=workspace, state=state)
    assert not toolset.is_client_tool("web_search")
    assert not toolset.is_client_tool("WebSearch")


async def test_executing_a_server_tool_is_an_error(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(["WebFetch"], workspace=workspace, state=state)
    out = await toolset.execute("web_fetch", {"url": "https://example.com"})
    assert out.is_error and "server tool" in out.content


def test_every_input_schema_is_valid_json_schema(toolset: Toolset) -> None:
    for tool in toolset.api_tools():
        Draft202012Validator.check_schema(tool["input_schema"])
        json.dumps(tool)  # serialisable as a request body


def test_api_tools_returns_copies(toolset: Toolset) -> None:
    first = toolset.api_tools()
    first[0]["cache_control"] = {"type": "ephemeral"}
    first[0]["input_schema"]["properties"].clear()
    second = toolset.api_tools()
    assert "cache_control" not in second[0]
    assert second[0]["input_schema"]["properties"]


def test_is_client_tool(toolset: Toolset) -> None:
    for name in CLIENT_TOOLS:
        assert toolset.is_client_tool(name)
    assert not toolset.is_client_tool("Nope")


@pytest.mark.parametrize(
    ("name", "suggestion"), [("Reed", "Read"), ("read", "Read"), ("state_gte", "state_get")]
)
def test_unknown_tool_name_suggests(
    workspace: Path, state: StateAccess, name: str, suggestion: str
) -> None:
    with pytest.raises(UsageError, match=f"unknown tool '{name}' \\(did you mean '{suggestion}'"):
        build_toolset([name], workspace=workspace, state=state)


def test_unknown_tool_without_suggestion_lists_builtins(
    workspace: Path, state: StateAccess
) -> None:
    with pytest.raises(UsageError) as info:
        build_toolset(["TodoWrite"], workspace=workspace, state=state)
    assert "unknown tool 'TodoWrite'" in str(info.value)
    assert all(name in str(info.value) for name in BUILTIN_TOOL_NAMES)


def test_bad_entries_and_workspace(workspace: Path, state: StateAccess) -> None:
    with pytest.raises(UsageError, match="neither a tool name"):
        build_toolset([{"module": "x:y"}], workspace=workspace, state=state)
    with pytest.raises(UsageError, match="not a directory"):
        build_toolset(["Read"], workspace=workspace / "missing", state=state)


def test_duplicates_are_granted_once(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(["Read", " Read", "Read"], workspace=workspace, state=state)
    assert [tool["name"] for tool in toolset.api_tools()] == ["Read"]


async def test_unknown_tool_at_execution_is_an_error(toolset: Toolset) -> None:
    out = await toolset.execute("Reed", {"file_path": "x"})
    assert out.is_error
    assert "unknown tool 'Reed'" in out.content and "did you mean 'Read'" in out.content


async def test_non_object_arguments_are_an_error(toolset: Toolset) -> None:
    out = await toolset.execute("Read", ["a.txt"])  # type: ignore[arg-type]
    assert out.is_error and "JSON object" in out.content


def test_tool_outcome_defaults() -> None:
    assert ToolOutcome("x") == ToolOutcome(content="x", is_error=False)
