"""A run killed with SIGKILL mid fan-out, or stopped with SIGINT, resumes to the same result.

The child runs in real mode against a simulator in this process, so every Messages API request is
counted per task key (`X-Orchestrate-Task`): a task the store recorded as succeeded before the kill
must never be asked for again, and no other task more than once more.

None of these tests races the run against the host's speed: the run's requests go through a
`Gate` that holds the last fan-out item, so the run cannot finish before the test has killed or
interrupted it, however slow the machine. The resume talks to the simulator directly; the held
request is dropped with the gate and never reaches it.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sim import SimConfig, SimServer
from orchestrator.store import Store
from tests._support.wait import wait_for

from .conftest import (
    Cli,
    calls_by_task,
    fanout_workflow,
    item,
    open_readonly,
    real_env,
)

N = 40
SEED = 11
LATENCY_S = 0.1
STALE_S = 1.0


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], dict[str, Any]]:
    """The outputs of an uninterrupted run on a simulator with a given seed (one run per seed)."""
    known: dict[int, dict[str, Any]] = {}

    def outputs(seed: int) -> dict[str, Any]:
        if seed not in known:
            tmp = tmp_path_factory.mktemp(f"baseline-{seed}")
            (tmp / "fan.yaml").write_text(fanout_workflow(N, concurrency=8))
            runner = Cli(tmp)
            with SimServer(SimConfig(seed=seed)) as sim:
                done = runner.run(
                    "run",
                    "fan.yaml",
                    "--db",
                    "state.db",
                    "-q",
                    "-o",
                    "out.json",
                    env=real_env(sim),
                )
            runner.close()
            assert done.code == 0, done.stderr
            known[seed] = json.loads((tmp / "out.json").read_text())
        return known[seed]

    return outputs


def _settled(sim: SimServer) -> bool:
    return sim.log.in_flight == 0


def interrupted(store: Store, run_id: str) -> bool:
    record = store.get_run(run_id)
    return record is not None and store.run_status(record, STALE_S) == "interrupted"


@pytest.mark.parametrize(
    ("seed", "kill_after"), [(SEED, 3), (SEED, 20), (29, 1), (47, 12)], ids=lambda v: str(v)
)
def test_sigkill_mid_fanout_then_resume_redoes_only_unfinished_tasks(
    tmp_path: Path,
    cli: Cli,
    sim_factory: Any,
    baseline: Callable[[int], dict[str, Any]],
    seed: int,
    kill_after: int,
    gate_factory: Any,
) -> None:
    (tmp_path / "fan.yaml").write_text(fanout_workflow(N, concurrency=8))
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(seed=seed, latency_s=LATENCY_S))
    gate = gate_factory(sim, item("research", N - 1))  # the run cannot finish before the kill
    # A killed run is `interrupted` (resumable) once its heartbeat is older than this.
    env = real_env(sim, ORCHESTRATE_ENGINE__STALE_AFTER=f"{STALE_S}s")

    child = cli.start(
        "run", "fan.yaml", "--db", str(db), "-q", env={**env, "ANTHROPIC_BASE_URL": gate.base_url}
    )
    run_id = child.run_id()
    store = open_readonly(db)

    def research_done() -> int:
        return len(store.list_tasks(run_id, step="research", status="succeeded"))

    wait_for(lambda: research_done() >= kill_after, what=f"{kill_after} finished items")
    assert child.kill(signal.SIGKILL) == -signal.SIGKILL
    wait_for(lambda: _settled(sim), what="the simulator to finish the orphaned requests")

    before = calls_by_task(sim)
    kept = set(store.succeeded_tasks(run_id))
    assert len(kept) < N + 1
    assert "plan" in kept
    # Tasks killed after their reply was recorded but before they were marked succeeded: resume
    # replays that reply from the store (call-level replay) instead of asking again.
    replayed = {
        t.key
        for t in store.list_tasks(run_id)
        if t.key not in kept and any(c.status == "succeeded" for c in store.task_calls(t.id))
    }
    wait_for(lambda: interrupted(store, run_id), every=0.1, what="a stale heartbeat")

    done = cli.run("resume", run_id, "--db", str(db), "-q", "-o", "out.json", env=env)
    assert done.code == 0, done.stderr

    after = calls_by_task(sim)
    keys = {"plan"} | {k for k in after if k.startswith("research[")}
    assert len(keys) == N + 1, "every item was asked for"
    assert all(before[k] == 1 for k in kept), "what succeeded was asked for once, before the kill"
    again = {k: after[k] - before[k] for k in keys}
    # succeeded before the kill: never again; a recorded reply: replayed, never asked again;
    # in flight (no reply recorded) or not started: exactly once more
    assert {k: again[k] for k in kept} == dict.fromkeys(kept, 0)
    unfinished = keys - kept
    assert {k: again[k] for k in unfinished} == {k: 0 if k in replayed else 1 for k in unfinished}
    in_flight_at_kill = {k for k in unfinished - replayed if before[k] == 1}
    assert all(after[k] == 2 for k in in_flight_at_kill)

    record = store.get_run(run_id)
    assert record is not None and record.status == "succeeded"
    outputs = json.loads((tmp_path / "out.json").read_text())
    assert len(outputs["results"]) == N
    assert all(isinstance(r, str) and r for r in outputs["results"])
    assert outputs == baseline(seed)
    store.close()


def test_sigkilled_run_is_interrupted_then_resumed_without_orphaned_tasks(
    tmp_path: Path, cli: Cli, sim_factory: Any, gate_factory: Any
) -> None:
    (tmp_path / "fan.yaml").write_text(fanout_workflow(12, concurrency=4))
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(seed=SEED, latency_s=0.3))
    gate = gate_factory(sim, item("research", 11))  # the run cannot finish before the kill
    # The run shows `running` while its heartbeat (every 100ms) is fresher than this; the margin
    # is for a loaded host, where `runs list` itself takes seconds to start.
    env = real_env(sim, ORCHESTRATE_ENGINE__STALE_AFTER="5s", ORCHESTRATE_ENGINE__HEARTBEAT="100ms")

    child = cli.start(
        "run", "fan.yaml", "--db", str(db), "-q", env={**env, "ANTHROPIC_BASE_URL": gate.base_url}
    )
    run_id = child.run_id()
    store = open_readonly(db)
    gate.wait_held()
    wait_for(
        lambda: store.list_tasks(run_id, step="research", status="running"),
        what="items in flight",
    )

    def listed() -> dict[str, Any]:
        done = cli.run("runs", "list", "--json", "--db", str(db), env=env)
        assert done.code == 0, done.stderr
        rows = {row["id"]: row for row in json.loads(done.stdout)}
        return rows[run_id]

    assert listed()["status"] == "running"
    child.kill(signal.SIGKILL)
    row = wait_for(
        lambda: (r := listed())["status"] == "interrupted" and r,
        every=0.3,
        what="the run to show as interrupted",
    )
    assert row["finished_at"] is None

    done = cli.run("resume", run_id, "--db", str(db), "-q", env=env)
    assert done.code == 0, done.stderr
    assert listed()["status"] == "succeeded"
    tasks = cli.run("runs", "tasks", run_id, "--json", "--db", str(db), env=env)
    assert tasks.code == 0, tasks.stderr
    statuses = Counter(t["status"] for t in json.loads(tasks.stdout))
    assert statuses["succeeded"] == 12 + 1
    # The tasks the dead process had in flight are history now: a finished run must not list
    # tasks that are still `running` (nothing will ever finish them).
    assert statuses["running"] == 0, statuses
    store.close()


def test_sigint_cancels_with_exit_130_and_resume_completes(
    tmp_path: Path, cli: Cli, sim_factory: Any, gate_factory: Any
) -> None:
    (tmp_path / "fan.yaml").write_text(fanout_workflow(20, concurrency=4))
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(seed=SEED, latency_s=LATENCY_S))
    gate = gate_factory(sim, item("research", 19))  # the run cannot finish before the SIGINT
    env = real_env(sim)

    child = cli.start("run", "fan.yaml", "--db", str(db), "-q", env=real_env(gate))
    run_id = child.run_id()
    store = open_readonly(db)
    wait_for(
        lambda: store.list_tasks(run_id, step="research", status="succeeded"),
        what="a finished item",
    )
    assert child.kill(signal.SIGINT) == 130, child.stderr
    assert "Traceback" not in child.stderr
    assert "cancelled" in child.stderr
    record = store.get_run(run_id)
    assert record is not None and record.status == "cancelled"
    cancelled = store.list_tasks(run_id, status="cancelled")
    succeeded_before = set(store.succeeded_tasks(run_id))
    assert cancelled, "tasks in flight at SIGINT are recorded as cancelled"
    before = calls_by_task(sim)

    done = cli.run("resume", run_id, "--db", str(db), "-q", "-o", "out.json", env=env)
    assert done.code == 0, done.stderr
    record = store.get_run(run_id)
    assert record is not None and record.status == "succeeded"
    outputs = json.loads((tmp_path / "out.json").read_text())
    assert len(outputs["results"]) == 20
    after = calls_by_task(sim)
    assert all(after[k] == before[k] for k in succeeded_before)
    store.close()


def test_sigint_during_a_simulated_run_prints_no_traceback(tmp_path: Path, cli: Cli) -> None:
    """Ctrl-C on `--simulate` with requests in flight: a clean cancel, then a clean resume.

    The child's own simulator is scripted to keep the last item overloaded (529, retried), so
    the run cannot finish before the SIGINT; the resume runs without the script."""
    (tmp_path / "fan.yaml").write_text(fanout_workflow(20, concurrency=4))
    (tmp_path / "hold.yaml").write_text(
        "- {step: research, prompt: 'part 19 of', error: {status: 529, type: overloaded_error, "
        "message: held by the test}}\n"
    )
    db = tmp_path / "state.db"
    sim_flags = ("--simulate", "--sim-latency", "300ms")
    child = cli.start(
        "run", "fan.yaml", "--db", str(db), *sim_flags, "--sim-script", "hold.yaml", "-q"
    )
    run_id = child.run_id()
    store = open_readonly(db)
    wait_for(
        lambda: store.list_tasks(run_id, step="research", status="succeeded"),
        what="a finished item",
    )
    assert child.kill(signal.SIGINT) == 130, child.stderr
    record = store.get_run(run_id)
    assert record is not None and record.status == "cancelled"

    done = cli.run("resume", run_id, "--db", str(db), "--simulate", "-q", "-o", "out.json")
    assert done.code == 0, done.stderr
    assert len(json.loads((tmp_path / "out.json").read_text())["results"]) == 20
    store.close()
    # the simulator's request handlers still sleeping at shutdown must not be reported as crashes
    assert "Traceback" not in child.stderr, child.stderr
