"""Status words: one enum each, one transition rule, one exit-code map (orchestrator/states.py)."""

from __future__ import annotations

import pytest

from orchestrator.errors import EXIT_BUDGET, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from orchestrator.events import StepFinished, TaskFinished, event_from_dict
from orchestrator.states import (
    RunStatus,
    StatusError,
    StepStatus,
    TaskStatus,
    advance,
    can_move,
    exit_code,
)


def test_statuses_are_the_words_the_store_and_the_log_use() -> None:
    assert [s.value for s in StepStatus] == [
        "pending",
        "running",
        "succeeded",
        "failed",
        "skipped",
        "cancelled",
        "waiting",
    ]
    assert RunStatus.BUDGET_EXCEEDED == "budget_exceeded" and f"{RunStatus.FAILED}" == "failed"
    assert TaskStatus is StepStatus


def test_statuses_move_forward_only() -> None:
    assert can_move("pending", "running") and can_move("running", "succeeded")
    assert can_move("pending", "skipped") and can_move("pending", "cancelled")
    assert not can_move("running", "pending")
    assert not can_move("succeeded", "running") and not can_move("skipped", "failed")
    # a resume re-opens what did not succeed
    for word in ("failed", "cancelled", "budget_exceeded", "interrupted"):
        assert can_move(word, "running")
    assert not can_move("failed", "succeeded")  # only by running again


def test_advance_names_a_forbidden_move() -> None:
    assert advance(StepStatus.PENDING, StepStatus.RUNNING) is StepStatus.RUNNING
    with pytest.raises(StatusError, match="step 'a': cannot move from 'succeeded' to 'failed'"):
        advance(StepStatus.SUCCEEDED, StepStatus.FAILED, "step 'a'")


def test_exit_codes_follow_the_design() -> None:
    assert exit_code(RunStatus.SUCCEEDED) == EXIT_OK == 0
    assert exit_code(RunStatus.FAILED) == EXIT_FAILED == 1
    assert exit_code(RunStatus.BUDGET_EXCEEDED) == EXIT_BUDGET == 3
    assert exit_code(RunStatus.CANCELLED) == EXIT_CANCELLED == 130
    assert exit_code("interrupted") == EXIT_FAILED


def test_events_round_trip_their_status_as_the_enum() -> None:
    event = TaskFinished(run_id="r", task_id="t", step_id="s", status=TaskStatus.FAILED)
    data = event.to_dict()
    assert data["status"] == "failed" and type(data["status"]) is TaskStatus
    back = event_from_dict({**data, "status": "failed"})  # as read back from the store
    assert isinstance(back, TaskFinished) and back.status is TaskStatus.FAILED
    step = event_from_dict(
        StepFinished(run_id="r", step_id="s", status=StepStatus.SKIPPED).to_dict()
    )
    assert isinstance(step, StepFinished) and step.status is StepStatus.SKIPPED
