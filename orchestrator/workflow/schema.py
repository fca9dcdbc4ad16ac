"""The JSON Schema of the workflow language, for editors (yaml-language-server) and tools.

It describes the shape only; the loader checks what a schema cannot (references, cycles, agents,
template syntax) and reports it with positions. Kept by hand next to the loader's key lists, and
tested against every example workflow.
"""

from __future__ import annotations

from typing import Any

from orchestrator.contracts import BUILTIN_TOOL_NAMES

__all__ = ["language_schema"]

_ID = "^[a-z_][a-z0-9_]*$"
_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
_DURATION: dict[str, Any] = {
    "description": "A duration: 30s, 5m, 1h, 200ms, or a number of seconds.",
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ],
}
_POSITIVE_INT: dict[str, Any] = {"type": "integer", "minimum": 1}
_TEMPLATE: dict[str, Any] = {
    "type": "string",
    "description": "A sandboxed Jinja2 template; exactly one {{ expr }} gives a native value.",
}


def _step_schema() -> dict[str, Any]:
    fan_out = {
        "for_each": {
            "description": "A list, or one {{ expression }} giving a list: one worker per item.",
            "anyOf": [{"type": "array"}, _TEMPLATE],
        },
        "as": {"type": "string", "pattern": _NAME, "default": "item"},
        "concurrency": _POSITIVE_INT,
        "on_item_error": {"enum": ["fail", "skip"], "default": "fail"},
    }
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": _ID, "description": "Unique in its scope."},
        "description": {"type": "string"},
        "needs": {
            "description": "Step ids this step waits for (template references count too).",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "when": {
            "description": "A false value skips the step (routing).",
            "anyOf": [_TEMPLATE, {"type": "boolean"}],
        },
        "timeout": _DURATION,
        "retries": {"type": "integer", "minimum": 0},
        **fan_out,
        "prompt": {**_TEMPLATE, "description": "Agent step: the user prompt."},
        "agent": {"type": "string", "description": "agents/NAME.md or an `agents:` entry."},
        "system": {"type": "string"},
        "model": {"type": "string", "description": "An alias (opus, sonnet, haiku) or an id."},
        "max_tokens": _POSITIVE_INT,
        "max_turns": _POSITIVE_INT,
        "tools": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"enum": list(BUILTIN_TOOL_NAMES)},
                    {
                        "type": "object",
                        "required": ["python"],
                        "additionalProperties": False,
                        "properties": {
                            "python": {
                                "type": "string",
                                "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                            }
                        },
                    },
                ]
            },
        },
        "output": {
            "description": "text (default), json, or a JSON Schema for structured output.",
            "anyOf": [{"enum": ["text", "json"]}, {"type": "object"}],
        },
        "context": {**_TEMPLATE, "description": "A block shared by every item (cached prefix)."},
        "batch": {"type": "boolean", "description": "Send items through the Batches API."},
        "merge": {"enum": ["concat", "flatten", "object", "unique", "vote"]},
        "from": {"type": "string", "pattern": _ID},
        "by": {"type": "string"},
        "separator": {"type": "string"},
        "run": {**_TEMPLATE, "description": "A shell command run in the workspace."},
        "allow_failure": {"type": "boolean"},
        "loop": {
            "type": "object",
            "required": ["steps", "max_iterations"],
            "additionalProperties": False,
            "properties": {
                "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
                "until": {"anyOf": [_TEMPLATE, {"type": "boolean"}]},
                "max_iterations": _POSITIVE_INT,
            },
        },
        "workflow": {"type": "string", "description": "A sub-workflow file, relative to this one."},
        "inputs": {"type": "object"},
    }
    kinds = ["prompt", "merge", "run", "loop", "workflow"]
    return {
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": properties,
        "oneOf": [{"required": [k]} for k in kinds],
    }


def language_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a version-1 workflow file."""
    input_spec = {
        "anyOf": [
            {"enum": ["string", "integer", "number", "boolean", "array", "object"]},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["string", "integer", "number", "boolean", "array", "object"]},
                    "description": {"type": "string"},
                    "default": {},
                    "enum": {"type": "array", "minItems": 1},
                },
            },
            {"type": "null"},
        ]
    }
    agent = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "model": {"type": "string"},
            "tools": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "max_tokens": _POSITIVE_INT,
            "system": {"type": "string"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://orchestrate.dev/schema/workflow-v1.json",
        "title": "orchestrate workflow (version 1)",
        "type": "object",
        "required": ["version", "steps"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "inputs": {
                "type": "object",
                "propertyNames": {"pattern": _NAME},
                "additionalProperties": {"$ref": "#/$defs/input"},
            },
            "defaults": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "model": {"type": "string"},
                    "max_tokens": _POSITIVE_INT,
                    "timeout": _DURATION,
                    "retries": {"type": "integer", "minimum": 0},
                    "max_turns": _POSITIVE_INT,
                },
            },
            "limits": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "concurrency": _POSITIVE_INT,
                    "max_workers": _POSITIVE_INT,
                    "max_cost_usd": {"type": "number", "exclusiveMinimum": 0},
                    "max_tokens": _POSITIVE_INT,
                },
            },
            "env": {"type": "array", "items": {"type": "string", "pattern": _NAME}},
            "agents": {"type": "object", "additionalProperties": {"$ref": "#/$defs/agent"}},
            "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
            "outputs": {"type": "object", "propertyNames": {"pattern": _NAME}},
            "workspace": {"type": "string"},
        },
        "$defs": {"step": _step_schema(), "input": input_spec, "agent": agent},
    }
