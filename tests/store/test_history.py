"""The read side the CLI uses: resolving refs, listing, summaries, export, delete and prune."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.events import Event, Heartbeat, RunFinished, RunStarted
from orchestrator.store import Store


def write(store: Store, events: list[Event]) -> None:
    import anyio

    async def main() -> None:
        async with store.writer() as w:
            for e in events:
                w.send(e)

    anyio.run(main)


def started(run_id: str, ts: float, workflow: str = "wf") -> RunStarted:
    return RunStarted(
        run_id=run_id,
        ts=ts,
        workflow_name=workflow,
        workflow_path=f"{workflow}.yaml",
        workflow_snapshot="",
        workflow_hash="",
        inputs={},
        workspace=".",
    )


def test_resolve_run_by_id_prefix_and_last(store: Store) -> None:
    now = time.time()
    ids = [
        "01aaaa0000000000000000000a",
        "01aaab0000000000000000000b",
        "01bbbb0000000000000000000c",
    ]
    write(store, [started(rid, now + i) for i, rid in enumerate(ids)])

    assert store.resolve_run(ids[0]) == ids[0]
    assert store.resolve_run("01bb") == ids[2]
    assert store.resolve_run("01AAAB") == ids[1]  # case does not matter
    assert store.resolve_run("last") == ids[2]
    with pytest.raises(UsageError) as amb:
        store.resolve_run("01aa")
    assert str(amb.value) == f"'01aa' is ambiguous: matches {ids[0]}, {ids[1]}"
    with pytest.raises(UsageError, match="no run matches '01zz'"):
        store.resolve_run("01zz")
    with pytest.raises(UsageError, match="no run matches"):
        store.resolve_run("01aa%")  # no LIKE wildcards


def test_resolve_run_lists_at_most_five_candidates(store: Store) -> None:
    ids = [f"01cc{i:022d}" for i in range(8)]
    write(store, [started(rid, 1000.0 + i) for i, rid in enumerate(ids)])
    with pytest.raises(UsageError, match=r"matches .* and 3 more$"):
        store.resolve_run("01cc")


def test_last_on_an_empty_store(store: Store) -> None:
    with pytest.raises(UsageError, match="no runs yet"):
        store.resolve_run("last")


def test_list_runs_newest_first_with_filters(store: Store) -> None:
    now = time.time()
    events: list[Event] = []
    for i in range(6):
        rid = f"01dd{i:022d}"
        events.append(started(rid, now - 100 + i, workflow="a" if i % 2 else "b"))
        if i < 4:
            events.append(
                RunFinished(run_id=rid, ts=now - 50, status="failed" if i else "succeeded")
            )
    write(store, events)
    runs = store.list_runs(limit=0)
    assert [r.id[-1] for r in runs] == ["5", "4", "3", "2", "1", "0"]
    assert [r.id[-1] for r in store.list_runs(limit=2)] == ["5", "4"]
    assert [r.id[-1] for r in store.list_runs(status="failed")] == ["3", "2", "1"]
    assert [r.id[-1] for r in store.list_runs(workflow="a")] == ["5", "3", "1"]
    assert [r.id[-1] for r in store.list_runs(workflow="b.yaml")] == ["4", "2", "0"]


def test_interrupted_is_derived_from_a_stale_heartbeat(store: Store) -> None:
    now = time.time()
    stale, live = "01ee0000000000000000000001", "01ee0000000000000000000002"
    write(
        store,
        [
            started(stale, now - 300),
            Heartbeat(run_id=stale, ts=now - 120),
            started(live, now - 300),
            Heartbeat(run_id=live, ts=now - 1),
        ],
    )
    by_id = {r.id: r for r in store.list_runs()}
    assert by_id[stale].status == "interrupted"
    assert by_id[live].status == "running"
    assert [r.id for r in store.list_runs(status="interrupted")] == [stale]
    assert [r.id for r in store.list_runs(status="running")] == [live]
    # stored status is untouched; the derivation depends on the threshold
    raw = store.get_run(stale)
    assert raw is not None and raw.status == "running"
    assert store.run_status(raw) == "interrupted"
    assert store.run_status(raw, stale_after_s=600) == "running"
    assert store.list_runs(stale_after_s=600)[0].status == "running"


def test_resolve_task_forms(store: Store, make_run: Any) -> None:
    run = make_run(items=3)
    write(store, run.events)
    rid = run.run_id
    plan_id = run.tasks["plan"]

    assert store.resolve_task(rid, plan_id).key == "plan"
    assert store.resolve_task(rid, plan_id.upper()).key == "plan"
    assert store.resolve_task(rid, "plan").id == plan_id  # a single-task step
    assert store.resolve_task(rid, "research[1]").id == run.tasks["research[1]"]
    # a loop body step: the latest iteration
    assert store.resolve_task(rid, "polish.draft").id == run.tasks["polish.draft@2"]
    # the shortest unique prefix (ULIDs made in one millisecond differ only at the end)
    target = run.tasks["research[2]"]
    others = [t for t in run.tasks.values() if t != target]
    n = next(n for n in range(1, 27) if not any(o.startswith(target[:n]) for o in others))
    assert store.resolve_task(rid, target[:n]).id == target

    with pytest.raises(UsageError, match=r"ran 3 items; name one as research\[0\]..research\[2\]"):
        store.resolve_task(rid, "research")
    with pytest.raises(UsageError, match="has no item 7"):
        store.resolve_task(rid, "research[7]")
    with pytest.raises(UsageError, match="no task or step matches 'nope'"):
        store.resolve_task(rid, "nope")
    with pytest.raises(UsageError, match="is ambiguous"):
        store.resolve_task(rid, plan_id[:4])


def test_step_summaries(store: Store, make_run: Any) -> None:
    run = make_run(items=3)
    write(store, run.events)
    rows = {(s.step_id, s.iteration): s for s in store.step_summaries(run.run_id)}
    research = rows[("research", None)]
    assert (research.kind, research.status) == ("fanout", "succeeded")
    assert (research.tasks_total, research.tasks_done, research.tasks_failed) == (3, 2, 1)
    assert research.calls == 3
    assert (research.usage.input_tokens, research.usage.cache_read_input_tokens) == (300, 600)
    assert research.cost_usd == pytest.approx(0.006)
    # cache_read / (input + cache_read + cache_creation) = 600 / (300 + 600 + 30)
    assert research.cache_hit_ratio == pytest.approx(600 / 930)
    assert research.duration_s is not None and research.duration_s > 0
    draft2 = rows[("polish.draft", 2)]
    assert (draft2.tasks_total, draft2.calls, draft2.cache_hit_ratio) == (1, 1, 0.0)
    loop = rows[("polish", None)]
    assert (loop.kind, loop.tasks_total, loop.cache_hit_ratio) == ("loop", 0, None)


def test_cost_breakdown_per_step_and_model(store: Store, make_run: Any) -> None:
    run = make_run(items=2)
    write(store, run.events)
    rows = [(r.step_id, r.model, r.calls) for r in store.cost_breakdown(run.run_id)]
    assert rows == [
        ("plan", "claude-opus-4-1", 1),
        ("research", "claude-haiku-4-5", 2),
        ("polish.draft", "claude-sonnet-4-5", 2),
    ]


def test_export_gives_every_row_of_the_run(store: Store, make_run: Any) -> None:
    run, other = make_run(items=2), make_run(items=1)
    write(store, run.events + other.events)
    rows = list(store.export_run(run.run_id))
    counts: dict[str, int] = {}
    for item in rows:
        counts[item["table"]] = counts.get(item["table"], 0) + 1
        row = item["row"]
        assert row.get("run_id", row.get("id")) == run.run_id
    assert counts == {
        "runs": 1,
        "steps": 5,
        "tasks": 5,
        "calls": 5,
        "events": len([e for e in run.events if not isinstance(e, Heartbeat)]),
        "state": 2,
    }
    assert rows[0]["row"]["inputs"] == {"question": "why?", "parts": 2}  # JSON decoded
    json.dumps(rows)  # JSON-ready as is


def test_delete_run_removes_only_that_run(store: Store, make_run: Any) -> None:
    a, b = make_run(items=2), make_run(items=2)
    write(store, a.events + b.events)
    store.delete_run(a.run_id)
    assert store.get_run(a.run_id) is None
    assert list(store.export_run(a.run_id)) == []
    assert store.get_run(b.run_id) is not None
    assert len(list(store.export_run(b.run_id))) > 20


def test_prune_deletes_old_finished_runs_only(store: Store, make_run: Any) -> None:
    now = time.time()
    old = make_run(items=1, start=now - 10 * 86400)
    recent = make_run(items=1, start=now - 3600)
    old_unfinished = make_run(items=1, start=now - 10 * 86400, finish=None)
    write(store, old.events + recent.events + old_unfinished.events)
    assert store.prune(older_than_s=7 * 86400, now=now) == 1
    assert store.get_run(old.run_id) is None
    assert store.task_calls(old.tasks["plan"]) == []
    assert store.get_run(recent.run_id) is not None
    assert store.get_run(old_unfinished.run_id) is not None  # interrupted: resumable, kept
    assert store.prune(older_than_s=60, now=now) == 1
    assert store.prune(older_than_s=60, now=now) == 0


def test_request_cancel(store: Store, make_run: Any) -> None:
    run = make_run(items=1, finish=None)
    write(store, run.events)
    assert store.cancel_requested(run.run_id) is False
    store.request_cancel(run.run_id)
    assert store.cancel_requested(run.run_id) is True
    with pytest.raises(UsageError):
        store.request_cancel("01nonexistent")
    assert store.cancel_requested("01nonexistent") is False
