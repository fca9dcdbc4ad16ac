"""Terminal rendering: live progress of a run, and the tables and transcripts of its history.

The event sinks (`ProgressDisplay`, `PlainProgress`, `JsonEventsSink`, `make_run_log`) are called
synchronously by the engine for every event; they fold it into running totals in O(1) and leave
drawing to rich's refresh thread. Nothing here imports the engine, the store or the SDK.
"""

from orchestrator.ui.progress import PlainProgress, ProgressDisplay, describe
from orchestrator.ui.sinks import JsonEventsSink, RunLog, event_dict, make_run_log

__all__ = [
    "JsonEventsSink",
    "PlainProgress",
    "ProgressDisplay",
    "RunLog",
    "describe",
    "event_dict",
    "make_run_log",
]
