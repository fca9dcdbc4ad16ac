"""Asking inline: a question on the terminal of `orchestrate run`, answered by typing.

One question at a time (others wait their turn while the run's other branches go on); the live
progress display is paused while a question is on screen. An option is accepted by its value or
its number; a refused answer is shown with what is allowed and asked again. An empty line (or
end of input) leaves the question unanswered: it stays pending in the store, to be answered
later with `orchestrate answer`. The line is read on a worker thread, so the event loop never
blocks on the keyboard.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.contracts.people import Answer, Question, allowed_answers, check_answer
from orchestrator.errors import UsageError

__all__ = ["TerminalPrompt"]

ReadLine = Callable[[str], str | None]


def _read_line(prompt: str) -> str | None:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    return None if line == "" else line.rstrip("\n")


class TerminalPrompt:
    def __init__(
        self,
        *,
        read_line: ReadLine = _read_line,
        write: Callable[[str], None] | None = None,
        pause: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self._read_line = read_line
        self._write = write or (lambda text: print(text, file=sys.stderr, flush=True))
        self._pause = pause or nullcontext
        self._lock = anyio.Lock()

    async def ask(self, question: Question, question_id: str) -> Answer | None:
        """A checked answer, or None when the person leaves it unanswered."""
        async with self._lock:
            with self._pause():
                return await self._ask(question, question_id)

    async def _ask(self, question: Question, question_id: str) -> Answer | None:
        self._write(_describe(question, question_id))
        while True:
            line = await self._line("> ")
            if line is None or not line.strip():
                self._write(
                    f"left unanswered: orchestrate answer {question.run_id[:10]} "
                    f"{question.step_id} VALUE"
                )
                return None
            try:
                value = check_answer(question.options, question.output, line)
            except UsageError as exc:
                self._write(str(exc))
                continue
            reason = None
            if question.kind == "approval" and value == "deny":
                given = await self._line("reason (sent to the model): ")
                reason = (given or "").strip() or None
            return Answer(value, reason, by="terminal")

    async def _line(self, prompt: str) -> str | None:
        return await anyio.to_thread.run_sync(self._read_line, prompt, abandon_on_cancel=True)


def _describe(question: Question, question_id: str) -> str:
    lines = [f"? step '{question.step_id}' asks ({question_id}):", f"  {question.prompt}"]
    if question.kind == "approval" and question.tool_input is not None:
        shown = json.dumps(question.tool_input, ensure_ascii=False, indent=2)
        lines += [f"  {line}" for line in shown.splitlines()]
    lines.append(
        f"  answers: {allowed_answers(question.options, question.output)}"
        " (an empty line leaves it for later)"
    )
    return "\n".join(lines)
