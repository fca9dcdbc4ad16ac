"""The relay: one Ray actor, pinned to the driver's node, that carries what a task running on
the cluster asks of the engine (a model call, the shared state, its events, an approval).

A task on a node cannot call into the driver's event loop, and the driver cannot be called by
Ray; both can call an actor. A node's request waits in `ask` on a future; the driver long-polls
`take` (everything queued, in one batch), serves each request with the run's own dispatcher and
state, and settles the futures with `answer`. Replies are `(ok, value)`: the value, or the
exception to raise on the node (the engine's errors pickle with their fields).

Invariants: the actor holds no run state beyond requests in flight; it lives exactly as long as
the executor that created it (killed when the run ends; with a driver that dies, Ray removes it).
This module imports neither Ray nor the engine, so its class pickles by reference.
"""

from __future__ import annotations

import asyncio
from typing import Any

Request = tuple[int, str, str, Any]  # (request id, task token, op, payload)
Reply = tuple[int, bool, Any]  # (request id, ok, value or exception)


class Relay:
    def __init__(self) -> None:
        self._inbox: asyncio.Queue[Request] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._next = 0

    async def ask(self, token: str, op: str, payload: Any) -> tuple[bool, Any]:
        """A node's request: waits until the driver answers it."""
        self._next += 1
        rid = self._next
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._inbox.put_nowait((rid, token, op, payload))
        try:
            return await future
        finally:
            self._pending.pop(rid, None)

    async def take(self) -> list[Request]:
        """The driver's long poll: every request queued, once there is at least one."""
        batch = [await self._inbox.get()]
        while not self._inbox.empty():
            batch.append(self._inbox.get_nowait())
        return batch

    async def answer(self, replies: list[Reply]) -> None:
        for rid, ok, value in replies:
            future = self._pending.get(rid)
            if future is not None and not future.done():  # its caller may have died meanwhile
                future.set_result((ok, value))
