"""Tool approval from the command line, on the simulator scripted by a rules file: a Write call
waits (exit 4, listed by `runs waiting`); `approve` lets it run on resume; `deny --reason` makes
the model read the reason as the tool's error (seen in `runs transcript`)."""

from __future__ import annotations

from pathlib import Path

from tests.ask.conftest import invoke, invoke_json, run_id_of, write

FLOW = """\
version: 1
name: writes
steps:
  - id: edit
    tools: [Write]
    approve: [Write]
    prompt: "Write the note"
"""
RULES = """\
- step: edit
  turn: 1
  tool_calls: [{name: Write, input: {file_path: note.txt, content: hello}}]
- step: edit
  turn: 2
  text: finished
"""


def _waiting(project: Path) -> str:
    write(project, FLOW)
    write(project, RULES, "rules.yaml")
    code, _, err = invoke("run", "wf.yaml", "--simulate", "--sim-script", "rules.yaml")
    assert code == 4, err
    return run_id_of(err)


def _workspace(project: Path, run_id: str) -> Path:
    return project / ".orchestrate" / "runs" / run_id / "workspace"


def test_a_write_waits_for_approval_and_runs_once_approved(project: Path) -> None:
    run_id = _waiting(project)
    (pending,) = invoke_json("runs", "waiting")
    assert pending["kind"] == "approval" and pending["tool"] == "Write"
    assert pending["tool_input"] == {"file_path": "note.txt", "content": "hello"}
    assert not (_workspace(project, run_id) / "note.txt").exists()
    code, _, err = invoke("approve", run_id, pending["id"])
    assert code == 0, err
    code, _, err = invoke("resume", run_id, "--simulate", "--sim-script", "rules.yaml")
    assert code == 0, err
    assert (_workspace(project, run_id) / "note.txt").read_text() == "hello"
    # the task that waited and the one that finished after the approval are one worker
    (run,) = invoke_json("runs", "list")
    assert (run["tasks_total"], run["tasks_done"]) == (1, 1)
    (step,) = invoke_json("runs", "show", run_id)["steps"]
    assert step["tasks_total"] == 1


def test_a_denied_write_reaches_the_model_with_the_reason(project: Path) -> None:
    run_id = _waiting(project)
    code, _, err = invoke("deny", run_id, "edit")
    assert code == 2 and "--reason" in err  # a denial says why
    code, _, err = invoke("deny", run_id, "edit", "--reason", "notes go in docs/")
    assert code == 0, err
    code, _, err = invoke("resume", run_id, "--simulate", "--sim-script", "rules.yaml")
    assert code == 0, err
    assert not (_workspace(project, run_id) / "note.txt").exists()
    transcript = invoke_json("runs", "transcript", run_id, "edit")
    calls = [c for turn in transcript["turns"] for c in turn["tool_calls"]]
    (call,) = calls
    assert call["name"] == "Write" and call["is_error"] is True
    assert "denied" in str(call["result"]) and "notes go in docs/" in str(call["result"])
