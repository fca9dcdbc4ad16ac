"""Generate a JSON value that fits a JSON Schema, deterministically from a `random.Random`.

Covers what structured outputs and tool input schemas use: types (also lists of types), enum,
const, required and optional properties, items/prefixItems, min/maxItems, uniqueItems, numeric
bounds, string lengths and common formats, `$ref` into `$defs`/`definitions`, anyOf/oneOf (one
branch), allOf (merged). Required properties are always filled; optional ones about half the
time; past a nesting depth only what is required is generated, so recursive schemas end, and
past a hard depth nothing more is nested at all (a schema whose required properties recurse has
no finite instance; it gets the nearest finite one instead of a recursion error).
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

_WORDS = (
    *("alpha", "bravo", "concise", "data", "evidence", "finding", "growth", "insight", "key"),
    *("latency", "model", "note", "option", "point", "quality", "result", "signal", "summary"),
    *("topic", "update", "value", "workflow"),
)
_MAX_DEPTH = 6
_HARD_DEPTH = 16  # no nesting past this, required or not
_MAX_NODES = 2000  # past this many values, generate only what is required (no blow-up)


_DESCRIBED = re.compile(
    r"\b(minItems|maxItems|minimum|maximum|exclusiveMinimum|exclusiveMaximum|minLength|maxLength)"
    r":\s*(-?\d+(?:\.\d+)?)"
)


def with_described(schema: dict[str, Any]) -> dict[str, Any]:
    """The SDK moves constraints the API does not enforce into the description
    ("{maxItems: 7, minItems: 7}"); a model reads them there, and so does the simulator."""
    description = schema.get("description")
    if not isinstance(description, str) or ":" not in description:
        return schema
    found = {k: v for k, v in _DESCRIBED.findall(description) if k not in schema}
    if not found:
        return schema
    merged = dict(schema)
    for key, value in found.items():
        merged[key] = float(value) if "." in value else int(value)
    return merged


class SchemaGenerator:
    """One generation pass over a root schema (which holds the `$defs` that `$ref`s point at)."""

    def __init__(self, root: Any, rng: random.Random, *, list_len: int = 5) -> None:
        self.root = root
        self.rng = rng
        self.list_len = list_len
        self.nodes = 0

    def generate(self) -> Any:
        return self._value(self.root, "value", 0)

    def _resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
            ref = schema["$ref"]
            target: Any = self.root
            if ref != "#":
                if not ref.startswith("#/"):
                    return {}
                for part in ref[2:].split("/"):
                    part = part.replace("~1", "/").replace("~0", "~")
                    if not isinstance(target, dict) or part not in target:
                        return {}
                    target = target[part]
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra} if isinstance(target, dict) and extra else target
            seen += 1
        return schema

    def _value(self, schema: Any, name: str, depth: int) -> Any:
        schema = self._resolve(schema)
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            depth = max(depth, _MAX_DEPTH)
        if schema is True or not isinstance(schema, dict) or not schema:
            return self._string({}, name)
        schema = with_described(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self._resolve(part)
                if isinstance(part, dict):
                    for key, val in part.items():
                        if key == "properties" and isinstance(val, dict):
                            merged["properties"] = {**merged.get("properties", {}), **val}
                        elif key == "required" and isinstance(val, list):
                            merged["required"] = [*merged.get("required", []), *val]
                        else:
                            merged.setdefault(key, val)
            return self._value(merged, name, depth)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                if depth >= _MAX_DEPTH:  # prefer a branch that cannot recurse further
                    simple = [o for o in options if self._type_of(self._resolve(o)) == "null"]
                    options = simple or options
                base = {k: v for k, v in schema.items() if k != key}
                choice = self._resolve(self.rng.choice(options))
                if isinstance(choice, dict):
                    return self._value({**base, **choice}, name, depth)
                return self._value(choice, name, depth)
        kind = self._type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, name)

    @staticmethod
    def _type_of(schema: Any) -> str:
        if not isinstance(schema, dict):
            return "string"
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or ["null"]
            kind = kinds[0]
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if "minimum" in schema or "maximum" in schema:
            return "number"
        return "string"

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        out: dict[str, Any] = {}
        if depth >= _HARD_DEPTH:
            return out
        for key, sub in props.items():
            if key in required or (depth < _MAX_DEPTH and self.rng.random() < 0.5):
                out[key] = self._value(sub, key, depth + 1)
        for key in required:  # required names without a property schema
            if key not in out:
                out[key] = self._string({}, key)
        min_props = schema.get("minProperties")
        if isinstance(min_props, int):
            for key, sub in props.items():
                if len(out) >= min_props:
                    break
                out.setdefault(key, self._value(sub, key, depth + 1))
        return out

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        lo = schema.get("minItems")
        hi = schema.get("maxItems")
        lo = lo if isinstance(lo, int) else 0
        hi = hi if isinstance(hi, int) else None
        n = lo if depth >= _MAX_DEPTH else max(self.list_len, lo)
        if depth >= _HARD_DEPTH:
            n = 0
        if hi is not None:
            n = min(n, hi)
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items", {})
        singular = name[:-1] if name.endswith("s") and len(name) > 1 else name
        out: list[Any] = []
        unique = schema.get("uniqueItems") is True
        attempts = 0
        while len(out) < n and attempts < n * 10 + 10:
            attempts += 1
            index = len(out)
            sub = prefix[index] if index < len(prefix) else items
            if sub is False:
                break
            value = self._value(sub, f"{singular} {index + 1}", depth + 1)
            if unique and value in out:
                continue
            out.append(value)
        return out

    def _integer(self, schema: dict[str, Any]) -> int:
        lo, hi = self._bounds(schema, integer=True)
        lo_i = math.ceil(lo) if lo is not None else None
        hi_i = math.floor(hi) if hi is not None else None
        if lo_i is None and hi_i is None:
            lo_i, hi_i = 1, 100
        elif lo_i is None:
            lo_i = hi_i - 100 if hi_i is not None else 0
        elif hi_i is None:
            hi_i = lo_i + 100
        assert lo_i is not None and hi_i is not None
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first = math.ceil(lo_i / step)
            last = math.floor(hi_i / step)
            if first <= last:
                return self.rng.randint(first, last) * step
        return self.rng.randint(lo_i, max(lo_i, hi_i))

    def _number(self, schema: dict[str, Any]) -> float:
        lo, hi = self._bounds(schema, integer=False)
        if lo is None and hi is None:
            lo, hi = 0.0, 100.0
        elif lo is None:
            lo = (hi or 0.0) - 100.0
        elif hi is None:
            hi = lo + 100.0
        assert lo is not None and hi is not None
        value = round(self.rng.uniform(lo, hi), 3)
        return min(max(value, lo), hi)

    @staticmethod
    def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[float | None, float | None]:
        nudge = 1.0 if integer else 1e-3
        lo = schema.get("minimum")
        hi = schema.get("maximum")
        xlo = schema.get("exclusiveMinimum")
        xhi = schema.get("exclusiveMaximum")
        lo_f = float(lo) if isinstance(lo, int | float) else None
        hi_f = float(hi) if isinstance(hi, int | float) else None
        if isinstance(xlo, int | float) and not isinstance(xlo, bool):
            lo_f = max(lo_f if lo_f is not None else -math.inf, float(xlo) + nudge)
        if isinstance(xhi, int | float) and not isinstance(xhi, bool):
            hi_f = min(hi_f if hi_f is not None else math.inf, float(xhi) - nudge)
        return lo_f, hi_f

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        rng = self.rng
        if fmt == "date-time":
            text = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:00:00Z"
        elif fmt == "date":
            text = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        elif fmt == "time":
            text = f"1{rng.randint(0, 9)}:30:00Z"
        elif fmt == "email":
            text = f"user{rng.randint(1, 999)}@example.com"
        elif fmt in ("uri", "url", "uri-reference"):
            text = f"https://example.com/{rng.choice(_WORDS)}"
        elif fmt == "uuid":
            text = "-".join(
                f"{rng.getrandbits(bits):0{bits // 4}x}" for bits in (32, 16, 16, 16, 48)
            )
        elif fmt == "ipv4":
            text = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        else:
            label = name.replace("_", " ").strip() or "value"
            text = f"{label}: {' '.join(rng.choice(_WORDS) for _ in range(3))}"
        lo = schema.get("minLength")
        hi = schema.get("maxLength")
        if isinstance(lo, int):
            while len(text) < lo:
                text += " " + rng.choice(_WORDS)
        if isinstance(hi, int) and len(text) > hi:
            text = text[:hi]
        return text


def generate(
    schema: Any, rng: random.Random | None = None, *, list_len: int = 5, seed: int = 0
) -> Any:
    """A value that fits `schema`. Same schema, same RNG state: same value."""
    return SchemaGenerator(schema, rng or random.Random(seed), list_len=list_len).generate()
