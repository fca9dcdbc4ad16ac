"""Agent files in Claude Code's subagent format load unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.workflow import find_agents, load_agent_file, load_workflow

REPO = Path(__file__).resolve().parents[2]


def _agent(tmp_path: Path, text: str | bytes, name: str = "a.md") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def test_claude_code_example_with_quoted_colons_and_comma_tools(tmp_path: Path) -> None:
    path = _agent(
        tmp_path,
        '---\nname: code-reviewer\ndescription: "Expert reviewer: use PROACTIVELY after edits."\n'
        "tools: Read, Grep, Glob, Bash\nmodel: inherit\n---\n\nYou are a senior reviewer.\n",
    )
    agent, warnings = load_agent_file(path)
    assert agent.name == "code-reviewer"
    assert agent.description == "Expert reviewer: use PROACTIVELY after edits."
    assert agent.tools == ["Read", "Grep", "Glob", "Bash"]
    assert agent.model is None  # inherit
    assert agent.system == "You are a senior reviewer."
    assert warnings == []


def test_tools_as_a_list_multiline_description_and_model_alias(tmp_path: Path) -> None:
    path = _agent(
        tmp_path,
        "---\nname: writer\ndescription: >\n  Writes prose.\n  Use for reports.\ntools:\n"
        "  - Read\n  - Write\nmodel: opus\nmax_tokens: 4096\n---\nWrite well.\n",
    )
    agent, _ = load_agent_file(path)
    assert agent.description == "Writes prose. Use for reports."
    assert agent.tools == ["Read", "Write"]
    assert (agent.model, agent.max_tokens) == ("opus", 4096)


def test_missing_tools_means_unrestricted(tmp_path: Path) -> None:
    agent, _ = load_agent_file(_agent(tmp_path, "---\nname: x\ndescription: d\n---\nbody\n"))
    assert agent.tools is None


def test_crlf_and_bom(tmp_path: Path) -> None:
    raw = (
        "\ufeff---\r\nname: crlf\r\ndescription: d\r\ntools: Read\r\n---\r\n"
        "Line one.\r\nLine two.\r\n"
    )
    agent, _ = load_agent_file(_agent(tmp_path, raw.encode("utf-8")))
    assert agent.name == "crlf" and agent.tools == ["Read"]
    assert agent.system == "Line one.\nLine two."


def test_unknown_front_matter_keys_are_kept_and_warned_once(tmp_path: Path) -> None:
    path = _agent(
        tmp_path,
        "---\nname: x\ndescription: d\ncolor: blue\npermissionMode: acceptEdits\n---\nbody\n",
    )
    agent, warnings = load_agent_file(path)
    assert agent.extra == {"color": "blue", "permissionMode": "acceptEdits"}
    assert len(warnings) == 1
    assert warnings[0].severity == "warning"
    assert "color, permissionMode" in warnings[0].message
    assert warnings[0].line == 4


def test_unknown_tools_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = _agent(
        tmp_path,
        "---\nname: x\ndescription: d\ntools: Read, TodoWrite, mcp__github__search, Task\n---\nb\n",
    )
    agent, warnings = load_agent_file(path)
    # MCP tools are kept: the agent's (or workflow's) mcp_servers provide them at run time;
    # Task delegates (issue 16): it is kept too
    assert agent.tools == ["Read", "mcp__github__search", "Task"]
    assert any("ignored: TodoWrite" in w.message for w in warnings)
    assert not any("mcp__github__search" in w.message or "Task" in w.message for w in warnings)


def test_unquoted_description_with_colons_is_read_leniently(tmp_path: Path) -> None:
    path = _agent(
        tmp_path,
        "---\nname: helper\ndescription: Use this agent when: the user asks. Example: yes\n"
        "model: sonnet\n---\nbody\n",
    )
    agent, warnings = load_agent_file(path)
    assert agent.description == "Use this agent when: the user asks. Example: yes"
    assert agent.model == "sonnet"
    assert any("not valid YAML" in w.message for w in warnings)


@pytest.mark.parametrize(
    ("front", "line", "col", "problem"),
    [
        ('tools: "Read, Grep\nmodel: haiku\n', 3, 8, "a quoted value that starts here"),
        ("description: 'it is\ntools: Read\n", 3, 14, "a quoted value that starts here"),
        ("tools: [Read, Grep\nmodel: haiku\n", 3, 8, "a '[' list that starts here"),
    ],
)
def test_a_quote_or_list_never_closed_is_an_error_at_its_line(
    tmp_path: Path, front: str, line: int, col: int, problem: str
) -> None:
    """Read as loose lines, such front matter would run on: `tools: "Read, Grep` grants Grep
    alone (the agent silently loses a tool), so it is refused rather than guessed."""
    path = _agent(tmp_path, f"---\nname: x\n{front}---\nbody\n")
    with pytest.raises(SpecError) as info:
        load_agent_file(path)
    [found] = info.value.diagnostics
    assert (found.file, found.line, found.col) == (str(path), line, col)
    assert found.message.startswith(f"invalid front matter: {problem} is never closed")


def test_broken_front_matter_fails_the_workflow_that_names_the_agent(
    write: Callable[..., Path],
) -> None:
    agent = write('---\nname: helper\ntools: "Read, Grep\n---\nbody\n', "agents/helper.md")
    path = write("version: 1\nsteps:\n  - id: a\n    agent: helper\n    prompt: hi\n")
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    assert [(d.file, d.line) for d in info.value.diagnostics] == [(str(agent), 3)]


def test_bad_max_tokens_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = _agent(tmp_path, "---\nname: x\nmax_tokens: lots\n---\nbody\n")
    with pytest.raises(SpecError) as info:
        load_agent_file(path)
    assert info.value.diagnostics[0].line == 3
    assert "positive integer" in info.value.diagnostics[0].message


def test_no_front_matter_is_a_warning_and_the_file_name_names_it(tmp_path: Path) -> None:
    agent, warnings = load_agent_file(_agent(tmp_path, "Just a prompt.\n", "plain.md"))
    assert agent.name == "plain" and agent.system == "Just a prompt."
    assert warnings and warnings[0].severity == "warning"


def test_shipped_agents_load_without_warnings() -> None:
    agents = find_agents([REPO / "agents"])
    assert {"planner", "researcher", "writer", "critic", "coder", "reviewer"} <= set(agents)
    for agent in agents.values():
        _, warnings = load_agent_file(agent.path or "")
        assert warnings == [], warnings
        assert agent.description and agent.system


def test_workflow_warns_once_per_agent_file_and_inline_agents_win(
    write: Callable[..., Path],
) -> None:
    write("---\nname: helper\ndescription: file\ncolor: red\n---\nfrom file\n", "agents/helper.md")
    write("---\nname: other\ndescription: file\n---\nother\n", "agents/other.md")
    path = write(
        """
        version: 1
        agents:
          other: {description: inline, system: inline body}
        steps:
          - id: a
            agent: helper
            prompt: one
          - id: b
            agent: helper
            prompt: two
          - id: c
            agent: other
            prompt: three
        """
    )
    workflow = load_workflow(path)
    assert len([w for w in workflow.warnings if "color" in w.message]) == 1
    assert workflow.resolve_agent("helper").system == "from file"
    assert workflow.resolve_agent("other").system == "inline body"


def test_agent_found_by_front_matter_name(write: Callable[..., Path]) -> None:
    write("---\nname: code-reviewer\ndescription: d\n---\nreview\n", ".claude/agents/review.md")
    path = write("version: 1\nsteps:\n  - id: a\n    agent: code-reviewer\n    prompt: hi\n")
    assert load_workflow(path).resolve_agent("code-reviewer").system == "review"


def test_broken_agent_file_reports_its_own_error(write: Callable[..., Path]) -> None:
    write("---\nname: bad\nmax_tokens: -5\n---\nx\n", "agents/bad.md")
    path = write("version: 1\nsteps:\n  - id: a\n    agent: bad\n    prompt: hi\n")
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    assert [d.file.endswith("bad.md") for d in info.value.diagnostics] == [True]
