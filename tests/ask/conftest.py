"""Helpers for the people-in-the-loop tests: a project directory, the CLI in-process, real
`orchestrate` processes for what needs one (`--wait`, a kill, a terminal)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests._support.children import clean_environ
from tests._support.cli import invoke

ORCHESTRATE = Path(sys.executable).parent / "orchestrate"

GATE = """\
version: 1
name: gate
steps:
  - id: plan
    prompt: "List two subtasks"
    output:
      type: object
      required: [subtasks]
      properties:
        subtasks: {type: array, items: {type: string}, minItems: 2, maxItems: 2}
  - id: side
    run: "echo side done"
  - id: confirm
    ask: "Proceed with these {{ steps.plan.output.subtasks | length }} subtasks?"
    options: [proceed, redo, quit]
  - id: act
    when: "{{ steps.confirm.output == 'proceed' }}"
    run: "echo acting"
outputs:
  decision: "{{ steps.confirm.output }}"
  side: "{{ steps.side.output }}"
"""


def write(project: Path, text: str, name: str = "wf.yaml") -> Path:
    path = project / name
    path.write_text(textwrap.dedent(text))
    return path


def invoke_json(*args: str) -> Any:
    code, out, err = invoke(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def run_id_of(err: str) -> str:
    first = err.splitlines()[0]
    assert first.startswith("run "), err
    return first.split()[1]


def child_env(**extra: str) -> dict[str, str]:
    # COLUMNS: tables read whole (a worker's inherited width may be narrow)
    return clean_environ(**{"ORCHESTRATE_ENGINE__HEARTBEAT": "200ms", "COLUMNS": "200", **extra})


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ORCHESTRATE), *args],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def resume_from(events: list[Any]) -> Any:
    """What a resume keeps, from a run's events: every task that succeeded."""
    from orchestrator.engine import PriorTask, ResumeState
    from orchestrator.events import TaskFinished

    tasks = {}
    keys = {e.task_id: e.key for e in events if type(e).__name__ == "TaskStarted"}
    for event in events:
        if isinstance(event, TaskFinished) and event.status == "succeeded":
            tasks[keys[event.task_id]] = PriorTask(output=event.output)
    return ResumeState(tasks=tasks)
