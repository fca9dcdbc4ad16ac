"""The writer: events in, rows out, batched, flushed, and never lost on cancellation."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.events import (
    CallFinished,
    CancelRequested,
    Heartbeat,
    RunFinished,
    RunStarted,
    StateSet,
    TaskFinished,
    TaskStarted,
)
from orchestrator.ids import new_id
from orchestrator.store import Store


def run_started(run_id: str, **kw: Any) -> RunStarted:
    fields: dict[str, Any] = {
        "workflow_name": "wf",
        "workflow_path": "wf.yaml",
        "workflow_snapshot": "version: 1",
        "workflow_hash": "h",
        "inputs": {},
        "workspace": "/tmp",
    }
    fields.update(kw)
    return RunStarted(run_id=run_id, **fields)


async def write_all(store: Store, events: list[Any], **kw: Any) -> int:
    async with store.writer(**kw) as writer:
        for event in events:
            writer.send(event)
    return writer.commits


async def test_round_trip_of_a_whole_run(store: Store, make_run: Any) -> None:
    run = make_run(items=3)
    await write_all(store, run.events)

    rec = store.get_run(run.run_id)
    assert rec is not None
    assert rec.status == "succeeded"
    assert rec.workflow_name == "research-report"
    assert rec.inputs == {"question": "why?", "parts": 3}
    assert rec.limits == {"concurrency": 50}
    assert rec.outputs == {"report": "draft 2"}
    assert rec.pid == 4242
    assert rec.finished_at is not None and rec.duration_s is not None and rec.duration_s > 0
    assert rec.heartbeat_at is not None
    # 1 plan + 3 research + 2 drafts; the last research item failed
    assert (rec.tasks_total, rec.tasks_done, rec.tasks_failed) == (6, 5, 1)
    assert rec.retries == 1
    assert rec.cancel_requested is False

    steps = {(s.step_id, s.loop_iteration): s for s in store.step_records(run.run_id)}
    assert set(steps) == {
        ("plan", None),
        ("research", None),
        ("polish", None),
        ("polish.draft", 1),
        ("polish.draft", 2),
    }
    assert steps[("plan", None)].output == ["part 0", "part 1", "part 2"]
    assert steps[("research", None)].kind == "fanout"
    assert steps[("research", None)].total_tasks == 3
    assert steps[("polish", None)].iterations == 2
    assert steps[("polish.draft", 2)].output == "draft 2"
    assert all(s.finished_at is not None for s in steps.values())

    done = store.succeeded_tasks(run.run_id)
    assert set(done) == {"plan", "research[0]", "research[1]", "polish.draft@1", "polish.draft@2"}
    plan = done["plan"]
    assert plan.output == {"subtasks": ["part 0", "part 1", "part 2"]}
    assert plan.id == run.tasks["plan"]
    assert plan.usage.input_tokens == 100 and plan.cost_usd == pytest.approx(0.002)
    assert done["research[0]"].attempts == 2
    assert done["research[0]"].error is None  # the retry's error is gone once it succeeded

    assert store.state_items(run.run_id) == {
        "finding.0": {"i": 0, "final": True},
        "finding.1": {"i": 1},
        "finding.2": {"i": 2},
    }

    failed = store.list_tasks(run.run_id, status="failed")
    assert [t.key for t in failed] == ["research[2]"]
    assert failed[0].error == "model never produced valid JSON"
    assert len(store.list_tasks(run.run_id, step="research")) == 3
    assert len(store.list_tasks(run.run_id)) == 6

    calls = store.task_calls(run.tasks["research[1]"])
    assert len(calls) == 1
    assert calls[0].request is not None and calls[0].request["max_tokens"] == 1024
    assert calls[0].response is not None and calls[0].response["id"] == "msg_x"
    assert calls[0].http_status == 200 and calls[0].request_id is not None
    assert calls[0].usage.cache_read_input_tokens == 200


async def test_totals_equal_the_sum_of_calls(store: Store, make_run: Any) -> None:
    run = make_run(items=7)
    await write_all(store, run.events, max_batch=5)  # totals accumulate across many batches
    rec = store.get_run(run.run_id)
    assert rec is not None
    sums = run.usage_totals()
    assert rec.calls == len(run.calls) == 10
    assert rec.input_tokens == sums["input"]
    assert rec.output_tokens == sums["output"]
    assert rec.cache_creation_input_tokens == sums["cache_write"]
    assert rec.cache_read_input_tokens == sums["cache_read"]
    assert rec.cost_usd == pytest.approx(sums["cost"])
    assert rec.cost_unknown is False
    breakdown = store.cost_breakdown(run.run_id)
    assert sum(r.calls for r in breakdown) == rec.calls
    assert sum(r.cost_usd or 0 for r in breakdown) == pytest.approx(rec.cost_usd)


async def test_unknown_prices_are_flagged_not_zeroed(store: Store, make_run: Any) -> None:
    run = make_run(items=2, unknown_cost_model="claude-haiku-4-5")
    await write_all(store, run.events)
    rec = store.get_run(run.run_id)
    assert rec is not None and rec.cost_unknown is True
    assert rec.cost_usd == pytest.approx(0.002 * 3)  # the priced calls only: a lower bound
    by_step = {r.step_id: r for r in store.cost_breakdown(run.run_id)}
    assert by_step["research"].cost_usd is None
    assert by_step["plan"].cost_usd == pytest.approx(0.002)


async def test_events_are_stored_in_order_without_heartbeats_or_call_bodies(
    store: Store, make_run: Any
) -> None:
    run = make_run(items=2)
    await write_all(store, run.events, max_batch=3)
    stored = store.events(run.run_id)
    expected = [e.type for e in run.events if not isinstance(e, Heartbeat)]
    assert [e.type for e in stored] == expected
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    call = next(e for e in stored if e.type == "call_finished")
    assert "request" not in call.payload and "response" not in call.payload
    assert call.payload["usage"]["input_tokens"] == 100
    # outputs live in their rows only: a large fan-out's output is not stored twice
    for type_, body in (("task_finished", "output"), ("step_finished", "output")):
        assert all(body not in e.payload for e in stored if e.type == type_)
    assert all("outputs" not in e.payload for e in stored if e.type == "run_finished")
    assert store.list_tasks(run.run_id)[0].output is not None
    assert call.as_event_dict()["run_id"] == run.run_id
    # following a run: pages after the last seq seen
    first = store.events(run.run_id, limit=4)
    rest = store.events(run.run_id, after_seq=first[-1].seq)
    assert [e.seq for e in first + rest] == [e.seq for e in stored]


async def test_heartbeat_only_moves_heartbeat_at(store: Store) -> None:
    rid = new_id()
    async with store.writer() as w:
        w.send(run_started(rid, ts=1000.0))
        await w.flush()
        w.send(Heartbeat(run_id=rid, ts=1005.0))
        w.send(Heartbeat(run_id=rid, ts=1010.0))
    rec = store.get_run(rid)
    assert rec is not None
    assert (rec.started_at, rec.heartbeat_at, rec.status) == (1000.0, 1010.0, "running")
    assert [e.type for e in store.events(rid)] == ["run_started"]


async def test_flush_returns_once_everything_sent_before_is_committed(store: Store) -> None:
    rid = new_id()
    other = Store.open(store.url, readonly=True)  # a reader with its own connections
    try:
        async with store.writer(max_delay_s=30.0) as w:  # would otherwise wait 30 s
            w.send(run_started(rid))
            for i in range(50):
                w.send(StateSet(run_id=rid, key=f"k{i}", value=i))
            await anyio.sleep(0.05)
            assert other.get_run(rid) is None  # batched, not yet committed
            assert w.pending == 51
            with anyio.fail_after(5):
                await w.flush()
            assert w.pending == 0
            assert len(other.state_items(rid)) == 50
            # flush from several tasks at once, each with its own cut-off
            async with anyio.create_task_group() as tg:
                for i in range(5):
                    w.send(StateSet(run_id=rid, key=f"x{i}", value=i))
                    tg.start_soon(w.flush)
            assert len(other.state_items(rid)) == 55
            await w.flush()  # nothing pending: returns at once
    finally:
        other.close()


async def test_flush_task_waits_only_for_that_tasks_calls(store: Store) -> None:
    """`engine.durable_calls`: before a task's next request leaves, its own recorded calls are
    committed; its first request (only its start sent) and other tasks' events wait for nothing."""
    rid, first, second = new_id(), new_id(), new_id()
    other = Store.open(store.url, readonly=True)
    try:
        async with store.writer(max_delay_s=30.0) as w:  # nothing commits by itself for 30 s
            w.send(run_started(rid))
            await w.flush()
            w.send(TaskStarted(run_id=rid, task_id=first, step_id="s", key="s[0]"))
            w.send(TaskStarted(run_id=rid, task_id=second, step_id="s", key="s[1]"))
            with anyio.fail_after(5):
                await w.flush_task(first)  # a first request: returns without a commit
            assert w.pending == 2
            w.send(
                CallFinished(
                    run_id=rid,
                    call_id=new_id(),
                    task_id=first,
                    step_id="s",
                    model="claude-sonnet-5-5",
                    attempt=1,
                    request={"model": "claude-sonnet-5-5", "messages": []},
                    response={"id": "msg_1", "content": []},
                )
            )
            await w.flush_task(second)  # the other task has no call to wait for
            assert w.pending == 3
            with anyio.fail_after(5):
                await w.flush_task(first)
            assert w.pending == 0
            assert len(other.task_calls(first)) == 1
    finally:
        other.close()


