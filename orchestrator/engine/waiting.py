"""Time a person takes does not count against a task's timeout.

`TaskRunner` marks each attempt's timeout scope with `attempt_deadline`; a tool call that waits
for its approval runs inside `holding_timeout`, which stops the attempt's clock while a person
decides and moves the deadline on by the time waited once the last wait of that attempt ends
(several tool calls of one turn may wait at once). A contextvar carries the scope, so the wait
finds its own attempt's timeout however deep in the worker it happens.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

__all__ = ["attempt_deadline", "holding_timeout"]

_ATTEMPT: contextvars.ContextVar[anyio.CancelScope | None] = contextvars.ContextVar(
    "orchestrate_attempt", default=None
)
_HELD: dict[int, tuple[int, float, float]] = {}  # id(scope) -> (waits, deadline before, since)


@contextmanager
def attempt_deadline(scope: anyio.CancelScope) -> Iterator[None]:
    """Within this block, `scope` is the running attempt's timeout."""
    token = _ATTEMPT.set(scope)
    try:
        yield
    finally:
        _ATTEMPT.reset(token)


@contextmanager
def holding_timeout() -> Iterator[None]:
    """While inside, the current attempt cannot time out; afterwards its deadline is later by
    the time spent inside (outside an attempt this does nothing)."""
    scope = _ATTEMPT.get()
    if scope is None:
        yield
        return
    key = id(scope)
    waits, before, since = _HELD.get(key, (0, scope.deadline, anyio.current_time()))
    _HELD[key] = (waits + 1, before, since)
    scope.deadline = math.inf
    try:
        yield
    finally:
        waits, before, since = _HELD.pop(key)
        if waits > 1:
            _HELD[key] = (waits - 1, before, since)
        else:
            scope.deadline = before + (anyio.current_time() - since)
