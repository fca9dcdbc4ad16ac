"""Questions for people: what the engine asks, what comes back, and which answers are allowed.

The engine reaches people only through a `People` port that the assembly builds (over the store,
the terminal and the notice hooks: `orchestrator/people/`), as it reaches the model only through
the dispatcher. Three kinds of question share one shape: an `ask` step (`kind="ask"`), a tool
call that waits for its approval (`kind="approval"`, answered `approve` or `deny` with a reason)
and the budget guard of `limits.ask_above_usd` (`kind="budget"`).

`check_answer` is the one rule for what a question accepts, used wherever an answer comes in
(the terminal, `orchestrate answer`, the web view): an option by its value or its number, JSON
that matches the `output` schema, or any non-empty text. A refused answer raises `UsageError`
(exit 2) naming what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.contracts.task import TaskSpec

__all__ = [
    "APPROVAL_OPTIONS",
    "BUDGET_OPTIONS",
    "Answer",
    "ApproveFn",
    "Asked",
    "People",
    "Question",
    "allowed_answers",
    "check_answer",
    "needs_approval",
]

APPROVAL_OPTIONS = ("approve", "deny")
BUDGET_OPTIONS = ("proceed", "stop")


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """One question, before it has an id. `key` is deterministic (the step's task key, plus the
    tool call for an approval), so a resumed run finds its earlier answer."""

    run_id: str
    step_id: str
    key: str
    prompt: str
    kind: str = "ask"  # ask | approval | budget
    options: list[str] | None = None
    output: Any = None  # None (free text), "json", or a JSON Schema
    tool: str | None = None
    tool_input: Any = None

    def to_dict(self, question_id: str) -> dict[str, Any]:
        """The JSON a notice carries (command stdin, POST body) and `runs waiting --json` shows."""
        return {
            "run_id": self.run_id,
            "step": self.step_id,
            "question_id": question_id,
            "kind": self.kind,
            "prompt": self.prompt,
            "options": self.options,
            "output": self.output,
            "tool": self.tool,
            "tool_input": self.tool_input,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """What a person answered: the value (an option, text or JSON) and, for a denial, why."""

    value: Any
    reason: str | None = None
    by: str | None = None  # terminal | cli | web | ...


@dataclass(frozen=True, slots=True)
class Asked:
    """A question as recorded: its id, and its answer if it already has one."""

    question_id: str
    answer: Answer | None = None


class People(Protocol):
    async def ask(self, question: Question) -> Asked:
        """Record `question` durably (idempotent by run and key) before anything else happens,
        and return its id with the answer it already has, if any."""
        ...

    async def wait(self, question: Question, question_id: str) -> Answer | None:
        """The question starts waiting (notices go out): return a person's answer, stored
        before this returns; or None when no one can answer now (the run ends `waiting`)."""
        ...


ApproveFn = Callable[["TaskSpec", str, Any], Awaitable[Answer | None]]
"""(task, tool name, tool input) -> the person's answer (`approve`, or `deny` with a reason), or
None when no one can answer now (the task then ends `waiting`)."""


def needs_approval(approve: list[str] | None, tool: str) -> bool:
    """Whether a step's `approve:` (tool names, or ["all"]) names this tool."""
    return bool(approve) and ("all" in approve or tool in approve)  # type: ignore[operator]


def allowed_answers(options: list[str] | None, output: Any) -> str:
    """The answers a question accepts, in words (for refusals and prompts)."""
    if options:
        return ", ".join(f"{i}) {option}" for i, option in enumerate(options, 1))
    if output == "json":
        return "any JSON value"
    if isinstance(output, dict):
        return f"JSON matching {json.dumps(output, ensure_ascii=False)}"
    return "any non-empty text"


def check_answer(options: list[str] | None, output: Any, raw: Any, *, where: str = "") -> Any:
    """The value of an answer `raw` (a string as typed, or a JSON value) to a question with
    these `options`/`output`; `UsageError` naming the allowed answers if it is not one."""
    label = f"{where}: " if where else ""
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            raise UsageError(f"{label}an empty answer; allowed: {allowed_answers(options, output)}")
    if options:
        return _option(options, raw, label)
    if output is None or output == "text":
        if not isinstance(raw, str):
            raw = json.dumps(raw, ensure_ascii=False)
        return raw
    value = _json_value(raw, output, label)
    if isinstance(output, dict):
        import jsonschema  # only answers to a schema need it

        try:
            jsonschema.validate(value, output)
        except jsonschema.ValidationError as exc:
            raise UsageError(
                f"{label}{json.dumps(value, ensure_ascii=False)} is not allowed: {exc.message}; "
                f"allowed: {allowed_answers(options, output)}"
            ) from None
    return value


def _option(options: list[str], raw: Any, label: str) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    if text in options:
        return text
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    folded = [option for option in options if option.casefold() == text.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise UsageError(f"{label}{text!r} is not an option; allowed: {allowed_answers(options, None)}")


def _json_value(raw: Any, output: Any, label: str) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        if isinstance(output, dict) and output.get("type") == "string":
            return raw  # a bare word for a string schema
        raise UsageError(
            f"{label}not JSON: {raw!r}; allowed: {allowed_answers(None, output)}"
        ) from None