async def test_final_flush_survives_cancellation(store: Store) -> None:
    rid = new_id()
    sent = anyio.Event()

    async def engine() -> None:
        # nothing would be committed for a minute: all of it rides on the final flush
        async with store.writer(max_batch=100_000, max_delay_s=60.0) as w:
            w.send(run_started(rid))
            for i in range(2500):
                w.send(StateSet(run_id=rid, key=f"k{i}", value=i))
            w.send(CancelRequested(run_id=rid))
            sent.set()
            await anyio.sleep_forever()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine)
            await sent.wait()
            tg.cancel_scope.cancel()

    assert len(store.state_items(rid)) == 2500
    assert store.cancel_requested(rid) is True
    assert store.events(rid)[-1].type == "cancel_requested"


async def test_twenty_thousand_events_are_batched(store: Store) -> None:
    rid = new_id()
    async with store.writer() as w:
        w.send(run_started(rid))
        for i in range(5000):
            tid = new_id()
            w.send(TaskStarted(run_id=rid, task_id=tid, step_id="s", key=f"s[{i}]", index=i))
            w.send(StateSet(run_id=rid, key=f"k{i}", value=i))
            w.send(TaskFinished(run_id=rid, task_id=tid, step_id="s", status="succeeded"))
            w.send(Heartbeat(run_id=rid))
            if i % 500 == 0:
                await anyio.sleep(0)  # let the writer run concurrently, as in a real run
    total = 1 + 5000 * 4
    assert w.events_written == total
    assert w.commits < total / 100
    rec = store.get_run(rid)
    assert rec is not None and (rec.tasks_total, rec.tasks_done) == (5000, 5000)


