"""The workflow language as data: what the loader builds and the engine reads.

These models are built by `loader.load_workflow` after it has validated the YAML by hand (so every
error carries a line and a column); they are not meant to be validated from raw dicts. Templates
are compiled once, here, and `Step.deps` already holds the step's same-scope dependencies.

The fields are written out (not generated from `language.py`) so that mypy --strict and a reader
see each one's type; `tests/workflow/test_language.py` holds them to the table: every key is a
field (`as` -> `as_`, `from` -> `from_`), every other field is one the loader derives (`kind`,
`deps`...), and every `Literal` lists the table's choices.
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cronsim import CronSim
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import Diagnostic, UsageError
from orchestrator.names import did_you_mean
from orchestrator.workflow.templates import Template

__all__ = [
    "AgentDef",
    "BudgetSpec",
    "Defaults",
    "GroupSpec",
    "InputSpec",
    "Limits",
    "LoopSpec",
    "Notify",
    "Step",
    "StepKind",
    "Workflow",
]

StepKind = Literal["agent", "merge", "run", "loop", "workflow", "set", "group", "ask"]
InputType = Literal["string", "integer", "number", "boolean", "array", "object"]
MergeKind = Literal["concat", "flatten", "object", "unique", "vote", "branches"]
Runtime = Literal["api", "claude-code"]
_MISSING: Any = object()
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class InputSpec(_Model):
    type: InputType = "string"
    description: str | None = None
    default: Any = None
    has_default: bool = False
    enum: list[Any] | None = None

    @property
    def required(self) -> bool:
        return not self.has_default

    def coerce(self, name: str, value: Any) -> Any:
        """A raw value (a string from `--input k=v`, or a native value) -> the declared type."""
        out = _coerce(self.type, value)
        if out is _MISSING:
            shown = value if not isinstance(value, str) else repr(value)
            raise UsageError(f"input '{name}': expected {self.type}, got {shown}")
        if self.enum is not None and out not in self.enum:
            choices = ", ".join(json.dumps(choice) for choice in self.enum)
            raise UsageError(f"input '{name}': {json.dumps(out)} is not one of {choices}")
        return out


def _coerce(kind: str, value: Any) -> Any:
    if kind == "string":
        return value if isinstance(value, str) else _MISSING
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        return _MISSING
    if kind == "integer":
        if isinstance(value, bool):
            return _MISSING
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _MISSING
        return _MISSING
    if kind == "number":
        if isinstance(value, bool):
            return _MISSING
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return _MISSING
            return int(number) if number.is_integer() and "." not in value else number
        return _MISSING
    wanted: type = list if kind == "array" else dict
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return _MISSING
    return value if isinstance(value, wanted) else _MISSING


class Defaults(_Model):
    """Defaults for every agent step; None means "use the settings"."""

    model: str | list[str] | None = None  # a list: the first, then fallbacks on overload
    max_tokens: int | None = None
    timeout: float | None = None  # seconds
    retries: int | None = None
    max_turns: int | None = None
    runtime: Runtime | None = None


class Limits(_Model):
    concurrency: int | None = None
    max_workers: int | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    ask_above_usd: float | None = None
    max_depth: int | None = None  # how deep `Task` calls may nest (default 2)
    max_children: int | None = None  # `Task` calls one task may make (default 20)


class BudgetSpec(_Model):
    """A step's `budget:`: what the step (its items, iterations and body) may spend."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None


class Notify(_Model):
    """Who hears of a question that starts waiting: a command (the question as JSON on its
    stdin) and/or a URL (the same JSON POSTed)."""

    command: str | None = None
    url: str | None = None


class AgentDef(_Model):
    """An agent: a Claude Code subagent file (`agents/NAME.md`) or an inline `agents:` entry.

    `tools` None means the file names none and the agent inherits the default set
    (`agents.default_tools` in the settings; the loader fills it in and sets `inherited_tools`);
    `[]` means no tools. A step's own `tools:` replace the agent's. `model` None means inherit
    (the step's or the workflow's default)."""

    name: str
    description: str | None = None
    model: str | list[str] | None = None  # a list: the first, then fallbacks on overload
    tools: list[str | dict[str, Any]] | None = None
    inherited_tools: bool = False
    max_tokens: int | None = None
    runtime: Runtime | None = None
    mcp_servers: dict[str, Any] = Field(default_factory=dict)
    resources: dict[str, Any] | None = None  # Ray's names (`--executor ray`)
    system: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)
    path: Path | None = None


