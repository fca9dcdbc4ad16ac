"""Issue 14 item 13: a value the database refuses as too big never ends the writer.

SQLite's length limit is lowered on the writer's connections (the default is 1 GB, which the
engine's own bound keeps values far from), so an event with a large output hits it for real.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from sqlalchemy import event as sa_event

from orchestrator.events import TaskFinished
from orchestrator.store import Store

LIMIT = 200_000


def _lower_limit(store: Store) -> None:
    def on_connect(dbapi: Any, record: Any) -> None:
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, LIMIT)

    sa_event.listen(store._write_engine, "connect", on_connect)
    store._write_engine.dispose()  # connections opened before get the limit too


async def test_an_output_too_big_for_the_database_is_cut_not_fatal(
    store: Store, make_run: Any
) -> None:
    _lower_limit(store)
    run = make_run(items=3)
    huge = "x" * (LIMIT * 3)
    events = [
        dataclasses.replace(e, output=huge)
        if isinstance(e, TaskFinished) and e.status == "succeeded" and e.output == "finding 1"
        else e
        for e in run.events
    ]
    assert any(getattr(e, "output", None) == huge for e in events)
    async with store.writer() as writer:
        for e in events:
            writer.send(e)
    record = store.get_run(run.run_id)
    assert record is not None and record.status == "succeeded"  # the run was not left running
    outputs = [t.output for t in store.list_tasks(run.run_id)]
    [cut] = [o for o in outputs if isinstance(o, str) and o.startswith("xxx")]
    assert len(cut) < LIMIT and "not stored: over the database's size limit" in cut
    assert "finding 0" in outputs  # the other events of the batch were written as they were
