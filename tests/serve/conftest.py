"""Helpers for `orchestrate serve`: an in-process `Server` on a temporary store, workflows that
wait on a gate file in their workspace (so a "slow run" is slow until the test says so, never
for a number of seconds), and polling on conditions with generous bounds against a hung host.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from orchestrator.config import Settings, load_settings

# Bounds against a hang only: a loaded 2-core host waits longer instead of failing.
WAIT_S = 120.0


def settings_for(tmp: Path) -> Settings:
    return load_settings(
        None,
        overrides={
            "engine": {
                "db": str(tmp / "state.db"),
                "runs_dir": str(tmp / ".orchestrate" / "runs"),
                "logs_dir": str(tmp / ".orchestrate" / "logs"),
                "heartbeat": 0.2,
            }
        },
    )


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


COUNTER = """\
version: 1
name: counter
state_scope: workflow
steps:
  - id: bump
    set: "{{ state.get('runs', 0) + 1 }}"
    to_state: runs
outputs:
  runs: "{{ steps.bump.output }}"
"""


def gated(name: str, *, schedule: str = "", overlap: str = "skip", inputs: str = "") -> str:
    """A workflow whose run appends a line to `started.txt`, then waits for `release` in its
    (shared) workspace."""
    return f"""\
version: 1
name: {name}
workspace: ws-{name}
{schedule}
overlap: {overlap}
{inputs}
steps:
  - id: mark
    run: echo started >> started.txt
  - id: wait
    needs: [mark]
    run: "while [ ! -f release ]; do sleep 0.05; done; echo done"
outputs:
  said: "{{{{ steps.wait.output }}}}"
"""


class Log:
    """The server's `say` events, kept for assertions and waits."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, "ts": time.time(), **fields})

    def of(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["event"] == event and all(e.get(k) == v for k, v in match.items())
        ]


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Wait (polling) until `condition()` holds; fail naming `what` after a hang-sized bound."""
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")
