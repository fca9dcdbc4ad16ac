#!/usr/bin/env python
"""Fan-out benchmark: `orchestrate run` against bare asyncio + the Anthropic SDK.

Both sides do the same work against the same simulator, which runs in its own process (a fresh
one per measurement, so both see the same latency draws): one planner call with structured output
returning N topics, N single-call workers at most C in flight, then a merge (a join).

  (a) baseline: a child interpreter running `asyncio` + `anthropic.AsyncAnthropic(base_url=...,
      api_key="sk-bench", max_retries=0)` with the SDK's default transport, an
      `asyncio.Semaphore(C)` and `asyncio.gather`; nothing is persisted.
  (c) the same script with the SDK's aiohttp transport (`http_client=DefaultAioHttpClient()`),
      the faster of the two and the one the engine's targets are measured against.
  (b) engine: `orchestrate run bench/workflows/fanout.yaml --db TMP/state.db --input n=N
      --concurrency C -q` in real mode (ANTHROPIC_BASE_URL = the simulator), with full
      persistence: every run, step, task, call and event goes to SQLite, plus the JSON run log.

Measured per child: makespan (the run itself: (a) times plan -> merge in-process, (b) is
runs.finished_at - runs.started_at from the store), process wall time (spawn to exit, imports
included), CPU seconds and peak RSS from os.wait4, CPU ms per task (gross = all CPU / N; net =
CPU above a 1-worker run of the same side, / N, which removes interpreter start-up and imports),
and for (b) store rows (runs+steps+tasks+calls+events) per second of makespan.

  python bench/fanout.py --workers 1000 --concurrency 200 --latency 50ms
  python bench/fanout.py --workers 100,1000,10000        # the scale curve
  python bench/fanout.py --workers 1000 --profile        # + py-spy profile of (b), top hot spots
  python bench/fanout.py --workers 1000 --memprofile     # + memray: what is alive at (b)'s peak
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

WORKFLOW = h.BENCH_DIR / "workflows" / "fanout.yaml"
STORE_TABLES = ("runs", "steps", "tasks", "calls", "events")
TARGET_MAKESPAN = 0.8  # b/a at 1000 workers
TARGET_VS_AIOHTTP = 1.0  # b/c, makespan and wall, at 1000 and 10,000 workers
TARGET_SCALE = 1.2  # per-task cost at 10,000 relative to 1000
TARGET_RSS = 1.3  # b/a


# --- (a) the baseline, run in a child interpreter ------------------------------------------------


def baseline_child(spec: dict[str, Any]) -> None:
    """Bare asyncio + the SDK, with its default transport or (spec "transport": "aiohttp") its
    aiohttp one. Prints one JSON line."""
    import asyncio

    import anthropic

    async def main() -> dict[str, Any]:
        transport: dict[str, Any] = {}
        if spec.get("transport") == "aiohttp":
            transport["http_client"] = anthropic.DefaultAioHttpClient()
        client = anthropic.AsyncAnthropic(
            base_url=spec["base_url"], api_key="sk-bench", max_retries=0, **transport
        )
        started = time.perf_counter()
        cpu0 = time.process_time()
        async with client:
            plan_kwargs: dict[str, Any] = {
                "model": spec["model"],
                "max_tokens": spec["plan_max_tokens"],
                "system": spec["plan_system"],
                "messages": [{"role": "user", "content": spec["plan_prompt"]}],
                "output_config": {"format": {"type": "json_schema", "schema": spec["plan_schema"]}},
            }
            # A large max_tokens must stream (the SDK refuses it otherwise); the engine does too.
            if spec["plan_max_tokens"] > 16000:
                async with client.messages.stream(**plan_kwargs) as stream:
                    plan = await stream.get_final_message()
            else:
                plan = await client.messages.create(**plan_kwargs)
            plan_text = "".join(b.text for b in plan.content if b.type == "text")
            topics = json.loads(plan_text)[spec["list_key"]]
            plan_s = time.perf_counter() - started

            sem = asyncio.Semaphore(spec["concurrency"])

            async def work(topic: str) -> str:
                async with sem:
                    msg = await client.messages.create(
                        model=spec["model"],
                        max_tokens=spec["work_max_tokens"],
                        system=spec["work_system"],
                        messages=[
                            {"role": "user", "content": spec["work_prompt"].replace("\0", topic)}
                        ],
                    )
                    return "".join(b.text for b in msg.content if b.type == "text")

            results = await asyncio.gather(*(work(t) for t in topics), return_exceptions=True)
            texts = [r for r in results if isinstance(r, str)]
            errors = [repr(r) for r in results if not isinstance(r, str)]
            merged = "\n".join(texts)
        return {
            "makespan_s": time.perf_counter() - started,
            "run_cpu_s": time.process_time() - cpu0,
            "plan_s": plan_s,
            "tasks": len(texts),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "chars": len(merged),
        }

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(spec["timeout_s"]):
            return await main()

    print(json.dumps(asyncio.run(bounded())), flush=True)


def _workload() -> dict[str, Any]:
    """The prompts, agents and schema of bench/workflows/fanout.yaml, for the baseline to copy."""
    import yaml  # a project dependency; only the parent reads the workflow

    wf = yaml.safe_load(WORKFLOW.read_text("utf-8"))
    steps = {s["id"]: s for s in wf["steps"]}
    plan, work = steps["plan"], steps["work"]
    agents = wf["agents"]
    schema = dict(plan["output"])
    list_key = next(iter(schema["properties"]))
    schema.setdefault("additionalProperties", False)  # as the engine's schema adapter sends it
    aliases = {
        "sonnet": "claude-sonnet-5-5",
        "opus": "claude-opus-5-5",
        "haiku": "claude-haiku-5-5",
    }
    model = wf.get("defaults", {}).get("model", "sonnet")
    return {
        "model": aliases.get(model, model),
        "plan_system": agents[plan["agent"]]["system"],
        "plan_prompt": plan["prompt"],  # "{{ inputs.n }}" filled in per size
        "plan_max_tokens": agents[plan["agent"]].get("max_tokens") or wf["defaults"]["max_tokens"],
        "plan_schema": schema,
        "list_key": list_key,
        "work_system": agents[work["agent"]]["system"],
        "work_prompt": work["prompt"].replace("{{ " + work.get("as", "item") + " }}", "\0"),
        "work_max_tokens": agents[work["agent"]].get("max_tokens") or wf["defaults"]["max_tokens"],
    }


# --- measurements --------------------------------------------------------------------------------


@dataclass
class Result:
    side: str  # "a", "b" or "c"
    n: int
    makespan_s: float
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    tasks: int
    rows: int = 0
    run_cpu_s: float | None = None  # (a) only: CPU inside the timed section
    sim_cpu_s: float = 0.0  # what the simulator process spent meanwhile (another core, ideally)

    def cpu_ms_per_task(self, fixed_cpu_s: float | None = None) -> float:
        cpu = self.cpu_s - (fixed_cpu_s or 0.0)
        return 1000.0 * cpu / max(1, self.n)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.makespan_s if self.makespan_s > 0 else 0.0


def _timeout(n: int, concurrency: int, latency_s: float) -> float:
    return 120.0 + 20.0 * n * max(latency_s, 0.001) / concurrency + 0.05 * n


def measure_baseline(
    n: int, concurrency: int, latency_s: float, work: dict[str, Any], transport: str = "httpx"
) -> Result:
    with h.simulator(latency_s=latency_s, list_len=n) as sim:
        spec = {
            **work,
            "transport": transport,
            "plan_prompt": work["plan_prompt"].replace("{{ inputs.n }}", str(n)),
            "base_url": sim.base_url,
            "concurrency": concurrency,
            "timeout_s": _timeout(n, concurrency, latency_s),
        }
        sim0 = sim.cpu_s()
        m = h.run_measured(
            [h.PYTHON, __file__, "--baseline-child", json.dumps(spec)],
            timeout_s=spec["timeout_s"] + 30,
            env=h.child_env(),
        )
        sim_cpu = sim.cpu_s() - sim0
    m.check(f"baseline n={n}")
    out = h.last_json_line(m.stdout)
    if out["errors"] or out["tasks"] != n:
        raise RuntimeError(
            f"baseline n={n}: {out['tasks']} tasks, {out['errors']} errors: {out['first_error']}"
        )
    return Result(
        "c" if transport == "aiohttp" else "a",
        n,
        out["makespan_s"],
        m.wall_s,
        m.cpu_s,
        m.maxrss_mb,
        out["tasks"],
        run_cpu_s=out["run_cpu_s"],
        sim_cpu_s=sim_cpu,
    )


def engine_cmd(db: Path, n: int, concurrency: int, cli: list[str] | None = None) -> list[str]:
    return [
        *(cli or h._find_cli()),
        "run",
        str(WORKFLOW),
        "--db",
        str(db),
        "--input",
        f"n={n}",
        "--concurrency",
        str(concurrency),
        "-q",
    ]


def read_store(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in STORE_TABLES}
        status, started, finished = con.execute(
            "SELECT status, started_at, finished_at FROM runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        done = con.execute(
            "SELECT count(*) FROM tasks WHERE step_id = 'work' AND status = 'succeeded'"
        ).fetchone()[0]
    finally:
        con.close()
    return {
        "counts": counts,
        "status": status,
        "makespan_s": (finished or 0) - (started or 0),
        "work_done": done,
    }


ENGINE_TRANSPORT = "direct"  # (b)'s engine.transport: --transport


def measure_engine(
    n: int,
    concurrency: int,
    latency_s: float,
    *,
    keep: bool,
    profile_to: Path | None = None,
    profile_rate: int = 500,
    memprofile_to: Path | None = None,
) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="orchestrate-bench-"))
    try:
        db = tmp / "state.db"
        cmd = engine_cmd(db, n, concurrency)
        extra_env: dict[str, str] = {"ORCHESTRATE_ENGINE__TRANSPORT": ENGINE_TRANSPORT}
        if os.environ.get("BENCH_DURABLE_CALLS"):  # e.g. "false": the kill-window guard off
            extra_env["ORCHESTRATE_ENGINE__DURABLE_CALLS"] = os.environ["BENCH_DURABLE_CALLS"]
        if memprofile_to is not None:
            if importlib.util.find_spec("memray") is None:
                raise RuntimeError("--memprofile needs memray: pip install -e '.[bench]'")
            memray = [h.PYTHON, "-m", "memray", "run", "-q", "--force", "-o", str(memprofile_to)]
            cmd = engine_cmd(db, n, concurrency, cli=[*memray, "-m", "orchestrator"])
            extra_env["PYTHONMALLOC"] = "malloc"  # every allocation seen, not pymalloc's arenas
        if profile_to is not None:
            spy = shutil.which("py-spy") or str(Path(h.PYTHON).with_name("py-spy"))
            if not Path(spy).exists():
                raise RuntimeError("--profile needs py-spy: pip install -e '.[bench]'")
            cmd = [
                spy,
                "record",
                "--format",
                "raw",
                "--function",
                "-r",
                str(profile_rate),
                "-o",
                str(profile_to),
                "--",
                h.PYTHON,
                *cmd,
            ]
        with h.simulator(latency_s=latency_s, list_len=n) as sim:
            sim0 = sim.cpu_s()
            m = h.run_measured(
                cmd,
                timeout_s=_timeout(n, concurrency, latency_s) + 60,
                env=h.child_env(
                    ANTHROPIC_BASE_URL=sim.base_url, ANTHROPIC_API_KEY="sk-bench", **extra_env
                ),
                cwd=tmp,  # .orchestrate/runs and .orchestrate/logs land in the temp dir
            )
            sim_cpu = sim.cpu_s() - sim0
        m.check(f"orchestrate run n={n}")
        store = read_store(db)
        if store["status"] != "succeeded" or store["work_done"] != n:
            raise RuntimeError(
                f"orchestrate run n={n}: status {store['status']}, "
                f"{store['work_done']}/{n} workers succeeded"
            )
        return Result(
            "b",
            n,
            store["makespan_s"],
            m.wall_s,
            m.cpu_s,
            m.maxrss_mb,
            store["work_done"],
            rows=sum(store["counts"].values()),
            sim_cpu_s=sim_cpu,
        )
    finally:
        if keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def best(results: list[Result]) -> Result:
    """The repeat with the median makespan."""
    ordered = sorted(results, key=lambda r: r.makespan_s)
    return ordered[(len(ordered) - 1) // 2]


# --- profile aggregation -------------------------------------------------------------------------


def summarize_profile(raw: Path, top: int = 10) -> str:
    """Top hot spots from py-spy raw (collapsed) stacks, over the samples outside imports.

    "self+" attributes every sample to the innermost project frame on its stack, so a function's
    share includes the library code it calls directly (SQLAlchemy under the store writer, the SDK
    under the LLM client) but not other project functions it calls; "total" is inclusive. "below"
    names the packages that self+ time is spent in (the function's own lines count as its module).
    """
    self_plus: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    below: dict[str, dict[str, int]] = {}
    leaves: dict[str, int] = {}
    imports = outside = total = unreadable = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        if not stack.strip():
            unreadable += count  # py-spy could not read this sample's stack
            continue
        frames = stack.split(";")
        if frames[-1].startswith(_WAITING):
            waiting += count  # a thread parked on a lock, queue or selector: not CPU
            continue
        total += count
        if any("_find_and_load" in f for f in frames):
            imports += count
            continue
        leaf = _short(frames[-1])
        leaves[leaf] = leaves.get(leaf, 0) + count
        idx = [i for i, f in enumerate(frames) if "orchestrator/" in f]
        if idx:
            name = _short(frames[idx[-1]])
        else:
            # A coroutine the event loop resumed outside any project frame (aiohttp's own
            # tasks, SDK stream readers) or a pool thread: named by where its stack starts.
            outside += count
            name = f"[no project frame, stack from {_package(frames[0])}]"
        self_plus[name] = self_plus.get(name, 0) + count
        pkg = _package(frames[-1])
        below.setdefault(name, {})
        below[name][pkg] = below[name].get(pkg, 0) + count
        for n in {_short(frames[i]) for i in idx} | {name}:
            inclusive[n] = inclusive.get(n, 0) + count
    run = total - imports
    if run <= 0:
        return "  (no samples outside imports)"
    pct = lambda c: 100.0 * c / run  # noqa: E731
    rows = []
    for name, c in sorted(self_plus.items(), key=lambda kv: -kv[1])[:top]:
        pkgs = sorted(below[name].items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            (
                name,
                f"{pct(c):.1f}%",
                f"{pct(inclusive[name]):.1f}%",
                ", ".join(f"{p} {pct(k):.0f}%" for p, k in pkgs),
            )
        )
    leaf_rows = [
        (name, f"{pct(c):.1f}%") for name, c in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]
    ]
    return "\n".join(
        [
            f"  {total} samples of CPU-active threads; {100.0 * imports / total:.0f}% in imports "
            f"(start-up), the rest ({run}) is the base of the percentages below; "
            f"{pct(outside):.1f}% had no project frame (SDK/aiohttp coroutines resumed by the "
            f"loop, thread pool); left out: {unreadable} unreadable samples, {waiting} of "
            "threads parked in a wait",
            "",
            h.table(
                ["project function (innermost on stack)", "self+", "total", "below (self+)"], rows
            ),
            "",
            h.table(["leaf function (any code)", "self"], leaf_rows),
        ]
    )


def summarize_memory(capture: Path, top: int = 15) -> str:
    """What was alive at the run's peak of heap memory (memray's high-water mark), grouped by
    the innermost project frame that allocated it (else the outermost frame), imports apart."""
    import memray

    reader = memray.FileReader(str(capture))
    peak = imports = 0
    sites: dict[str, int] = {}
    for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
        peak += rec.size
        stack = rec.stack_trace(max_stacks=100)  # innermost first: (function, file, line)
        if any("importlib._bootstrap" in file for _, file, _ in stack):
            imports += rec.size
            continue
        ours = [f for f in stack if "orchestrator/" in f[1]]
        func, file, line = (ours or stack[-1:] or [("?", "?", 0)])[0]
        where = file[file.find("orchestrator/") :] if ours else Path(file).name
        leaf = f"{Path(stack[0][1]).name}:{stack[0][0]}" if stack else "?"
        name = f"{where}:{line} {func}  <- {leaf}"
        sites[name] = sites.get(name, 0) + rec.size
    mb = lambda b: b / 1e6  # noqa: E731
    rows = [(name, f"{mb(b):.2f}") for name, b in sorted(sites.items(), key=lambda kv: -kv[1])]
    return "\n".join(
        [
            f"  heap at its peak: {mb(peak):.1f} MB, of which imports {mb(imports):.1f} MB and the "
            f"run {mb(peak - imports):.1f} MB (RSS adds shared libraries, stacks, fragmentation)",
            "",
            h.table(["allocated at (project frame <- leaf)", "MB at peak"], rows[:top]),
        ]
    )


_WAITING = (
    "Condition.wait (threading.py",
    "_worker (concurrent/futures/thread.py",
    "EpollSelector.select (selectors.py",
    "Event.wait (threading.py",
    "Queue.get (queue.py",
    "Thread._wait_for_tstate_lock (threading.py",
)


def _package(frame: str) -> str:
    path = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    if "orchestrator/" in path:
        return path[path.find("orchestrator/") :].rsplit("/", 1)[0]
    if path.startswith("<"):
        return "python"
    head = path.lstrip("/").split("/", 1)[0]
    return head.removesuffix(".py") or "python"


def _short(frame: str) -> str:
    """'emit (orchestrator/cli/run.py:170)' -> 'orchestrator/cli/run.py:emit'."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    i = path.find("orchestrator/")
    return f"{path[i:] if i >= 0 else path}:{func}"


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Fan-out makespan/CPU/RSS: orchestrate run vs bare asyncio + the SDK.",
        epilog="Each size runs the simulator afresh in its own process; nothing leaves loopback.",
    )
    parser.add_argument(
        "--workers",
        default="1000",
        help="N workers, or a comma list for the scale curve (e.g. 100,1000,10000)",
    )
    parser.add_argument("--concurrency", type=int, default=200, help="workers in flight (C)")
    parser.add_argument("--latency", default="50ms", help="simulated latency per call")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per side and size; the median-makespan run is reported",
    )
    parser.add_argument(
        "--no-fixed",
        action="store_true",
        help="skip the 1-worker runs that measure fixed cost (start-up, imports)",
    )
    parser.add_argument(
        "--only", help="measure only these sides, a comma list of a, b, c (e.g. b,c)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then run (b) --repeat times under py-spy (pip install py-spy) at the largest "
        "size <= 1000 (or the smallest) and print the top hot spots",
    )
    parser.add_argument(
        "--profile-size",
        type=int,
        help="workers for the profiled run (default: as said for --profile)",
    )
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument(
        "--memprofile",
        action="store_true",
        help="then run (b) once under memray (pip install -e '.[bench]') at the --profile size "
        "and print what was alive at the peak of its heap, by allocating project function",
    )
    parser.add_argument("--keep", action="store_true", help="keep (b)'s temp dirs and databases")
    parser.add_argument(
        "--transport",
        choices=("direct", "aiohttp", "httpx"),
        default="direct",
        help="(b)'s engine.transport: direct (the default setting) or aiohttp (through the SDK)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--baseline-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global ENGINE_TRANSPORT
    ENGINE_TRANSPORT = args.transport

    if args.baseline_child:
        baseline_child(json.loads(args.baseline_child))
        return 0

    h.install_cleanup()
    sizes = [int(x) for x in args.workers.split(",") if x.strip()]
    latency_s = h.parse_latency(args.latency)
    c = args.concurrency
    sides = [x for x in "acb" if x in (args.only or "acb").split(",")]
    work = _workload()
    print(
        f"fanout: workers {sizes}, concurrency {c}, latency {args.latency}, "
        f"repeat {args.repeat}; {h.machine()}",
        flush=True,
    )

    def measure(side: str, n: int) -> Result:
        if side == "a":
            return measure_baseline(n, c, latency_s, work)
        if side == "c":
            return measure_baseline(n, c, latency_s, work, transport="aiohttp")
        return measure_engine(n, c, latency_s, keep=args.keep)

    # Warm-up: fills the byte-code cache (see _harness.child_env) and the OS page cache, so no
    # measured child compiles or reads cold files.
    for side in sides:
        measure(side, 1)

    fixed: dict[str, float] = {}
    if not args.no_fixed:
        for side in sides:
            ones = [measure(side, 1) for _ in range(max(3, args.repeat))]
            r = best(ones)
            # the median CPU, not the CPU of the median-makespan run: every net figure
            # subtracts it, so its noise moves the whole scale curve
            fixed[side] = h.median([x.cpu_s for x in ones])
            print(
                f"  fixed cost ({side}, 1 worker): CPU {fixed[side]:.2f}s (median of "
                f"{len(ones)}), wall {r.wall_s:.2f}s, RSS {r.maxrss_mb:.0f} MB",
                flush=True,
            )

    results: dict[int, dict[str, Result]] = {}
    paired: dict[tuple[int, str], list[float]] = {}  # (n, baseline) -> b/baseline makespans
    for n in sizes:
        runs: dict[str, list[Result]] = {side: [] for side in sides}
        for _ in range(args.repeat):  # interleaved, so drifting machine load hits both sides
            for side in sides:
                r = measure(side, n)
                runs[side].append(r)
                print(
                    f"  n={n} {side}: makespan {r.makespan_s:.3f}s, wall {r.wall_s:.2f}s, "
                    f"CPU {r.cpu_s:.2f}s, RSS {r.maxrss_mb:.0f} MB, sim CPU {r.sim_cpu_s:.2f}s",
                    flush=True,
                )
        results[n] = {side: best(runs[side]) for side in sides}
        for base in ("a", "c"):
            if base in sides and "b" in sides:
                pairs = zip(runs[base], runs["b"], strict=True)
                paired[(n, base)] = sorted(b.makespan_s / x.makespan_s for x, b in pairs)

    print()
    rows = []
    for n in sizes:
        for side in sides:
            r = results[n][side]
            label = {"a": "(a) asyncio+SDK", "c": "(c) asyncio+SDK aiohttp"}.get(
                side, "(b) orchestrate"
            )
            net = r.cpu_ms_per_task(fixed[side]) if side in fixed else None
            rows.append(
                (
                    f"{label} n={n}",
                    r.makespan_s,
                    r.wall_s,
                    r.cpu_s,
                    r.cpu_ms_per_task(),
                    "-" if net is None else net,
                    r.maxrss_mb,
                    f"{r.rows:,} @ {r.rows_per_s:,.0f}/s" if side == "b" else "-",
                    r.sim_cpu_s,
                )
            )
    print(
        h.table(
            [
                "run",
                "makespan s",
                "wall s",
                "CPU s",
                "CPU ms/task",
                "net ms/task",
                "peak RSS MB",
                "store rows @ rows/s",
                "sim CPU s",
            ],
            rows,
        )
    )
    print(
        "(sim CPU s: the simulator's own CPU during that child; near the makespan means the\n"
        " simulator, sharing this machine's cores, bounds the makespan of both sides)"
    )

    for base in ("a", "c"):
        if base not in sides or "b" not in sides:
            continue
        print(f"\nratios b/{base} (makespan = the run itself; wall includes start-up):")
        for n in sizes:
            a, b = results[n][base], results[n]["b"]
            mk = b.makespan_s / a.makespan_s
            wall = b.wall_s / a.wall_s
            print(f"  n={n}:")
            if base == "c":
                print(f"    makespan     {h.verdict(mk, TARGET_VS_AIOHTTP)}")
            else:
                print(
                    f"    makespan     "
                    f"{h.verdict(mk, TARGET_MAKESPAN) if n == 1000 else f'{mk:.2f}'}"
                )
            if len(paired.get((n, base), [])) > 1:
                ratios = paired[(n, base)]
                print(
                    f"    (each a, b pair run back to back: median {h.median(ratios):.2f}, "
                    f"range {ratios[0]:.2f}-{ratios[-1]:.2f})"
                )
            if base == "c":
                print(f"    wall         {h.verdict(wall, TARGET_VS_AIOHTTP)}")
            else:
                print(f"    wall         {wall:.2f}")
            print(
                f"    CPU/task     {b.cpu_ms_per_task() / a.cpu_ms_per_task():.2f} gross"
                + (
                    f", {b.cpu_ms_per_task(fixed['b']) / a.cpu_ms_per_task(fixed[base]):.2f} net"
                    if fixed
                    else ""
                )
            )
            print(f"    peak RSS     {h.verdict(b.maxrss_mb / a.maxrss_mb, TARGET_RSS)}")

    if len(sizes) > 1:
        ref = 1000 if 1000 in sizes else sizes[0]
        print(
            f"\nscale curve: CPU ms per task relative to n={ref} "
            f"(net = fixed 1-worker cost removed; target at 10,000: <= {TARGET_SCALE}x)"
        )
        curve = []
        for n in sizes:
            row: list[Any] = [f"n={n}"]
            for side in sides:
                r, r0 = results[n][side], results[ref][side]
                row += [r.cpu_ms_per_task(), r.cpu_ms_per_task() / r0.cpu_ms_per_task()]
                if side in fixed:
                    net, net0 = r.cpu_ms_per_task(fixed[side]), r0.cpu_ms_per_task(fixed[side])
                    rel = net / net0
                    row += [net, h.verdict(rel, TARGET_SCALE) if n == 10000 else f"{rel:.2f}"]
                else:
                    row += ["-", "-"]
            curve.append(row)
        heads = ["size"]
        for side in sides:
            heads += [f"{side} gross ms", f"{side} gross rel", f"{side} net ms", f"{side} net rel"]
        print(h.table(heads, curve))

    if args.profile and "b" in sides:
        n = args.profile_size or max([s for s in sizes if s <= 1000] or [min(sizes)])
        raw = args.profile_out or Path(tempfile.mkdtemp(prefix="orchestrate-prof-")) / "raw.txt"
        print(
            f"\nprofile of (b) at n={n}, {args.repeat} run(s) (py-spy, all threads, idle "
            "excluded):",
            flush=True,
        )
        raw.parent.mkdir(parents=True, exist_ok=True)
        with raw.open("w") as out:
            for i in range(args.repeat):
                part = raw.with_name(f"{raw.name}.{i}")
                measure_engine(n, c, latency_s, keep=args.keep, profile_to=part)
                out.write(part.read_text())
                part.unlink()
        print(summarize_profile(raw))
        if args.profile_out is None:
            shutil.rmtree(raw.parent, ignore_errors=True)

    if args.memprofile and "b" in sides:
        n = args.profile_size or max([s for s in sizes if s <= 1000] or [min(sizes)])
        capture = Path(tempfile.mkdtemp(prefix="orchestrate-mem-")) / "run.bin"
        print(f"\nmemory of (b) at n={n} (memray, PYTHONMALLOC=malloc):", flush=True)
        try:
            measure_engine(n, c, latency_s, keep=args.keep, memprofile_to=capture)
            print(summarize_memory(capture))
        finally:
            shutil.rmtree(capture.parent, ignore_errors=True)

    if args.json:
        print(
            json.dumps(
                {
                    "machine": h.machine(),
                    "concurrency": c,
                    "latency": args.latency,
                    "fixed_cpu_s": fixed,
                    "results": {n: {s: vars(r) for s, r in v.items()} for n, v in results.items()},
                }
            )
        )
    return 0


if __name__ == "__main__":
    h.run_main(main, "fanout")
