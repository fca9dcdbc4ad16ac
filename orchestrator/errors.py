"""The engine's own errors, shared by every package.

Each error a person can see carries an exit code from DESIGN.md: 0 succeeded, 1 run failed,
2 bad input, 3 budget exceeded, 4 waiting for a person, 130 cancelled. SDK errors never cross
`orchestrator/llm`: they are translated there into `RetryableError` or `FatalError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BUDGET = 3
EXIT_WAITING = 4  # the run stopped with a question no one has answered yet
EXIT_CANCELLED = 130


class OrchestrateError(Exception):
    """Base of every error the CLI turns into a message and an exit code (no traceback)."""

    exit_code: int = EXIT_FAILED


class UsageError(OrchestrateError):
    """Bad input: a workflow, an input value, a flag, a missing API key. Exit 2."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a file, printed as `file:line:col: message`."""

    file: str
    line: int
    col: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "message": self.message,
            "severity": self.severity,
        }


class SpecError(UsageError):
    """A workflow or agent file is invalid. Carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class TaskFailed(OrchestrateError):
    """A worker could not finish its task (max_turns reached, output never valid, a fatal API
    error...). The message says why in words a person can act on. `spent` is what the calls
    made so far cost (a `TaskResult` without output), so a failed task's tokens are counted.

    One attempt budget per task (the step's `retries`): `repairs` is how much of it the worker
    used on schema repairs and nudges inside the failed attempt, and `final` says another attempt
    cannot help (the budget is spent, or the fix is the author's: raise max_tokens...)."""

    spent: Any = None

    def __init__(self, message: str, *, final: bool = False, repairs: int = 0) -> None:
        super().__init__(message)
        self.final = final
        self.repairs = repairs


class Cancelled(OrchestrateError):
    """The run was cancelled (SIGINT/SIGTERM or `orchestrate runs cancel`). Exit 130."""

    exit_code = EXIT_CANCELLED


class BudgetExceeded(OrchestrateError):
    """A run reached `limits.max_cost_usd` or `limits.max_tokens` (exit 3), or, with `step` set,
    the step at that path reached its own `budget:` (that step fails; the run goes on)."""

    exit_code = EXIT_BUDGET

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step


class Waiting(OrchestrateError):
    """A task cannot go on until a person answers a question (a tool call that needs an
    approval no one has given yet). It ends the task `waiting`, not failed: `resume` runs it
    again once the question is answered. `spent` is what the task's calls cost so far."""

    exit_code = EXIT_WAITING
    spent: Any = None


@dataclass
class LLMError(Exception):
    """An error from the Messages API, already stripped of anything secret."""

    message: str
    status: int | None = None
    error_type: str | None = None  # the API's `error.type`, e.g. "overloaded_error"
    request_id: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.insert(0, f"HTTP {self.status}")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


@dataclass
class RetryableError(LLMError):
    """429, 529, 5xx, connection errors and timeouts: worth another try after a wait.

    `kind` drives the engine's backoff policy: "rate_limit" honours `retry_after` and lowers the
    run's concurrency; "overloaded" feeds the run-wide pause; the rest back off with jitter.
    """

    kind: str = "server"  # "rate_limit" | "overloaded" | "server" | "connection" | "timeout"
    retry_after: float | None = None  # seconds, from retry-after-ms / retry-after


@dataclass
class FatalError(LLMError):
    """400, 401, 403, 404, 413 and other errors that another try will not fix."""


@dataclass
class ToolError(Exception):
    """A tool refused or failed; sent back to the model as a `tool_result` with `is_error`."""

    message: str
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)
