"""`state_get`, `state_set`, `state_list`: the run's shared blackboard, through `StateAccess`.

Workers never hold engine objects; the state they share is reached only through these tools, so
the same worker runs in-process or (later) on a Ray node with a remote store.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.contracts import StateAccess
from orchestrator.tools.base import Tool, object_schema


def state_tools(state: StateAccess) -> dict[str, Tool]:
    async def get(args: dict[str, Any]) -> str:
        return _json(await state.get(args["key"]))

    async def set_(args: dict[str, Any]) -> str:
        await state.set(args["key"], args["value"])
        return _json({"ok": True, "key": args["key"]})

    async def list_(args: dict[str, Any]) -> str:
        return _json(await state.list(args.get("prefix") or ""))

    return {
        "state_get": Tool("state_get", _GET_DESCRIPTION, _GET_SCHEMA, get),
        "state_set": Tool("state_set", _SET_DESCRIPTION, _SET_SCHEMA, set_),
        "state_list": Tool("state_list", _LIST_DESCRIPTION, _LIST_SCHEMA, list_),
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


_KEY = {"type": "string", "minLength": 1, "description": "The key, e.g. 'findings/topic-3'"}

_GET_DESCRIPTION = (
    "Read one value from the run's shared state, as JSON (null when the key is not set)."
)
_GET_SCHEMA = object_schema({"key": _KEY}, ["key"])

_SET_DESCRIPTION = (
    "Store a JSON value under a key in the run's shared state, visible to every worker of the "
    "run. Replaces any previous value."
)
_SET_SCHEMA = object_schema(
    {"key": _KEY, "value": {"description": "Any JSON value"}},
    ["key", "value"],
)

_LIST_DESCRIPTION = (
    "List the run's shared state as a JSON object of key to value, optionally only the keys that "
    "start with a prefix."
)
_LIST_SCHEMA = object_schema(
    {"prefix": {"type": "string", "description": "Only keys starting with this (default: all)"}}
)