class LoopSpec(_Model):
    steps: list[Step]
    until: Template | None = None
    # a Template renders to the cap when the loop starts; None: only max_duration bounds it
    max_iterations: int | Template | None
    max_duration: float | None = None  # seconds
    on_exhausted: Literal["succeed", "fail"] = "succeed"
    parallel: bool = False


class GroupSpec(_Model):
    steps: list[Step]


class Step(_Model):
    """One step. `kind` is derived from its keys; fields of other kinds stay at their defaults."""

    id: str
    kind: StepKind
    description: str | None = None
    needs: list[str] = Field(default_factory=list)
    when: Template | None = None
    deps: frozenset[str] = frozenset()
    # Dependencies only of order (a loop body's step on the one before it): a skipped one does
    # not skip this step, as a skipped data dependency does. A subset of `deps`.
    after: frozenset[str] = frozenset()
    # Settings written as templates (`model: "{{ item.model }}"`), by key; rendered per task and
    # checked before anything is sent. The key's own field stays at its default.
    dynamic: dict[str, Template] = Field(default_factory=dict)
    # fan-out
    for_each: Template | None = None
    as_: str = "item"
    where: Template | None = None
    index_as: str | None = None
    concurrency: int | None = None
    on_item_error: Literal["fail", "skip"] = "fail"
    timeout: float | None = None
    retries: int | None = None
    budget: BudgetSpec | None = None
    # agent
    prompt: Template | None = None
    agent: str | None = None
    system: str | None = None
    model: str | list[str] | None = None  # a list: the first, then fallbacks on overload
    max_tokens: int | None = None
    tools: list[str | dict[str, Any]] | None = None  # None: the agent's (or none)
    output: Literal["text", "json"] | dict[str, Any] | None = None
    max_turns: int | None = None
    context: Template | None = None
    batch: bool = False
    runtime: Runtime | None = None  # None: the agent's, then defaults.runtime, then "api"
    isolation: Literal["none", "worktree"] = "none"
    mcp_servers: dict[str, Any] = Field(default_factory=dict)
    approve: list[str] | None = None  # tool names, or ["all"]
    resources: dict[str, Any] | None = None  # None: the agent's; Ray's names (`--executor ray`)
    sandbox: dict[str, Any] | None = None  # agent and run steps: environment.step_sandbox's keys
    # merge
    merge: MergeKind | None = None
    from_: str | None = None
    by: str | None = None
    separator: str = "\n\n"
    into: str | None = None
    on_conflict: Literal["report", "fail"] = "report"
    # run
    run: Template | None = None
    allow_failure: bool = False
    # loop
    loop: LoopSpec | None = None
    # ask
    ask: Template | None = None
    options: list[str] | None = None
    # workflow
    workflow: str | None = None
    inputs: dict[str, Template] = Field(default_factory=dict)
    sub: Workflow | None = None
    # set
    set_: Template | None = None
    to_state: str | None = None
    # group
    group: GroupSpec | None = None
    # where it was written
    line: int = 0
    col: int = 0

    @property
    def is_fan_out(self) -> bool:
        return self.for_each is not None

    @property
    def body(self) -> list[Step]:
        """The steps of a loop's or a group's body (empty for other kinds)."""
        if self.loop is not None:
            return self.loop.steps
        if self.group is not None:
            return self.group.steps
        return []

    def templates(self) -> list[Template]:
        """Every template of this step itself (not of a loop's or a group's body)."""
        found = [
            self.when,
            self.for_each,
            self.where,
            self.prompt,
            self.context,
            self.run,
            self.ask,
        ]
        found.append(self.set_)
        found.extend(self.inputs.values())
        found.extend(self.dynamic.values())
        if self.loop is not None:
            found.append(self.loop.until)
            if isinstance(self.loop.max_iterations, Template):
                found.append(self.loop.max_iterations)
        return [t for t in found if t is not None]


