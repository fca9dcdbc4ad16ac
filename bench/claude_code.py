"""How many concurrent Claude Code workers this machine holds, against the simulator.

For each N in --workers, starts N Claude Code workers at once through the real runtime
(`ClaudeCodeRuntime`: the loopback proxy, per-task tokens, the from-scratch environment); every
model call goes proxy -> the run's client -> the simulator (in this process, a thread). Each
worker's first turn runs a shell command that holds it for --hold seconds, so all N are alive
together; then it answers and exits. Per N it prints:

- start-up: seconds from spawning a worker to its first model request reaching the proxy
  (median and max), which is Claude Code's own start-up, contended by the others;
- RSS: each worker process's peak resident memory (sampled from /proc every 100 ms; median, max)
  and the peak of all of them together;
- CPU: user+system seconds per worker (children's rusage over the round, divided by N);
- the wall time of the round, against N=1 as the baseline (ratio).

    python bench/claude_code.py                       # --workers 1,4,8,16 --hold 3
    python bench/claude_code.py --workers 1,8,32 --cli /path/to/claude

Needs node-free `claude` (tests/sim/npm/install.sh puts it in tests/.npm-cache) or --cli.
Bounded: every round has a deadline (--timeout); processes are killed on any way out.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config import load_settings  # noqa: E402
from orchestrator.contracts import LLMResponse, TaskSpec, WorkerContext  # noqa: E402
from orchestrator.llm import make_llm  # noqa: E402
from orchestrator.runtimes.claude_code import ClaudeCodeRuntime  # noqa: E402
from orchestrator.sim import SimConfig, SimServer, load_rules  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its descendants' leader only (Claude Code is one process)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _NoState:
    async def get(self, key: str) -> Any:
        return None

    async def set(self, key: str, value: Any) -> None:
        return None

    async def list(self, prefix: str = "") -> dict[str, Any]:
        return {}


async def one_round(
    cli: Path, sim: SimServer, n: int, hold: float, deadline_s: float
) -> dict[str, Any]:
    settings = load_settings(None)
    llm = make_llm(settings, simulate=True, base_url=sim.base_url, concurrency=max(4, n))
    runtime = ClaudeCodeRuntime(cli=cli)
    spawned: dict[str, float] = {}
    first: dict[str, float] = {}
    peak: dict[int, int] = {}
    together = 0

    async def call(spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        first.setdefault(spec.task_id, time.monotonic())
        stream = bool(request.pop("stream", False))
        return await llm.create(request, stream=stream)

    async def sample() -> None:
        nonlocal together
        while True:
            total = 0
            for pid in list(runtime.pids):
                size = rss_bytes(pid)
                peak[pid] = max(peak.get(pid, 0), size)
                total += size
            together = max(together, total)
            await anyio.sleep(0.1)

    work = Path(tempfile.mkdtemp(prefix="bench-cc-"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        async with runtime.running():
            ctx = WorkerContext(call=call, state=_NoState(), emit=lambda event: None)

            async def worker(i: int) -> None:
                spec = TaskSpec(
                    run_id="bench",
                    task_id=f"t{i}",
                    step_id="bench",
                    key=f"bench[{i}]",
                    model="claude-haiku-4-5",
                    prompt=f"Bench worker {i}: hold.",
                    tools=["Bash"],
                    workspace=str(work),
                    max_turns=5,
                )
                spawned[spec.task_id] = time.monotonic()
                await runtime(spec, ctx)

            with anyio.fail_after(deadline_s):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sample)
                    async with anyio.create_task_group() as workers:
                        for i in range(n):
                            workers.start_soon(worker, i)
                    tg.cancel_scope.cancel()
    finally:
        await llm.aclose()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    startups = [first[t] - spawned[t] for t in spawned if t in first]
    peaks = [v / 2**20 for v in peak.values() if v]
    return {
        "n": n,
        "wall_s": wall,
        "startup_med_s": statistics.median(startups),
        "startup_max_s": max(startups),
        "rss_med_mib": statistics.median(peaks) if peaks else 0.0,
        "rss_max_mib": max(peaks) if peaks else 0.0,
        "rss_all_mib": together / 2**20,
        "cpu_per_worker_s": cpu / n,
        "hold_s": hold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", default="1,4,8,16", help="comma-separated N (default 1,4,8,16)"
    )
    parser.add_argument(
        "--hold", type=float, default=3.0, help="seconds each worker's command holds"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a round may take")
    parser.add_argument(
        "--cli", type=Path, default=ROOT / "tests/.npm-cache/node_modules/.bin/claude"
    )
    args = parser.parse_args()
    if not args.cli.exists():
        sys.exit(f"{args.cli} missing: run tests/sim/npm/install.sh or pass --cli")
    rules = Path(tempfile.mkdtemp(prefix="bench-cc-rules-")) / "rules.yaml"
    command = {"name": "Bash", "input": {"command": f"sleep {args.hold}"}}
    rules.write_text(
        yaml.safe_dump([{"prompt": "Bench worker", "turn": 1, "tool_calls": [command]}])
    )
    rows = []
    with SimServer(SimConfig(rules=load_rules(rules))) as sim:
        for n in [int(x) for x in args.workers.split(",")]:
            rows.append(anyio.run(one_round, args.cli.resolve(), sim, n, args.hold, args.timeout))
            print(_line(rows[-1], rows[0]), flush=True)


def _line(row: dict[str, Any], base: dict[str, Any]) -> str:
    return (
        f"N={row['n']:>3}  wall {row['wall_s']:6.1f}s"
        f" (x{row['wall_s'] / base['wall_s']:4.2f} of N=1)"
        f"  start-up med {row['startup_med_s']:5.2f}s max {row['startup_max_s']:5.2f}s"
        f"  RSS/worker med {row['rss_med_mib']:5.0f} MiB max {row['rss_max_mib']:5.0f} MiB"
        f"  all {row['rss_all_mib']:6.0f} MiB  CPU/worker {row['cpu_per_worker_s']:5.2f}s"
    )


if __name__ == "__main__":
    main()
