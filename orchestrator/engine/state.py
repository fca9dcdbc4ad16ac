"""The shared blackboard of a run: key/values every worker may read and write.

Values live in memory for reads (so a `state_set` is visible to the next `state_get` at once)
and every write goes out as a `StateSet` event, which the store persists; resume reloads them.
"""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.contracts import JSON, Emit
from orchestrator.events import StateSet


class SharedState:
    def __init__(self, run_id: str, emit: Emit, initial: dict[str, Any] | None = None) -> None:
        self.run_id = run_id
        self._emit = emit
        self.values: dict[str, Any] = dict(initial or {})

    async def get(self, key: str) -> JSON:
        return copy.deepcopy(self.values.get(key))

    async def set(self, key: str, value: JSON) -> None:
        self.values[key] = copy.deepcopy(value)
        self._emit(StateSet(run_id=self.run_id, key=key, value=value))

    async def list(self, prefix: str = "") -> dict[str, JSON]:
        return {k: copy.deepcopy(v) for k, v in sorted(self.values.items()) if k.startswith(prefix)}
