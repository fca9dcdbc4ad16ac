#!/usr/bin/env python
"""The Ray executor against the local one: the same fan-out, side by side, on this machine.

Both sides run `orchestrate run bench/workflows/fanout.yaml --input n=N` (one planner call, N
single-call workers, a merge) in real mode against the same simulator (its own process), with
the store on SQLite (every Ray node is this machine). The only difference is `--executor`:

  local: every task in the driver's event loop (`--concurrency S`);
  ray:   every task a Ray task on a running local cluster (`ray.init(num_cpus=CPUS)` in a child
         process of its own, started once and warmed up before measuring), each asking for
         `resources: {num_cpus: CPUS/S}` so that S tasks fit at once, `--concurrency S` too.

Measured per run: makespan (runs.finished_at - started_at, from the store), CPU seconds of the
driver (os.wait4) and of the cluster's processes (raylet, GCS, Ray workers: /proc, sampled every
100 ms, so a process born and gone between samples is missed), CPU ms per task, and the median
task duration (TaskStarted -> TaskFinished of the N workers). The Ray overhead per task is the
difference of the median task durations (the latency Ray adds to each task) and of the CPU per
task (what Ray costs the machine per task).

  python bench/ray.py                                  # --workers 200 --slots 2,20 --latency 50ms
  python bench/ray.py --workers 200 --slots 20 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

WORKFLOW = h.BENCH_DIR / "workflows" / "fanout.yaml"

_CLUSTER = """
import sys, ray
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, _temp_dir=sys.argv[2],
         log_to_driver=False, configure_logging=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
ray.shutdown()
"""


def _session_cpu(session: int) -> dict[int, float]:
    """CPU seconds (user + system) of every live process in `session`, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # fields after the name: state ppid pgrp session ...
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return out


class _Sampler:
    """The cluster's CPU while a run lasts: the last sample of every process seen."""

    def __init__(self, session: int) -> None:
        self.session = session
        self.before = _session_cpu(session)
        self.last = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self.last.update(_session_cpu(self.session))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.last.update(_session_cpu(self.session))
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.last.items())


@contextmanager
def cluster(cpus: int) -> Iterator[tuple[str, int]]:
    """A local Ray cluster in a child process of its own session: (address, session id)."""
    temp = tempfile.mkdtemp(prefix="rb-", dir="/tmp")  # Ray's socket paths must stay short
    proc = subprocess.Popen(
        [h.PYTHON, "-c", _CLUSTER, str(cpus), temp],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=h.child_env(),
    )
    h._register(proc)  # type: ignore[arg-type]
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().decode().strip()
        if not address:
            raise RuntimeError("the Ray cluster did not start")
        yield address, proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            h._kill(proc)  # type: ignore[arg-type]
        h._unregister(proc)  # type: ignore[arg-type]
        shutil.rmtree(temp, ignore_errors=True)


def _workflow(folder: Path, task_cpus: float | None) -> Path:
    # the planner's 128k max_tokens (room for 10,000 topics) is over what the simulator's Sonnet
    # now allows (64k); a few hundred topics need far less
    text = WORKFLOW.read_text().replace("max_tokens: 128000", "max_tokens: 32000")
    if task_cpus is not None:
        text = text.replace(
            '    prompt: "Write a short note on: {{ topic }}"',
            f'    prompt: "Write a short note on: {{{{ topic }}}}"\n'
            f"    resources: {{num_cpus: {task_cpus:g}}}",
        )
        assert "resources:" in text, "bench/workflows/fanout.yaml changed: update bench/ray.py"
    path = folder / "fanout.yaml"
    path.write_text(text)
    return path


