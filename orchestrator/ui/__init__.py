"""Terminal rendering: live progress of a run, and the tables and transcripts of its history.

The event sinks (`ProgressDisplay`, `PlainProgress`, `JsonEventsSink`, `make_run_log`) are called
synchronously by the engine for every event; they fold it into running totals in O(1) and leave
drawing to rich's refresh thread. Nothing here imports the engine, the store or the SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Imported on first use: the history commands need only the tables, not rich's live display
# and `orchestrate runs list` should start fast.
_LAZY = {
    "PlainProgress": "orchestrator.ui.progress",
    "ProgressDisplay": "orchestrator.ui.progress",
    "describe": "orchestrator.ui.progress",
    "JsonEventsSink": "orchestrator.ui.sinks",
    "RunLog": "orchestrator.ui.sinks",
    "event_dict": "orchestrator.ui.sinks",
    "make_run_log": "orchestrator.ui.sinks",
}

__all__ = [
    "JsonEventsSink",
    "PlainProgress",
    "ProgressDisplay",
    "RunLog",
    "describe",
    "event_dict",
    "make_run_log",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator.ui' has no attribute {name!r}")
    return getattr(import_module(module), name)
