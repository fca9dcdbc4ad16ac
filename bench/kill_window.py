"""The kill window: how many calls that reached the API does a kill -9 leave unrecorded?

Each trial starts `orchestrate run` (real mode, `ANTHROPIC_BASE_URL` at a simulator in this
process), waits until a random number of requests has reached the simulator, and kills the child
with SIGKILL. Then it counts, from the simulator's own log and the store:

    reached   requests the simulator received for the run
    recorded  `calls` rows in the store
    running   tasks not finished: shown running, or not in the store yet (each has at most
              one call in flight)
    lost      per task, requests that reached the simulator less its recorded calls less the
              one in flight of an unfinished task, summed (calls answered, never recorded)

With `engine.durable_calls: true` (the default) a task's next request leaves only after its
recorded calls are committed, so `lost` is 0. `--compare` also runs the same trials with
`durable_calls: false` (the writer's 50 ms batching alone), which is what the engine did before.

    python bench/kill_window.py --trials 20 --compare 10
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from _harness import _find_cli, _register, _unregister, child_env, install_cleanup, run_main, table

WORKFLOW = """\
version: 1
name: kill-window
inputs:
  n: {type: integer, default: 60}
limits: {concurrency: 12, max_workers: 100}
steps:
  - id: work
    for_each: "{{ range(inputs.n) | list }}"
    as: part
    tools: [state_set]
    prompt: "Part {{ part }}: record one finding with state_set, then say done."
"""


def trial(work: Path, kill_after: int, durable: bool, latency_s: float) -> dict[str, int]:
    from orchestrator.sim import SimConfig, SimServer
    from orchestrator.store import Store

    (work / "wf.yaml").write_text(WORKFLOW)
    sim = SimServer(SimConfig(seed=kill_after, latency_s=latency_s))
    sim.start()
    db = work / "state.db"
    env = child_env(
        ANTHROPIC_BASE_URL=sim.base_url,
        ANTHROPIC_API_KEY="sk-bench",
        ORCHESTRATE_ENGINE__DURABLE_CALLS="true" if durable else "false",
    )
    proc = subprocess.Popen(
        [*_find_cli(), "run", "wf.yaml", "--db", str(db), "-q"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _register(proc)
    try:
        deadline = time.monotonic() + 300
        # Polled gently: the simulator serves from threads of this process (the GIL is shared).
        while len(sim.log.entries) < kill_after:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the run ended before {kill_after} requests")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        _unregister(proc)
    time.sleep(0.2)  # let requests already on the wire land in the simulator's log
    entries = sim.log.find()
    reached = len(entries)
    sim.stop()
    store = Store.open(str(db), readonly=True)
    try:
        [run] = store.list_runs()
        tasks = store.list_tasks(run.id)
        calls = {t.id: len(store.task_calls(t.id)) for t in tasks}
    finally:
        store.close()
    # Per task (the simulator logs each request's X-Orchestrate-Task): every request that
    # reached it is recorded, except at most the one in flight of a task not finished (still
    # `running` in the store, or not in it yet: its first request may leave before its start is
    # committed, and a resume runs it again from its start either way).
    by_key = Counter(entry.task for entry in entries)
    lost = 0
    unfinished = 0
    for key, n in by_key.items():
        rows = [t for t in tasks if t.key == key]
        recorded_k = sum(calls[t.id] for t in rows)
        in_flight = 0 if rows and all(t.status != "running" for t in rows) else 1
        unfinished += in_flight
        lost += max(0, n - recorded_k - in_flight)
    return {
        "reached": reached,
        "recorded": sum(calls.values()),
        "running": unfinished,
        "lost": lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="N",
        help="also N trials with durable_calls: false (the writer's batching alone)",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    install_cleanup()
    rand = random.Random(args.seed)
    points = [rand.randint(3, 100) for _ in range(max(args.trials, args.compare))]
    modes = [(True, args.trials), (False, args.compare)]
    rows = []
    for durable, trials in modes:
        if not trials:
            continue
        results = []
        for n, kill_after in enumerate(points[:trials], 1):
            with tempfile.TemporaryDirectory(prefix="kill-window-") as tmp:
                r = trial(Path(tmp), kill_after, durable, args.latency_ms / 1000)
            results.append(r)
            print(f"durable={durable} trial {n}: kill after {kill_after} requests: {r}", flush=True)
        lost = [r["lost"] for r in results]
        rows.append(
            [
                f"durable_calls: {'true' if durable else 'false'}",
                len(results),
                sum(1 for x in lost if x > 0),
                max(lost),
                sum(lost),
                max(r["running"] for r in results),
            ]
        )
    print()
    headers = ["mode", "trials", "trials losing calls", "max lost", "total lost", "max running"]
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    run_main(main, "kill_window")
