"""The schema rewrite the direct transport uses without the SDK is the SDK's own, schema for schema.

If an SDK upgrade changes its rules, this fails and `orchestrator/llm/_schema.py` is brought in
line; the direct transport never sends a schema the SDK would have sent differently.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from anthropic.lib._parse._transform import transform_schema as sdk_transform

from orchestrator.llm._schema import transform_schema

ROOT = Path(__file__).resolve().parents[2]

EDGE_CASES: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 1, "maximum": 10, "description": "A number"},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "not-a-format", "pattern": "^a"},
    {"type": "string", "minLength": 2},
    {"type": "array", "items": {"type": "string"}, "minItems": 0},
    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
    {"type": "array", "items": {"type": "number"}, "minItems": 3, "uniqueItems": True},
    {"type": "array"},
    {"enum": ["a", "b", None, 3]},
    {"enum": [{"not": "primitive"}], "type": "object"},
    {"const": "fixed", "description": "always this"},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
    {"oneOf": [{"type": "integer"}, {"type": "object", "properties": {}}]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}]},
    {"$ref": "#/$defs/Item", "$defs": {"Item": {"type": "object", "title": "Item"}}},
    {
        "type": "object",
        "title": "Plan",
        "properties": {
            "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "meta": {
                "type": "object",
                "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
                "additionalProperties": True,
            },
        },
        "required": ["topics"],
        "additionalProperties": True,
        "$comment": "left over",
    },
    {"type": "boolean", "default": False},
    {"type": "null"},
]


def _workflow_schemas() -> list[dict[str, Any]]:
    """Every `output:` schema of the shipped examples and the benchmark workflows, less those
    with a template in them (rendered before they are sent)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            output = node.get("output")
            if isinstance(output, dict) and "type" in output and "{{" not in json.dumps(output):
                found.append(output)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted([*ROOT.glob("workflows/**/*.yaml"), *ROOT.glob("bench/workflows/*.yaml")]):
        walk(yaml.safe_load(path.read_text()))
    return found


WORKFLOW_SCHEMAS = _workflow_schemas()


def test_the_examples_have_schemas_to_compare() -> None:
    assert len(WORKFLOW_SCHEMAS) >= 5


@pytest.mark.parametrize("schema", EDGE_CASES + WORKFLOW_SCHEMAS)
def test_the_rewrite_is_the_sdks(schema: dict[str, Any]) -> None:
    before = copy.deepcopy(schema)
    assert transform_schema(schema) == sdk_transform(copy.deepcopy(schema))
    assert schema == before  # the caller's schema is left as it was


@pytest.mark.parametrize(
    "schema",
    [{"description": "no type"}, {"type": ["string", "null"]}, {"type": "tuple"}],
    ids=["no-type", "type-list", "unknown-type"],
)
def test_a_schema_the_sdk_refuses_is_refused_the_same_way(schema: dict[str, Any]) -> None:
    with pytest.raises(Exception) as sdk:
        sdk_transform(copy.deepcopy(schema))
    with pytest.raises(type(sdk.value)):
        transform_schema(schema)
