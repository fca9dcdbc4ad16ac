"""Call-level replay: a run killed with SIGKILL in the middle of a conversation resumes without
asking the model again for any call it had an answer to, or running a finished tool again.

The child runs the real CLI against a simulator in this process, through a `Gate` that holds
one request (the call in flight at the kill), so every answered request is counted per task key
and the kill never races the host's speed. The resume talks to the simulator directly.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sim import SimConfig, SimServer
from orchestrator.sim.config import Rule
from orchestrator.store import Store
from tests._support.gate import Gate, at_turn
from tests._support.wait import wait_for
from tests.reliability.conftest import Cli, calls_by_task, open_readonly, real_env

pytestmark = pytest.mark.timeout(600)

TURNS = 20
STALE_S = 1.0

WORKER = f"""\
version: 1
name: turns
steps:
  - id: work
    prompt: Count to {TURNS}, one state_set call per turn.
    tools: [state_set]
    max_turns: {TURNS + 5}
outputs:
  result: "{{{{ steps.work.output }}}}"
"""


def worker_rules() -> list[Rule]:
    rules = [
        Rule(
            step="work",
            turn=t,
            tool_calls=[{"name": "state_set", "input": {"key": f"n{t}", "value": t}}],
        )
        for t in range(1, TURNS)
    ]
    return [*rules, Rule(step="work", turn=TURNS, text="counted to twenty")]


def succeeded_calls(store: Store, run_id: str) -> Counter[str]:
    """Recorded answered calls per task key."""
    keys = {t.id: t.key for t in store.list_tasks(run_id)}
    out: Counter[str] = Counter()
    for task_id, key in keys.items():
        out[key] += sum(1 for c in store.task_calls(task_id) if c.status == "succeeded")
    return out


def tools_run(store: Store, run_id: str) -> Counter[str]:
    """How often each tool call ran, by its (tool, input), over every process of the run."""
    out: Counter[str] = Counter()
    for event in store.events(run_id, type="tool_called"):
        payload = event.payload or {}
        out[json.dumps([payload.get("tool"), payload.get("input")], sort_keys=True)] += 1
    return out


def interrupted(store: Store, run_id: str) -> bool:
    record = store.get_run(run_id)
    return record is not None and store.run_status(record, STALE_S) == "interrupted"


def kill_and_resume(
    cli: Cli, sim: SimServer, gate: Gate, db: Path, ready: Any
) -> tuple[str, Counter[str], Counter[str], Store]:
    """Run `wf.yaml` through `gate` until `ready(store, run_id)`, SIGKILL it, resume it on the
    simulator; the answered requests per task key before the kill and after the resume."""
    env = real_env(sim, ORCHESTRATE_ENGINE__STALE_AFTER=f"{STALE_S}s")
    child = cli.start(
        "run", "wf.yaml", "--db", str(db), "-q", env={**env, "ANTHROPIC_BASE_URL": gate.base_url}
    )
    run_id = child.run_id()
    store = open_readonly(db)
    gate.wait_held()
    wait_for(lambda: ready(store, run_id), what="the calls before the kill to be recorded")
    assert child.kill(signal.SIGKILL) == -signal.SIGKILL
    before = calls_by_task(sim)
    wait_for(lambda: interrupted(store, run_id), every=0.1, what="a stale heartbeat")
    done = cli.run("resume", run_id, "--db", str(db), "-q", "-o", "out.json", env=env)
    assert done.code == 0, done.stderr
    return run_id, before, calls_by_task(sim), store


@pytest.mark.parametrize("kill_after", [1, 15, 19])
def test_a_multi_turn_worker_killed_mid_conversation_replays_what_it_had(
    tmp_path: Path, cli: Cli, sim_factory: Any, gate_factory: Any, kill_after: int
) -> None:
    (tmp_path / "wf.yaml").write_text(WORKER)
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(rules=worker_rules()))
    gate = gate_factory(sim, at_turn("work", kill_after + 1))

    def ready(store: Store, run_id: str) -> bool:
        recorded = succeeded_calls(store, run_id)["work"] == kill_after
        return recorded and sum(tools_run(store, run_id).values()) == kill_after

    run_id, before, after, store = kill_and_resume(cli, sim, gate, db, ready)
    assert before["work"] == kill_after  # the held call never reached the model
    # turns kill_after+1 .. TURNS, the one in flight at the kill included; nothing before again
    assert after["work"] - before["work"] == TURNS - kill_after
    ran = tools_run(store, run_id)
    assert len(ran) == TURNS - 1 and set(ran.values()) == {1}, "each tool call ran once"
    record = store.get_run(run_id)
    assert record is not None and record.status == "succeeded"
    assert json.loads((tmp_path / "out.json").read_text()) == {"result": "counted to twenty"}
    assert store.state_items(run_id) == {f"n{t}": t for t in range(1, TURNS)}
    store.close()


LEAD = """\
version: 1
name: lead
agents:
  lead:
    system: You lead.
    tools: [Task]
  researcher:
    system: You research.
    tools: [state_set]
steps:
  - id: lead
    agent: lead
    prompt: Research tea.
outputs:
  report: "{{ steps.lead.output }}"
"""


def lead_rules() -> list[Rule]:
    calls = [
        {
            "name": "Task",
            "input": {
                "description": f"part {i}",
                "prompt": f"Part {i}.",
                "subagent_type": "researcher",
            },
        }
        for i in range(3)
    ]
    return [
        Rule(step="lead", turn=1, tool_calls=calls),
        Rule(step="lead", turn=2, text="the report"),
        *(
            Rule(
                step="lead/researcher",
                prompt=f"Part {i}",
                turn=1,
                tool_calls=[{"name": "state_set", "input": {"key": f"part{i}", "value": i}}],
            )
            for i in range(3)
        ),
        Rule(step="lead/researcher", turn=2, text="found it"),
    ]


def test_a_lead_killed_with_children_in_flight_starts_no_finished_child_again(
    tmp_path: Path, cli: Cli, sim_factory: Any, gate_factory: Any
) -> None:
    (tmp_path / "wf.yaml").write_text(LEAD)
    db = tmp_path / "state.db"
    sim = sim_factory(SimConfig(rules=lead_rules()))
    # child 2's second call is in flight at the kill; children 0 and 1 have finished
    gate = gate_factory(sim, at_turn("lead/researcher[2]:", 2))

    def ready(store: Store, run_id: str) -> bool:
        done = store.list_tasks(run_id, step="lead/researcher", status="succeeded")
        state_sets = [k for k in tools_run(store, run_id) if "state_set" in k]
        return len(done) == 2 and len(state_sets) == 3

    run_id, before, after, store = kill_and_resume(cli, sim, gate, db, ready)
    again = {k: after[k] - before[k] for k in after}
    children = sorted(k for k in after if k.startswith("lead/researcher["))
    assert len(children) == 3
    finished_before = [k for k in children if before[k] == 2]
    assert len(finished_before) == 2
    assert all(again[k] == 0 for k in finished_before), "a finished child is never started again"
    (in_flight,) = [k for k in children if before[k] == 1]
    assert again[in_flight] == 1  # its second call, the one held at the kill
    assert again["lead"] == 1  # the lead's first call replayed, its second made once
    ran = tools_run(store, run_id)
    assert set(ran.values()) == {1}, "no tool ran twice (Task calls and state_set)"
    record = store.get_run(run_id)
    assert record is not None and record.status == "succeeded"
    assert json.loads((tmp_path / "out.json").read_text()) == {"report": "the report"}
    store.close()
