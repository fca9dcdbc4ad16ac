"""Agents that start agents: the engine's side of the `Task`/`Agent` tool.

A granted `Task` call of a running task (the parent) becomes a child task of the run: its own
isolated conversation with the named agent's system prompt, tools and model, started through the
run's `TaskRunner` like any task, so it is recorded (with its parent), counted against
`limits.max_workers` and every budget, and its calls pass the dispatcher (rate limits and the
run-wide concurrency window). Its final text is the tool's result.

Invariants:
- A child is named by its parent: path `lead/researcher` (under a fan-out item
  `research[3]/researcher`), index = the parent's count of `Task` calls before it, key = the
  parent's key, that path and a hash of what was asked. The same call in a resumed parent has the
  same key, so a child that succeeded is reused, one in flight replays its own calls.
- Limits answer as tool errors the model can read, never as a crash: `limits.max_depth`
  (a child of a task at depth n is at depth n + 1; step tasks are at 0), `limits.max_children`
  (per parent), `limits.max_workers`, an unknown `subagent_type` (the error lists the agents),
  a stopping run. A child that fails or is cancelled is a tool error too; the parent decides.
- A child takes no slot of the parent's fan-out: the parent holds its own while it waits, and a
  child that needed one could wait on its parent forever. Concurrency is still bounded: every
  model call waits for the dispatcher's run-wide window (`limits.concurrency`).
- A child that waits for a person makes its parent wait (`Waiting`): resume picks both up.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from typing import Any

from orchestrator.contracts import Delegated, TaskSpec
from orchestrator.engine.attempts import Prepared
from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import item_hash
from orchestrator.errors import Waiting
from orchestrator.names import did_you_mean, task_label
from orchestrator.states import TaskStatus
from orchestrator.workflow import AgentDef, Workflow
from orchestrator.workflow.agents import agent_dirs, scan_agents

__all__ = ["Delegator", "child_key", "child_path"]


def child_path(parent: TaskSpec, agent: str) -> str:
    """`lead/researcher`; under a fan-out item `research[3]/researcher`."""
    return f"{task_label(parent.step_id, parent.index)}/{agent}"


def child_key(parent: TaskSpec, agent: str, number: int, asked: Any) -> str:
    """The child's task key: its parent's key, its path in the parent and what it was asked."""
    return f"{parent.key}/{agent}[{number}]:{item_hash(asked)}"


class Delegator:
    """`WorkerContext.delegate` for one run (see the module docstring)."""

    def __init__(self, run: RunContext, workflow: Workflow) -> None:
        self.run = run
        self.workflow = workflow
        self._agents: dict[str, AgentDef] | None = None

    def _known(self) -> dict[str, AgentDef]:
        """Every agent a `subagent_type` may name: the workflow's own (inline, or files its
        steps name), then every other agent file that loads where the loader looks. Read once,
        when the first worker granted `Task` starts."""
        if self._agents is None:
            default_tools = self.run.settings.agents.default_tools
            found, _problems = scan_agents(  # their problems were the loader's to report
                agent_dirs(self.workflow.path), default_tools=default_tools
            )
            # files by front-matter name, then what the loader resolved, then inline agents
            self._agents = {**found, **self.workflow.resolved_agents, **self.workflow.agents}
        return self._agents

    def agents(self) -> dict[str, str | None]:
        return {name: agent.description for name, agent in sorted(self._known().items())}

    async def __call__(
        self, parent: TaskSpec, number: int, tool_input: dict[str, Any]
    ) -> Delegated:
        run = self.run
        limits = run.limits
        prompt = tool_input.get("prompt")
        kind = tool_input.get("subagent_type")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error("'prompt' is required: the whole task for the agent, on its own")
        if not isinstance(kind, str) or not kind.strip():
            return _error(f"'subagent_type' is required; agents available: {self._listing()}")
        if parent.depth + 1 > limits.max_depth:
            return _error(
                f"agents may start agents only {limits.max_depth} level(s) deep "
                f"(limits.max_depth) and this one is at depth {parent.depth}: do this part "
                "yourself"
            )
        if number >= limits.max_children:
            return _error(
                f"this agent already started {limits.max_children} agents, the most one may "
                "(limits.max_children): go on with the results you have"
            )
        agent = self._known().get(kind)
        if agent is None:
            hint = did_you_mean(kind, self._known())
            return _error(
                f"unknown subagent_type '{kind}'{hint}; agents available: {self._listing()}"
            )
        asked = tool_input.get("model")
        named = asked.strip() if isinstance(asked, str) and asked.strip() else agent.model
        # no model named by the call or the agent (`inherit`): the parent's, fallbacks and all;
        # an agent's `model: [a, b]` falls back as a step's does
        if named:
            model, *rest = [
                run.settings.resolve_model(n)
                for n in (named if isinstance(named, list) else [named])
            ]
            fallbacks = tuple(rest)
        else:
            model, fallbacks = parent.model, tuple(parent.fallback_models)
        if run.stop.reason:
            return _error(f"the run is stopping ({run.stop.reason}): no new agent starts")
        problem = run.claim_tasks(1, fanout=False)
        if problem is not None:
            return _error(f"{problem}: no new agent starts")
        path = child_path(parent, agent.name)
        key = child_key(parent, agent.name, number, [agent.name, prompt, model])
        prepare = partial(
            self._prepare, parent, agent, prompt, (model, *fallbacks), path, key, number
        )
        outcome = await run.tasks.run(
            path=path,
            key=key,
            index=number,
            iteration=None,
            prepare=prepare,
            parent_id=parent.task_id,
        )
        label = task_label(path, number)
        if outcome.status == TaskStatus.SUCCEEDED:
            out = outcome.output
            return Delegated(out if isinstance(out, str) else json.dumps(out, default=str))
        if outcome.status == TaskStatus.WAITING:
            raise Waiting(f"agent {label} waits for a person: {outcome.error}")
        if outcome.status == TaskStatus.CANCELLED:
            return _error(f"agent {label} was stopped before it finished ({outcome.error})")
        return _error(f"agent {label} failed: {outcome.error}")

    def _listing(self) -> str:
        return ", ".join(self._known()) or "none (add agents/NAME.md files or an agents: map)"

    def _prepare(
        self,
        parent: TaskSpec,
        agent: AgentDef,
        prompt: str,
        models: tuple[str, ...],  # the model, then its fallbacks
        path: str,
        key: str,
        number: int,
        task_id: str,
    ) -> Prepared:
        run = self.run
        model, *fallbacks = models
        settings = run.settings
        defaults = self.workflow.defaults
        engine = settings.engine
        max_tokens = agent.max_tokens or defaults.max_tokens or engine.max_tokens
        retries = defaults.retries if defaults.retries is not None else engine.retries
        timeout_s = defaults.timeout or engine.timeout
        spec = TaskSpec(
            run_id=parent.run_id,
            task_id=task_id,
            step_id=path,
            key=key,
            index=number,
            agent=agent.name,
            model=model,
            fallback_models=fallbacks,
            system=agent.system.strip() or None,
            prompt=prompt,
            max_tokens=max_tokens,
            stream=max_tokens > engine.stream_above_max_tokens,
            tools=list(agent.tools or []),
            max_turns=defaults.max_turns or engine.max_turns,
            retries=retries,
            timeout_s=timeout_s,
            workspace=parent.workspace,
            runtime=agent.runtime or "api",
            mcp_servers=dict(agent.mcp_servers),
            sandbox=parent.sandbox,
            approve=parent.approve,  # what needs a person for the parent does for its agents
            depth=parent.depth + 1,
            parent_id=parent.task_id,
        )
        lent = run.worker_ctx
        replay = run.tasks.replay_for(key)
        if replay is not None:
            lent = replace(lent, replay=replay)
        return Prepared(
            prompt=prompt,
            attempt=partial(run.worker, spec, lent),
            retries=retries,
            timeout_s=timeout_s,
            agent=agent.name,
            model=model,
            system=spec.system,
        )


def _error(message: str) -> Delegated:
    return Delegated(f"Task: {message}", is_error=True)
