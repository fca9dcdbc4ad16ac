"""`--executor ray` on a local Ray cluster, the store on PostgreSQL, the model simulated.

What a user relies on: a run on Ray gives what a local run gives (outputs, calls, costs, the
shared state); a Ray worker process killed mid-task makes that task retry and the run succeed;
the run's concurrency, budget and retries stay global across the cluster; a step's resources
reach Ray; a bad setup (no Ray, SQLite with remote nodes, a node without the workspace, a task
no node can hold) gets a message saying what to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from ray_runs import fanout, run_workflow

from orchestrator.contracts import TaskSpec, WorkerContext
from orchestrator.errors import FatalError
from orchestrator.events import Event, TaskRetried
from orchestrator.executors.ray import RayExecutor, sqlite_refusal
from orchestrator.sim import SimConfig
from orchestrator.states import RunStatus

pytestmark = pytest.mark.timeout(300)


def ray_task_pids() -> list[int]:
    """Processes running a task right now (Ray titles them after the function)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if cmdline.startswith(b"ray::orchestrate_task"):
            pids.append(int(entry))
    return pids


def summary(ran: object) -> dict[str, object]:
    tasks = ran.tasks  # type: ignore[attr-defined]
    calls = ran.calls  # type: ignore[attr-defined]
    return {
        t.key: (
            t.status,
            t.output,
            t.attempts,
            t.input_tokens,
            t.output_tokens,
            t.cost_usd,
            [(c.status, c.input_tokens, c.output_tokens, c.cost_usd) for c in calls[t.key]],
        )
        for t in tasks
    }


