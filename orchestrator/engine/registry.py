"""The step-kind registry: the scheduler looks a step's kind up here and awaits its handler.

A handler is `async (run, step, scope, ctx, path) -> StepResult`: `run` is the `RunContext`,
`scope` where the step runs, `ctx` its template context (inputs, steps so far, loop, state...),
`path` its step id as events name it (`polish.draft`). By the time it is called the scheduler
has decided that the step runs (dependencies ended, `when` true, the run not stopping) and,
unless the kind `announces_itself`, emitted `StepStarted`; it emits `StepFinished` with the
result afterwards. An `OrchestrateError` raised by a handler fails the step with its message.
See the package docstring (`orchestrator/engine/__init__.py`) for adding a kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.engine.context import RunContext
    from orchestrator.engine.plan import Scope, StepResult
    from orchestrator.workflow import Step


class StepHandler(Protocol):
    async def __call__(
        self, run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
    ) -> StepResult: ...


@dataclass(frozen=True, slots=True)
class StepKind:
    name: str  # as `plan.kind_of` names it, and as `StepStarted.kind` reports it
    handler: StepHandler
    announces_itself: bool = False  # True: the handler emits its own StepStarted


_KINDS: dict[str, StepKind] = {}


def register(name: str, *, announces_itself: bool = False) -> Callable[[StepHandler], StepHandler]:
    """Decorator: make `handler` run every step of kind `name`. Registering a name twice is a
    programming error (two modules claiming one kind), so it raises."""

    def decorate(handler: StepHandler) -> StepHandler:
        if name in _KINDS:
            raise ValueError(f"step kind {name!r} is already registered")
        _KINDS[name] = StepKind(name, handler, announces_itself)
        return handler

    return decorate


def lookup(name: str) -> StepKind:
    kind = _KINDS.get(name)
    if kind is None:  # the loader rejects unknown kinds; this guards a kind with no handler
        known = ", ".join(sorted(_KINDS))
        raise UsageError(f"no handler for step kind {name!r} (known: {known})")
    return kind


def kinds() -> list[str]:
    """The registered kind names, sorted."""
    return sorted(_KINDS)
