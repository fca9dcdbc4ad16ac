"""A task as a worker sees it: the serialisable `TaskSpec` in, the `TaskResult` out.

A worker is a function of a `TaskSpec` (every template rendered, every setting resolved) that
returns a `TaskResult`. Both are plain data, so a future executor can run a worker in another
process or on another machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.contracts.usage import Usage, add_cost
from orchestrator.contracts.values import JSON


@dataclass(slots=True, kw_only=True)
class TaskSpec:
    """Everything one worker needs, rendered and resolved. Serialisable (see `to_dict`)."""

    run_id: str
    task_id: str
    step_id: str  # the step's path, e.g. "research" or "polish.draft"
    key: str  # deterministic: step path, iteration, index, item hash; resume matches on it
    index: int | None = None  # fan-out item index
    agent: str | None = None
    model: str  # a full model id (aliases already resolved)
    fallback_models: list[str] = field(default_factory=list)  # tried in turn on overload
    system: str | None = None  # agent body + step `system`
    prompt: str  # the rendered user prompt
    context: str | None = None  # a block shared by every item of a fan-out (cacheable prefix)
    max_tokens: int = 2048
    # names, rules (`Bash(git diff:*)`), {"python": "m:f"} or {Tool: {allow, max_calls}}
    tools: list[str | dict[str, Any]] = field(default_factory=list)
    output: str | dict[str, Any] | None = None  # None/"text", "json", or a JSON Schema
    max_turns: int = 20
    retries: int = 3  # repair attempts for output that fails its schema
    timeout_s: float | None = None
    workspace: str = "."
    cache_ttl: str | None = None  # "5m" | "1h" | None: mark the shared prefix with cache_control
    stream: bool | None = None  # None: decide from max_tokens
    runtime: str = "api"  # "api" (orchestrator/worker) | "claude-code" (orchestrator/runtimes)
    mcp_servers: dict[str, Any] = field(default_factory=dict)  # Claude Code's .mcp.json shape
    sandbox: dict[str, Any] | None = None  # the step's SandboxPolicy.to_dict(), for Bash
    approve: list[str] | None = None  # tools whose calls wait for a person (or ["all"])
    resources: dict[str, Any] | None = None  # Ray's names: num_cpus, num_gpus, memory
    depth: int = 0  # 0: a step's task; n: started by a `Task` call of a task at depth n - 1
    parent_id: str | None = None  # the task whose `Task` call started this one

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(slots=True, kw_only=True)
class TaskResult:
    """What a worker returns. `output` is text, parsed JSON, or schema-valid JSON."""

    output: JSON
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0  # None when a model had no price in configs
    turns: int = 0
    calls: int = 0
    stop_reason: str | None = None

    def add_spent(self, other: TaskResult) -> None:
        """Count what `other` used (tokens, cost, turns, calls) into this result: a task's
        failed attempts are paid for too."""
        self.usage.add(other.usage)
        self.cost_usd = add_cost(self.cost_usd, other.cost_usd)
        self.turns += other.turns
        self.calls += other.calls