class Schedule(_Model):
    """`schedule:`: exactly one of `every` (seconds) and `cron`, checked by the loader."""

    every: float | None = None
    cron: str | None = None
    timezone: str | None = None

    def period_s(self) -> float:
        """Seconds between two runs: `every`, or a cron's shortest gap over its next slots
        (counted in UTC: the gap, not the wall time, is what a cache TTL sees)."""
        if self.every is not None:
            return float(self.every)
        assert self.cron is not None
        slots = CronSim(self.cron, datetime(2026, 1, 5, tzinfo=UTC))  # a Monday: any fixed start
        times = [next(slots).timestamp() for _ in range(48)]
        return min(b - a for a, b in itertools.pairwise(times))


class Workflow(_Model):
    version: int = 1
    name: str
    description: str | None = None
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    limits: Limits = Field(default_factory=Limits)
    env: list[str] = Field(default_factory=list)
    agents: dict[str, AgentDef] = Field(default_factory=dict)
    resolved_agents: dict[str, AgentDef] = Field(default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    outputs: dict[str, Template] = Field(default_factory=dict)
    workspace: str | None = None
    mcp_servers: dict[str, Any] = Field(default_factory=dict)
    notify: Notify = Field(default_factory=Notify)
    state_scope: str | None = None  # as written: "workflow" or a scope name
    schedule: Schedule | None = None
    overlap: Literal["skip", "queue", "allow"] = "skip"
    path: Path = Path("workflow.yaml")
    source_text: str = ""
    warnings: list[Diagnostic] = Field(default_factory=list)

    @property
    def state_scope_name(self) -> str | None:
        """The scope this workflow's state lives in, or None for a run's own state."""
        if self.state_scope is None:
            return None
        return self.name if self.state_scope == "workflow" else self.state_scope

    def step(self, id: str) -> Step:  # noqa: A002 - the language calls it `id`
        """A top-level step by id, or a nested one by path (`polish.draft`)."""
        steps = self.steps
        found: Step | None = None
        for part in id.split("."):
            found = next((s for s in steps if s.id == part), None)
            if found is None:
                raise KeyError(id)
            steps = found.body
        assert found is not None
        return found

    def iter_steps(self) -> list[tuple[str, Step]]:
        """Every step with its path, loop and group bodies included, in file order."""
        out: list[tuple[str, Step]] = []

        def walk(steps: list[Step], prefix: str) -> None:
            for s in steps:
                out.append((prefix + s.id, s))
                walk(s.body, f"{prefix}{s.id}.")

        walk(self.steps, "")
        return out

    def resolve_agent(self, name: str) -> AgentDef:
        """An agent named by a step (resolved at load: inline `agents:` first, then files)."""
        agent = self.resolved_agents.get(name) or self.agents.get(name)
        if agent is None:
            raise UsageError(f"unknown agent '{name}'")
        return agent

    def coerce_inputs(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Type-check and convert run inputs, apply defaults. Raises `UsageError` naming the
        input on an unknown, missing or mistyped one."""
        out: dict[str, Any] = {}
        for name, value in raw.items():
            spec = self.inputs.get(name)
            if spec is None:
                hint = did_you_mean(name, self.inputs)
                known = ", ".join(self.inputs) or "none"
                raise UsageError(
                    f"unknown input '{name}'{hint}; workflow '{self.name}' takes: {known}"
                )
            out[name] = spec.coerce(name, value)
        for name, spec in self.inputs.items():
            if name in out:
                continue
            if spec.has_default:
                out[name] = copy.deepcopy(spec.default)
            else:
                raise UsageError(f"missing required input '{name}' (pass --input {name}=...)")
        return out


LoopSpec.model_rebuild()
GroupSpec.model_rebuild()
Step.model_rebuild()
Workflow.model_rebuild()
