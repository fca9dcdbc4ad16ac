"""The history shows who started whom: `runs tasks` puts each agent under the task that started
it, `runs show` draws the tree, and `runs transcript RUN 'lead/researcher[1]'` opens one child."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import CliRunner

from orchestrator.cli import app
from tests.delegation.conftest import AGENTS, LeadRun, task_call

LEAD = f"""\
version: 1
name: lead
{AGENTS}
steps:
  - id: lead
    agent: lead
    prompt: Research the history of tea.
"""


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_tasks_show_and_transcript_follow_the_tree(lead_run: Callable[..., LeadRun]) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call("Tea in China."), task_call("Tea in Britain.")],
        },
        {"step": "lead/researcher", "prompt": "Britain", "text": "Tea came by sea."},
        {"step": "lead", "turn": 2, "text": "The report."},
    ]
    done = lead_run(LEAD, rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    run, db = done.outcome.run_id, str(done.db)

    lines = [line for line in cli("runs", "tasks", run, "--db", db).splitlines() if "lead" in line]
    assert [line.split()[0] for line in lines] == ["lead", "└", "└"]
    assert "lead/researcher[0]" in lines[1] and "lead/researcher[1]" in lines[2]

    rows = json.loads(cli("runs", "tasks", run, "--db", db, "--json"))
    lead = next(r for r in rows if r["step"] == "lead")
    assert {r["label"]: r["parent_id"] for r in rows if r["parent_id"]} == {
        "lead/researcher[0]": lead["id"],
        "lead/researcher[1]": lead["id"],
    }

    shown = cli("runs", "show", run, "--db", db)
    assert "agents started by agents" in shown
    assert "lead/researcher[1]" in shown

    transcript = json.loads(
        cli("runs", "transcript", run, "lead/researcher[1]", "--db", db, "--json")
    )
    assert transcript["task"]["parent_id"] == lead["id"]
    assert transcript["prompt"] == "Tea in Britain."
    assert transcript["output"] == "Tea came by sea."