def one_run(
    *,
    executor: str,
    workers: int,
    slots: int,
    sim: h.Sim,
    address: str | None,
    session: int | None,
    task_cpus: float | None,
    timeout_s: float,
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="orchestrate-bench-ray-"))
    try:
        db = folder / "state.db"
        flags = ["--executor", executor] + (["--ray-address", address] if address else [])
        cmd = [
            *h._find_cli(),
            "run",
            str(_workflow(folder, task_cpus)),
            "--db",
            str(db),
            "--input",
            f"n={workers}",
            "--concurrency",
            str(slots),
            "-q",
            *flags,
        ]
        env = h.child_env(ANTHROPIC_BASE_URL=sim.base_url, ANTHROPIC_API_KEY="sk-bench")
        sampler = _Sampler(session) if session is not None else None
        measured = h.run_measured(cmd, timeout_s=timeout_s, env=env, cwd=folder)
        cluster_cpu = sampler.stop() if sampler is not None else 0.0
        measured.check(f"{executor} run")
        with sqlite3.connect(db) as conn:
            started, finished = conn.execute("SELECT started_at, finished_at FROM runs").fetchone()
            durations = [
                end - start
                for start, end in conn.execute(
                    "SELECT started_at, finished_at FROM tasks WHERE step_id = 'work'"
                )
            ]
        assert len(durations) == workers, f"{len(durations)} tasks, wanted {workers}"
        return {
            "makespan": finished - started,
            "driver_cpu": measured.cpu_s,
            "cluster_cpu": cluster_cpu,
            "task_s": statistics.median(durations),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--slots", default="2,20", help="tasks at once, comma-separated")
    parser.add_argument("--cpus", type=int, default=2, help="the Ray cluster's CPUs")
    parser.add_argument("--latency", default="50ms", help="the simulator's latency per call")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    h.install_cleanup()
    # the cluster and the drivers share a token of their own (Ray >= 2.59 authenticates)
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ["RAY_AUTH_MODE"] = "token"  # a driver joining a cluster does not infer it
    slots_list = [int(s) for s in args.slots.split(",")]
    latency = h.parse_latency(args.latency)
    print(f"bench/ray.py: {h.machine()}")
    print(f"{args.workers} workers, simulator latency {args.latency}, Ray cluster {args.cpus} CPUs")
    rows = []
    with (
        h.simulator(latency_s=latency, list_len=args.workers) as sim,
        cluster(args.cpus) as (address, session),
    ):
        for slots in slots_list:
            common: dict[str, Any] = dict(
                workers=args.workers, slots=slots, sim=sim, timeout_s=args.timeout
            )
            on_ray: dict[str, Any] = dict(
                executor="ray", address=address, session=session, task_cpus=args.cpus / slots
            )
            here: dict[str, Any] = dict(executor="local", address=None, session=None)
            # warm-up: Ray starts its worker processes for the first tasks of a shape
            one_run(**on_ray, **common)
            results: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
            for _ in range(args.repeat):
                results["local"].append(one_run(**here, task_cpus=None, **common))
                results["ray"].append(one_run(**on_ray, **common))
            med = {
                side: {k: h.median([r[k] for r in runs]) for k in runs[0]}
                for side, runs in results.items()
            }
            for side in ("local", "ray"):
                m = med[side]
                cpu = m["driver_cpu"] + m["cluster_cpu"]
                rows.append(
                    [
                        side,
                        slots,
                        m["makespan"],
                        m["driver_cpu"],
                        m["cluster_cpu"],
                        cpu,
                        cpu / args.workers * 1000,
                        m["task_s"] * 1000,
                    ]
                )
            lo, ra = med["local"], med["ray"]
            per_task_ms = (ra["task_s"] - lo["task_s"]) * 1000
            cpu_ms = (
                ((ra["driver_cpu"] + ra["cluster_cpu"]) - (lo["driver_cpu"] + lo["cluster_cpu"]))
                / args.workers
                * 1000
            )
            print(
                f"slots {slots}: Ray adds {per_task_ms:.1f} ms to each task's duration and "
                f"{cpu_ms:.1f} CPU-ms per task; makespan x{ra['makespan'] / lo['makespan']:.2f}"
            )
    headers = [
        "executor",
        "slots",
        "makespan s",
        "driver CPU s",
        "cluster CPU s",
        "CPU s",
        "CPU ms/task",
        "task ms (median)",
    ]
    print(h.table(headers, rows))
    return 0


if __name__ == "__main__":
    h.run_main(main, "bench/ray.py")
