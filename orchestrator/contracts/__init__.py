"""Data and protocols that cross package boundaries, one module per concept.

- `values`: `JSON`, the alias for a JSON-compatible value.
- `tools`: the built-in tool names.
- `usage`: `Usage` (token counts in the API's own names) and `add_cost`.
- `task`: `TaskSpec` and `TaskResult`, what a worker takes and returns.
- `llm`: `LLMResponse`, `RateLimitInfo`, `BatchItem` and the `LLM` / `BatchLLM` protocols.
- `people`: `Question`, `Answer`, `Asked`, the `People` port and `ApproveFn` (questions for
  people), and `check_answer`, the one rule for which answers a question takes.
- `replay`: `RecordedCall`, `Replay`: a resumed task's recorded calls, read back in order.
- `worker`: `WorkerContext` (what the engine lends a worker), `CallFn`, `StateAccess`, `Emit`,
  `Delegate` (the engine's side of the `Task` tool).

Every name is re-exported here, so `from orchestrator.contracts import X` works for all of them.
Keeping these plain and picklable is what lets a future Ray executor run workers elsewhere.
"""

from orchestrator.contracts.llm import (
    LLM,
    BatchItem,
    BatchLLM,
    LLMResponse,
    RateLimitInfo,
    supports_batches,
)
from orchestrator.contracts.people import (
    Answer,
    ApproveFn,
    Asked,
    People,
    Question,
    check_answer,
)
from orchestrator.contracts.replay import RecordedCall, Replay, request_fingerprint
from orchestrator.contracts.task import TaskResult, TaskSpec
from orchestrator.contracts.tools import (
    BUILTIN_TOOL_NAMES,
    CLIENT_TOOLS,
    DELEGATE_TOOLS,
    SERVER_TOOLS,
)
from orchestrator.contracts.usage import Usage, add_cost
from orchestrator.contracts.values import JSON
from orchestrator.contracts.worker import (
    CallFn,
    Delegate,
    Delegated,
    Emit,
    StateAccess,
    WorkerContext,
)

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "CLIENT_TOOLS",
    "DELEGATE_TOOLS",
    "JSON",
    "LLM",
    "SERVER_TOOLS",
    "Answer",
    "ApproveFn",
    "Asked",
    "BatchItem",
    "BatchLLM",
    "CallFn",
    "Delegate",
    "Delegated",
    "Emit",
    "LLMResponse",
    "People",
    "Question",
    "RateLimitInfo",
    "RecordedCall",
    "Replay",
    "StateAccess",
    "TaskResult",
    "TaskSpec",
    "Usage",
    "WorkerContext",
    "add_cost",
    "check_answer",
    "request_fingerprint",
    "supports_batches",
]
