"""Questions for people and their answers: the store's read/write API (the `questions` table).

A question is written the moment it starts waiting, and its answer the moment a person gives it,
each in its own short BEGIN IMMEDIATE transaction (outside the batching writer, which may hold
events for a few milliseconds): so a process killed while it waits loses neither, and an answer
is on disk before the run goes on. Every call here blocks: the engine's side runs them on a
worker thread (`anyio.to_thread`), the CLI and the web view call them directly.

Invariants:
- one row per (run_id, key): asking again returns the row already there, answered or not, so a
  resumed run never asks a question twice;
- an answer is written once: answering a question that already has one is refused (a
  conditional UPDATE on `status = 'pending'`, so of two people answering at once one wins);
- values are not checked here (the store keeps what it is given); `orchestrator.people` checks
  an answer against the question's options or schema before it writes.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.errors import UsageError
from orchestrator.ids import new_id
from orchestrator.store.models import QUESTIONS, Question
from orchestrator.store.store import Store

__all__ = ["ANSWERED", "PENDING", "Questions"]

PENDING = "pending"
ANSWERED = "answered"


class Questions:
    """The questions of every run in one store. Cheap: build one wherever it is needed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- write side -------------------------------------------------------------------------

    def ask(
        self,
        *,
        run_id: str,
        step_id: str,
        key: str,
        prompt: str,
        kind: str = "ask",
        options: list[str] | None = None,
        output: Any = None,
        tool: str | None = None,
        tool_input: Any = None,
        now: float | None = None,
    ) -> Question:
        """The question of `run_id` with this `key`, written now if it is new (pending)."""
        found = self.get(run_id, key)
        if found is not None:
            return found
        row = {
            "id": new_id(),
            "run_id": run_id,
            "step_id": step_id,
            "key": key,
            "kind": kind,
            "prompt": prompt,
            "options": options,
            "output": output,
            "tool": tool,
            "tool_input": tool_input,
            "status": PENDING,
            "asked_at": time.time() if now is None else now,
        }
        try:
            with self._store._write() as conn:
                exists = conn.execute(
                    select(QUESTIONS.c.id).where(
                        QUESTIONS.c.run_id == run_id, QUESTIONS.c.key == key
                    )
                ).first()
                if exists is None:
                    conn.execute(QUESTIONS.insert().values(**row))
        except IntegrityError:
            pass  # another process asked it a moment ago (PostgreSQL); theirs stands
        found = self.get(run_id, key)
        assert found is not None
        return found

    def answer(
        self,
        question_id: str,
        value: Any,
        *,
        reason: str | None = None,
        by: str = "cli",
        now: float | None = None,
    ) -> Question:
        """Record the answer of a pending question. Refused (exit 2) when it has one already."""
        stmt = (
            update(QUESTIONS)
            .where(QUESTIONS.c.id == question_id, QUESTIONS.c.status == PENDING)
            .values(
                status=ANSWERED,
                answer=value,
                reason=reason,
                answered_by=by,
                answered_at=time.time() if now is None else now,
            )
        )
        with self._store._write() as conn:
            won = conn.execute(stmt).rowcount == 1
        row = self.by_id(question_id)
        if row is None:
            raise UsageError(f"no question {question_id!r}")
        if not won:
            raise UsageError(
                f"question {question_id} of step '{row.step_id}' was already answered "
                f"({_shown(row.answer)} by {row.answered_by or 'someone'})"
            )
        return row

    # --- read side --------------------------------------------------------------------------

    def get(self, run_id: str, key: str) -> Question | None:
        rows = self._store._rows(
            select(Question).where(QUESTIONS.c.run_id == run_id, QUESTIONS.c.key == key)
        )
        return rows[0] if rows else None

    def by_id(self, question_id: str) -> Question | None:
        rows = self._store._rows(select(Question).where(QUESTIONS.c.id == question_id))
        return rows[0] if rows else None

    def pending(self, run_id: str | None = None) -> list[Question]:
        """Questions that wait for an answer, oldest first (of one run, or of every run)."""
        stmt = select(Question).where(QUESTIONS.c.status == PENDING)
        if run_id is not None:
            stmt = stmt.where(QUESTIONS.c.run_id == run_id)
        return self._store._rows(stmt.order_by(QUESTIONS.c.asked_at, QUESTIONS.c.id))

    def of_run(self, run_id: str) -> list[Question]:
        """Every question of a run, answered or not, in the order they were asked."""
        stmt = select(Question).where(QUESTIONS.c.run_id == run_id)
        return self._store._rows(stmt.order_by(QUESTIONS.c.asked_at, QUESTIONS.c.id))

    def resolve(self, run_id: str, ref: str, *, kind: str | None = None) -> Question:
        """A question of `run_id` by id (or a unique prefix of one) or by step path. A step
        whose questions are several (a loop, a fan-out's tool calls) names its one pending
        question; if more than one waits, the ids to choose from are in the message."""
        questions = [q for q in self.of_run(run_id) if kind is None or q.kind == kind]
        what = "approval" if kind == "approval" else "question"
        by_id = [q for q in questions if q.id.lower().startswith(ref.lower())]
        if len(by_id) == 1 and len(ref) >= 4:
            return by_id[0]
        by_step = [q for q in questions if q.step_id == ref]
        waiting = [q for q in by_step if q.status == PENDING]
        if len(waiting) == 1:
            return waiting[0]
        if len(waiting) > 1:
            ids = ", ".join(f"{q.id} ({_shown(q.prompt, 40)})" for q in waiting)
            raise UsageError(f"step '{ref}' has {len(waiting)} pending {what}s; name one: {ids}")
        if by_step:
            return by_step[-1]  # answered: the caller says so
        if len(by_id) > 1:
            raise UsageError(f"{what} id prefix {ref!r} is ambiguous; give more characters")
        known = sorted({q.step_id for q in questions})
        hint = f"; its {what}s are on: {', '.join(known)}" if known else f"; it has no {what}s"
        raise UsageError(f"run {run_id[:10]} has no {what} {ref!r}{hint}")


def _shown(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
