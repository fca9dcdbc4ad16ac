"""State scopes that outlive a run, and the runs `orchestrate serve` started (migration 6).

A scope is a named set of key/values (`state_scope: workflow` names it after the workflow)
that every run of the workflows sharing it reads and writes: a triage loop's memory of what it
already handled. Every call here is one short BEGIN IMMEDIATE transaction outside the batching
writer (like `claim_run` and the questions), so a value is on disk before the run goes on, and
a run killed a moment later loses nothing. The calls block: the engine's side runs them on a
worker thread.

Concurrency (per-key versioning with compare-and-set): each key carries a version that every
write raises by one. `compare_and_set(..., expected=N)` writes only if the key is still at
version N (`expected=0`: only if it is absent), in one conditional UPDATE (or an INSERT that a
primary key guards), so of two runs updating one key at once exactly one wins and the other is
told the current value and version, reads again and retries. `expected=None` is a blind write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.store.models import SCOPED_STATE, SERVE_RUNS, ScopedStateItem, ServeRun
from orchestrator.store.store import Store

__all__ = ["AsyncScopes", "CasResult", "ScopedStore", "ServeRuns", "Versioned"]


@dataclass(frozen=True, slots=True)
class Versioned:
    """A value and its version (0: the key is not set)."""

    value: Any
    version: int


@dataclass(frozen=True, slots=True)
class CasResult:
    """What a compare-and-set did: `ok`, and the key as it stands now."""

    ok: bool
    value: Any
    version: int


class ScopedStore:
    """The scoped state of one store. Cheap: build one wherever it is needed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, scope: str, key: str) -> Versioned:
        stmt = select(SCOPED_STATE.c.value, SCOPED_STATE.c.version).where(
            SCOPED_STATE.c.scope == scope, SCOPED_STATE.c.key == key
        )
        with self._store._read() as conn:
            row = conn.execute(stmt).first()
        return Versioned(None, 0) if row is None else Versioned(row[0], int(row[1]))

    def items(self, scope: str, prefix: str = "") -> dict[str, Versioned]:
        stmt = (
            select(SCOPED_STATE.c.key, SCOPED_STATE.c.value, SCOPED_STATE.c.version)
            .where(SCOPED_STATE.c.scope == scope)
            .order_by(SCOPED_STATE.c.key)
        )
        if prefix:
            # startswith escapes % and _, which keys like "handled/issue_12" hold
            stmt = stmt.where(SCOPED_STATE.c.key.startswith(prefix, autoescape=True))
        with self._store._read() as conn:
            return {k: Versioned(v, int(n)) for k, v, n in conn.execute(stmt)}

    def rows(self, scope: str | None = None) -> list[ScopedStateItem]:
        """Every key (of one scope, or of all), for `orchestrate state list`."""
        stmt = select(ScopedStateItem).order_by(SCOPED_STATE.c.scope, SCOPED_STATE.c.key)
        if scope is not None:
            stmt = stmt.where(SCOPED_STATE.c.scope == scope)
        return self._store._rows(stmt)

    def compare_and_set(
        self, scope: str, key: str, value: Any, *, expected: int | None, by: str | None = None
    ) -> CasResult:
        """Write `value` if the key is at version `expected` (None: whatever it is)."""
        try:
            return self._cas(scope, key, value, expected, by)
        except IntegrityError:  # PostgreSQL: another writer inserted the key first
            return CasResult(False, None, -1)

    def _cas(
        self, scope: str, key: str, value: Any, expected: int | None, by: str | None
    ) -> CasResult:
        now = time.time()
        with self._store._write() as conn:
            row = conn.execute(
                select(SCOPED_STATE.c.value, SCOPED_STATE.c.version).where(
                    SCOPED_STATE.c.scope == scope, SCOPED_STATE.c.key == key
                )
            ).first()
            current = 0 if row is None else int(row[1])
            if expected is not None and expected != current:
                return CasResult(False, None if row is None else row[0], current)
            if row is None:
                conn.execute(
                    insert(SCOPED_STATE).values(
                        scope=scope, key=key, value=value, version=1, updated_at=now, updated_by=by
                    )
                )
                return CasResult(True, value, 1)
            done = conn.execute(
                update(SCOPED_STATE)
                .where(
                    SCOPED_STATE.c.scope == scope,
                    SCOPED_STATE.c.key == key,
                    SCOPED_STATE.c.version == current,
                )
                .values(value=value, version=current + 1, updated_at=now, updated_by=by)
            )
            if done.rowcount != 1:
                return CasResult(False, None, -1)
        return CasResult(True, value, current + 1)

    def remove(self, scope: str, key: str) -> bool:
        with self._store._write() as conn:
            done = conn.execute(
                delete(SCOPED_STATE).where(SCOPED_STATE.c.scope == scope, SCOPED_STATE.c.key == key)
            )
        return bool(done.rowcount)


class AsyncScopes:
    """`ScopedStore` for the engine (its `StateScopes`): each call on a worker thread, so the
    event loop never waits on SQLite."""

    def __init__(self, store: Store) -> None:
        self._scoped = ScopedStore(store)

    async def load(self, scope: str) -> dict[str, tuple[Any, int]]:
        found = await anyio.to_thread.run_sync(self._scoped.items, scope)
        return {key: (v.value, v.version) for key, v in found.items()}

    async def read(self, scope: str, key: str) -> tuple[Any, int]:
        found = await anyio.to_thread.run_sync(self._scoped.get, scope, key)
        return found.value, found.version

    async def compare_and_set(
        self, scope: str, key: str, value: Any, expected: int | None, run_id: str
    ) -> tuple[bool, tuple[Any, int]]:
        def cas() -> CasResult:
            return self._scoped.compare_and_set(scope, key, value, expected=expected, by=run_id)

        done = await anyio.to_thread.run_sync(cas)
        return done.ok, (done.value, done.version)


class ServeRuns:
    """The runs `orchestrate serve` started, by hosted workflow."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, run_id: str, workflow: str, origin: str, slot: float | None = None) -> None:
        with self._store._write() as conn:
            conn.execute(
                insert(SERVE_RUNS).values(
                    run_id=run_id,
                    workflow=workflow,
                    origin=origin,
                    slot=slot,
                    created_at=time.time(),
                )
            )

    def drained(self, run_ids: list[str]) -> None:
        """Mark runs the server cancelled to stop (a restart resumes them)."""
        if not run_ids:
            return
        with self._store._write() as conn:
            conn.execute(
                update(SERVE_RUNS)
                .where(SERVE_RUNS.c.run_id.in_(run_ids))
                .values(drained_at=time.time())
            )

    def last_slot(self, workflow: str) -> float | None:
        """The latest slot a scheduled run of `workflow` was started for."""
        stmt = select(SERVE_RUNS.c.slot).where(
            SERVE_RUNS.c.workflow == workflow, SERVE_RUNS.c.slot.is_not(None)
        )
        with self._store._read() as conn:
            slots = [s for s in conn.execute(stmt).scalars() if s is not None]
        return max(slots) if slots else None

    def rows(self, workflows: list[str] | None = None) -> list[ServeRun]:
        stmt = select(ServeRun).order_by(SERVE_RUNS.c.created_at)
        if workflows is not None:
            stmt = stmt.where(SERVE_RUNS.c.workflow.in_(workflows))
        return self._store._rows(stmt)
