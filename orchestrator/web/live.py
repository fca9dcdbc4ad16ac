"""Server-sent events for a live run page: what changed in the store, and the text workers stream.

One generator per open page. It polls two sources another process writes (the run's process is
never this one): the store's events after the last seq the page has seen (`changed`: the page
fetches its server-rendered fragment again), and the run's JSON log for text deltas (`delta`,
with `reset` when a call or task finishes and its text moves into the stored transcript). On
connect it sends the text each task in flight has streamed so far, so a page opened mid-call
misses nothing. It ends (`end`) once the run is no longer running.

SSE frames: `event: <name>` and one `data:` line of JSON (`json.dumps` escapes newlines, so text
never breaks a frame). Every read is done off the event loop.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from orchestrator.web.runlog import Delta, LiveText, LogTail

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.web.views import Views

POLL_S = 0.25
STATUS_EVERY_S = 1.0
PING_EVERY_S = 15.0


def frame(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _wanted(task: str | None, task_id: str) -> bool:
    return task is None or task == task_id


async def run_stream(
    views: Views,
    run_id: str,
    log_path: Path,
    *,
    task: str | None = None,
    after_seq: int = 0,
    poll_s: float = POLL_S,
) -> AsyncIterator[str]:
    """The SSE frames of one page: `task` limits the deltas to one task's."""
    store = views.store
    tail = LogTail(log_path)
    live = LiveText()

    lines = await anyio.to_thread.run_sync(tail.read)
    for line in lines:
        live.apply(line)
    for task_id, text in live.current.items():
        if _wanted(task, task_id):
            label = live.labels.get(task_id, "")
            yield frame("delta", {"task_id": task_id, "label": label, "text": text})
    yield frame("ready", {"after": after_seq})

    last_status = last_ping = time.monotonic()
    while True:
        for line in await anyio.to_thread.run_sync(tail.read):
            change = live.apply(line)
            if isinstance(change, Delta) and _wanted(task, change.task_id):
                yield frame(
                    "delta",
                    {"task_id": change.task_id, "label": change.label, "text": change.text},
                )
            elif isinstance(change, str) and _wanted(task, change):
                yield frame("reset", {"task_id": change})
        new = await anyio.to_thread.run_sync(
            functools.partial(store.events, run_id, after_seq=after_seq, limit=1000)
        )
        if new:
            after_seq = new[-1].seq or after_seq
            yield frame("changed", {"after": after_seq})
        now = time.monotonic()
        if now - last_status >= STATUS_EVERY_S:
            last_status = now
            run = await anyio.to_thread.run_sync(views.run, run_id)
            if run is None or run.status != "running":
                for line in await anyio.to_thread.run_sync(tail.read):
                    live.apply(line)  # the tail is in the store now; nothing more to stream
                yield frame("end", {"status": run.status if run else "deleted"})
                return
        if now - last_ping >= PING_EVERY_S:
            last_ping = now
            yield ": ping\n\n"
        await anyio.sleep(poll_s)
