"""A tool call that waits for a person's approval resumes without asking the model again: the
resumed task replays the recorded turn that made the call, and only the approved tool runs."""

from __future__ import annotations

from pathlib import Path

from orchestrator.store import Store
from tests.ask.conftest import invoke, invoke_json, run_id_of, write
from tests.ask.test_approval_cli import FLOW, RULES  # the same scripted Write that waits


def _answered_calls(project: Path, run_id: str) -> int:
    with Store.open(str(project / ".orchestrate" / "state.db"), readonly=True) as store:
        tasks = store.list_tasks(run_id)
        return sum(1 for t in tasks for c in store.task_calls(t.id) if c.status == "succeeded")


def test_an_approved_call_resumes_without_repeating_the_model_call(project: Path) -> None:
    write(project, FLOW)
    write(project, RULES, "rules.yaml")
    code, _, err = invoke("run", "wf.yaml", "--simulate", "--sim-script", "rules.yaml")
    assert code == 4, err
    run_id = run_id_of(err)
    assert _answered_calls(project, run_id) == 1  # the turn that asked to write
    (pending,) = invoke_json("runs", "waiting")
    code, _, err = invoke("approve", run_id, pending["id"])
    assert code == 0, err
    code, _, err = invoke("resume", run_id, "--simulate", "--sim-script", "rules.yaml")
    assert code == 0, err
    # turn 1 came from the record; only turn 2 was asked for (it was 3 calls before replay)
    assert _answered_calls(project, run_id) == 2
    transcript = invoke_json("runs", "transcript", run_id, "edit")
    assert transcript["output"] == "finished"
    note = project / ".orchestrate" / "runs" / run_id / "workspace" / "note.txt"
    assert note.read_text() == "hello"
