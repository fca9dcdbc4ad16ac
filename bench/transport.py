#!/usr/bin/env python
"""Transport benchmark: the SDK's default httpx2 transport vs `anthropic.DefaultAioHttpClient()`.

Each side is a fresh child interpreter making the same calls (default 1000) to the simulator (its
own process, started afresh per measurement so both see the same latency draws), with the same
concurrency (an asyncio.Semaphore): `anthropic.AsyncAnthropic(base_url=..., api_key="sk-bench",
max_retries=0)` with either no `http_client` (httpx2) or `http_client=DefaultAioHttpClient()`.
Both keep the SDK's default connection limits. One unmeasured call first, so lazy imports and
the first connection are not in the timing. Reported: wall time and CPU of the timed loop
(in-process), the child's total CPU and peak RSS (os.wait4), and aiohttp/httpx ratios. The engine
uses aiohttp by default (configs/default.yaml `engine.transport`).

  python bench/transport.py
  python bench/transport.py --calls 1000 --concurrency 200 --latency 50ms --repeat 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

TRANSPORTS = ("httpx", "aiohttp")


def child(spec: dict[str, Any]) -> None:
    import asyncio

    import anthropic

    async def main() -> dict[str, Any]:
        http_client = anthropic.DefaultAioHttpClient() if spec["transport"] == "aiohttp" else None
        client = anthropic.AsyncAnthropic(
            base_url=spec["base_url"], api_key="sk-bench", max_retries=0, http_client=http_client
        )
        sem = asyncio.Semaphore(spec["concurrency"])
        errors: list[str] = []

        async def call(i: int) -> int:
            async with sem:
                try:
                    msg = await client.messages.create(
                        model="claude-sonnet-5-5",
                        max_tokens=256,
                        system="You answer one topic in under 100 words.",
                        messages=[{"role": "user", "content": f"Write a short note on: topic {i}"}],
                    )
                except anthropic.APIError as exc:
                    errors.append(repr(exc))
                    return 0
                return len(msg.content)

        async with client:
            await call(-1)  # warm: lazy imports, first connection
            started, cpu0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(call(i) for i in range(spec["calls"])))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
        }

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(spec["timeout_s"]):
            return await main()

    print(json.dumps(asyncio.run(bounded())), flush=True)


def measure(transport: str, calls: int, concurrency: int, latency_s: float) -> dict[str, Any]:
    timeout_s = 60.0 + 20.0 * calls * max(latency_s, 0.001) / concurrency + 0.05 * calls
    with h.simulator(latency_s=latency_s) as sim:
        spec = {
            "transport": transport,
            "base_url": sim.base_url,
            "calls": calls,
            "concurrency": concurrency,
            "timeout_s": timeout_s,
        }
        m = h.run_measured(
            [h.PYTHON, __file__, "--child", json.dumps(spec)],
            timeout_s=timeout_s + 30,
            env=h.child_env(),
        )
    m.check(f"{transport} child")
    out = h.last_json_line(m.stdout)
    if out["errors"]:
        raise RuntimeError(f"{transport}: {out['errors']} errors, first: {out['first_error']}")
    return {**out, "proc_cpu_s": m.cpu_s, "maxrss_mb": m.maxrss_mb}


def main() -> int:
    parser = argparse.ArgumentParser(
        description="SDK transport: default httpx2 vs DefaultAioHttpClient, same calls and "
        "concurrency, against the simulator in its own process."
    )
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency", default="50ms", help="simulated latency per call")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per transport, interleaved; medians are reported",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    h.install_cleanup()
    latency_s = h.parse_latency(args.latency)
    print(
        f"transport: {args.calls} calls, concurrency {args.concurrency}, latency "
        f"{args.latency}, repeat {args.repeat}; {h.machine()}",
        flush=True,
    )
    for t in TRANSPORTS:  # warm-up: byte-code cache, page cache
        measure(t, 10, args.concurrency, latency_s)
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TRANSPORTS}
    for _ in range(args.repeat):
        for t in TRANSPORTS:
            r = measure(t, args.calls, args.concurrency, latency_s)
            runs[t].append(r)
            print(f"  {t}: {r['wall_s']:.3f}s, CPU {r['cpu_s']:.2f}s", flush=True)
    med = {
        t: {
            k: h.median([r[k] for r in runs[t]])
            for k in ("wall_s", "cpu_s", "proc_cpu_s", "maxrss_mb")
        }
        for t in TRANSPORTS
    }
    print()
    print(
        h.table(
            [
                "transport",
                "time s",
                "CPU s (loop)",
                "CPU ms/call",
                "calls/s",
                "child CPU s",
                "peak RSS MB",
            ],
            [
                (
                    t,
                    m["wall_s"],
                    m["cpu_s"],
                    1000 * m["cpu_s"] / args.calls,
                    args.calls / m["wall_s"],
                    m["proc_cpu_s"],
                    m["maxrss_mb"],
                )
                for t, m in med.items()
            ],
        )
    )
    a, x = med["aiohttp"], med["httpx"]
    print(
        f"\naiohttp / httpx: time {a['wall_s'] / x['wall_s']:.2f}, "
        f"CPU {a['cpu_s'] / x['cpu_s']:.2f} (below 1: aiohttp is cheaper)"
    )
    return 0


if __name__ == "__main__":
    h.run_main(main, "transport")
