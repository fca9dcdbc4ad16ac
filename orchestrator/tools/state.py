"""`state_get`, `state_set`, `state_list`: the run's shared blackboard, through `StateAccess`.

Workers never hold engine objects; the state they share is reached only through these tools, so
the same worker runs in-process or (later) on a Ray node with a remote store. In a state scope
shared across runs (`state_scope:`), `state_set` of a key another run changed since this run read
it fails with a message to read it again (compare-and-set), so no update is lost.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.contracts import StateAccess
from orchestrator.errors import OrchestrateError, ToolError
from orchestrator.tools.base import Tool, object_schema


def state_tools(state: StateAccess) -> dict[str, Tool]:
    async def get(args: dict[str, Any]) -> str:
        return _json(await state.get(args["key"]))

    async def set_(args: dict[str, Any]) -> str:
        try:
            await state.set(args["key"], args["value"])
        except OrchestrateError as exc:  # a lost compare-and-set: the model reads and retries
            raise ToolError(str(exc)) from None
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
    "run. Replaces any previous value. If the state outlives the run and another run changed "
    "the key since you read it, this fails: read the key again with state_get, then set it."
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
