"""Waiting on a condition, never on the clock: what every test of a child process or a server does.

A loaded 2-core host may take minutes to get a child going, so `timeout` only turns a hang (a dead
child, a condition that will never hold) into a failure that says what was awaited; the wait ends
as soon as the condition holds, and nothing is asserted about how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WAIT_S = 300.0


def wait_for(
    condition: Callable[[], Any], what: str = "", *, timeout: float = WAIT_S, every: float = 0.02
) -> Any:
    """Poll `condition()` every `every` seconds until it is truthy, and return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(every)
