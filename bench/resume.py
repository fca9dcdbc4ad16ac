#!/usr/bin/env python
"""Resume benchmark: what a run of multi-turn tool-using workers costs to resume after SIGKILL,
with call-level replay ("after") and without it ("before": every unfinished task from scratch).

One run: a fan-out of N workers (default 200), each a scripted T-turn conversation (default 20:
T - 1 turns that call `state_set`, then an answer), `orchestrate run --simulate` in a child
process. At a random point (a uniformly drawn share, 10-90%, of the run's N x T calls recorded in
the store) the child gets SIGKILL. The killed store is copied twice (SQLite's backup API, so the
WAL is included) and each copy is resumed in this process on the same scripted simulator, with
the engine the CLI uses:

  before   ResumeState without the recorded conversations: the behaviour up to issue 16
  after    ResumeState as `orchestrate resume` builds it now (recorded calls replayed)

and the model calls each resume made are counted at the simulator. "needed" is the calls no resume
can avoid: the turns with no recorded answer (the call in flight at the kill included). Repeated
for K kill points (default 3); one row per kill point and the totals.

  python bench/resume.py                            # 200 workers x 20 turns, 3 kill points
  python bench/resume.py --workers 50 --kills 5 --seed 7
"""

from __future__ import annotations

import argparse
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

RATE = "requests=1000000,input_tokens=1000000000,output_tokens=1000000000"


def workflow(workers: int, turns: int, concurrency: int) -> str:
    return textwrap.dedent(
        f"""\
        version: 1
        name: resume-bench
        limits: {{concurrency: {concurrency}, max_workers: {workers + 10}}}
        steps:
          - id: work
            for_each: "{{{{ range({workers}) | list }}}}"
            prompt: "Item {{{{ item }}}}: count to {turns}, one state_set call per turn."
            tools: [state_set]
            max_turns: {turns + 2}
            max_tokens: 256
        """
    )


def rules(turns: int) -> str:
    call = "[{{name: state_set, input: {{key: n, value: {t}}}}}]"
    lines = [
        f"- {{step: work, turn: {t}, tool_calls: {call.format(t=t)}}}" for t in range(1, turns)
    ]
    lines.append(f"- {{step: work, turn: {turns}, text: done}}")
    return "\n".join(lines) + "\n"


