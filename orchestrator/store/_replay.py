"""The store's reads for call-level replay: a resumed task's recorded conversation.

A task in flight when its process ended (its latest row running, cancelled, waiting or pending;
no row of its key succeeded) replays on resume. Its conversation is gathered over every row of
its key, since a task resumed before replayed its first calls without recording them again, and
starts at the last call that opened one (a request of a single message), so an earlier failed
attempt is left out. Each call carries the tool results recorded as its tools ended
(`tool_results` events), so a turn cut short by the kill runs only what never finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from orchestrator.contracts.replay import RecordedCall, tool_use_ids
from orchestrator.store.models import CALLS, TASKS, Call, Task

if TYPE_CHECKING:
    from orchestrator.store.store import Store

IN_FLIGHT = ("running", "cancelled", "waiting", "pending")  # a task resume may replay
_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's variable limit


def _opens(call: Call) -> bool:
    return len((call.request or {}).get("messages") or ()) == 1


def conversations(store: Store, run_id: str) -> dict[str, list[RecordedCall]]:
    rows = store._rows(
        select(Task).where(TASKS.c.run_id == run_id).order_by(TASKS.c.started_at, TASKS.c.id)
    )
    by_key: dict[str, list[Task]] = {}
    for task in rows:
        by_key.setdefault(task.key, []).append(task)
    owner: dict[str, str] = {}  # task id -> key, for the keys in flight
    for key, tasks in by_key.items():
        if any(t.status == "succeeded" for t in tasks):
            continue
        if tasks[-1].status not in IN_FLIGHT:
            continue  # failed or skipped: a resume starts it afresh
        owner.update((t.id, key) for t in tasks)
    calls: dict[str, list[Call]] = {}
    ids = list(owner)
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = select(Call).where(
            CALLS.c.run_id == run_id,
            CALLS.c.status == "succeeded",
            CALLS.c.batch.is_(False),
            CALLS.c.task_id.in_(ids[start : start + _IN_CHUNK]),
        )
        for call in store._rows(stmt):
            calls.setdefault(owner[call.task_id], []).append(call)
    answered: dict[str, dict[str, Any]] = {}  # tool_use id -> its result
    for event in store.events(run_id, type="tool_results") if owner else ():
        payload = event.payload or {}
        if payload.get("task_id") in owner:
            for result in payload.get("results") or []:
                answered[str(result.get("tool_use_id"))] = result
    out: dict[str, list[RecordedCall]] = {}
    for key, found in calls.items():
        found.sort(key=lambda c: (c.ts, c.id))
        opened = [i for i, c in enumerate(found) if _opens(c)]
        if not opened:
            continue  # its first call was never recorded: nothing to replay from
        out[key] = [
            RecordedCall(
                request=c.request or {},
                response=c.response or {},
                usage=c.usage,
                cost_usd=c.cost_usd,
                tool_results=[
                    answered[i]
                    for i in tool_use_ids((c.response or {}).get("content"))
                    if i in answered
                ],
            )
            for c in found[opened[-1] :]
            if c.response is not None
        ]
    return out


def conversation_calls(store: Store, task: Task) -> list[Call]:
    own = store.task_calls(task.id)
    succeeded = [c for c in own if c.status == "succeeded"]
    if not succeeded or _opens(succeeded[0]):
        return own  # it began its conversation itself
    rows = store._rows(
        select(Task)
        .where(TASKS.c.run_id == task.run_id, TASKS.c.key == task.key)
        .order_by(TASKS.c.started_at, TASKS.c.id)
    )
    earlier: list[Task] = []
    for row in rows:
        if row.id == task.id:
            break
        earlier = [*earlier, row] if row.status in IN_FLIGHT else []
    before = [c for row in earlier for c in store.task_calls(row.id)]
    before.sort(key=lambda c: (c.ts, c.id))
    opened = [i for i, c in enumerate(before) if c.status == "succeeded" and _opens(c)]
    return (before[opened[-1] :] if opened else []) + own
