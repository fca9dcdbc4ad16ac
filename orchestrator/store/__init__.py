"""The shared state store: every run, step, task, call and event, and the runs' key/values.

The only package that imports sqlmodel/sqlalchemy. `Store.open(url)` applies migrations;
`Store.writer()` is the single batching writer the engine sends events to; the rest are reads
for the engine (resume) and the CLI (history), returning frozen records.
"""

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
