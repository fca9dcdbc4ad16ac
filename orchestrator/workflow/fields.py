"""Key and scalar checks, driven by the language table.

`unknown_keys` refuses a key the table does not list (with "did you mean"); `convert` checks and
converts a value of a simple type (string, integer, number, boolean, duration, choice) from its
`Key` alone; `section` does both for a mapping of simple keys (`defaults:`, `limits:`). Each
returns None for an absent or rejected value, having recorded the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.config import parse_duration
from orchestrator.names import did_you_mean
from orchestrator.workflow._context import LoadContext
from orchestrator.workflow._yaml import Path_
from orchestrator.workflow.language import SIMPLE_TYPES, Key
from orchestrator.workflow.mcp import mcp_problems

__all__ = [
    "boolean",
    "choice",
    "convert",
    "duration",
    "expect_mapping",
    "integer",
    "model_names_problem",
    "models",
    "number",
    "read_mcp_servers",
    "section",
    "string",
    "unknown_keys",
]


def unknown_keys(
    ctx: LoadContext, data: dict[str, Any], path: Path_, allowed: Sequence[str], where: str
) -> None:
    for key in data:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            ctx.err((*path, key), f"{where}unknown key '{key}'{hint}", key=True)


def read_mcp_servers(ctx: LoadContext, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
    """An `mcp_servers:` mapping (see `workflow/mcp.py`), or None with its errors recorded."""
    if value is None:
        return None
    problems = mcp_problems(value)
    for below, message in problems:
        ctx.err((*path, *below), f"{what}: {message}")
    return None if problems else dict(value)


def expect_mapping(ctx: LoadContext, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
    """`value` as a mapping ({} when absent); None, with an error, when it is something else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.err(path, f"{what} must be a mapping")
        return None
    return value


def convert(ctx: LoadContext, key: Key, value: Any, path: Path_, what: str) -> Any:
    """A value of a simple-typed key, checked and converted (None when absent or rejected)."""
    if key.type == "string":
        return string(ctx, value, path, what)
    if key.type == "integer":
        return integer(ctx, value, path, what, 1 if key.minimum is None else key.minimum)
    if key.type == "number":
        return number(ctx, value, path, what)
    if key.type == "boolean":
        return boolean(ctx, value, path, what)
    if key.type == "duration":
        return duration(ctx, value, path, what)
    if key.type == "choice":
        return choice(ctx, value, path, what, key.choices)
    if key.type == "models":
        return models(ctx, value, path, what)
    raise AssertionError(f"'{key.name}' is of type {key.type}, not one of {sorted(SIMPLE_TYPES)}")


def section(
    ctx: LoadContext, raw: Any, path: Path_, keys: Sequence[Key], name: str
) -> dict[str, Any]:
    """A mapping of simple keys (`defaults:`): model field -> converted value, for those given."""
    data = expect_mapping(ctx, raw, path, f"'{name}'") or {}
    unknown_keys(ctx, data, path, [key.name for key in keys], f"{name}: ")
    out: dict[str, Any] = {}
    for key in keys:
        value = convert(ctx, key, data.get(key.name), (*path, key.name), f"{name}.{key.name}")
        if value is not None:
            out[key.field] = value
    return out


_MODELS_FIX = "name one model (sonnet) or a list to fall back through ([opus, sonnet])"


def model_names_problem(value: Any, what: str) -> tuple[int | None, str] | None:
    """What is wrong with a list of model names as `model:` takes it, or None: (index of the
    bad entry or None for the whole list, message naming the fix)."""
    if not value:
        return None, f"{what} is an empty list: {_MODELS_FIX}"
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name.strip():
            return index, f"{what}[{index}] must be a model name, got {name!r}: {_MODELS_FIX}"
        if name.strip() == "inherit":
            return index, (
                f"{what}[{index}]: 'inherit' cannot be in a list; write model: inherit alone"
            )
    if len(set(value)) != len(value):
        return None, f"{what} names a model twice: {value!r}; list each model once"
    return None


def models(ctx: LoadContext, value: Any, path: Path_, what: str) -> str | list[str] | None:
    """A model name, or a non-empty list of distinct names (the first, then fallbacks on
    overload); a one-name list is that name."""
    if value is None or isinstance(value, str):
        return string(ctx, value, path, what)
    if not isinstance(value, list):
        ctx.err(path, f"{what} must be a model name or a list of them, got {value!r}")
        return None
    problem = model_names_problem(value, what)
    if problem is not None:
        index, message = problem
        ctx.err(path if index is None else (*path, index), message)
        return None
    return value[0] if len(value) == 1 else list(value)


def string(ctx: LoadContext, value: Any, path: Path_, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        ctx.err(path, f"{what} must be a string")
        return None
    return value


def integer(ctx: LoadContext, value: Any, path: Path_, what: str, minimum: int = 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.err(path, f"{what} must be an integer, got {value!r}")
        return None
    if value < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        ctx.err(path, f"{what} must be {bound}, got {value}")
        return None
    return value


def number(ctx: LoadContext, value: Any, path: Path_, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.err(path, f"{what} must be a number, got {value!r}")
        return None
    if value <= 0:
        ctx.err(path, f"{what} must be positive, got {value}")
        return None
    return float(value)


def boolean(ctx: LoadContext, value: Any, path: Path_, what: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        ctx.err(path, f"{what} must be true or false, got {value!r}")
        return None
    return value


def duration(ctx: LoadContext, value: Any, path: Path_, what: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        ctx.err(path, f"{what}: not a duration: {value!r} (use e.g. 30s, 5m, 1h)")
        return None
    if seconds <= 0:
        ctx.err(path, f"{what} must be positive, got {value!r}")
        return None
    return seconds


def choice(
    ctx: LoadContext, value: Any, path: Path_, what: str, choices: Sequence[str]
) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        ctx.err(path, f"{what} must be one of {', '.join(choices)}, got {value!r}{hint}")
        return None
    return value
