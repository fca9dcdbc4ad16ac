"""The scheduler's pure decisions, checked without running anything (engine/plan.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from orchestrator.engine import PriorTask
from orchestrator.engine.plan import (
    Scope,
    StepResult,
    StopReason,
    TaskOutcome,
    body_failure,
    fanout_items,
    fanout_result,
    gate,
    kind_of,
    over_max_workers,
    ready,
    reused,
    run_verdict,
    task_key,
    task_step_result,
    when_skips,
)
from orchestrator.states import RunStatus, StepStatus, TaskStatus
from orchestrator.workflow import Workflow, load_workflow

OK, FAILED, SKIPPED, CANCELLED = (
    StepStatus.SUCCEEDED,
    StepStatus.FAILED,
    StepStatus.SKIPPED,
    StepStatus.CANCELLED,
)

DAG = """
version: 1
name: dag
steps:
  - {id: a, prompt: one}
  - {id: b, prompt: "two {{ steps.a.output }}"}
  - {id: c, prompt: three}
  - {id: d, prompt: "{{ steps.b.output }} {{ steps.c.output }}"}
  - {id: fan, for_each: [1, 2], prompt: "{{ item }}"}
  - {id: cmd, run: "echo hi", when: "{{ inputs.go }}"}
inputs:
  go: {type: boolean, default: false}
