"""orchestrate: declarative multi-agent workflows for Claude.

Public API: load a workflow with `load_workflow`, run it with `Engine`. The CLI (`orchestrate`)
assembles the real store, client and simulator; library users pass their own.
"""

from orchestrator.errors import (
    BudgetExceeded,
    FatalError,
    OrchestrateError,
    RetryableError,
    SpecError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded",
    "FatalError",
    "OrchestrateError",
    "RetryableError",
    "SpecError",
    "UsageError",
    "__version__",
]
