"""Status words for runs, steps, tasks and calls: one enum each, one transition rule, one exit map.

They are `StrEnum`s, so a status compares equal to the word stored in the database, written to the
JSON log and printed (`RunStatus.SUCCEEDED == "succeeded"`), and every module can use the enum while
the store keeps plain text. DESIGN.md's "Status words" section is the contract.

A status only moves forward: `pending -> running -> a final word`. `waiting` ends a run, step or
task whose question no one has answered yet; like `cancelled`, a resume takes it back to running.
`can_move` says whether a change is allowed, and `advance` applies it or raises; a resumed run
may take a step or task that was not final (pending, running, or the resumable run words) back to
`running`, never one that succeeded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from orchestrator.errors import (
    EXIT_BUDGET,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
)


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # never stored: a "running" row whose heartbeat went stale
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"
    WAITING = "waiting"  # ended with a question no one has answered yet; resumable


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    WAITING = "waiting"  # waits for a person's answer (or on a step that does); resumable


# A task is a step's unit of work; it uses the same words.
TaskStatus = StepStatus


class CallStatus(StrEnum):
    SUCCEEDED = "succeeded"
    RETRYABLE_ERROR = "retryable_error"
    FATAL_ERROR = "fatal_error"
    CANCELLED = "cancelled"


Status = RunStatus | StepStatus

FINAL_RUN = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.BUDGET_EXCEEDED}
)
# Runs that `resume` may continue.
RESUMABLE_RUN = frozenset(
    {
        RunStatus.RUNNING,
        RunStatus.INTERRUPTED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.BUDGET_EXCEEDED,
        RunStatus.WAITING,
    }
)
FINAL_STEP = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)

_EXIT_CODES: dict[str, int] = {
    RunStatus.SUCCEEDED: EXIT_OK,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.BUDGET_EXCEEDED: EXIT_BUDGET,
    RunStatus.CANCELLED: EXIT_CANCELLED,
    RunStatus.WAITING: EXIT_WAITING,
}


def exit_code(status: str) -> int:
    """The process exit code for a run that ended with `status` (DESIGN.md's table)."""
    return _EXIT_CODES.get(status, EXIT_FAILED)


def is_final(status: str) -> bool:
    return status in FINAL_RUN or status in FINAL_STEP


_ANY = frozenset({*RunStatus, *StepStatus})
# Where each word may go next (besides staying put). Read as: pending may become anything;
# running (or a stale `interrupted`) may end any way; succeeded and skipped are for good; the
# other final words only go back to running, when a resume re-opens them.
_NOWHERE: frozenset[str] = frozenset()
_NEXT: dict[str, frozenset[str]] = {
    "pending": _ANY,
    "running": _ANY - {"pending"},
    "interrupted": _ANY - {"pending"},
    "succeeded": frozenset(),
    "skipped": frozenset(),
    "failed": frozenset({"running"}),
    "cancelled": frozenset({"running"}),
    "budget_exceeded": frozenset({"running"}),
    "waiting": frozenset({"running"}),
}


def can_move(old: str, new: str) -> bool:
    """Whether a run, step or task may go from `old` to `new`.

    Forward only: pending -> running|skipped|cancelled|final, running -> final.
    A resume re-opens what did not succeed (a final word other than `succeeded` or
    `skipped`, or a stale `running`) by moving it to `running`.
    """
    return old == new or new in _NEXT.get(old, _NOWHERE)


class StatusError(ValueError):
    """A status change that the rules above do not allow: a bug, never a user's mistake."""


_S = TypeVar("_S", bound=str)


def advance(old: str, new: _S, what: str = "status") -> _S:
    """`new` if `old -> new` is allowed, else `StatusError` naming both."""
    if not can_move(old, new):
        raise StatusError(f"{what}: cannot move from '{old}' to '{new}'")
    return new
