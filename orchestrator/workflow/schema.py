"""The JSON Schema of the workflow language, for editors (yaml-language-server) and tools.

Derived from the table in `language.py`: each key's type gives its schema, its doc the
description, its default and choices the `default` and `enum`. It describes the shape only; the
loader checks what a schema cannot (references, cycles, agents, template syntax) and reports it
with positions. Tested against every example workflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from orchestrator.contracts import BUILTIN_TOOL_NAMES
from orchestrator.tool_names import MCP_TOOL_PATTERN, PYTHON_TOOL_PATTERN, RULE_TOOLS
from orchestrator.workflow.language import (
    AGENT,
    FAN_OUT,
    ID_PATTERN,
    INPUT,
    INPUT_TYPES,
    KINDS,
    NAME_PATTERN,
    STEP_COMMON,
    TOP,
    Key,
)

__all__ = ["language_schema", "step_properties"]

_DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ],
}
_DURATION_DOC = "A duration: 30s, 5m, 1h, 200ms, or a number of seconds."
_TEMPLATE: dict[str, Any] = {"type": "string"}
_TEMPLATE_DOC = "A sandboxed Jinja2 template; exactly one {{ expr }} gives a native value."
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_STEPS: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}}
_PYTHON_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["python"],
    "additionalProperties": False,
    "properties": {"python": {"type": "string", "pattern": PYTHON_TOOL_PATTERN}},
}
_RULE: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\s*(" + "|".join(RULE_TOOLS) + r")\(.*\)\s*$",
    "description": "A Claude Code permission rule: Bash(git diff:*), Bash(npm test), Read(src/**).",
}
_LIMITED_TOOL: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "propertyNames": {"enum": list(BUILTIN_TOOL_NAMES)},
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "allow": {"type": "array", "items": {"type": "string"}},
            "max_calls": {"type": "integer", "minimum": 1},
        },
    },
}
_MCP_TOOL: dict[str, Any] = {"type": "string", "pattern": MCP_TOOL_PATTERN}  # mcp_servers' tools
_TOOL_ENTRY: dict[str, Any] = {
    "anyOf": [{"enum": list(BUILTIN_TOOL_NAMES)}, _RULE, _MCP_TOOL, _PYTHON_TOOL, _LIMITED_TOOL]
}


def _mapping(keys: Iterable[Key]) -> dict[str, Any]:
    keys = list(keys)
    out: dict[str, Any] = {"type": "object"}
    required = [key.name for key in keys if key.required]
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    out["properties"] = {key.name: key_schema(key) for key in keys}
    return out


_BY_TYPE: dict[str, Callable[[Key], dict[str, Any]]] = {
    "string": lambda key: {"type": "string"},
    "nonempty": lambda key: {"type": "string", "minLength": 1},
    "integer": lambda key: {
        "type": "integer",
        "minimum": 1 if key.minimum is None else key.minimum,
    },
    "number": lambda key: {"type": "number", "exclusiveMinimum": 0},
    "boolean": lambda key: {"type": "boolean"},
    "duration": lambda key: dict(_DURATION),
    "choice": lambda key: {"enum": list(key.choices)},
    "version": lambda key: {"const": 1},
    "id": lambda key: {"type": "string", "pattern": ID_PATTERN},
    "name": lambda key: {"type": "string", "pattern": NAME_PATTERN},
    "names": lambda key: {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN}},
    "step_id": lambda key: {"type": "string", "pattern": ID_PATTERN},
    "step_ids": lambda key: {"anyOf": [{"type": "string"}, _STRINGS]},
    "template": lambda key: dict(_TEMPLATE),
    "expression": lambda key: {"anyOf": [_TEMPLATE, {"type": "boolean"}]},
    "expressions": lambda key: {"type": "object", "propertyNames": {"pattern": NAME_PATTERN}},
    "items": lambda key: {"anyOf": [{"type": "array"}, _TEMPLATE]},
    "count": lambda key: {"anyOf": [{"type": "integer", "minimum": 1}, _TEMPLATE]},
    "tools": lambda key: {"type": "array", "items": _TOOL_ENTRY},
    "approve": lambda key: {"anyOf": [{"const": "all"}, _STRINGS]},
    "options": lambda key: {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string"},
    },
    "output": lambda key: {"anyOf": [{"enum": ["text", "json"]}, {"type": "object"}]},
    "run_output": lambda key: {"enum": ["text", "json"]},
    "steps": lambda key: dict(_STEPS),
    "loop": lambda key: _mapping(key.keys),
    "group": lambda key: _mapping(key.keys),
    "section": lambda key: _mapping(key.keys),
    "inputs": lambda key: {
        "type": "object",
        "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {"$ref": "#/$defs/input"},
    },
    "agents": lambda key: {"type": "object", "additionalProperties": {"$ref": "#/$defs/agent"}},
    "agent_tools": lambda key: {
        "anyOf": [{"type": "string"}, {"type": "array", "items": _TOOL_ENTRY}]
    },
    "list": lambda key: {"type": "array", "minItems": 1},
    "models": lambda key: {
        "anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]
    },
    "any": lambda key: {},
    "mcp_servers": lambda key: {"type": "object", "additionalProperties": {"type": "object"}},
    "resources": lambda key: {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "num_cpus": {"type": "number", "minimum": 0},
            "num_gpus": {"type": "number", "minimum": 0},
            "memory": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
        },
    },
    "sandbox": lambda key: {
        "anyOf": [
            {"enum": ["auto", "on", "off", True, False]},
            {
                "type": "object",
                "properties": {
                    "mode": {"enum": ["auto", "on", "off", True, False]},
                    "network": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
        ]
    },
}
_TYPE_DOCS = {"duration": _DURATION_DOC, "template": _TEMPLATE_DOC}


def key_schema(key: Key) -> dict[str, Any]:
    """The schema of one key's value, with its doc and default."""
    templated = "May be a {{ template }}, rendered per task (per item in a fan-out)."
    docs = (key.doc, _TYPE_DOCS.get(key.type), templated if key.templated else None)
    out = {"description": " ".join(filter(None, docs))}
    shape = _BY_TYPE[key.type](key)
    if key.templated and shape.get("type") != "string":
        # `max_tokens: "{{ item.budget }}"`: a template, rendered per task
        shape = {"anyOf": [*shape.get("anyOf", [shape]), _TEMPLATE]}
    out.update(shape)
    if key.default is not None:
        out["default"] = key.default
    return out


