"""Settings resolution, in one place: which value of a setting a run or a task gets.

A task's settings come from, first to last: the step, its agent file, the workflow's
`defaults:`, then the layered settings (`configs/default.yaml` < project file < env < flags).
A run's limits come from the request (CLI flags), then the workflow's `limits:`, then the
settings. Pure functions: resolved once per step (not per fan-out item), tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.config import Settings
from orchestrator.contracts import TaskSpec
from orchestrator.engine.runs import RunRequest
from orchestrator.engine.warmup import choose_ttl
from orchestrator.environment import SandboxPolicy
from orchestrator.workflow import Step, Workflow


@dataclass(frozen=True, slots=True)
class RunLimits:
    concurrency: int  # workers in flight across the run
    max_workers: int  # tasks the run may create
    max_cost_usd: float | None
    max_tokens: int | None
    ask_above_usd: float | None = None  # ask a person before crossing it (kinds/ask.py)
    max_depth: int = 2  # how deep `Task` calls may nest (engine/delegation.py)
    max_children: int = 20  # `Task` calls one task may make

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "max_workers": self.max_workers,
            "max_cost_usd": self.max_cost_usd,
            "max_tokens": self.max_tokens,
            "max_depth": self.max_depth,
            "max_children": self.max_children,
        }


def run_limits(request: RunRequest, settings: Settings) -> RunLimits:
    """Flags > the workflow's `limits:` > settings (budgets have no settings default)."""
    limits = request.workflow.limits
    return RunLimits(
        concurrency=request.concurrency or limits.concurrency or settings.engine.concurrency,
        max_workers=request.max_workers or limits.max_workers or settings.engine.max_workers,
        max_cost_usd=(
            request.max_cost_usd if request.max_cost_usd is not None else limits.max_cost_usd
        ),
        max_tokens=request.max_tokens if request.max_tokens is not None else limits.max_tokens,
        ask_above_usd=limits.ask_above_usd,
        max_depth=limits.max_depth if limits.max_depth is not None else 2,
        max_children=limits.max_children if limits.max_children is not None else 20,
    )


def retries(step: Step, workflow: Workflow, settings: Settings) -> int:
    """How often a failed task is tried again (and how many schema repairs a worker makes)."""
    if step.retries is not None:
        return int(step.retries)
    if workflow.defaults.retries is not None:
        return int(workflow.defaults.retries)
    return settings.engine.retries


def timeout(step: Step, workflow: Workflow, settings: Settings) -> float:
    """Seconds one attempt of a task may take."""
    return step.timeout or workflow.defaults.timeout or settings.engine.timeout


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """An agent step's settings, resolved; every task of the step shares them."""

    agent: str | None
    model: str  # a full model id
    system: str | None  # the agent's body, then the step's `system`
    tools: tuple[str | dict[str, Any], ...]  # the step's, or else the agent's
    max_tokens: int
    stream: bool
    max_turns: int
    retries: int
    timeout_s: float
    cache_ttl: str | None  # fan-out items share a cacheable prefix (loop steps: kinds/agent.py)
    sandbox: dict[str, Any]  # the SandboxPolicy Bash runs under
    runtime: str = "api"  # step > agent > defaults: "api" | "claude-code"
    mcp_servers: tuple[tuple[str, Any], ...] = ()  # workflow < agent < step, by server name
    fallback_models: tuple[str, ...] = ()  # `model: [a, b]`: full ids after the first
    resources: dict[str, Any] | None = None  # step's, else the agent's (the Ray executor's)


def sandbox(step: Step, settings: Settings) -> SandboxPolicy:
    """`sandbox:` on a step overrides the settings' (the loader normalises it: step_sandbox)."""
    return settings.sandbox.override(getattr(step, "sandbox", None))


def task_settings(step: Step, workflow: Workflow, settings: Settings) -> TaskSettings:
    """Step > agent > workflow defaults > settings. Raises `UsageError` for an unknown agent."""
    defaults = workflow.defaults
    engine = settings.engine
    agent = workflow.resolve_agent(step.agent) if step.agent else None
    chosen = step.model or (agent.model if agent else None) or defaults.model or engine.model
    names = chosen if isinstance(chosen, list) else [chosen]
    model, *fallbacks = [settings.resolve_model(name) for name in names]
    systems = [s for s in ((agent.system if agent else None), step.system) if s]
    # A step's `tools:` replace its agent's, so a step can narrow what an agent may do.
    tools: list[str | dict[str, Any]] = []
    if step.tools is not None:
        tools = list(step.tools)
    elif agent is not None:
        tools = list(agent.tools or [])
    max_tokens = (
        step.max_tokens
        or (agent.max_tokens if agent else None)
        or defaults.max_tokens
        or engine.max_tokens
    )
    cache_on = step.for_each is not None and settings.cache.enabled
    runtime = step.runtime or (agent.runtime if agent else None) or defaults.runtime or "api"
    resources = (
        step.resources if step.resources is not None else (agent.resources if agent else None)
    )
    servers = {**workflow.mcp_servers, **(agent.mcp_servers if agent else {}), **step.mcp_servers}
    return TaskSettings(
        agent=agent.name if agent else None,
        model=model,
        system="\n\n".join(s.strip() for s in systems) or None,
        tools=tuple(tools),
        max_tokens=max_tokens,
        stream=max_tokens > engine.stream_above_max_tokens,
        max_turns=step.max_turns or defaults.max_turns or engine.max_turns,
        retries=retries(step, workflow, settings),
        timeout_s=timeout(step, workflow, settings),
        cache_ttl=choose_ttl(settings.cache.ttl, None)[0] if cache_on else None,
        runtime=runtime,
        mcp_servers=tuple(servers.items()),
        sandbox=sandbox(step, settings).to_dict(),
        fallback_models=tuple(fallbacks),
        resources=resources,
    )


def task_spec(
    resolved: TaskSettings,
    step: Step,
    ctx: dict[str, Any],
    *,
    run_id: str,
    task_id: str,
    path: str,
    key: str,
    index: int | None,
    workspace: str,
) -> TaskSpec:
    """One task's spec: the step's resolved settings and its templates rendered over `ctx`."""
    assert step.prompt is not None
    return TaskSpec(
        run_id=run_id,
        task_id=task_id,
        step_id=path,
        key=key,
        index=index,
        agent=resolved.agent,
        model=resolved.model,
        fallback_models=list(resolved.fallback_models),
        system=resolved.system,
        prompt=step.prompt.render_str(ctx),
        context=step.context.render_str(ctx) if step.context is not None else None,
        max_tokens=resolved.max_tokens,
        stream=resolved.stream,
        tools=list(resolved.tools),
        output=step.output,
        max_turns=resolved.max_turns,
        retries=resolved.retries,
        timeout_s=resolved.timeout_s,
        workspace=workspace,
        cache_ttl=resolved.cache_ttl,
        runtime=resolved.runtime,
        mcp_servers=dict(resolved.mcp_servers),
        sandbox=resolved.sandbox,
        approve=step.approve,
        resources=resolved.resources,
    )
