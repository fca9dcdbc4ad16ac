"""Runs of a workflow through `assembly.execute`, read back from the store (tests/ray).

This folder has no `__init__.py` on purpose: as a package it would be importable as `ray` and
hide Ray itself; its modules are imported by their own names.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from orchestrator import assembly
from orchestrator.config import load_settings
from orchestrator.engine import RunOutcome
from orchestrator.sim import SimConfig
from orchestrator.store import Store
from orchestrator.workflow import load_workflow

FAST = {"base_delay": "10ms", "max_delay": "100ms", "overload_pause": "100ms"}


@dataclass
class Ran:
    outcome: RunOutcome
    tasks: list[Any]  # store rows, by key
    calls: dict[str, list[Any]]  # task key -> its calls
    run: Any
    state: dict[str, Any]  # the run's shared state as the store has it


def run_workflow(
    folder: Path,
    text: str,
    *,
    db: str,
    executor: str,
    sim: SimConfig,
    sinks: Sequence[Any] = (),
    engine: dict[str, Any] | None = None,
) -> Ran:
    """Run the workflow `text` (written to `folder/wf.yaml`) to its end and read it back."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wf.yaml"
    path.write_text(text)
    overrides = {
        "engine": {
            "db": db,
            "executor": executor,
            "runs_dir": str(folder / "runs"),
            "logs_dir": str(folder / "logs"),
            **(engine or {}),
        },
        "retry": FAST,
    }
    settings = load_settings(None, overrides=overrides)
    workflow = load_workflow(path, settings=settings)
    store = Store.open(db)
    try:
        plan = assembly.new_run(settings, workflow, workflow.coerce_inputs({}))
        outcome = anyio.run(
            functools.partial(assembly.execute, settings, plan, store, sim=sim, sinks=sinks)
        )
        tasks = sorted(store.list_tasks(outcome.run_id), key=lambda t: t.key)
        calls = {t.key: store.task_calls(t.id) for t in tasks}
        run = store.get_run(outcome.run_id)
        state = store.state_items(outcome.run_id)
    finally:
        store.close()
    return Ran(outcome=outcome, tasks=tasks, calls=calls, run=run, state=state)


def fanout(items: int, *, extra: str = "", limits: str = "") -> str:
    return f"""\
version: 1
name: ray-fan
{limits}
steps:
  - id: research
    for_each: "{{{{ range({items}) | list }}}}"
    as: n
    tools: [state_set]
    prompt: "Use state_set to note one fact about the number {{{{ n }}}}."
    max_tokens: 64
{extra}
outputs:
  results: "{{{{ steps.research.output }}}}"
"""
