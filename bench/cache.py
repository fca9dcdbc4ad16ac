#!/usr/bin/env python
"""Cache warm-up benchmark: a fan-out whose workers share one large `context:`, every worker in
flight at once, against the simulator with cache timing on (a write is readable only once the
response that wrote it has begun, as on the API).

Sides, each against a fresh simulator process (same seed, so the same latency draws):
  (bare)    a child interpreter running asyncio + AsyncAnthropic (aiohttp transport), the same
            prompts, nothing marked for caching: every request pays full input price.
  (no hold) `orchestrate run bench/workflows/cache.yaml` with `cache.hold: 0`: the prefix is
            marked, but all N requests arrive before any response began, so each writes it.
  (hold B)  the same with `cache.hold: B`: requests wait behind the first (until it returns, at
            most B seconds), then read the cache.

Printed per side: dollars (configs prices, from the usage every response reported), the cache-read
ratio (cache-read tokens / all input tokens), cache writes, and the makespan (what the hold costs).

  python bench/cache.py                                   # 200 workers, 5,000 tokens, 2s latency
  python bench/cache.py --latency 1s,3s --holds 1,2,3,5   # the bound's sweep
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

WORKFLOW = h.BENCH_DIR / "workflows" / "cache.yaml"
MODEL = "claude-sonnet-5-5"
SYSTEM = "You answer one question about the shared background in under 100 words."
LINE = "Shared background, the same for every worker. "
TOKENS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def bare_child(spec: dict[str, Any]) -> None:
    """asyncio + AsyncAnthropic on aiohttp, marking nothing. Prints one JSON line of totals."""
    import asyncio

    import anthropic

    async def main() -> dict[str, Any]:
        totals = dict.fromkeys(TOKENS, 0)
        async with anthropic.AsyncAnthropic(
            base_url=spec["base_url"],
            api_key="sk-bench",  # the SDK's default retries (2), as a person's script has
            http_client=anthropic.DefaultAioHttpClient(),
        ) as client:
            background = LINE * (spec["tokens"] * 4 // len(LINE))
            started = time.perf_counter()

            async def work(i: int) -> None:
                msg = await client.messages.create(
                    model=MODEL,
                    max_tokens=256,
                    system=SYSTEM,
                    messages=[
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": background},
                                {"type": "text", "text": f"Question {i}: what does it say?"},
                            ],
                        }
                    ],
                )
                for k in TOKENS:
                    totals[k] += getattr(msg.usage, k) or 0

            await asyncio.gather(*(work(i) for i in range(spec["n"])))
            return {"makespan_s": time.perf_counter() - started, **totals}

    print(json.dumps(asyncio.run(main())), flush=True)


def dollars(totals: dict[str, Any]) -> float:
    from orchestrator.config import load_settings
    from orchestrator.contracts import Usage

    settings = load_settings(environ={}, cwd=Path(tempfile.gettempdir()))
    usage = Usage(
        **{k: int(totals.get(k) or 0) for k in TOKENS},
        cache_creation_5m_input_tokens=int(totals.get("cache_creation_5m_input_tokens") or 0),
        cache_creation_1h_input_tokens=int(totals.get("cache_creation_1h_input_tokens") or 0),
    )
    cost = settings.cost_usd(MODEL, usage)
    assert cost is not None
    return cost


def measure_bare(n: int, tokens: int, latency_s: float) -> dict[str, Any]:
    with h.simulator(latency_s=latency_s) as sim:
        spec = {"base_url": sim.base_url, "n": n, "tokens": tokens}
        m = h.run_measured(
            [h.PYTHON, __file__, "--bare-child", json.dumps(spec)],
            timeout_s=300,
            env=h.child_env(),
        )
    m.check("bare script")
    out = h.last_json_line(m.stdout)
    # The bare script marks nothing, so its writes are 5m-priced zeros; say so explicitly.
    out["cache_creation_5m_input_tokens"] = out["cache_creation_input_tokens"]
    return {**out, "wall_s": m.wall_s}


def measure_engine(n: int, tokens: int, latency_s: float, hold_s: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="orchestrate-bench-cache-"))
    try:
        (tmp / "orchestrate.yaml").write_text(f"cache:\n  hold: {hold_s}\n")
        db = tmp / "state.db"
        cmd = [
            *h._find_cli(),
            "run",
            str(WORKFLOW),
            "--db",
            str(db),
            "--input",
            f"n={n}",
            "--input",
            f"tokens={tokens}",
            "-q",
        ]
        with h.simulator(latency_s=latency_s) as sim:
            m = h.run_measured(
                cmd,
                timeout_s=300,
                env=h.child_env(ANTHROPIC_BASE_URL=sim.base_url, ANTHROPIC_API_KEY="sk-bench"),
                cwd=tmp,
            )
        m.check(f"orchestrate run (hold {hold_s}s)")
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            row = dict(con.execute("SELECT * FROM runs").fetchone())
        finally:
            con.close()
        if row["status"] != "succeeded":
            raise RuntimeError(f"orchestrate run (hold {hold_s}s): {row['status']}")
        return {**row, "makespan_s": row["finished_at"] - row["started_at"], "wall_s": m.wall_s}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def row_of(label: str, r: dict[str, Any]) -> list[Any]:
    read = int(r["cache_read_input_tokens"] or 0)
    written = int(r["cache_creation_input_tokens"] or 0)
    total_in = int(r["input_tokens"] or 0) + read + written
    return [label, f"${dollars(r):.4f}", f"{read / total_in:.1%}", f"{written:,}", r["makespan_s"]]


def main() -> int:
    parser = argparse.ArgumentParser(description="Cache warm-up: dollars and cache-read ratio.")
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=5000, help="shared context size")
    parser.add_argument("--latency", default="2s", help="simulated latency, or a comma list")
    parser.add_argument("--holds", default="5", help="hold bounds in seconds, a comma list")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bare-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(json.loads(args.bare_child))
        return 0
    h.install_cleanup()
    holds = [float(x) for x in args.holds.split(",") if x.strip()]
    latencies = [x.strip() for x in args.latency.split(",") if x.strip()]
    print(
        f"cache: {args.workers} workers at once, {args.tokens:,}-token shared context, "
        f"latencies {latencies}, holds {holds}; {h.machine()}",
        flush=True,
    )
    everything: dict[str, Any] = {}
    for latency in latencies:
        latency_s = h.parse_latency(latency)
        rows = []
        results: dict[str, Any] = {"bare": measure_bare(args.workers, args.tokens, latency_s)}
        rows.append(row_of("bare script, nothing marked", results["bare"]))
        results["no hold"] = measure_engine(args.workers, args.tokens, latency_s, 0)
        rows.append(row_of("orchestrate, no hold", results["no hold"]))
        for hold in holds:
            r = measure_engine(args.workers, args.tokens, latency_s, hold)
            results[f"hold {hold:g}s"] = r
            rows.append(row_of(f"orchestrate, hold <= {hold:g}s", r))
        print(f"\nlatency {latency}:")
        print(h.table(["side", "dollars", "cache-read ratio", "cache writes", "makespan s"], rows))
        everything[latency] = results
    if args.json:
        print(json.dumps(everything, default=str))
    return 0


if __name__ == "__main__":
    h.run_main(main, "cache")
