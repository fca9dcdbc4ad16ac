"""Settings written as templates (`model: "{{ item.model }}"`), rendered for one task.

The loader compiles such a setting into `Step.dynamic`; here it is rendered over the task's
context (a fan-out item's, with the item in scope) and checked before anything is sent: a model
must be an alias or in the catalog (never sent as the literal template), an agent must be one the
workflow knows, `max_tokens` a positive number, `tools` valid entries, an output schema a valid
JSON Schema. A problem raises `UsageError` naming the value and the template it came from; the
result is a copy of the step with the rendered values, which settings resolution then reads as
if they had been written out.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from orchestrator.config import Settings
from orchestrator.errors import UsageError
from orchestrator.names import did_you_mean
from orchestrator.tool_names import split_tool_list, tool_entry_problem
from orchestrator.workflow import Step, Workflow

__all__ = ["rendered_step"]


def _model(value: Any, source: str, settings: Settings, workflow: Workflow) -> str:
    aliases, catalog = settings.models.aliases, settings.models.catalog
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"model {source} gave {value!r}, not a model name")
    name: str = value.strip()
    if name not in aliases and settings.resolve_model(name) not in catalog:
        hint = did_you_mean(name, [*aliases, *catalog])
        raise UsageError(
            f"model '{name}' (from {source}) is neither an alias ({', '.join(aliases)}) nor a "
            f"model in the catalog{hint}; add it under models: in orchestrate.yaml to use it"
        )
    return name


def _agent(value: Any, source: str, settings: Settings, workflow: Workflow) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"agent {source} gave {value!r}, not an agent name")
    known = {**workflow.agents, **workflow.resolved_agents}
    if value not in known:
        hint = did_you_mean(value, list(known))
        raise UsageError(f"unknown agent '{value}' (from {source}){hint}")
    return value


def _system(value: Any, source: str, settings: Settings, workflow: Workflow) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _max_tokens(value: Any, source: str, settings: Settings, workflow: Workflow) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"max_tokens {source} gave {value!r}; it must be a positive number")
    return value


def _tools(
    value: Any, source: str, settings: Settings, workflow: Workflow
) -> list[str | dict[str, Any]]:
    if isinstance(value, str):
        value = split_tool_list(value)
    if not isinstance(value, list):
        raise UsageError(f"tools {source} gave {value!r}, not a list of tools")
    for entry in value:
        problem = tool_entry_problem(entry)
        if problem is not None:
            raise UsageError(f"tools {source}: {problem}")
    return value


def _output(value: Any, source: str, settings: Settings, workflow: Workflow) -> Any:
    if value in ("text", "json", None):
        return value
    if not isinstance(value, dict):
        raise UsageError(f"output {source} gave {value!r}: expected text, json or a JSON Schema")
    try:
        validator = jsonschema.validators.validator_for(
            value, default=jsonschema.Draft202012Validator
        )
        validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"the output schema, rendered, is not valid: {exc.message}") from None
    return value


_CHECKS = {
    "model": _model,
    "agent": _agent,
    "system": _system,
    "max_tokens": _max_tokens,
    "tools": _tools,
    "output": _output,
}


def rendered_step(step: Step, ctx: dict[str, Any], settings: Settings, workflow: Workflow) -> Step:
    """`step` with its templated settings rendered over `ctx` and checked (itself if none)."""
    if not step.dynamic:
        return step
    update: dict[str, Any] = {}
    for key, template in step.dynamic.items():
        check = _CHECKS.get(key)
        if check is None:
            raise UsageError(f"'{key}' cannot be a template")
        source = f"'{' '.join(template.source.split())}'"
        update[key] = check(template.render(ctx), source, settings, workflow)
    return step.model_copy(update=update)
