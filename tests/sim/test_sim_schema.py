"""Generated JSON fits its schema, for every seed; config parsing gives actionable errors."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from orchestrator.sim import SimConfig, generate

SCHEMAS: dict[str, dict[str, Any]] = {
    "scalars": {
        "type": "object",
        "required": ["s", "i", "n", "b", "z"],
        "properties": {
            "s": {"type": "string", "minLength": 40, "maxLength": 50},
            "i": {"type": "integer", "minimum": -3, "maximum": 3},
            "n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "b": {"type": "boolean"},
            "z": {"type": "null"},
        },
    },
    "short-string": {"type": "string", "maxLength": 4},
    "nullable": {"type": ["string", "null"]},
    "multiple-of": {"type": "integer", "minimum": 10, "maximum": 100, "multipleOf": 7},
    "formats": {
        "type": "object",
        "required": ["d", "dt", "e", "u", "id"],
        "properties": {
            "d": {"type": "string", "format": "date"},
            "dt": {"type": "string", "format": "date-time"},
            "e": {"type": "string", "format": "email"},
            "u": {"type": "string", "format": "uri"},
            "id": {"type": "string", "format": "uuid"},
        },
    },
    "enum-const": {
        "type": "object",
        "required": ["verdict", "v"],
        "properties": {"verdict": {"enum": ["pass", "fail"]}, "v": {"const": 1}},
        "additionalProperties": False,
    },
    "arrays": {
        "type": "object",
        "required": ["few", "many", "unique", "tuple"],
        "properties": {
            "few": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "many": {"type": "array", "items": {"type": "integer"}, "minItems": 9},
            "unique": {
                "type": "array",
                "items": {"enum": ["a", "b", "c"]},
                "uniqueItems": True,
                "maxItems": 3,
            },
            "tuple": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
            },
        },
    },
    "refs": {
        "$defs": {
            "leaf": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}
        },
        "type": "object",
        "required": ["leaf", "leaves"],
        "properties": {
            "leaf": {"$ref": "#/$defs/leaf"},
            "leaves": {"type": "array", "items": {"$ref": "#/$defs/leaf"}, "minItems": 1},
        },
    },
    "one-of": {
        "oneOf": [
            {
                "type": "object",
                "required": ["kind", "a"],
                "properties": {"kind": {"const": "a"}, "a": {"type": "integer"}},
            },
            {
                "type": "object",
                "required": ["kind", "b"],
                "properties": {"kind": {"const": "b"}, "b": {"type": "string"}},
            },
        ]
    },
    "all-of": {
        "allOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}},
            {"required": ["b"], "properties": {"b": {"type": "boolean"}}},
        ]
    },
    "recursive": {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "required": ["name", "children"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
            }
        },
    },
    "untyped-properties": {"properties": {"a": {}}, "required": ["a", "b"]},
    "deep": {
        "type": "array",
        "items": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "integer"}},
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_generated_values_fit_for_many_seeds(name):
    schema = SCHEMAS[name]
    for seed in range(25):
        value = generate(schema, random.Random(seed))
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())


def test_required_always_optional_sometimes():
    schema = {
        "type": "object",
        "required": ["r"],
        "properties": {"r": {"type": "string"}, "o": {"type": "string"}},
    }
    values = [generate(schema, random.Random(seed)) for seed in range(40)]
    assert all("r" in v for v in values)
    assert 0 < sum("o" in v for v in values) < 40


def test_same_rng_same_value_and_list_len():
    schema = SCHEMAS["arrays"]
    assert generate(schema, random.Random(3)) == generate(schema, random.Random(3))
    value = generate({"type": "array", "items": {"type": "integer"}}, random.Random(0), list_len=2)
    assert len(value) == 2


def test_huge_fan_out_stays_bounded():
    value = generate(SCHEMAS["deep"], random.Random(0), list_len=10)
    assert len(str(value)) < 200_000


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "429=0.05,529=0.02,500=0.01,disconnect=0.01",
            {"429": 0.05, "529": 0.02, "500": 0.01, "disconnect": 0.01},
        ),
        (" 429 = 1 ", {"429": 1.0}),
        ("", {}),
    ],
)
def test_parse_faults(spec, expected):
    assert SimConfig.parse_faults(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("429", "expected NAME=PROBABILITY"),
        ("418=0.1", "unknown fault '418': use one of 429, 529, 500, disconnect"),
        ("429=lots", "'lots' is not a probability"),
        ("429=1.5", "must be between 0 and 1"),
        ("429=0.6,529=0.6", "add up to more than 1"),
    ],
)
def test_parse_faults_errors(spec, message):
    with pytest.raises(ValueError) as info:
        SimConfig.parse_faults(spec)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("spec", "seconds"), [("200ms", 0.2), ("1s", 1.0), ("0.2", 0.2), ("1.5s", 1.5), ("1m", 60.0)]
)
def test_parse_latency(spec, seconds):
    assert SimConfig.parse_latency(spec) == pytest.approx(seconds)


@pytest.mark.parametrize("spec", ["fast", "-1s", "10 parsecs", ""])
def test_parse_latency_errors(spec):
    with pytest.raises(ValueError, match="bad latency"):
        SimConfig.parse_latency(spec)


def test_config_checks():
    with pytest.raises(ValueError, match="jitter"):
        SimConfig(jitter=2)
    with pytest.raises(ValueError, match="unknown rate limit"):
        SimConfig(rate_limits={"tokens": 5})
