"""What every tool is made of: a name, a description, a JSON Schema for its input and a handler.

Handlers raise `ToolError` for anything the model should read and correct (bad path, missing
file, no match); `Toolset.execute` turns that into an `is_error` result. Handlers never see input
that failed their schema: the toolset validates first and names the offending field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError


@dataclass(slots=True)
class ToolOutcome:
    """The content of one `tool_result` block."""

    content: str
    is_error: bool = False


Handler = Callable[[dict[str, Any]], Awaitable["str | ToolOutcome"]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A client tool: run by the worker, described to the API by `api_param()`."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler

    def api_param(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def object_schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A closed object schema, like Claude Code's: unknown arguments are refused by name."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def input_problems(validator: Draft202012Validator, tool_input: dict[str, Any]) -> list[str]:
    """Every way `tool_input` breaks the schema, each naming its field."""
    errors = sorted(validator.iter_errors(tool_input), key=lambda e: list(e.absolute_path))
    return [_describe(error, tool_input) for error in errors]


def _describe(error: ValidationError, tool_input: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [name for name in required if name not in error.instance]
        names = ", ".join(f"'{_join(location, name)}'" for name in missing)
        return f"missing required field {names}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        names = ", ".join(f"'{_join(location, name)}'" for name in extra)
        known = ", ".join(sorted(allowed)) or "none"
        return f"unexpected field {names} (known fields: {known})"
    if not location:
        return error.message
    return f"field '{location}': {error.message}"


def _join(location: str, name: str) -> str:
    return f"{location}.{name}" if location else name


def truncate(text: str, limit: int, *, what: str = "output") -> str:
    """Keep the first `limit` characters and say how much was cut."""
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n\n[{what} truncated: showing the first {limit} of {len(text)} characters]"
    )
