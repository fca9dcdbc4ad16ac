"""A JSON schema rewritten into the subset structured output accepts, without importing the SDK.

This is the Anthropic Python SDK's `anthropic.lib._parse._transform.transform_schema` (Apache
License 2.0, Copyright Anthropic, PBC), kept here because importing the SDK costs ~45 MB and
1-2 s of CPU per process, and a workflow with a planner's `output:` schema would otherwise pay
that on the default (`direct`) transport only to rewrite its schemas. Objects get
`additionalProperties: false`; strings an unsupported `format`, arrays a `minItems` other than 0
or 1, and every other keyword the API does not take are moved into the description, so the model
still sees them (the worker validates replies against the original schema).

Invariant: for every schema, `transform_schema(s) == anthropic.lib._parse._transform
.transform_schema(s)` of the installed SDK; `tests/llm/test_schema_transform.py` checks it over
the schemas of `workflows/` and a set of edge cases, so an SDK upgrade that changes the rules
fails there rather than drifting silently.
"""

from __future__ import annotations

from typing import Any

_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


def _primitive(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def transform_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """`json_schema` as structured output accepts it; raises `ValueError` for a schema with no
    type, no `anyOf`/`oneOf`/`allOf` and no literal `const`/`enum` (as the SDK does)."""
    strict: dict[str, Any] = {}
    rest = {**json_schema}

    # $defs before the $ref early return: a root `{"$ref": ..., "$defs": ...}` keeps its defs.
    defs = rest.pop("$defs", None)
    if defs is not None:
        strict["$defs"] = {name: transform_schema(schema) for name, schema in defs.items()}

    ref = rest.pop("$ref", None)
    if ref is not None:
        strict["$ref"] = ref
        return strict

    type_ = rest.pop("type", None)
    any_of = rest.pop("anyOf", None)
    one_of = rest.pop("oneOf", None)
    all_of = rest.pop("allOf", None)

    enum = rest.get("enum")
    if isinstance(enum, list) and enum and all(_primitive(value) for value in enum):
        strict["enum"] = list(rest.pop("enum"))
    if "const" in rest and _primitive(rest["const"]):
        strict["const"] = rest.pop("const")
    literals = "enum" in strict or "const" in strict
    if literals:
        type_ = None

    if isinstance(any_of, list):
        strict["anyOf"] = [transform_schema(variant) for variant in any_of]
    elif isinstance(one_of, list):
        strict["anyOf"] = [transform_schema(variant) for variant in one_of]
    elif isinstance(all_of, list):
        strict["allOf"] = [transform_schema(variant) for variant in all_of]
    elif not literals:
        if type_ is None:
            raise ValueError(
                "Schema must have a 'type', 'anyOf', 'oneOf', or 'allOf' field, "
                "or a 'const' or non-empty 'enum' of strings, numbers, booleans, or null."
            )
        strict["type"] = type_

    description = rest.pop("description", None)
    if description is not None:
        strict["description"] = description
    title = rest.pop("title", None)
    if title is not None:
        strict["title"] = title

    if type_ == "object":
        strict["properties"] = {
            key: transform_schema(prop) for key, prop in rest.pop("properties", {}).items()
        }
        rest.pop("additionalProperties", None)
        strict["additionalProperties"] = False
        required = rest.pop("required", None)
        if required is not None:
            strict["required"] = list(required) if isinstance(required, list) else required
    elif type_ == "string":
        fmt = rest.pop("format", None)
        if fmt and fmt in _STRING_FORMATS:
            strict["format"] = fmt
        elif fmt:
            rest["format"] = fmt  # left over: goes into the description
    elif type_ == "array":
        items = rest.pop("items", None)
        if items is not None:
            strict["items"] = transform_schema(items)
        min_items = rest.pop("minItems", None)
        if min_items is not None and (min_items == 0 or min_items == 1):
            strict["minItems"] = min_items
        elif min_items is not None:
            rest["minItems"] = min_items
    elif type_ is not None and not (isinstance(type_, str) and type_ in _TYPES):
        # a list of types (`[string, "null"]`) or an unknown one: the SDK fails the same way
        raise AssertionError(f"Expected code to be unreachable, but got: {type_!r}")

    # Whatever is left is not supported: into the description, so the model may still follow it.
    if rest:
        prefix = strict.get("description")
        listed = ", ".join(f"{key}: {value}" for key, value in rest.items())
        strict["description"] = (prefix + "\n\n" if prefix is not None else "") + "{" + listed + "}"
    return strict
