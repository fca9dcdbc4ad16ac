"""Fault storms, large fan-outs and concurrent readers, through the real CLI on the simulator."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from orchestrator.sim import SimConfig
from orchestrator.store import Store
from tests._support.wait import wait_for

from .conftest import Cli, fanout_workflow, item, open_readonly, real_env


def _run_id(stdout: str) -> str:
    """`--json` prints the run id first and the result last."""
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert lines[0]["type"] == "run"
    assert lines[-1]["type"] == "result"
    return str(lines[0]["run_id"])


def test_fault_storm_of_429_529_and_disconnects_still_succeeds(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "fan.yaml").write_text(fanout_workflow(20, concurrency=20))
    db = tmp_path / "state.db"
    done = cli.run(
        "run",
        "fan.yaml",
        "--db",
        str(db),
        "--simulate",
        "--sim-seed",
        "5",
        "--sim-faults",
        "429=0.1,529=0.1,disconnect=0.02",
        "-q",
        "-o",
        "out.json",
    )
    assert done.code == 0, done.stderr
    assert "Traceback" not in done.stderr
    outputs = json.loads((tmp_path / "out.json").read_text())
    assert len(outputs["results"]) == 20

    shown = cli.run("runs", "show", "last", "--json", "--db", str(db))
    assert shown.code == 0, shown.stderr
    summary = json.loads(shown.stdout)
    totals = summary["totals"]
    assert summary["status"] == "succeeded"
    assert totals["tasks_failed"] == 0
    assert totals["tasks_done"] == 21
    assert totals["retries"] > 0, "a 22% fault rate over 21+ calls must have caused retries"

    with open_readonly(db) as store:
        run_id = store.resolve_run("last")
        tasks = store.list_tasks(run_id)
        assert len(tasks) == 21
        assert {t.status for t in tasks} == {"succeeded"}
        calls = [c for t in tasks for c in store.task_calls(t.id)]
    statuses = [c.status for c in calls]
    assert statuses.count("succeeded") == 21  # one good call per task, the rest were retried
    assert "retryable_error" in statuses
    assert totals["calls"] == len(calls)
    assert totals["retries"] == statuses.count("retryable_error")


def test_fifty_concurrent_readers_during_a_500_worker_run(
    tmp_path: Path, cli: Cli, sim_factory: Any, gate_factory: Any
) -> None:
    (tmp_path / "fan.yaml").write_text(fanout_workflow(500, concurrency=50))
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(latency_s=0.02))
    # The last item waits until every reader has seen the run running: they overlap it for sure.
    gate = gate_factory(sim, item("research", 499))
    child = cli.start("run", "fan.yaml", "--db", str(db), "-q", env=real_env(gate))
    run_id = child.run_id()
    stop = threading.Event()
    errors: list[BaseException] = []
    saw_running = [0] * 50
    reads = [0] * 50

    def reader(slot: int) -> None:
        try:
            while not stop.is_set():
                with Store.open(str(db), readonly=True) as store:
                    runs = store.list_runs()
                    store.list_tasks(run_id, status="succeeded")
                reads[slot] += 1
                if any(r.id == run_id and r.status == "running" for r in runs):
                    saw_running[slot] += 1
                stop.wait(0.01)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(50)]
    for thread in threads:
        thread.start()
    wait_for(lambda: all(saw_running) or errors, what="every reader to see the run running")
    gate.release()
    code = child.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, f"{len(errors)} readers failed, first: {errors[0]!r}"
    assert code == 0, child.stderr
    assert "database is locked" not in child.stderr
    assert all(reads), "every reader got at least one answer"
    assert sum(saw_running) >= 50, "the readers overlapped the run"
    with open_readonly(db) as store:
        record = store.get_run(run_id)
        assert record is not None and record.status == "succeeded"
        assert len(store.list_tasks(run_id, status="succeeded")) == 501


def test_a_1000_worker_run_records_every_task(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "fan.yaml").write_text(fanout_workflow(1000, concurrency=100))
    db = tmp_path / "state.db"
    done = cli.run("run", "fan.yaml", "--db", str(db), "--simulate", "--json")
    assert done.code == 0, done.stderr[-2000:]
    run_id = _run_id(done.stdout)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "succeeded"
    assert len(result["outputs"]["results"]) == 1000

    with open_readonly(db) as store:
        tasks = store.list_tasks(run_id)
        assert len(tasks) == 1000 + 1
        assert all(t.status == "succeeded" for t in tasks)
        indexes = sorted(t.index for t in tasks if t.step_id == "research")
        assert indexes == list(range(1000))
    listed = cli.run("runs", "list", "--json", "--db", str(db))
    row = json.loads(listed.stdout)[0]
    assert row["tasks_total"] == row["tasks_done"] == 1001
