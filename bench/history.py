#!/usr/bin/env python
"""History benchmark: how fast `orchestrate runs list` answers over a large store.

Builds a SQLite store holding 10,000 finished runs through the store's own writer (synthetic
RunStarted / StepStarted / TaskStarted / CallFinished / TaskFinished / StepFinished / RunFinished
events, as a one-worker run emits them), then times, each as a fresh child process (median of 5
after one unmeasured warm-up):

  orchestrate runs list --db STORE          (the default 20 newest runs)
  python -c "import anthropic"              (the yardstick: what any SDK-based tool pays to start)

and prints the ratio (target: runs list < 0.5x the import), with CPU and peak RSS of each.

  python bench/history.py                     # 10,000 runs in a temp store, removed after
  python bench/history.py --runs 1000 --keep  # smaller; keep the store and say where it is
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

TARGET = 0.5

_SNAPSHOT = """version: 1
name: history-bench
inputs:
  question: {type: string}
steps:
  - id: answer
    agent: writer
    prompt: "Answer: {{ inputs.question }}"
"""


def build_store(db: Path, runs: int, *, tasks_per_run: int = 1) -> tuple[int, float]:
    """Write `runs` finished runs through `Store.writer()`; returns (events, seconds)."""
    import anyio

    from orchestrator.events import (
        CallFinished,
        RunFinished,
        RunStarted,
        StepFinished,
        StepStarted,
        TaskFinished,
        TaskStarted,
    )
    from orchestrator.ids import new_id
    from orchestrator.store import Store

    snapshot_hash = hashlib.sha256(_SNAPSHOT.encode()).hexdigest()
    usage = {
        "input_tokens": 1200,
        "output_tokens": 350,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 800,
    }
    span_s = 30 * 86400.0  # runs spread over the last 30 days, oldest first
    t_end = time.time() - 60.0

    async def write() -> int:
        sent = 0
        store = Store.open(str(db))
        try:
            async with store.writer() as w:
                for i in range(runs):
                    t0 = t_end - span_s + span_s * i / runs
                    run_id = new_id()
                    question = f"question number {i}: what changed in module {i % 97}?"
                    events: list[Any] = [
                        RunStarted(
                            run_id=run_id,
                            ts=t0,
                            workflow_name=f"history-bench-{i % 7}",
                            workflow_path="/bench/history.yaml",
                            workflow_snapshot=_SNAPSHOT,
                            workflow_hash=snapshot_hash,
                            inputs={"question": question},
                            workspace=f"/tmp/runs/{run_id}/workspace",
                            pid=4242,
                            limits={"concurrency": 50, "max_workers": 500},
                        ),
                        StepStarted(run_id=run_id, ts=t0, step_id="answer", kind="agent"),
                    ]
                    outputs = []
                    for k in range(tasks_per_run):
                        task_id, ts = new_id(), t0 + 0.01 * (k + 1)
                        prompt = f"Answer: {question}"
                        text = f"Synthetic answer {i}.{k}. " + "Lorem ipsum dolor sit amet. " * 20
                        events += [
                            TaskStarted(
                                run_id=run_id,
                                ts=ts,
                                task_id=task_id,
                                step_id="answer",
                                key=f"answer:{k}",
                                index=k,
                                agent="writer",
                                model="claude-sonnet-5-5",
                                system="You write.",
                                prompt=prompt,
                            ),
                            CallFinished(
                                run_id=run_id,
                                ts=ts + 1.5,
                                call_id=new_id(),
                                task_id=task_id,
                                step_id="answer",
                                model="claude-sonnet-5-5",
                                attempt=1,
                                request={
                                    "model": "claude-sonnet-5-5",
                                    "max_tokens": 2048,
                                    "system": "You write.",
                                    "messages": [{"role": "user", "content": prompt}],
                                },
                                response={
                                    "id": f"msg_{i}_{k}",
                                    "type": "message",
                                    "role": "assistant",
                                    "model": "claude-sonnet-5-5",
                                    "content": [{"type": "text", "text": text}],
                                    "stop_reason": "end_turn",
                                    "usage": usage,
                                },
                                http_status=200,
                                request_id=f"req_{i}_{k}",
                                latency_s=1.5,
                                usage=usage,
                                cost_usd=0.0093,
                            ),
                            TaskFinished(
                                run_id=run_id,
                                ts=ts + 1.6,
                                task_id=task_id,
                                step_id="answer",
                                status="succeeded",
                                output=text,
                                usage=usage,
                                cost_usd=0.0093,
                                turns=1,
                            ),
                        ]
                        outputs.append(text)
                    status = "failed" if i % 50 == 49 else "succeeded"
                    events += [
                        StepFinished(
                            run_id=run_id,
                            ts=t0 + 2.0,
                            step_id="answer",
                            status="succeeded",
                            output=outputs[0],
                        ),
                        RunFinished(
                            run_id=run_id,
                            ts=t0 + 2.1,
                            status=status,
                            outputs={"answer": outputs[0]},
                            error="synthetic failure" if status == "failed" else None,
                        ),
                    ]
                    for e in events:
                        w.send(e)
                    sent += len(events)
                    if i % 500 == 499:
                        await w.flush()  # bounds the buffer; the writer batches meanwhile
        finally:
            store.close()
        return sent

    started = time.perf_counter()
    sent = anyio.run(write)
    return sent, time.perf_counter() - started


def time_cmd(cmd: list[str], repeat: int, timeout_s: float) -> list[h.Measured]:
    env = h.child_env()
    h.run_measured(cmd, timeout_s=timeout_s, env=env).check(" ".join(cmd[-3:]))  # warm-up
    runs = []
    for _ in range(repeat):
        m = h.run_measured(cmd, timeout_s=timeout_s, env=env)
        m.check(" ".join(cmd))
        runs.append(m)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(
        description="`orchestrate runs list` over a 10,000-run store vs `python -c 'import "
        "anthropic'`."
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the synthetic store")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each command")
    parser.add_argument(
        "--db",
        type=Path,
        help="use (or create) this store instead of a temp one; an existing file is used as it is",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp store")
    parser.add_argument("--timeout", type=float, default=60.0, help="per command, seconds")
    args = parser.parse_args()
    h.install_cleanup()

    tmp: Path | None = None
    if args.db is not None:
        db = args.db
    else:
        tmp = Path(tempfile.mkdtemp(prefix="orchestrate-history-"))
        db = tmp / "state.db"
    try:
        print(f"history: {h.machine()}", flush=True)
        if db.exists():
            print(f"  using the existing store {db}")
        else:
            sent, secs = build_store(db, args.runs)
            size_mb = db.stat().st_size / 2**20
            print(
                f"  built {db}: {args.runs:,} runs, {sent:,} events in {secs:.1f}s "
                f"({sent / secs:,.0f} events/s through the writer), {size_mb:.0f} MB"
            )

        cli = h._find_cli()
        rows: list[tuple[Any, ...]] = []
        medians: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for label, cmd in (
            ("orchestrate runs list", [*cli, "runs", "list", "--db", str(db)]),
            ("orchestrate runs list --json", [*cli, "runs", "list", "--json", "--db", str(db)]),
            ("python -c 'import anthropic'", [h.PYTHON, "-c", "import anthropic"]),
        ):
            ms = time_cmd(cmd, args.repeat, args.timeout)
            wall = h.median([m.wall_s for m in ms])
            medians[label] = wall
            cpu[label] = h.median([m.cpu_s for m in ms])
            rows.append(
                (
                    label,
                    wall * 1000,
                    min(m.wall_s for m in ms) * 1000,
                    h.median([m.cpu_s for m in ms]) * 1000,
                    h.median([m.maxrss_mb for m in ms]),
                )
            )
        print()
        print(h.table(["command", "median ms", "min ms", "CPU ms", "peak RSS MB"], rows))
        base = medians["python -c 'import anthropic'"]
        print()
        print(
            f"runs list / import anthropic:        "
            f"{h.verdict(medians['orchestrate runs list'] / base, TARGET, strict=True)}"
        )
        print(
            f"runs list --json / import anthropic: "
            f"{medians['orchestrate runs list --json'] / base:.2f}"
        )
        lst, imp = "orchestrate runs list", "python -c 'import anthropic'"
        print(f"same, by CPU time (less sensitive to other load): {cpu[lst] / cpu[imp]:.2f}")
    finally:
        if tmp is not None:
            if args.keep:
                print(f"  kept {db}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    h.run_main(main, "history")
