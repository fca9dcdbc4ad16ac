"""Shared plumbing of the benchmarks: the simulator in its own process, measured child processes,
cleanup on every exit path, and table printing.

Only the standard library is imported here. The simulator process imports the project's `sim`
package; the benchmark scripts import `anthropic` only inside the child processes they measure,
so the parent stays light and its own CPU never counts.

Invariants:
- every process started here is killed when the parent leaves, whatever the reason (normal exit,
  exception, Ctrl-C, SIGTERM); the simulator also exits on its own when its parent dies;
- a measured child's CPU and peak RSS come from `os.wait4` on that child alone;
- all traffic is loopback (the simulator binds 127.0.0.1).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable


def _find_cli() -> list[str]:
    """The `orchestrate` console script next to this interpreter, else on PATH."""
    local = Path(PYTHON).with_name("orchestrate")
    if local.exists():
        return [str(local)]
    found = shutil.which("orchestrate")
    if found:
        return [found]
    raise SystemExit("bench: the `orchestrate` command is not installed (pip install -e .)")


# --- process bookkeeping: nothing outlives the benchmark -----------------------------------------

_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LOCK = threading.Lock()


def _register(proc: subprocess.Popen[bytes]) -> None:
    with _LOCK:
        _LIVE[proc.pid] = proc


def _unregister(proc: subprocess.Popen[bytes]) -> None:
    with _LOCK:
        _LIVE.pop(proc.pid, None)


def _kill(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    """Stop one process we started (its own session: the whole group), by pid only."""
    if proc.returncode is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    own_group = pgid == proc.pid  # started with start_new_session=True
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            if own_group:
                os.killpg(pgid, sig)
            else:
                os.kill(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(proc.pid, os.WNOHANG)
            except ChildProcessError:
                return  # reaped elsewhere (the wait4 thread)
            if pid:
                proc.returncode = -sig
                return
            time.sleep(0.02)


def kill_all() -> None:
    with _LOCK:
        procs = list(_LIVE.values())
        _LIVE.clear()
    for proc in procs:
        _kill(proc)


def install_cleanup() -> None:
    """Kill every child at exit; turn SIGTERM/SIGHUP into SystemExit so `finally` blocks run."""
    atexit.register(kill_all)

    def on_signal(signum: int, _frame: Any) -> None:
        kill_all()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


# --- the simulator, in its own process -----------------------------------------------------------

# Run by a separate interpreter. It uses the project's simulator API rather than `orchestrate sim
# serve`, because that command cannot change the simulator's per-minute rate limits (4,000
# requests and 400k output tokens a minute by default), which 10,000 workers -- or two 1,000-worker
# runs within a minute -- would hit, turning the benchmark into a 429 test. Everything else is the
# same server `sim serve` runs.
#
# The limits are raised rather than removed, so the simulator still announces them in
# `anthropic-ratelimit-*` headers as the API does: the engine's client-side buckets start from the
# catalog's limits in configs/default.yaml (4,000 requests a minute for Sonnet) and recalibrate
# from those headers. Without them a 10,000-worker run is paced to ~90 s by the catalog's limit.
HIGH_LIMITS = {"requests": 10**9, "input_tokens": 10**12, "output_tokens": 10**12}
_SIM_LAUNCHER = r"""
import json, os, sys, threading, time
from orchestrator.sim import SimConfig, SimServer
options = json.loads(sys.argv[1])
parent = os.getppid()
server = SimServer(SimConfig(**options), host="127.0.0.1", port=0)
server.start()
print(server.base_url, flush=True)
try:
    while os.getppid() == parent:  # the benchmark died without killing us: leave too
        time.sleep(0.5)
finally:
    server.stop()
"""


@dataclass
class Sim:
    base_url: str
    proc: subprocess.Popen[bytes]

    def cpu_s(self) -> float:
        """CPU seconds the simulator process has used so far (from /proc; 0 if unreadable)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