"""


def workflow(text: str = DAG) -> Workflow:
    return load_workflow(Path("wf.yaml"), text=textwrap.dedent(text))


def done(**statuses: StepStatus) -> dict[str, StepResult]:
    return {sid: StepResult(status) for sid, status in statuses.items()}


def test_ready_starts_what_has_no_unfinished_dependency_in_file_order() -> None:
    steps = workflow().steps
    ids = lambda found: [s.id for s in found]  # noqa: E731
    assert ids(ready(steps, set(), {})) == ["a", "c", "fan", "cmd"]
    assert ids(ready(steps, {"a", "c", "fan", "cmd"}, done(a=OK))) == ["b"]
    # d waits for both b and c, whatever they ended as
    assert ids(ready(steps, {"a", "b", "c", "fan", "cmd"}, done(a=OK, b=FAILED))) == []
    assert ids(ready(steps, {"a", "b", "c", "fan", "cmd"}, done(a=OK, b=FAILED, c=OK))) == ["d"]


def test_ready_ignores_dependencies_outside_the_scope() -> None:
    body = (
        workflow("""
    version: 1
    name: loop
    steps:
      - {id: first, prompt: x}
      - id: again
        loop:
          max_iterations: 2
          steps:
            - {id: inner, prompt: "{{ steps.first.output }}"}
    """)
        .step("again")
        .loop
    )
    assert body is not None
    assert [s.id for s in ready(body.steps, set(), {})] == ["inner"]


def test_gate_cancels_after_a_failed_dependency_and_skips_after_all_skipped() -> None:
    d = workflow().step("d")
    cancelled = gate(d, done(b=FAILED, c=OK), None)
    assert cancelled == StepResult(CANCELLED, error="dependency 'b' did not succeed")
    assert gate(d, done(b=CANCELLED, c=OK), None) is not None
    assert gate(d, done(b=SKIPPED, c=SKIPPED), None) == StepResult(SKIPPED)
    assert gate(d, done(b=SKIPPED, c=OK), None) is None  # one dependency ran: d runs
    assert gate(d, done(b=OK, c=OK), StopReason.BUDGET) == StepResult(CANCELLED, error="run budget")


def test_when_false_skips() -> None:
    cmd = workflow().step("cmd")
    assert when_skips(cmd, {"inputs": {"go": False}})
    assert not when_skips(cmd, {"inputs": {"go": True}})
    assert not when_skips(workflow().step("a"), {})  # no `when`: runs


def test_kind_of_makes_any_step_with_for_each_a_fanout() -> None:
    wf = workflow()
    assert [kind_of(s) for s in wf.steps] == ["agent", "agent", "agent", "agent", "fanout", "run"]


def test_task_keys_are_stable_and_tell_items_and_iterations_apart() -> None:
    assert task_key("", "plan") == "plan"
    assert task_key("polish@2.", "draft") == "polish@2.draft"
    key = task_key("", "research", 3, {"topic": "x"})
    assert key.startswith("research[3]:") and key == task_key("", "research", 3, {"topic": "x"})
    # the same index with another item is another task: resume must not reuse its output
    assert key != task_key("", "research", 3, {"topic": "y"})


def test_resume_reuses_exactly_the_keys_that_succeeded() -> None:
    prior = {"plan": PriorTask(output={"topics": ["a"]})}
    assert reused(prior, "plan") == TaskOutcome(TaskStatus.SUCCEEDED, {"topics": ["a"]})
    assert reused(prior, "research[0]:abc") is None


def test_fanout_items_accepts_lists_and_mappings_only() -> None:
    assert fanout_items([1, 2]) == [1, 2]
    assert fanout_items({"a": 1}) == [{"key": "a", "value": 1}]
    assert fanout_items("abc") is None


def test_max_workers_is_checked_before_tasks_are_created() -> None:
    assert over_max_workers(3, 2, 5, fanout=True) is None
    message = over_max_workers(3, 4, 5, fanout=True)
    assert message is not None and "would create 4 tasks" in message and "(3 already" in message
    assert over_max_workers(5, 1, 5, fanout=False) == (
        "limits.max_workers=5 reached before this step"
    )


def outcomes(*statuses: TaskStatus) -> list[TaskOutcome | None]:
    return [TaskOutcome(s, output=f"o{i}", error=f"e{i}") for i, s in enumerate(statuses)]


def test_fanout_result_is_decided_after_every_item_ended() -> None:
    fan = workflow().step("fan")
    ok, bad = TaskStatus.SUCCEEDED, TaskStatus.FAILED
    assert fanout_result(fan, outcomes(ok, ok), None) == (StepResult(OK, output=["o0", "o1"]), 0)
    failed, dropped = fanout_result(fan, outcomes(ok, bad, bad), None)
    assert failed.status == FAILED and dropped == 0
    assert failed.error == "2 of 3 items failed; first, item 1: e1"
    skipping = fan.model_copy(update={"on_item_error": "skip"})
    assert fanout_result(skipping, outcomes(ok, bad, ok), None) == (
        StepResult(OK, output=["o0", "o2"]),
        1,
    )
    # an item that never ended, or was cancelled, cancels the step
    cancelled, _ = fanout_result(fan, [*outcomes(ok), None], StopReason.BUDGET)
    assert cancelled == StepResult(CANCELLED, error="run budget")
    assert fanout_result(fan, outcomes(ok, TaskStatus.CANCELLED), None)[0].status == CANCELLED


def test_a_run_task_output_becomes_the_step_output_and_exit_code() -> None:
    cmd = workflow().step("cmd")
    outcome = TaskOutcome(TaskStatus.FAILED, {"output": "x", "exit_code": 4}, "exited 4")
    assert task_step_result(cmd, outcome) == StepResult(
        FAILED, output="x", exit_code=4, error="exited 4"
    )
    agent = workflow().step("a")
    assert task_step_result(agent, TaskOutcome(TaskStatus.FAILED, None, "bad")) == StepResult(
        FAILED, error="bad"
    )


def test_body_failure_names_the_first_step_that_did_not_succeed() -> None:
    assert body_failure(done(a=OK, b=SKIPPED)) is None
    assert body_failure(done(a=OK, b=CANCELLED, c=FAILED)) == ("b", StepResult(CANCELLED))


def test_run_verdict_cancel_beats_budget_beats_failure() -> None:
    failed = done(a=OK, b=FAILED)
    failed["b"].error = "boom"
    assert run_verdict(StopReason.CANCELLED, "SIGINT", "over", failed) == (
        RunStatus.CANCELLED,
        "run cancelled (SIGINT)",
    )
    assert run_verdict(StopReason.BUDGET, None, "over", failed) == (
        RunStatus.BUDGET_EXCEEDED,
        "over",
    )
    assert run_verdict(None, None, None, failed) == (RunStatus.FAILED, "step 'b': boom")
    assert run_verdict(None, None, None, done(a=OK)) == (RunStatus.SUCCEEDED, None)


def test_scope_context_sees_outer_steps_and_its_own() -> None:
    wf = workflow()
    top = Scope(workflow=wf, path="", key="", iteration=None, base={"inputs": {}}, outer={})
    body = top.loop_body(wf.step("a"), 2, {"x": 1}, {"outer": {"output": 5}})
    ctx: dict[str, Any] = body.context({"inner": StepResult(OK, output="y")})
    assert ctx["loop"] == {"iteration": 2, "index": 2, "previous": {"x": 1}}
    assert ctx["steps"]["outer"] == {"output": 5}
    assert ctx["steps"]["inner"]["output"] == "y"
    assert (body.path, body.key, body.iteration) == ("a.", "a@2.", 2)
