"""The shared blackboard of a run: key/values every worker may read and write.

Two kinds, one interface (`get`, `set`, `list`, `update`, and `values` for templates):

- a run's own state (no `state_scope:`): values live in memory for reads (a `state_set` is
  visible to the next `state_get` at once) and every write goes out as a `StateSet` event,
  which the store persists; resume reloads them.
- a scope (`state_scope: workflow | <name>`): the values live in a `StateScopes` backend (the
  store, injected: the engine speaks no SQL) and outlive the run. Every key has a version;
  reads remember the version they saw and a write is a compare-and-set against it, so two runs
  updating one key at once never lose an update: the loser's `state_set` fails with a message
  asking the worker to read again, and `update` (a `set` step's `to_state:`) evaluates its
  expression again on the fresh value until its write wins. Writes still emit `StateSet`, so a
  run's history shows what it wrote. `values` is refreshed on every read and write, so
  templates see the scope as of the run's last access (loaded in full when the run starts).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from orchestrator.contracts import JSON, Emit
from orchestrator.errors import OrchestrateError
from orchestrator.events import StateSet

# A value and its version; version 0: the key is not set.
Versioned = tuple[Any, int]

# How often `update` re-reads and retries before it gives up (each retry means another run
# wrote the key in between: only a pathological storm on one key gets that far).
UPDATE_ATTEMPTS = 200


class StateConflict(OrchestrateError):
    """A compare-and-set lost: the key changed since this run read it."""


class StateScopes(Protocol):
    """Where scoped state lives (the assembly passes the store's). Every call is atomic."""

    async def load(self, scope: str) -> dict[str, Versioned]: ...

    async def read(self, scope: str, key: str) -> Versioned: ...

    async def compare_and_set(
        self, scope: str, key: str, value: Any, expected: int | None, run_id: str
    ) -> tuple[bool, Versioned]:
        """Write if the key is at version `expected` (None: unconditionally); returns whether
        it wrote, and the key as it stands now."""
        ...


class MemoryScopes:
    """Scopes in memory, for an engine given no store (tests, library use): they last as long
    as the engine. Atomic because every call runs on the one event loop without awaiting."""

    def __init__(self) -> None:
        self._scopes: dict[str, dict[str, Versioned]] = {}

    async def load(self, scope: str) -> dict[str, Versioned]:
        return copy.deepcopy(self._scopes.get(scope, {}))

    async def read(self, scope: str, key: str) -> Versioned:
        return copy.deepcopy(self._scopes.get(scope, {}).get(key, (None, 0)))

    async def compare_and_set(
        self, scope: str, key: str, value: Any, expected: int | None, run_id: str
    ) -> tuple[bool, Versioned]:
        keys = self._scopes.setdefault(scope, {})
        current = keys.get(key, (None, 0))
        if expected is not None and expected != current[1]:
            return False, copy.deepcopy(current)
        keys[key] = (copy.deepcopy(value), current[1] + 1)
        return True, copy.deepcopy(keys[key])


class SharedState:
    def __init__(
        self,
        run_id: str,
        emit: Emit,
        initial: dict[str, Any] | None = None,
        *,
        scope: str | None = None,
        scopes: StateScopes | None = None,
    ) -> None:
        if (scope is None) != (scopes is None):
            raise ValueError("a scoped state needs both its scope name and a backend")
        self.run_id = run_id
        self.scope = scope
        self._emit = emit
        self._scopes = scopes
        self._seen: dict[str, int] = {}  # key -> the version this run last read or wrote
        self.values: dict[str, Any] = {} if scope else dict(initial or {})

    async def load(self) -> None:
        """Read the whole scope (a scoped state, at the start of a run)."""
        if self._scopes is not None and self.scope is not None:
            found = await self._scopes.load(self.scope)
            self.values.clear()
            for key, (value, version) in found.items():
                self.values[key] = value
                self._seen[key] = version

    async def get(self, key: str) -> JSON:
        if self._scopes is not None and self.scope is not None:
            value, version = await self._scopes.read(self.scope, key)
            self._remember(key, value, version)
        return copy.deepcopy(self.values.get(key))

    async def set(self, key: str, value: JSON) -> None:
        if self._scopes is not None and self.scope is not None:
            ok, (now, version) = await self._scopes.compare_and_set(
                self.scope, key, copy.deepcopy(value), self._seen.get(key), self.run_id
            )
            if not ok:
                self._remember(key, now, version)
                raise StateConflict(
                    f"state key {key!r} in scope {self.scope!r} changed since this run read it "
                    f"(another run wrote it; it is now {now!r}): read it again with state_get, "
                    "then set it"
                )
            self._remember(key, value, version)
        else:
            self.values[key] = copy.deepcopy(value)
        self._emit(StateSet(run_id=self.run_id, key=key, value=value))

    async def update(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        """Set `key` to what `compute()` gives, evaluated on the key's current value (it reads
        `values`): in a scope, a compare-and-set that computes again after every lost race."""
        if self._scopes is None or self.scope is None:
            value = await compute()
            await self.set(key, value)
            return value
        for _ in range(UPDATE_ATTEMPTS):
            current, version = await self._scopes.read(self.scope, key)
            self._remember(key, current, version)
            value = await compute()
            ok, (_, new_version) = await self._scopes.compare_and_set(
                self.scope, key, copy.deepcopy(value), version, self.run_id
            )
            if ok:
                self._remember(key, value, new_version)
                self._emit(StateSet(run_id=self.run_id, key=key, value=value))
                return value
        raise StateConflict(
            f"state key {key!r} in scope {self.scope!r}: {UPDATE_ATTEMPTS} writes in a row lost "
            "to other runs writing it; give the runs different keys"
        )

    async def list(self, prefix: str = "") -> dict[str, JSON]:
        if self._scopes is not None and self.scope is not None:
            await self.load()
        return {k: copy.deepcopy(v) for k, v in sorted(self.values.items()) if k.startswith(prefix)}

    def _remember(self, key: str, value: Any, version: int) -> None:
        self._seen[key] = version
        if version == 0:
            self.values.pop(key, None)
        else:
            self.values[key] = copy.deepcopy(value)