async def test_readers_in_threads_never_see_database_is_locked(store: Store, db_path: Path) -> None:
    rid = new_id()
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0]

    def reader(own_handle: bool) -> None:
        s = Store.open(str(db_path), readonly=True) if own_handle else store
        try:
            while not stop.is_set():
                s.list_runs(limit=5)
                s.get_run(rid)
                s.events(rid, after_seq=0, limit=50)
                s.list_tasks(rid, step="s")
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            if own_handle:
                s.close()

    threads = [threading.Thread(target=reader, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        async with store.writer(max_batch=200, max_delay_s=0.001) as w:
            w.send(run_started(rid))
            await w.flush()
            for i in range(3000):
                tid = new_id()
                w.send(TaskStarted(run_id=rid, task_id=tid, step_id="s", key=f"s[{i}]"))
                w.send(TaskFinished(run_id=rid, task_id=tid, step_id="s", status="succeeded"))
                if i % 100 == 0:
                    # another process's `runs cancel` writes while the writer writes
                    await anyio.to_thread.run_sync(store.request_cancel, rid)
                    await anyio.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert reads[0] > 0
    rec = store.get_run(rid)
    assert rec is not None and rec.tasks_done == 3000 and rec.cancel_requested


async def test_resumed_run_keeps_totals_and_recounts_a_rerun_task(store: Store) -> None:
    rid = new_id()
    ok, bad = new_id(), new_id()
    call = {
        "step_id": "s",
        "model": "m",
        "attempt": 1,
        "request": {},
        "usage": {"input_tokens": 10},
        "cost_usd": 0.5,
    }
    async with store.writer() as w:
        w.send(run_started(rid, pid=1))
        for tid in (ok, bad):
            w.send(TaskStarted(run_id=rid, task_id=tid, step_id="s", key=tid))
            w.send(CallFinished(run_id=rid, call_id=new_id(), task_id=tid, **call))
        w.send(TaskFinished(run_id=rid, task_id=ok, step_id="s", status="succeeded"))
        w.send(TaskFinished(run_id=rid, task_id=bad, step_id="s", status="failed", error="x"))
        w.send(CancelRequested(run_id=rid))
        w.send(RunFinished(run_id=rid, status="cancelled"))
    before = store.get_run(rid)
    assert before is not None and before.status == "cancelled" and before.cancel_requested
    assert (before.tasks_total, before.tasks_done, before.tasks_failed) == (2, 1, 1)

    # a new process (a new writer, with no memory of the run) resumes it
    async with store.writer() as w:
        w.send(run_started(rid, pid=2, resumed=True, workflow_name="ignored on resume"))
        w.send(TaskStarted(run_id=rid, task_id=bad, step_id="s", key=bad, attempt=2))
        await w.flush()
        mid = store.get_run(rid)
        assert mid is not None
        assert (mid.status, mid.finished_at, mid.pid, mid.cancel_requested) == (
            "running",
            None,
            2,
            False,
        )
        assert (mid.tasks_total, mid.tasks_done, mid.tasks_failed) == (2, 1, 0)
        w.send(CallFinished(run_id=rid, call_id=new_id(), task_id=bad, **call))
        w.send(TaskFinished(run_id=rid, task_id=bad, step_id="s", status="succeeded"))
        w.send(RunFinished(run_id=rid, status="succeeded"))
    after = store.get_run(rid)
    assert after is not None
    assert after.workflow_name == "wf" and after.started_at == before.started_at
    assert (after.tasks_total, after.tasks_done, after.tasks_failed) == (2, 2, 0)
    assert after.calls == 3 and after.cost_usd == pytest.approx(1.5)
    assert after.input_tokens == 30
    assert set(store.succeeded_tasks(rid)) == {ok, bad}


async def test_send_after_close_is_an_error(store: Store) -> None:
    async with store.writer() as w:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        w.send(Heartbeat(run_id="x"))


async def test_a_failed_commit_propagates_instead_of_dropping_events(store: Store) -> None:
    value: list[Any] = []
    value.append(value)  # unknown objects degrade to str(), but a cycle cannot be encoded
    with pytest.raises(ExceptionGroup) as info:
        with anyio.fail_after(5):
            async with store.writer() as w:
                w.send(StateSet(run_id=new_id(), key="k", value=value))
                await w.flush()  # does not hang: the writer's failure cancels the body
    assert info.group_contains(ValueError, match="[Cc]ircular")


def test_writer_on_a_readonly_store_is_refused(db_path: Path) -> None:
    Store.open(str(db_path)).close()
    ro = Store.open(str(db_path), readonly=True)
    try:
        with pytest.raises(Exception, match="read-only"):
            anyio.run(ro.writer().__aenter__)
    finally:
        ro.close()


def test_time_is_not_needed_to_flush_when_batch_is_full(store: Store) -> None:
    async def main() -> float:
        t0 = time.perf_counter()
        async with store.writer(max_batch=10, max_delay_s=30.0) as w:
            rid = new_id()
            w.send(run_started(rid))
            for i in range(9):
                w.send(StateSet(run_id=rid, key=str(i), value=i))
            with anyio.fail_after(5):
                while w.pending:
                    await anyio.sleep(0.01)
        return time.perf_counter() - t0

    assert anyio.run(main) < 5


async def test_drain_holds_a_fast_producer_back_until_the_backlog_is_small(
    store: Store,
) -> None:
    rid = new_id()
    async with store.writer(max_batch=50) as w:
        w.send(run_started(rid))
        await w.drain()  # nothing to wait for
        for i in range(2000):
            w.send(StateSet(run_id=rid, key=f"k{i}", value=i))
        assert w.pending > 4 * 50  # a producer far ahead of the database
        await w.drain()
        assert w.pending <= 50  # held back until the backlog is one batch at most
    assert w.events_written == 2001
