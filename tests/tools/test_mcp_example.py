"""workflows/mcp_tools.yaml as shipped, through the CLI on the simulator: each worker starts the
tracker server beside the workflow (workflows/tracker_server.py, a stdio MCP server), calls its
tools with the arguments the model chose, and the model reads the server's answers.

The example and the agents run from a copy under the test's folder, so its `workspace: .` is the
copy, never the source tree.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

pytest.importorskip("mcp")

REPO = Path(__file__).resolve().parents[2]
ISSUE_LINE = re.compile(r"^#(\d+) \[(bug|feature|docs), (open|closed)\] \S")


def test_each_worker_reads_the_tracker_through_its_mcp_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "workflows", tmp_path / "workflows")
    shutil.copytree(REPO / "agents", tmp_path / "agents")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)
    runner = CliRunner()
    ran = runner.invoke(
        app,
        ["run", "workflows/mcp_tools.yaml", "--simulate", "-q", "-o", "out.json"],
        env={"COLUMNS": "200"},
    )
    assert ran.exit_code == 0, ran.stderr
    run_id = ran.stderr.splitlines()[0].split()[1]
    assert json.loads((tmp_path / "out.json").read_text())["notes"]

    calls: dict[str, int] = {}
    for index in range(3):  # one worker per default label
        shown = runner.invoke(app, ["runs", "transcript", run_id, f"changes[{index}]", "--json"])
        assert shown.exit_code == 0, shown.stderr
        transcript = json.loads(shown.stdout)
        assert transcript["tools"] == ["mcp__tracker__get_issue", "mcp__tracker__search_issues"]
        for turn in transcript["turns"]:
            for call in turn["tool_calls"]:
                calls[call["name"]] = calls.get(call["name"], 0) + 1
                lines = str(call["result"]).splitlines()
                assert call["is_error"] is False, call
                if call["name"] == "mcp__tracker__get_issue":
                    # the number the model asked for reached the server, its issue came back
                    (issue,) = lines
                    match = ISSUE_LINE.match(issue)
                    assert match and int(match.group(1)) == call["input"]["number"], issue
                else:
                    wanted = (call["input"]["label"], call["input"]["state"])
                    assert lines == ["no matching issues"] or all(
                        (m := ISSUE_LINE.match(line)) and m.groups()[1:] == wanted for line in lines
                    ), lines
    # every worker called both tools once (the simulator calls the tools a prompt names)
    assert calls == {"mcp__tracker__search_issues": 3, "mcp__tracker__get_issue": 3}
    # nothing was written into the workspace (the example's folder): no step has a file tool
    assert sorted(p.name for p in (REPO / "workflows").iterdir()) == sorted(
        p.name for p in (tmp_path / "workflows").iterdir()
    )
