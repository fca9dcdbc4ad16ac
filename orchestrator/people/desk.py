"""The `People` port of a run: questions recorded in the store, answered there, on the terminal
or from elsewhere, with notices when one starts waiting.

`ask` writes the question (or finds it: a resumed run asks nothing twice) before anything else
happens. `wait` sends the notices, then, by how the run was started:
- on a terminal (`prompt` given): asks inline; an answer is checked and stored before `wait`
  returns it; an empty line falls through to the next rule;
- `--wait` (`keep_waiting`): polls the store, on a worker thread, until an answer arrives from
  `orchestrate answer`, the web view or anyone else with the store;
- otherwise: returns None, and the step that asked ends `waiting`.

Every store call runs on a worker thread: the event loop never waits on SQLite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from orchestrator.contracts.people import Answer, Asked, Question
from orchestrator.errors import UsageError
from orchestrator.people.notify import NoticeTargets, send_notice
from orchestrator.people.terminal import TerminalPrompt

if TYPE_CHECKING:
    from orchestrator.store import Question as QuestionRow
    from orchestrator.store import Store

__all__ = ["POLL_S", "Desk"]

POLL_S = 1.0


def _answer(row: QuestionRow) -> Answer | None:
    if row.status != "answered":
        return None
    return Answer(row.answer, row.reason, by=row.answered_by)


class Desk:
    def __init__(
        self,
        store: Store,
        *,
        notify: NoticeTargets | None = None,
        prompt: TerminalPrompt | None = None,
        keep_waiting: bool = False,
        warn: Callable[[str], None] | None = None,
        poll_s: float = POLL_S,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        from orchestrator.store import Questions

        self._questions = Questions(store)
        self._notify = notify or NoticeTargets()
        self._prompt = prompt
        self._keep_waiting = keep_waiting
        self._warn = warn or (lambda message: None)
        self._poll_s = poll_s
        self._sleep = sleep

    async def ask(self, question: Question) -> Asked:
        row = await anyio.to_thread.run_sync(
            lambda: self._questions.ask(
                run_id=question.run_id,
                step_id=question.step_id,
                key=question.key,
                prompt=question.prompt,
                kind=question.kind,
                options=question.options,
                output=question.output,
                tool=question.tool,
                tool_input=question.tool_input,
            )
        )
        return Asked(row.id, _answer(row))

    async def wait(self, question: Question, question_id: str) -> Answer | None:
        if self._notify:
            await send_notice(self._notify, question.to_dict(question_id), warn=self._warn)
        if self._prompt is not None:
            given = await self._prompt.ask(question, question_id)
            if given is not None:
                return await self._store_answer(question_id, given)
        if not self._keep_waiting:
            return None
        while True:
            row = await anyio.to_thread.run_sync(self._questions.by_id, question_id)
            if row is not None and (found := _answer(row)) is not None:
                return found
            await self._sleep(self._poll_s)

    async def _store_answer(self, question_id: str, given: Answer) -> Answer | None:
        def write() -> QuestionRow | None:
            try:
                return self._questions.answer(
                    question_id, given.value, reason=given.reason, by=given.by or "terminal"
                )
            except UsageError:  # answered elsewhere while the prompt was up: that one stands
                return self._questions.by_id(question_id)

        row = await anyio.to_thread.run_sync(write)
        return None if row is None else _answer(row)