def recorded_calls(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(
                conn.execute("SELECT count(*) FROM calls WHERE status='succeeded'").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


def run_id_of(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return str(conn.execute("SELECT id FROM runs").fetchone()[0])


def kill_at(tmp: Path, kill_after: int, timeout_s: float) -> tuple[str, int]:
    """Start the run, SIGKILL it once `kill_after` calls are recorded; (run id, calls recorded)."""
    db = tmp / "state.db"
    cmd = [
        *h._find_cli(),
        "run",
        "wf.yaml",
        "--simulate",
        "--sim-script",
        "rules.yaml",
        "--sim-rate-limits",
        RATE,
        "--db",
        str(db),
        "-q",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp, env=h.child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    h._register(proc)
    deadline = time.monotonic() + timeout_s
    try:
        while recorded_calls(db) < kill_after:
            if proc.poll() is not None:
                raise RuntimeError(f"the run ended (exit {proc.returncode}) before the kill point")
            if time.monotonic() > deadline:
                raise RuntimeError("the run did not reach the kill point in time")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        h._unregister(proc)
        if proc.poll() is None:
            proc.kill()
    return run_id_of(db), recorded_calls(db)


def copy_db(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def resume(tmp: Path, db: Path, run_id: str, *, replay: bool) -> tuple[int, float, str]:
    """Resume `run_id` in this process; (model calls made, seconds, final status)."""
    import anyio

    from orchestrator.config import load_settings
    from orchestrator.engine import Engine, PriorTask, ResumeState, RunRequest
    from orchestrator.llm import make_llm
    from orchestrator.sim import SimConfig, SimServer
    from orchestrator.sim.config import load_rules
    from orchestrator.store import Store
    from orchestrator.workflow import load_workflow

    settings = load_settings(environ={}, cwd=tmp)
    loaded = load_workflow(tmp / "wf.yaml", settings=settings)
    big = {"requests": 1_000_000, "input_tokens": 10**9, "output_tokens": 10**9}
    sim = SimServer(SimConfig(rules=load_rules(tmp / "rules.yaml"), rate_limits=big))
    sim.start()
    store = Store.open(str(db))
    try:
        point = store.resume_point(run_id)
        state = ResumeState(
            tasks={
                k: PriorTask(output=t.output, usage=t.usage.to_dict(), cost_usd=t.cost_usd)
                for k, t in point.tasks.items()
            },
            state=dict(point.state),
            conversations=point.conversations if replay else {},
            spent_usd=point.spent_usd,
            spent_tokens=point.spent_tokens,
        )
        workspace = tmp / "workspace"
        workspace.mkdir(exist_ok=True)

        async def main() -> str:
            llm = make_llm(settings, simulate=True, base_url=sim.base_url)
            try:
                async with store.writer() as writer:
                    engine = Engine(settings=settings, llm=llm, emit=writer.send)
                    outcome = await engine.run(
                        RunRequest(
                            workflow=loaded,
                            inputs={},
                            workspace=workspace,
                            run_id=run_id,
                            resume=state,
                        )
                    )
                    return str(outcome.status)
            finally:
                await llm.aclose()

        started = time.monotonic()
        status = anyio.run(main)
        return len(sim.log.find()), time.monotonic() - started, status
    finally:
        store.close()
        sim.stop()


def needed(db: Path, workers: int, turns: int) -> int:
    """Calls no resume can avoid: every turn with no recorded answer, of every worker that had
    not succeeded (those never started included)."""
    from orchestrator.store import Store

    with Store.open(str(db), readonly=True) as store:
        run_id = store.resolve_run("last")
        done = set(store.succeeded_tasks(run_id))
        recorded = store.conversations(run_id)
    return (workers - len(done)) * turns - sum(len(v) for k, v in recorded.items() if k not in done)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--kills", type=int, default=3, help="kill points (random, 10-90%%)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    h.install_cleanup()
    rng = random.Random(args.seed)
    total_calls = args.workers * args.turns
    print(
        f"resume bench: {args.workers} workers x {args.turns} turns, concurrency "
        f"{args.concurrency}, {args.kills} kill points; {h.machine()}"
    )
    rows: list[list[Any]] = []
    sums = {"needed": 0, "before": 0, "after": 0}
    for n in range(args.kills):
        share = rng.uniform(0.1, 0.9)
        with tempfile.TemporaryDirectory(prefix="orchestrate-resume-") as name:
            tmp = Path(name)
            (tmp / "wf.yaml").write_text(workflow(args.workers, args.turns, args.concurrency))
            (tmp / "rules.yaml").write_text(rules(args.turns))
            run_id, at = kill_at(tmp, int(share * total_calls), args.timeout)
            killed = tmp / "state.db"
            copies = {}
            for side in ("before", "after"):
                side_dir = tmp / side
                side_dir.mkdir()
                for f in ("wf.yaml", "rules.yaml"):
                    (side_dir / f).write_text((tmp / f).read_text())
                copy_db(killed, side_dir / "state.db")
                copies[side] = side_dir
            must = needed(copies["after"] / "state.db", args.workers, args.turns)
            made: dict[str, tuple[int, float, str]] = {}
            for side in ("before", "after"):
                made[side] = resume(
                    copies[side], copies[side] / "state.db", run_id, replay=side == "after"
                )
                if made[side][2] != "succeeded":
                    raise RuntimeError(f"kill {n + 1}: the {side} resume ended {made[side][2]}")
        rows.append(
            [
                n + 1,
                f"{at:,} ({at / total_calls:.0%})",
                must,
                made["before"][0],
                made["after"][0],
            ]
        )
        sums["needed"] += must
        sums["before"] += made["before"][0]
        sums["after"] += made["after"][0]
        print(
            f"  kill {n + 1}: at {at} calls; resume calls before {made['before'][0]}, "
            f"after {made['after'][0]} (needed {must})",
            flush=True,
        )
    print()
    print(
        h.table(
            [
                "kill",
                "killed after calls",
                "needed",
                "before: calls",
                "after: calls",
            ],
            rows,
        )
    )
    wasted_before = sums["before"] - sums["needed"]
    wasted_after = sums["after"] - sums["needed"]
    print(
        f"\ntotal resume calls: before {sums['before']:,}, after {sums['after']:,} "
        f"(needed {sums['needed']:,}); calls repeated: before {wasted_before:,}, "
        f"after {wasted_after:,}"
    )
    return 0


if __name__ == "__main__":
    h.run_main(main, "resume.py")
