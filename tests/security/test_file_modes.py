"""What orchestrate writes to disk is private to the user: prompts and replies live there.

The database and its -wal/-shm are 0600; the folders it creates (`.orchestrate`, the runs folder,
each run's folder and workspace, the logs folder) are 0700, and the per-run log, which holds the
rendered prompts, is readable by its owner only. The child runs with the common umask 022, so
anything created without an explicit mode would show up as group/world readable.

The -wal and -shm files exist only while the run has the database open, so the run talks to a
simulator through a `Gate` that holds its last item until the test has seen all three files:
the test never races the run on a slow host.
"""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.sim import SimConfig, SimServer
from tests._support.gate import Gate, by_key

from .conftest import CLI, child_env

WORKFLOW = """\
version: 1
name: modes
limits: {concurrency: 2}
steps:
  - id: fan
    for_each: [a, b, c, d, e, f]
    prompt: "Say {{ item }}."
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run_and_watch_sidecars(tmp: Path) -> tuple[int, dict[str, int], str]:
    """Run with the default store location; while it runs, read the modes of the db files."""
    (tmp / "wf.yaml").write_text(WORKFLOW)
    db = tmp / ".orchestrate" / "state.db"
    with SimServer(SimConfig(seed=1)) as sim:
        gate = Gate(sim.base_url, by_key("fan[5]:"))
        try:
            return _watch(tmp, db, gate)
        finally:
            gate.close()


def _watch(tmp: Path, db: Path, gate: Gate) -> tuple[int, dict[str, int], str]:
    env = child_env(ANTHROPIC_BASE_URL=gate.base_url, ANTHROPIC_API_KEY="sk-test-file-modes")
    proc = subprocess.Popen(
        [str(CLI), "run", "wf.yaml", "-q"],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        umask=0o022,
    )
    seen: dict[str, int] = {}
    gate.wait_held()  # the run is mid-way and cannot finish until released
    while proc.poll() is None and len(seen) < 3:
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            path = db.with_name(name)
            if name not in seen and path.exists():
                try:
                    seen[name] = mode(path)
                except FileNotFoundError:
                    pass
        time.sleep(0.01)
    gate.release()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, seen, err.decode(errors="replace")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("modes")
    code, seen, err = _run_and_watch_sidecars(tmp)
    assert code == 0, err
    return tmp, seen


def test_database_and_its_wal_and_shm_are_0600(finished_run: tuple[Path, dict[str, int]]) -> None:
    tmp, seen = finished_run
    assert set(seen) == {"state.db", "state.db-wal", "state.db-shm"}, "seen while running"
    assert seen == dict.fromkeys(seen, 0o600), {k: oct(v) for k, v in seen.items()}
    assert mode(tmp / ".orchestrate" / "state.db") == 0o600
    assert mode(tmp / ".orchestrate") == 0o700


def test_run_folders_workspace_and_logs_are_private(
    finished_run: tuple[Path, dict[str, int]],
) -> None:
    tmp, _ = finished_run
    home = tmp / ".orchestrate"
    (run_dir,) = (home / "runs").iterdir()
    (log,) = (home / "logs").iterdir()
    modes = {
        "logs dir": mode(home / "logs"),
        "runs dir": mode(home / "runs"),
        "run folder": mode(run_dir),
        "workspace": mode(run_dir / "workspace"),
        "run log (holds the prompts)": mode(log),
    }
    expected = {name: 0o600 if "log (" in name else 0o700 for name in modes}
    assert {k: oct(v) for k, v in modes.items()} == {k: oct(v) for k, v in expected.items()}
