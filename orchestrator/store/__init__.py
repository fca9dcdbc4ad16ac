"""The shared state store: every run, step, task, call and event, and the runs' key/values.

The only package that imports SQLModel/SQLAlchemy. The tables are SQLModel classes (`Run`,
`Step`, `Task`, `Call`, `StoredEvent`, `StateItem`, `Question`), which are also the typed rows the
read methods return; `Questions(store)` reads and writes the questions people answer.
`ScopedStore(store)` holds the state scopes that outlive a run, `ServeRuns(store)` the runs
`orchestrate serve` started. `Store.open(url)` applies migrations; `Store.writer()` is the single
batching writer the engine sends events to; the rest are reads for resume and history commands.
"""

from typing import TYPE_CHECKING, Any

from orchestrator.store.migrations import LATEST_VERSION
from orchestrator.store.models import Call, Question, Run, StateItem, Step, StoredEvent, Task
from orchestrator.store.questions import Questions
from orchestrator.store.records import Claim, CostRow, PriorResult, ResumePoint, StepSummary
from orchestrator.store.scoped import AsyncScopes, CasResult, ScopedStore, ServeRuns, Versioned
from orchestrator.store.store import STALE_AFTER_S, Store, database_exists, pid_alive

if TYPE_CHECKING:
    from orchestrator.store.writer import StoreWriter

__all__ = [
    "LATEST_VERSION",
    "STALE_AFTER_S",
    "AsyncScopes",
    "Call",
    "CasResult",
    "Claim",
    "CostRow",
    "PriorResult",
    "Question",
    "Questions",
    "ResumePoint",
    "Run",
    "ScopedStore",
    "ServeRuns",
    "StateItem",
    "Step",
    "StepSummary",
    "Store",
    "StoreWriter",
    "StoredEvent",
    "Task",
    "Versioned",
    "database_exists",
    "pid_alive",
]


def __getattr__(name: str) -> Any:
    # the writer (and its event folding) loads only for the processes that write
    if name == "StoreWriter":
        from orchestrator.store.writer import StoreWriter

        return StoreWriter
    raise AttributeError(f"module 'orchestrator.store' has no attribute {name!r}")
