"""Issue 14 item 3: a call whose response arrived is recorded before the worker's next request
leaves, so a kill -9 never loses a finished call of a task the store shows finished.

The gate kills the child (SIGKILL) at the very moment the task's second request reaches it: the
first call was answered and its response used (the tool ran, the next turn was sent). Its row
must already be durable. bench/kill_window.py measures the same over many random kill points.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

from orchestrator.sim import SimConfig

from .conftest import Cli, open_readonly, real_env

WORKFLOW = """\
version: 1
name: window
steps:
  - id: a
    prompt: "Record the answer with state_set, then say done."
    tools: [state_set]
"""


def test_a_call_is_durable_before_the_next_request_leaves(
    tmp_path: Path, cli: Cli, sim_factory: Any, gate_factory: Any
) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(seed=3))
    seen: Counter[str] = Counter()
    children: list[Any] = []

    def hold(key: str, body: dict[str, Any]) -> bool:
        seen[key] += 1
        if seen[key] == 2:  # the second turn: kill the run as its request arrives
            children[0].proc.send_signal(signal.SIGKILL)
            return True
        return False

    gate = gate_factory(sim, hold)
    children.append(cli.start("run", "wf.yaml", "--db", str(db), "-q", env=real_env(gate)))
    child = children[0]
    run_id = child.run_id()
    assert child.wait() == -signal.SIGKILL, child.stderr
    answered = len(sim.log.find())
    assert answered == 1, "the first call reached the API; the second was held and dropped"
    store = open_readonly(db)
    recorded = sum(len(store.task_calls(t.id)) for t in store.list_tasks(run_id))
    store.close()
    assert recorded == answered
