"""Answering from anywhere: the calls `orchestrate answer/approve/deny`, `runs waiting` and the
web view share, over any open `Store`.

`answer` checks a value against the question's options or schema (`check_answer`) and writes it
at once; a running process that waits (`--wait`) sees it on its next poll, a `waiting` run uses it
on `resume`. A question is named by its id (or a unique prefix) or by its step's path. These
block (SQLite on the calling thread); call them from a worker thread in async code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.contracts.people import APPROVAL_OPTIONS, check_answer
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.store import Question, Store

__all__ = ["answer", "approve", "deny", "pending"]


def pending(store: Store, run_ref: str | None = None) -> list[Question]:
    """Every question that waits for an answer, oldest first (of one run, or of all runs)."""
    from orchestrator.store import Questions

    run_id = store.resolve_run(run_ref) if run_ref is not None else None
    return Questions(store).pending(run_id)


def answer(
    store: Store,
    run_ref: str,
    question_ref: str,
    value: Any,
    *,
    reason: str | None = None,
    by: str = "cli",
    kind: str | None = None,
) -> Question:
    """Record the answer `value` (as typed, or a JSON value) to a pending question; refused
    (`UsageError`, exit 2) when it is not an allowed answer or the question has one already."""
    from orchestrator.store import Questions

    questions = Questions(store)
    run_id = store.resolve_run(run_ref)
    question = questions.resolve(run_id, question_ref, kind=kind)
    if question.status != "pending":
        raise UsageError(
            f"step '{question.step_id}' ({question.id}) was already answered: "
            f"{question.answer!r} by {question.answered_by or 'someone'}"
        )
    checked = check_answer(
        question.options, question.output, value, where=f"step '{question.step_id}'"
    )
    return questions.answer(question.id, checked, reason=reason, by=by)


def approve(store: Store, run_ref: str, call_ref: str, *, by: str = "cli") -> Question:
    """Let a tool call that waits for approval run."""
    return answer(store, run_ref, call_ref, APPROVAL_OPTIONS[0], by=by, kind="approval")


def deny(store: Store, run_ref: str, call_ref: str, reason: str, *, by: str = "cli") -> Question:
    """Refuse a tool call; the model receives `reason` as the tool's error."""
    if not reason.strip():
        raise UsageError("deny needs a reason: the model reads it (--reason '...')")
    return answer(
        store, run_ref, call_ref, APPROVAL_OPTIONS[1], reason=reason.strip(), by=by, kind="approval"
    )
