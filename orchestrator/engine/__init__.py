"""The engine: the scheduler, the dispatcher, backpressure and budgets. No HTTP, no SQL."""

from orchestrator.engine.scheduler import (
    Engine,
    PriorTask,
    ResumeState,
    RunOutcome,
    RunRequest,
)

__all__ = ["Engine", "PriorTask", "ResumeState", "RunOutcome", "RunRequest"]
