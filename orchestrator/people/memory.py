"""`MemoryPeople`: a `People` port with no store and no terminal, for tests and scripts.

Questions are kept in memory; each is answered by `answers` (a step path -> value mapping, or a
function of the question), else, when `first_option` is set, by its first option (proceed,
approve). A question with no answer waits: the step ends `waiting`, as off a terminal. Every
question asked is in `asked`, in order, so a test can check what a run asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.contracts.people import Answer, Asked, Question

__all__ = ["MemoryPeople"]


class MemoryPeople:
    def __init__(
        self,
        answers: Mapping[str, Any] | Callable[[Question], Any] | None = None,
        *,
        first_option: bool = False,
    ) -> None:
        self._answers = answers
        self._first_option = first_option
        self._ids = itertools.count(1)
        self._by_key: dict[tuple[str, str], tuple[str, Answer | None]] = {}
        self.asked: list[Question] = []

    async def ask(self, question: Question) -> Asked:
        key = (question.run_id, question.key)
        if key not in self._by_key:
            self._by_key[key] = (f"q{next(self._ids)}", None)
            self.asked.append(question)
        question_id, answer = self._by_key[key]
        return Asked(question_id, answer)

    async def wait(self, question: Question, question_id: str) -> Answer | None:
        value = self._value(question)
        if value is None:
            return None
        answer = value if isinstance(value, Answer) else Answer(value, by="memory")
        self._by_key[(question.run_id, question.key)] = (question_id, answer)
        return answer

    def answer(self, question: Question, value: Any, reason: str | None = None) -> None:
        """Answer a question that waits (what `orchestrate answer` does to the store)."""
        key = (question.run_id, question.key)
        question_id, _ = self._by_key[key]
        self._by_key[key] = (question_id, Answer(value, reason, by="memory"))

    def _value(self, question: Question) -> Any:
        if callable(self._answers):
            return self._answers(question)
        if self._answers is not None and question.step_id in self._answers:
            return self._answers[question.step_id]
        if self._first_option and question.options:
            return question.options[0]
        return None
