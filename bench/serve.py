#!/usr/bin/env python
"""Serve benchmark: 50 small runs through `orchestrate serve`'s endpoint vs 50 `orchestrate run`
processes (what cron + `orchestrate run` costs), against the simulator in its own process.

  (a) processes: `orchestrate run bench/workflows/small.yaml --db TMP/a.db -q`, N times, at most
      --parallel at once (real mode: ANTHROPIC_BASE_URL = the simulator). wall = first spawn to
      last exit; CPU = the sum of every child's user+system (os.wait4 on each).
  (b) serve: one `orchestrate serve bench/workflows/small.yaml --listen 127.0.0.1:0 --json`
      (same simulator); N `POST /runs` at once, then `GET /runs/ID` until every run ended.
      wall = first POST to the last run ended (the server's start-up is printed apart, paid
      once); CPU = the server process's user+system over its whole life, start-up and SIGTERM
      drain included (os.wait4), so it is charged everything (a) is.

Both sides run the same workflow (one model call per run) on the same simulator latency; every
run must succeed. Prints both side by side and the b/a ratios.

  python bench/serve.py                    # --runs 50 --parallel 10 --latency 50ms
  python bench/serve.py --runs 50 --parallel 50 --repeat 3
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

WORKFLOW = h.BENCH_DIR / "workflows" / "small.yaml"
TOKEN = "bench-serve-token"
TIMEOUT_S = 600.0
CLI = h._find_cli()


def processes(sim: h.Sim, tmp: Path, runs: int, parallel: int) -> dict[str, float]:
    tmp.mkdir(parents=True, exist_ok=True)
    env = h.child_env(ANTHROPIC_BASE_URL=sim.base_url, ANTHROPIC_API_KEY="sk-bench")
    cmd = [*CLI, "run", str(WORKFLOW), "--db", str(tmp / "a.db"), "-q"]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        done = list(
            pool.map(
                lambda _: h.run_measured(cmd, timeout_s=TIMEOUT_S, env=env, cwd=tmp), range(runs)
            )
        )
    wall = time.perf_counter() - started
    for m in done:
        m.check("orchestrate run")
    return {"wall_s": wall, "cpu_s": sum(m.cpu_s for m in done), "startup_s": 0.0}


def _post(url: str, body: Any) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return dict(json.loads(resp.read()))


def _get(url: str) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return dict(json.loads(resp.read()))


def serve(sim: h.Sim, tmp: Path, runs: int) -> dict[str, float]:
    tmp.mkdir(parents=True, exist_ok=True)
    env = h.child_env(
        ANTHROPIC_BASE_URL=sim.base_url,
        ANTHROPIC_API_KEY="sk-bench",
        ORCHESTRATE_SERVE_TOKEN=TOKEN,
        ORCHESTRATE_ENGINE__DB=str(tmp / "b.db"),
        PYTHONUNBUFFERED="1",
    )
    log = tmp / "serve.log"
    cmd = [*CLI, "serve", str(WORKFLOW), "--listen", "127.0.0.1:0", "--json"]
    spawned = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    h._register(proc)
    box: list[Any] = []
    reaper = threading.Thread(target=lambda: box.append(os.wait4(proc.pid, 0)), daemon=True)
    reaper.start()
    try:
        listen = None
        while listen is None:
            if box:
                raise RuntimeError(f"orchestrate serve exited: {log.read_text()[-2000:]}")
            if time.perf_counter() - spawned > TIMEOUT_S:
                raise RuntimeError("orchestrate serve did not start")
            for line in log.read_text().splitlines():
                if line.startswith("{") and json.loads(line).get("event") == "serving":
                    listen = json.loads(line)["listen"]
            time.sleep(0.02)
        startup = time.perf_counter() - spawned
        base = f"http://{listen}"
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            ids = list(
                pool.map(
                    lambda _: _post(f"{base}/runs", {"workflow": WORKFLOW.stem})["run_id"],
                    range(runs),
                )
            )
        pending = set(ids)
        while pending:
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"{len(pending)} runs did not end")
            for run_id in list(pending):
                status = _get(f"{base}/runs/{run_id}")["status"]
                if status != "running":
                    if status != "succeeded":
                        raise RuntimeError(f"run {run_id} ended {status}")
                    pending.discard(run_id)
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.send_signal(signal.SIGTERM)
        reaper.join(TIMEOUT_S)
    except Exception as exc:
        raise RuntimeError(f"{exc}; the server said: {log.read_text()[-1500:]}") from exc
    finally:
        if not box:
            h._kill(proc)
            reaper.join(10)
        h._unregister(proc)
    _, status, usage = box[0]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"orchestrate serve exited {status}: {log.read_text()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "startup_s": startup}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=10, help="(a): processes at once")
    parser.add_argument("--latency", default="50ms", help="simulated latency per call")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved a, b pairs; medians")
    args = parser.parse_args()
    h.install_cleanup()
    rows: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp_text:
        tmp = Path(tmp_text)
        with h.simulator(latency_s=h.parse_latency(args.latency)) as sim:
            # one unmeasured run: no measured child compiles byte-code (see child_env)
            processes(sim, tmp / "warm", 1, 1)
            for i in range(args.repeat):
                rows["a"].append(processes(sim, tmp / f"a{i}", args.runs, args.parallel))
                rows["b"].append(serve(sim, tmp / f"b{i}", args.runs))
    pick = {side: {k: h.median([r[k] for r in rs]) for k in rs[0]} for side, rs in rows.items()}
    a, b = pick["a"], pick["b"]
    print(f"{args.runs} runs of {WORKFLOW.name}, latency {args.latency}; {h.machine()}")
    print(
        h.table(
            ["side", "wall s", "CPU s", "CPU ms/run", "start-up s"],
            [
                [
                    f"(a) {args.runs} x orchestrate run (<= {args.parallel} at once)",
                    a["wall_s"],
                    a["cpu_s"],
                    1000 * a["cpu_s"] / args.runs,
                    "-",
                ],
                [
                    f"(b) orchestrate serve, {args.runs} x POST /runs",
                    b["wall_s"],
                    b["cpu_s"],
                    1000 * b["cpu_s"] / args.runs,
                    b["startup_s"],
                ],
            ],
        )
    )
    print(f"b/a wall {b['wall_s'] / a['wall_s']:.3f}   b/a CPU {b['cpu_s'] / a['cpu_s']:.3f}")
    return 0


if __name__ == "__main__":
    h.run_main(main, "serve")
