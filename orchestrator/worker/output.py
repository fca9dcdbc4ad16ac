"""Reading a final reply as the task's output: text, any JSON, or JSON valid against a schema.

Validators are compiled once per distinct schema (keyed by its canonical JSON), since every item
of a fan-out shares one. A problem is returned as a sentence the model can act on; the worker
sends it back for a repair.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for

from orchestrator.contracts import JSON
from orchestrator.errors import TaskFailed

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
MAX_REPORTED_ERRORS = 5


class OutputProblem(Exception):
    """The reply is not the output asked for. `str()` is what the model is told; `detail` is the
    same problem in words for a person (used when repairs run out)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@lru_cache(maxsize=256)
def _compiled(canonical: str) -> Any:
    schema = json.loads(canonical)
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise TaskFailed(f"the step's output schema is invalid: {exc.message}") from None
    return cls(schema)


def validator(schema: dict[str, Any]) -> Any:
    """The compiled validator for `schema` (cached; raises TaskFailed for an invalid schema)."""
    return _compiled(json.dumps(schema, sort_keys=True, separators=(",", ":")))


def path_of(error: ValidationError) -> str:
    """`$.subtasks[0]`-style location of an error inside the reply."""
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_json(text: str) -> JSON:
    """The JSON value in `text`, tolerating code fences and prose around one object or array."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        return json.loads(stripped)
    except ValueError as exc:
        first_error = exc
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opener), stripped.rfind(closer)
        if 0 <= start < end:
            try:
                return json.loads(stripped[start : end + 1])
            except ValueError:
                continue
    if not stripped:
        raise OutputProblem("Your reply was empty, not JSON.", "the reply was empty, not JSON")
    raise OutputProblem(
        f"Your reply was not valid JSON: {first_error}.",
        f"the reply was not valid JSON: {first_error}",
    )


def schema_problems(value: JSON, schema: dict[str, Any]) -> list[str]:
    """`<path>: <message>` for each way `value` breaks `schema` (empty when valid)."""
    errors = sorted(
        validator(schema).iter_errors(value), key=lambda e: list(map(str, e.absolute_path))
    )
    return [f"{path_of(e)}: {e.message}" for e in errors]


def read_output(text: str, output: str | dict[str, Any] | None) -> JSON:
    """The task's output from the final text; raises `OutputProblem` when it must be repaired."""
    if output != "json" and not isinstance(output, dict):
        return text
    value = parse_json(text)
    if isinstance(output, dict):
        problems = schema_problems(value, output)
        if problems:
            shown = "; ".join(problems[:MAX_REPORTED_ERRORS])
            more = len(problems) - MAX_REPORTED_ERRORS
            if more > 0:
                shown += f" (and {more} more)"
            raise OutputProblem(
                f"Your reply did not match the required JSON Schema: {shown}.",
                f"the reply did not match the output schema: {shown}",
            )
    return value


def repair_message(problem: OutputProblem) -> str:
    return f"{problem} Reply again with only the corrected JSON."
