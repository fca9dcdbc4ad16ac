"""orchestrate: declarative multi-agent workflows for Claude.

Public API: `run("wf.yaml", inputs={...}, simulate=True)` (or `await arun(...)`) runs a workflow
and records it in the same store as `orchestrate run`, returning its `RunOutcome` (`run_id`,
`status`, `outputs`, `error`). The parts it assembles are public too: load a workflow with
`load_workflow`, run it with `Engine` and a `RunRequest`, record it with `Store`, talk to Claude
(or the simulator) through `make_llm`; the store's typed rows (`Run`, `Task`, `Call`...) are
SQLModel classes. Names are imported on first use, so `import orchestrator` stays cheap (the
SDK alone costs seconds of CPU).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from orchestrator.errors import (
    BudgetExceeded,
    FatalError,
    OrchestrateError,
    RetryableError,
    SpecError,
    UsageError,
)

if TYPE_CHECKING:
    from orchestrator.assembly import arun, run

__version__ = "0.1.0"

_LAZY = {
    "run": "orchestrator.assembly",
    "arun": "orchestrator.assembly",
    "load_workflow": "orchestrator.workflow",
    "Workflow": "orchestrator.workflow",
    "Engine": "orchestrator.engine",
    "RunRequest": "orchestrator.engine",
    "RunOutcome": "orchestrator.engine",
    "ResumeState": "orchestrator.engine",
    "Store": "orchestrator.store",
    "make_llm": "orchestrator.llm",
    "load_settings": "orchestrator.config",
    "SimServer": "orchestrator.sim",
    "SimConfig": "orchestrator.sim",
    "build_toolset": "orchestrator.tools",
}

__all__ = [
    "BudgetExceeded",
    "Engine",
    "FatalError",
    "OrchestrateError",
    "ResumeState",
    "RetryableError",
    "RunOutcome",
    "RunRequest",
    "SimConfig",
    "SimServer",
    "SpecError",
    "Store",
    "UsageError",
    "Workflow",
    "__version__",
    "arun",
    "build_toolset",
    "load_settings",
    "load_workflow",
    "make_llm",
    "run",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    return getattr(import_module(module), name)