def parse_latency(text: str) -> float:
    """`50ms`, `1s`, `0.05` -> seconds."""
    t = text.strip().lower()
    for unit, scale in (("ms", 0.001), ("s", 1.0)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * scale
    return float(t)


@contextlib.contextmanager
def simulator(
    *, latency_s: float, list_len: int = 5, seed: int = 0, start_timeout_s: float = 30.0
) -> Iterator[Sim]:
    """Start the simulator in its own process (own session), wait until it answers, kill it after.

    Rate limits are out of reach (`HIGH_LIMITS`, announced in headers), tool calls off (the
    benchmark grants no tools).
    """
    options = {
        "seed": seed,
        "latency_s": latency_s,
        "list_len": list_len,
        "tool_calls": False,
        "rate_limits": HIGH_LIMITS,
    }
    proc = subprocess.Popen(
        [PYTHON, "-c", _SIM_LAUNCHER, json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it
    )
    _register(proc)
    try:
        assert proc.stdout is not None
        line = _readline(proc, start_timeout_s)
        if not line.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not start (said {line!r})")
        base_url = line
        _wait_answering(base_url, start_timeout_s)
        yield Sim(base_url=base_url, proc=proc)
    finally:
        _kill(proc)
        _unregister(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _readline(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    box: list[bytes] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    if not box:
        raise RuntimeError(f"the simulator printed nothing within {timeout_s:.0f}s")
    return box[0].decode().strip()


def _wait_answering(base_url: str, timeout_s: float) -> None:
    body = json.dumps(
        {"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "ping"}]}
    ).encode()
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        req = urllib.request.Request(
            base_url + "/v1/messages/count_tokens",
            data=body,
            headers={"content-type": "application/json", "x-api-key": "sk-bench"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"the simulator at {base_url} did not answer: {last}")


# --- measured children ---------------------------------------------------------------------------


@dataclass
class Measured:
    """One child process: wall time from spawn to reap, its own CPU and peak RSS (wait4)."""

    cmd: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    stdout: str
    stderr: str
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, what: str) -> None:
        if self.timed_out:
            raise RuntimeError(f"{what}: timed out after {self.wall_s:.0f}s")
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{what}: exit {self.returncode}\n{tail}")


def run_measured(
    cmd: Sequence[str],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Measured:
    """Run `cmd` to completion (killed after `timeout_s`), measured with os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd
        )
        _register(proc)
        box: list[tuple[int, int, Any, float]] = []

        def reap() -> None:
            pid, status, usage = os.wait4(proc.pid, 0)
            box.append((pid, status, usage, time.perf_counter()))

        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        try:
            reaper.join(timeout_s)
            timed_out = not box
            if timed_out:
                _kill(proc)
                reaper.join(10)
        finally:
            if not box:  # interrupted (Ctrl-C) or could not be reaped: make sure it is gone
                _kill(proc)
            _unregister(proc)
        if not box:
            raise RuntimeError(f"could not reap {cmd[0]} (pid {proc.pid})")
        _, status, usage, ended = box[0]
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            cmd=list(cmd),
            returncode=proc.returncode,
            wall_s=ended - started,
            cpu_s=usage.ru_utime + usage.ru_stime,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            maxrss_mb=usage.ru_maxrss / 1024.0,  # Linux: kilobytes
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            timed_out=timed_out,
        )


PYCACHE = Path(tempfile.gettempdir()) / "orchestrate-bench-pycache"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a measured child: ours, minus anything that would redirect it.

    Byte-code goes to a private cache (PYTHONPYCACHEPREFIX): an editable install run with
    PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every project module at each start,
    which an installed wheel never does. Call `warm_up` once so no measured child compiles.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORCHESTRATE_", "ANTHROPIC_"))
        and k not in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output: {text[-500:]!r}")


# --- reporting -----------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(value: float, target: float, *, strict: bool = False) -> str:
    """`value` against an upper bound: `<= target`, or `< target` when `strict`."""
    ok = value < target if strict else value <= target
    return f"{value:.2f}  (target {'<' if strict else '<='} {target:g}: {'PASS' if ok else 'MISS'})"


def run_main(main: Callable[[], int], name: str) -> None:
    """A benchmark's entry point: exit with `main()`'s code; on Ctrl-C (130) or a failed
    measurement (1, one line naming the script) kill every child first."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        kill_all()
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as exc:
        kill_all()
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(1)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}, load avg {load}"
