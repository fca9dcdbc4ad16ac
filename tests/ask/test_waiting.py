"""A question waits without stopping the rest: off a terminal the run ends `waiting` (exit 4)
once nothing else can run; an answer from anywhere, then `resume`, finishes it; a wrong answer
is refused with the allowed ones; nothing is asked twice, and a killed process loses nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from orchestrator.store import Question, Questions, Store
from tests._support.wait import wait_for
from tests.ask.conftest import GATE, invoke, invoke_json, run_id_of, start, write


def _pending(project: Path) -> list[Question]:
    """The questions that wait, read from the store as another process would (none before the
    run created the database)."""
    path = project / ".orchestrate" / "state.db"
    if not path.exists():
        return []
    store = Store.open(str(path), readonly=True)
    try:
        return Questions(store).pending()
    finally:
        store.close()


def _steps(run_id: str) -> dict[str, str]:
    shown = invoke_json("runs", "show", run_id)
    return {s["id"]: s["status"] for s in shown["steps"]}


def _waiting_run(project: Path) -> str:
    write(project, GATE)
    code, _out, err = invoke("run", "wf.yaml", "--simulate")
    assert code == 4, err
    return run_id_of(err)


def test_off_a_terminal_the_run_ends_waiting_with_exit_4_after_the_other_branch(
    project: Path,
) -> None:
    write(project, GATE)
    code, out, err = invoke("run", "wf.yaml", "--simulate")
    assert code == 4, err
    run_id = run_id_of(err)
    assert "waiting" in err and f"orchestrate answer {run_id[:10]} confirm" in err
    shown = invoke_json("runs", "show", run_id)
    assert shown["status"] == "waiting"
    steps = {s["id"]: s["status"] for s in shown["steps"]}
    # the branch that does not depend on the question ran to its end; the one that does waits
    assert steps == {
        "plan": "succeeded",
        "side": "succeeded",
        "confirm": "waiting",
        "act": "waiting",
    }
    (question,) = invoke_json("runs", "waiting")
    assert question["run_id"] == run_id and question["step"] == "confirm"
    assert question["prompt"] == "Proceed with these 2 subtasks?"
    assert question["options"] == ["proceed", "redo", "quit"]
    assert question["age_s"] >= 0 and question["status"] == "pending"
    code, out, _ = invoke("runs", "waiting")
    assert code == 0 and "Proceed with these 2 subtasks?" in out and "1) proceed" in out


def test_a_wrong_answer_is_refused_with_exit_2_and_the_allowed_values(project: Path) -> None:
    run_id = _waiting_run(project)
    code, _, err = invoke("answer", run_id, "confirm", "maybe")
    assert code == 2
    assert "'maybe' is not an option" in err and "1) proceed, 2) redo, 3) quit" in err
    assert len(invoke_json("runs", "waiting")) == 1  # still waiting for a real answer


def test_answer_then_resume_finishes_with_the_answer_in_runs_show(project: Path) -> None:
    run_id = _waiting_run(project)
    code, _, err = invoke("answer", run_id[:10], "confirm", "1")  # an option by its number
    assert code == 0, err
    assert "resume" in err
    assert invoke_json("runs", "waiting") == []
    code, out, err = invoke("resume", run_id, "--simulate")
    assert code == 0, err
    assert "proceed" in out and "side done" in out
    shown = invoke_json("runs", "show", run_id)
    assert shown["status"] == "succeeded"
    assert shown["outputs"]["decision"] == "proceed"
    steps = {s["id"]: s["status"] for s in shown["steps"]}
    assert steps["act"] == "succeeded" and steps["confirm"] == "succeeded"
    (question,) = shown["questions"]  # asked once, answered once
    assert question["answer"] == "proceed" and question["answered_by"] == "cli"
    code, out, _ = invoke("runs", "show", run_id)
    assert "Proceed with these 2 subtasks?" in out and "proceed" in out
    # the work done before the question was not done again, and counts once
    plans = invoke_json("runs", "tasks", run_id, "--step", "plan")
    assert [t["status"] for t in plans] == ["succeeded"]
    assert shown["totals"]["tasks_total"] == shown["totals"]["tasks_done"]


def test_prune_keeps_a_run_that_waits_for_a_person(project: Path) -> None:
    run_id = _waiting_run(project)
    code, out, _ = invoke("runs", "prune", "--older-than", "0s", "--yes")
    assert code == 0 and "deleted 0 runs" in out
    assert invoke_json("runs", "show", run_id)["status"] == "waiting"
    assert len(invoke_json("runs", "waiting")) == 1


def test_a_second_answer_is_refused(project: Path) -> None:
    run_id = _waiting_run(project)
    assert invoke("answer", run_id, "confirm", "quit")[0] == 0
    code, _, err = invoke("answer", run_id, "confirm", "proceed")
    assert code == 2 and "already answered" in err and "'quit'" in err


def test_a_routed_answer_skips_the_other_branch(project: Path) -> None:
    run_id = _waiting_run(project)
    invoke("answer", run_id, "confirm", "quit")
    code, _out, err = invoke("resume", run_id, "--simulate")
    assert code == 0, err
    assert _steps(run_id)["act"] == "skipped"


def test_wait_keeps_the_process_until_an_answer_arrives_from_elsewhere(project: Path) -> None:
    write(project, GATE)
    proc = start(project, "run", "wf.yaml", "--simulate", "--wait")
    try:
        question = wait_for(lambda: _pending(project), "the question")[0]
        # the other branch ended while the question waited
        wait_for(lambda: _steps(question.run_id).get("side") == "succeeded", "side")
        assert proc.poll() is None, "the process waits for the answer"
        assert invoke("answer", question.run_id, question.id, "proceed")[0] == 0
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "proceed" in out
    assert _steps(question.run_id)["act"] == "succeeded"


def test_a_process_killed_while_it_waits_loses_nothing(project: Path) -> None:
    write(project, GATE)
    proc = start(project, "run", "wf.yaml", "--simulate", "--wait")
    try:
        question = wait_for(lambda: _pending(project), "the question")[0]
        wait_for(lambda: _steps(question.run_id).get("side") == "succeeded", "side")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_id = question.run_id
    (still,) = invoke_json("runs", "waiting")
    assert still["id"] == question.id and still["prompt"] == "Proceed with these 2 subtasks?"
    assert invoke("answer", run_id, "confirm", "proceed")[0] == 0
    code, _out, err = invoke("resume", run_id, "--simulate")
    assert code == 0, err
    shown = invoke_json("runs", "show", run_id)
    assert shown["status"] == "succeeded" and shown["outputs"]["decision"] == "proceed"
    plans = invoke_json("runs", "tasks", run_id, "--step", "plan")
    assert [t["status"] for t in plans] == ["succeeded"]  # kept from before the kill


def test_the_notify_command_receives_the_question(project: Path) -> None:
    write(project, GATE + 'notify:\n  command: "cat > notice.json"\n')
    run_id = _waiting_run_from_file(project)
    notice = json.loads((project / "notice.json").read_text())
    (pending,) = invoke_json("runs", "waiting")
    assert notice["question_id"] == pending["id"]
    assert notice["run_id"] == run_id and notice["step"] == "confirm"
    assert notice["prompt"] == "Proceed with these 2 subtasks?"
    assert notice["options"] == ["proceed", "redo", "quit"]


def _waiting_run_from_file(project: Path) -> str:
    code, _, err = invoke("run", "wf.yaml", "--simulate")
    assert code == 4, err
    return run_id_of(err)
