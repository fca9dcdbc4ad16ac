"""The real `orchestrate` CLI in child processes, against a simulator in this process or its own.

A child runs in REAL mode (`ANTHROPIC_BASE_URL` pointed at a `SimServer` started here) or with
`--simulate`. The store is a file under `tmp_path`, which is also the child's cwd, so logs and run
folders land there too. Helpers poll the store read-only, the way `orchestrate runs list` does.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.sim import SimServer
from orchestrator.store import Store
from tests._support.children import clean_environ, give_child_tests_time
from tests._support.gate import Gate, Hold, by_key

CLI = Path(sys.executable).parent / "orchestrate"
API_KEY = "sk-test-reliability"
# Bounds against a hung child only: a loaded 2-core host may take many seconds to start one, and
# a test waits on conditions, so a slow host waits longer instead of failing.
CHILD_TIMEOUT_S = 300.0

# Fast retries and heartbeats for every child; a test adds its own on top.
FAST_ENV = {
    "ORCHESTRATE_RETRY__BASE_DELAY": "10ms",
    "ORCHESTRATE_RETRY__MAX_DELAY": "200ms",
    "ORCHESTRATE_RETRY__OVERLOAD_PAUSE": "100ms",
    "ORCHESTRATE_ENGINE__HEARTBEAT": "200ms",
}


def child_env(**extra: str) -> dict[str, str]:
    """`clean_environ` (tests/_support/children.py) with fast retries, unbuffered, plus `extra`."""
    return clean_environ(**{**FAST_ENV, "PYTHONUNBUFFERED": "1", **extra})


def real_env(api: SimServer | Gate, **extra: str) -> dict[str, str]:
    """A child that believes it talks to the real API, at the simulator's (or a gate's) address."""
    return child_env(ANTHROPIC_BASE_URL=api.base_url, ANTHROPIC_API_KEY=API_KEY, **extra)


def item(step: str, index: int) -> Hold:
    """A `hold` predicate for one fan-out item's requests (task keys are `step[i]:hash`)."""
    return by_key(f"{step}[{index}]:")


def fanout_workflow(n: int, *, concurrency: int, max_workers: int | None = None) -> str:
    """A planner, then `n` workers (one per item) that each quote the plan's title."""
    return textwrap.dedent(
        f"""\
        version: 1
        name: fan{n}
        inputs:
          n: {{type: integer, default: {n}}}
        limits: {{concurrency: {concurrency}, max_workers: {max_workers or n + 10}}}
        steps:
          - id: plan
            prompt: Give a five-word title for a survey of distributed systems.
          - id: research
            needs: [plan]
            for_each: "{{{{ range(inputs.n) | list }}}}"
            as: part
            prompt: "Research part {{{{ part }}}} of the survey in one paragraph."
        outputs:
          title: "{{{{ steps.plan.output }}}}"
          results: "{{{{ steps.research.output }}}}"
        """
    )


@dataclass
class Child:
    """A running `orchestrate` process whose stdout/stderr go to files."""

    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def run_id(self, timeout: float = CHILD_TIMEOUT_S) -> str:
        """The run id the CLI prints first (after the store is open and migrated)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr.splitlines():
                if line.startswith("run ") and len(line.split()) == 2:
                    return line.split()[1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no run id printed; stderr:\n{self.stderr}")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=CHILD_TIMEOUT_S)

    def wait(self, timeout: float = CHILD_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the child did not finish; stderr:\n{self.stderr}") from None


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


class Cli:
    """Start `orchestrate` children in `cwd`; every child still alive at teardown is killed."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.children: list[Child] = []
        self._n = 0

    def start(self, *args: str, env: dict[str, str] | None = None) -> Child:
        self._n += 1
        out = self.cwd / f".child{self._n}.out"
        err = self.cwd / f".child{self._n}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                [str(CLI), *args],
                cwd=self.cwd,
                env=env if env is not None else child_env(),
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
            )
        child = Child(proc, out, err)
        self.children.append(child)
        return child

    def run(self, *args: str, env: dict[str, str] | None = None) -> Done:
        child = self.start(*args, env=env)
        code = child.wait()
        return Done(code, child.stdout, child.stderr)

    def close(self) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    yield runner
    runner.close()


def calls_by_task(sim: SimServer) -> Counter[str]:
    """Messages API requests the simulator received, per `X-Orchestrate-Task` key."""
    return Counter(e.task or "" for e in sim.log.find())


def open_readonly(db: Path) -> Store:
    return Store.open(str(db), readonly=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    give_child_tests_time(items, Path(__file__).parent)