def step_properties() -> dict[str, dict[str, Any]]:
    """Every step key -> its schema. A key two kinds define differently (`output`: a JSON Schema
    on an agent step, not on a run step) accepts any of the definitions, with the first one's
    doc; the loader tells the kinds apart."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key in (*STEP_COMMON, *FAN_OUT, *(key for kind in KINDS for key in kind.keys)):
        found.setdefault(key.name, []).append(key_schema(key))
    out: dict[str, dict[str, Any]] = {}
    for name, schemas in found.items():
        if len(schemas) == 1:
            out[name] = schemas[0]
            continue
        choices: list[dict[str, Any]] = []
        for schema in schemas:
            shape = {k: v for k, v in schema.items() if k not in ("description", "default")}
            for choice in shape["anyOf"] if list(shape) == ["anyOf"] else [shape]:
                if choice not in choices:
                    choices.append(choice)
        out[name] = {"description": schemas[0]["description"], "anyOf": choices}
    return out


def language_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a version-1 workflow file."""
    step = {
        "type": "object",
        "required": [key.name for key in STEP_COMMON if key.required],
        "additionalProperties": False,
        "properties": step_properties(),
        "oneOf": [{"required": [kind.marker]} for kind in KINDS],
    }
    input_spec = {
        "anyOf": [{"enum": list(INPUT_TYPES)}, _mapping(INPUT), {"type": "null"}],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://orchestrate.dev/schema/workflow-v1.json",
        "title": "orchestrate workflow (version 1)",
        **_mapping(TOP),
        "$defs": {"step": step, "input": input_spec, "agent": _mapping(AGENT)},
    }
