"""The store on PostgreSQL: the same writer and reads as on SQLite, against a real server.

The server is the `pg_url` fixture of tests/conftest.py: a throwaway cluster per module."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import events as ev
from orchestrator.store import Store


def _events(run_id: str) -> list[Any]:
    return [
        ev.RunStarted(
            run_id=run_id,
            workflow_name="pg",
            workflow_path="pg.yaml",
            workflow_snapshot="version: 1",
            workflow_hash="h",
            inputs={"q": "x"},
            workspace="/tmp/ws",
        ),
        ev.StepStarted(run_id=run_id, step_id="each", kind="fanout", total_tasks=2),
        *[
            e
            for i in range(2)
            for e in (
                ev.TaskStarted(
                    run_id=run_id,
                    task_id=f"{run_id}-t{i}",
                    step_id="each",
                    key=f"each[{i}]:h",
                    index=i,
                    prompt=f"item {i}",
                ),
                ev.CallFinished(
                    run_id=run_id,
                    call_id=f"{run_id}-c{i}",
                    task_id=f"{run_id}-t{i}",
                    step_id="each",
                    model="claude-sonnet-5-5",
                    attempt=1,
                    request={"messages": [{"role": "user", "content": f"item {i}"}]},
                    response={"content": [{"type": "text", "text": f"answer {i}"}]},
                    usage={"input_tokens": 10, "output_tokens": 5},
                    cost_usd=0.001,
                ),
                ev.TaskFinished(
                    run_id=run_id,
                    task_id=f"{run_id}-t{i}",
                    step_id="each",
                    status="succeeded",
                    output=f"answer {i}",
                ),
            )
        ],
        ev.StateSet(run_id=run_id, key="seen", value=[1, 2]),
        ev.StepFinished(run_id=run_id, step_id="each", status="succeeded", output=["a", "b"]),
        ev.RunFinished(run_id=run_id, status="succeeded", outputs={"n": 2}),
    ]


def test_a_run_round_trips_through_postgres(pg_url: str) -> None:
    store = Store.open(pg_url)
    assert "psycopg" in store.url or "postgresql" in store.url

    async def write() -> None:
        async with store.writer() as writer:
            for event in _events("01pgrun"):
                writer.send(event)

    anyio.run(write)
    run = store.get_run(store.resolve_run("01pg"))
    assert run is not None
    assert run.status == "succeeded" and run.outputs == {"n": 2}
    assert (run.tasks_total, run.tasks_done, run.calls) == (2, 2, 2)
    assert (run.input_tokens, run.output_tokens) == (20, 10)
    assert set(store.succeeded_tasks(run.id)) == {"each[0]:h", "each[1]:h"}
    assert store.state_items(run.id) == {"seen": [1, 2]}
    task = store.resolve_task(run.id, "each[1]")
    calls = store.task_calls(task.id)
    assert calls[0].response == {"content": [{"type": "text", "text": "answer 1"}]}
    assert [row.calls for row in store.cost_breakdown(run.id)] == [2]
    assert next(e.type for e in store.events(run.id)) == "run_started"
    store.close()


def test_migrations_apply_once_on_postgres(pg_url: str) -> None:
    Store.open(pg_url).close()
    again = Store.open(pg_url)  # a second open finds the schema current
    assert again.list_runs(limit=0) is not None
    again.close()


def test_orchestrate_run_and_history_on_postgres(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli import app

    root = Path(__file__).parents[2]
    monkeypatch.chdir(tmp_path)
    shutil.copytree(root / "agents", tmp_path / "agents")
    runner = CliRunner()
    result = runner.invoke(
        app, ["run", str(root / "workflows" / "research.yaml"), "--simulate", "-q", "--db", pg_url]
    )
    assert result.exit_code == 0, result.stderr
    shown = runner.invoke(app, ["runs", "show", "last", "--json", "--db", pg_url])
    assert shown.exit_code == 0, shown.stderr
    assert '"status": "succeeded"' in shown.stdout
    assert not (tmp_path / ".orchestrate" / "state.db").exists()  # nothing went to SQLite


def test_two_processes_opening_a_new_database_at_once_both_succeed(pg_url: str) -> None:
    import threading

    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE race")
    url = pg_url.rsplit("/", 1)[0] + "/race"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        try:
            barrier.wait()
            Store.open(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    store = Store.open(url, readonly=True)
    assert store.list_runs() == []
    store.close()


def test_claiming_a_run_on_postgres_is_atomic(pg_url: str) -> None:
    import threading

    store = Store.open(pg_url)
    events = _events("01pgclaim")
    events[-1] = ev.RunFinished(run_id="01pgclaim", status="failed", error="x")

    async def write() -> None:
        async with store.writer() as writer:
            for event in events:
                writer.send(event)

    anyio.run(write)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def claim(n: int) -> None:
        barrier.wait()
        # every claimant says its process is alive: only the conditional UPDATE decides
        results.append(store.claim_run("01pgclaim", pid=90000 + n, alive=lambda _: True).ok)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, False, False, True]
    run = store.get_run("01pgclaim")
    assert run is not None and run.status == "running" and run.owner is not None
    store.close()
