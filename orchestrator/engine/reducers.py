"""Merge reducers: deterministic, no model call. Each takes the list a fan-out produced."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from orchestrator.errors import OrchestrateError


class MergeError(OrchestrateError):
    pass


def _as_list(value: Any, source: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    raise MergeError(f"merge from '{source}': expected a list, got {type(value).__name__}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def concat(items: list[Any], separator: str) -> str:
    return separator.join(_text(v) for v in items)


def flatten(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in items:
        if isinstance(value, list):
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


def merge_objects(items: list[Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value in items:
        if value is None:
            continue
        if not isinstance(value, dict):
            raise MergeError(
                f"merge: object from '{source}': every item must be an object, "
                f"got {type(value).__name__}"
            )
        out.update(value)
    return out


def unique(items: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out: list[Any] = []
    for value in flatten(items):
        key = _key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def vote(items: list[Any], by: str | None, source: str) -> dict[str, Any]:
    """The most common value (of field `by` when given); ties go to the earliest item."""
    votes: list[Any] = []
    for value in items:
        if by is not None:
            if not isinstance(value, dict) or by not in value:
                raise MergeError(f"merge: vote by '{by}' from '{source}': an item has no '{by}'")
            votes.append(value[by])
        else:
            votes.append(value)
    if not votes:
        return {"winner": None, "votes": 0, "total": 0, "counts": {}}
    keys = [_key(v) for v in votes]
    counts = Counter(keys)
    best = max(counts.values())
    winner_index = next(i for i, k in enumerate(keys) if counts[k] == best)
    return {
        "winner": votes[winner_index],
        "votes": best,
        "total": len(votes),
        "counts": {(_text(votes[keys.index(k)])): c for k, c in counts.items()},
        "item": items[winner_index],
    }


def reduce(kind: str, value: Any, *, source: str, by: str | None, separator: str) -> Any:
    items = _as_list(value, source)
    if kind == "concat":
        return concat(items, separator)
    if kind == "flatten":
        return flatten(items)
    if kind == "object":
        return merge_objects(items, source)
    if kind == "unique":
        return unique(items)
    if kind == "vote":
        return vote(items, by, source)
    raise MergeError(f"unknown merge reducer '{kind}'")
