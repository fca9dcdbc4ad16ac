"""Reading final replies as outputs: JSON extraction, schema errors, validator caching."""

from __future__ import annotations

import pytest

from orchestrator.errors import TaskFailed
from orchestrator.worker import OutputProblem, parse_json, read_output, validator


def test_parse_json_finds_the_value_inside_prose() -> None:
    assert parse_json('Here it is: {"a": [1, 2]} -- hope that helps') == {"a": [1, 2]}
    assert parse_json("  [1, 2]  ") == [1, 2]
    assert parse_json("```\n42\n```") == 42


def test_parse_json_problem_speaks_to_the_model() -> None:
    with pytest.raises(OutputProblem, match="not valid JSON"):
        parse_json("nope")
    with pytest.raises(OutputProblem, match="empty"):
        parse_json("   ")


def test_schema_problems_name_paths_and_cap_the_list() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
    }
    with pytest.raises(OutputProblem) as info:
        read_output('{"items": ["a", "b", "c", "d", "e", "f", "g"]}', schema)
    message = str(info.value)
    assert "$.items[0]: 'a' is not of type 'integer'" in message
    assert "(and 2 more)" in message
    assert "$.items[0]" in info.value.detail


def test_text_output_is_the_text_unchanged() -> None:
    assert read_output("  spaced  ", None) == "  spaced  "
    assert read_output("{not json", "text") == "{not json"


def test_validators_are_compiled_once_per_schema() -> None:
    first = validator({"type": "object", "required": ["a"]})
    assert validator({"required": ["a"], "type": "object"}) is first


def test_an_invalid_schema_fails_the_task_not_the_model() -> None:
    with pytest.raises(TaskFailed, match="output schema is invalid"):
        validator({"type": "no-such-type"})