def test_a_ray_run_records_what_a_local_run_records(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:  # the tasks really run in Ray worker processes
        while not done.is_set():
            seen.update(ray_task_pids())
            done.wait(0.01)

    text = fanout(6)
    sim = SimConfig(seed=7, latency_s=0.2)
    local = run_workflow(tmp_path / "local", text, db=pg_url, executor="local", sim=sim)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        on_ray = run_workflow(tmp_path / "ray", text, db=pg_url, executor="ray", sim=sim)
    finally:
        done.set()
        watcher.join()

    assert local.outcome.status == on_ray.outcome.status == RunStatus.SUCCEEDED
    assert on_ray.outcome.outputs == local.outcome.outputs
    assert len(on_ray.outcome.outputs["results"]) == 6  # type: ignore[index]
    assert summary(on_ray) == summary(local)
    assert sum(len(c) for c in on_ray.calls.values()) == 12  # state_set, then the answer
    assert on_ray.state == local.state and len(on_ray.state) >= 1
    assert on_ray.run.cost_usd == pytest.approx(local.run.cost_usd)
    assert (on_ray.run.input_tokens, on_ray.run.output_tokens) == (
        local.run.input_tokens,
        local.run.output_tokens,
    )
    assert seen, "no Ray worker process ran a task"
    assert os.getpid() not in seen


def test_a_killed_ray_worker_retries_its_task_and_the_run_succeeds(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    killed: list[int] = []
    stop = threading.Event()

    def kill_one() -> None:
        while not stop.is_set() and not killed:
            for pid in ray_task_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            stop.wait(0.005)

    retried: list[TaskRetried] = []

    def sink(event: Event) -> None:
        if isinstance(event, TaskRetried):
            retried.append(event)

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        # every call takes a second: the kill lands while a task waits on its call
        sim = SimConfig(seed=3, latency_s=1.0)
        ran = run_workflow(tmp_path, fanout(3), db=pg_url, executor="ray", sim=sim, sinks=[sink])
    finally:
        stop.set()
        killer.join()

    assert killed, "no Ray worker process was seen running a task"
    assert ran.outcome.status == RunStatus.SUCCEEDED, ran.outcome.error
    assert len(ran.outcome.outputs["results"]) == 3  # type: ignore[index]
    assert [t.status for t in ran.tasks] == ["succeeded"] * 3
    assert retried and "Ray worker running this task died" in retried[0].error
    again = [t for t in ran.tasks if t.attempts == 2]
    assert [t.id for t in again] == [retried[0].task_id]  # the attempt counts
    assert ran.run.tasks_failed == 0


def test_concurrency_and_global_backoff_hold_across_ray_workers(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    # Ray could run four of these at once (half a CPU each); the run allows two calls at a
    # time, and a storm of 429s is retried by the one dispatcher.
    text = fanout(8, extra="    resources: {num_cpus: 0.5}", limits="limits: {concurrency: 2}")
    sim = SimConfig(seed=11, latency_s=0.1, faults={"429": 0.3})
    ran = run_workflow(tmp_path, text, db=pg_url, executor="ray", sim=sim)
    assert ran.outcome.status == RunStatus.SUCCEEDED, ran.outcome.error
    statuses = [c.status for calls in ran.calls.values() for c in calls]
    assert "succeeded" in statuses and len(statuses) > 8, "the 429s were retried"
    assert all(t.attempts == 1 for t in ran.tasks)  # retried as calls, not as tasks
    in_flight = ran.run.limits["concurrency"]
    assert in_flight == 2


def test_the_budget_stops_ray_workers_as_it_stops_local_ones(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    text = fanout(12, limits="limits: {max_cost_usd: 0.005, concurrency: 2}")
    sim = SimConfig(seed=5, latency_s=0.05)
    local = run_workflow(tmp_path / "local", text, db=pg_url, executor="local", sim=sim)
    on_ray = run_workflow(tmp_path / "ray", text, db=pg_url, executor="ray", sim=sim)
    for ran in (local, on_ray):
        assert ran.outcome.status == RunStatus.BUDGET_EXCEEDED
        assert ran.outcome.exit_code == 3
        spent = sum(c.cost_usd or 0.0 for calls in ran.calls.values() for c in calls)
        assert spent == pytest.approx(ran.run.cost_usd)
        done = [t for t in ran.tasks if t.status == "succeeded"]
        assert 0 < len(done) < 12
    assert abs(len(on_ray.calls) - len(local.calls)) <= 2  # the same stop, give or take a call


def test_a_task_no_node_can_hold_fails_with_what_it_asked_for(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    text = fanout(2, extra="    resources: {num_cpus: 64, memory: 2GiB}")
    ran = run_workflow(tmp_path, text, db=pg_url, executor="ray", sim=SimConfig(seed=1))
    assert ran.outcome.status == RunStatus.FAILED
    errors = {t.error for t in ran.tasks}
    assert len(errors) == 1
    (error,) = errors
    assert "no node of the Ray cluster" in error and "CPU 64" in error and "CPU 2" in error
    assert all(not calls for calls in ran.calls.values())


def test_a_node_that_does_not_see_the_workspace_says_what_it_needs(
    tmp_path: Path, ray_address: str
) -> None:
    from orchestrator.worker import run_worker

    spec = TaskSpec(
        run_id="r",
        task_id="t",
        step_id="s",
        key="s",
        model="claude-sonnet-4-5",
        prompt="hi",
        workspace=str(tmp_path / "only-on-the-driver"),
    )

    async def no_call(spec: TaskSpec, params: dict[str, object]) -> object:
        raise AssertionError("no call may leave before the workspace is found")

    class NoState:
        async def get(self, key: str) -> None: ...
        async def set(self, key: str, value: object) -> None: ...
        async def list(self, prefix: str = "") -> dict[str, object]:
            return {}

    ctx = WorkerContext(call=no_call, state=NoState(), emit=lambda e: None)  # type: ignore[arg-type]

    async def main() -> None:
        async with RayExecutor().running() as executor:
            await executor.wrap(run_worker)(spec, ctx)

    with pytest.raises(FatalError) as raised:
        anyio.run(main)
    message = str(raised.value)
    assert "does not see the run's workspace" in message
    assert str(tmp_path / "only-on-the-driver") in message
    assert "shared by all nodes" in message


def test_sqlite_is_refused_only_when_a_node_is_another_machine() -> None:
    here = "10.0.0.1"
    assert sqlite_refusal(".orchestrate/state.db", {here}, here) is None
    assert sqlite_refusal("postgresql://u@db/x", {here, "10.0.0.2"}, here) is None
    message = sqlite_refusal("sqlite:///s.db", {here, "10.0.0.2"}, here)
    assert message is not None
    assert "10.0.0.2" in message and "PostgreSQL" in message and "--db postgresql://" in message


def test_sqlite_with_every_node_on_this_machine_runs(tmp_path: Path, ray_address: str) -> None:
    db = str(tmp_path / "state.db")
    ran = run_workflow(tmp_path, fanout(2), db=db, executor="ray", sim=SimConfig(seed=2))
    assert ran.outcome.status == RunStatus.SUCCEEDED


def test_without_ray_installed_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(fanout(1))
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "from orchestrator.cli import main\n"
        "sys.argv = ['orchestrate', 'run', 'wf.yaml', '--simulate', '--executor', 'ray', '-q']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'orchestrate[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
