"""The single writer: one background task per process turns the event stream into rows.

`send` only appends to an in-memory buffer (never awaits, never blocks, unbounded), so the engine
never waits on SQLite. The writer task wakes on the first event, waits up to `max_delay_s` (or
until `max_batch` events are buffered, or someone calls `flush`), then commits up to `max_batch`
events in ONE transaction on a worker thread, holding one connection for its lifetime.

Invariants:
- events are committed in the order they were sent, each exactly once;
- `flush()` returns once every event sent before the call is committed; `flush_task(id)` once
  every event of that task sent so far is (its `task_started` aside: a task whose first request
  is in flight has nothing to lose but that request, so its first request never waits);
- leaving the context commits everything still buffered, even when the surrounding scope is
  being cancelled (the final flush runs shielded) -- a SIGINT never loses the tail of a run;
- a value the database refuses as too big (SQLite's `string or blob too big`, an integer out
  of range) never ends the writer: the batch is written again event by event, and the event the
  database refuses is stored with its oversized fields cut (`_shrunk`), saying so; the engine
  bounds values first (`engine.max_value_bytes`), so this is the last line, not the rule;
- if a commit fails otherwise, the error propagates out of the `async with` (cancelling its
  body) instead of silently dropping events.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from sqlalchemy import Connection
from sqlalchemy.exc import DataError

from orchestrator.events import Event
from orchestrator.store._plan import BatchPlan, TaskIndex

if TYPE_CHECKING:
    from orchestrator.store.store import Store

# Task events `flush_task` does not wait for: the task's start (its first request may leave
# before it is committed) and streamed text (the call's record holds it).
_NOT_WAITED_FOR = frozenset({"task_started", "text_delta"})


class StoreWriter:
    """Async context manager; see the module docstring. Obtain one with `Store.writer()`."""

    def __init__(self, store: Store, *, max_batch: int = 250, max_delay_s: float = 0.05) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._buffer: deque[Event] = deque()
        self._index = TaskIndex()
        self._conn: Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._tg: TaskGroup | None = None
        self._sent = 0
        self._committed = 0  # written by the worker thread only
        # task id -> the sequence number of its last event that `flush_task` waits for
        self._task_seq: dict[str, int] = {}
        self._urgent = False
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._wake: anyio.Event | None = None
        self._full: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self.commits = 0
        """Transactions committed so far (what batching saves is events sent / commits)."""

    @property
    def events_written(self) -> int:
        return self._committed

    @property
    def pending(self) -> int:
        """Events sent but not committed yet."""
        return self._sent - self._committed

    # --- the engine's side ----------------------------------------------------------------------

    def send(self, event: Event) -> None:
        """Queue an event for the store. Never blocks; call it from the event loop's thread."""
        if self._closed:
            raise RuntimeError("the store writer is closed; events sent now would be lost")
        self._buffer.append(event)
        self._sent += 1
        task_id = getattr(event, "task_id", None)
        if task_id is not None and event.type not in _NOT_WAITED_FOR:
            self._task_seq[task_id] = self._sent
        wake = self._wake
        if wake is not None and not wake.is_set():
            wake.set()
        if len(self._buffer) >= self._max_batch:
            full = self._full
            if full is not None and not full.is_set():
                full.set()

    async def flush(self) -> None:
        """Return once every event sent before this call is committed."""
        await self._committed_up_to(self._sent)

    async def flush_task(self, task_id: str) -> None:
        """Return once every event of task `task_id` sent so far is committed (see the module's
        notes): before a task's next request leaves, the calls it made are in the store."""
        target = self._task_seq.get(task_id)
        if target is not None:
            await self._committed_up_to(target)

    async def _committed_up_to(self, target: int) -> None:
        while self._committed < target:
            if self._error is not None:
                raise RuntimeError("the store writer failed") from self._error
            if self._tg is None or self._progress is None:
                raise RuntimeError("the store writer is not running")
            progress = self._progress
            self._urgent = True
            self._poke()
            await progress.wait()

    async def drain(self) -> None:
        """Backpressure for producers that can wait: return at once unless the backlog is over
        two batches, else once it is back under half of one. Bounds the memory of a run whose
        events arrive faster than the database commits them."""
        if self.pending <= 2 * self._max_batch:
            return
        while self.pending > self._max_batch // 2:
            if self._error is not None:
                raise RuntimeError("the store writer failed") from self._error
            if self._tg is None or self._progress is None:
                return
            progress = self._progress
            self._poke()
            await progress.wait()

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> StoreWriter:
        if self._tg is not None or self._closed:
            raise RuntimeError("a StoreWriter can be entered once")
        self._store._check_writable()
        self._wake = anyio.Event()
        self._full = anyio.Event()
        self._progress = anyio.Event()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run, name="orchestrate-store-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._closing = True
        self._poke()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    if self._error is None and self._buffer:
                        await anyio.to_thread.run_sync(self._commit, None, limiter=self._limiter)
                finally:
                    self._closed = True
                    await anyio.to_thread.run_sync(self._close_connection, limiter=self._limiter)
                    self._release_waiters()

    # --- the background task --------------------------------------------------------------------

    def _poke(self) -> None:
        for ev in (self._wake, self._full):
            if ev is not None and not ev.is_set():
                ev.set()

    def _release_waiters(self) -> None:
        assert self._progress is not None
        if len(self._task_seq) > 1024:  # what is committed needs no wait: keep the map small
            committed = self._committed
            self._task_seq = {t: n for t, n in self._task_seq.items() if n > committed}
        self._progress.set()
        self._progress = anyio.Event()

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                if self._closing:
                    return
                assert self._wake is not None
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            if not (self._urgent or self._closing) and len(self._buffer) < self._max_batch:
                assert self._full is not None
                with anyio.move_on_after(self._max_delay_s):
                    await self._full.wait()
            self._full = anyio.Event()
            self._urgent = False
            await anyio.to_thread.run_sync(self._commit, self._max_batch, limiter=self._limiter)
            self._release_waiters()

    # --- the worker thread ------------------------------------------------------------------------

    def _commit(self, limit: int | None) -> None:
        """Commit up to `limit` buffered events (all if None), `max_batch` per transaction."""
        try:
            while self._buffer:
                n = len(self._buffer)
                if limit is not None:
                    n = min(n, limit)
                n = min(n, self._max_batch)
                batch = [self._buffer.popleft() for _ in range(n)]
                self._write(batch)
                self._committed += n
                if limit is not None:
                    return
        except BaseException as exc:
            self._error = exc
            raise

    def _write(self, batch: list[Event]) -> None:
        try:
            self._write_batch(batch)
        except _TOO_BIG:
            for event in batch:  # find the event the database refuses; write the others
                self._index = TaskIndex()  # the failed transaction's folding is void
                try:
                    self._write_batch([event])
                except _TOO_BIG:
                    self._index = TaskIndex()
                    self._write_batch([_shrunk(event)])

    def _write_batch(self, batch: list[Event]) -> None:
        if self._conn is None:
            self._conn = self._store._writer_connection()
        conn = self._conn
        with conn.begin():
            plan = BatchPlan(conn, self._index)
            for event in batch:
                plan.add(event)
            plan.execute(conn)
        self.commits += 1
        for run_id in plan.finished_runs:
            self._index.forget(run_id)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# What a database raises for a value it cannot hold (SQLite: `string or blob too big`, an
# integer over 64 bits); anything else is a real failure and propagates.
_TOO_BIG = (DataError, OverflowError)
_KEPT_CHARS = 65_536  # of a field cut by `_shrunk`


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError, OverflowError):
        return len(str(value))


def _shrunk(event: Event) -> Event:
    """`event` with every field over `_KEPT_CHARS` cut, each saying what was left out (a number
    too large for the database becomes None)."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            changes[f.name] = None
            continue
        size = _size(value)
        if size <= _KEPT_CHARS:
            continue
        note = f"[{size} characters not stored: over the database's size limit]"
        if isinstance(value, str):
            changes[f.name] = value[:_KEPT_CHARS] + "... " + note
        elif isinstance(value, dict):
            changes[f.name] = {"not_stored": note}
        else:
            changes[f.name] = note
    return dataclasses.replace(event, **changes)
