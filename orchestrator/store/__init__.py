"""The shared state store: every run, step, task, call and event, and the runs' key/values.

The only package that imports SQLAlchemy (its Core only: `models.py` says why). `Store.open(url)`
applies migrations; `Store.writer()` is the single batching writer the engine sends events to;
the rest are reads for the engine (resume) and the CLI (history), returning frozen records.
"""

from typing import TYPE_CHECKING, Any

from orchestrator.store.migrations import LATEST_VERSION
from orchestrator.store.records import (
    CallRecord,
    CostRow,
    EventRecord,
    RunRecord,
    StepRecord,
    StepSummary,
    TaskRecord,
)
from orchestrator.store.store import STALE_AFTER_S, Store

if TYPE_CHECKING:
    from orchestrator.store.writer import StoreWriter

__all__ = [
    "LATEST_VERSION",
    "STALE_AFTER_S",
    "CallRecord",
    "CostRow",
    "EventRecord",
    "RunRecord",
    "StepRecord",
    "StepSummary",
    "Store",
    "StoreWriter",
    "TaskRecord",
]


def __getattr__(name: str) -> Any:
    # the writer (and its event folding) loads only for the processes that write
    if name == "StoreWriter":
        from orchestrator.store.writer import StoreWriter

        return StoreWriter
    raise AttributeError(f"module 'orchestrator.store' has no attribute {name!r}")
