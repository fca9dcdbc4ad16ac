"""The API key never leaves the process: not in the store, the logs, the workspace or the output.

A run in real mode talks to a simulator in this process with a unique key that is not shaped like
an Anthropic key (so only exact redaction can hide it). The workflow gives every leak a chance: a
`run:` step and a Bash tool call print the environment, a fan-out makes many calls, and one step
gets a 401 whose message echoes the key back (as a misbehaving proxy might). Then every byte under
the run's directory, and the CLI's stdout and stderr, are searched for the key.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from orchestrator.sim import Rule, SimConfig
from orchestrator.store import Store

from .conftest import child_env, orchestrate, tool_results

WORKFLOW = """\
version: 1
name: secrets
steps:
  - id: shell
    run: env | sort
  - id: ask
    prompt: "Look around the workspace."
    tools: [Bash]
  - id: fan
    for_each: [alpha, beta, gamma]
    prompt: "Say {{ item }}."
  - id: denied
    prompt: "This call is refused."
outputs:
  shell: "{{ steps.shell.output }}"
  fan: "{{ steps.fan.output }}"
"""


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            hits.append(str(path.relative_to(root)))
    return hits


def test_api_key_is_in_no_file_event_log_or_output(tmp_path: Path, sim_factory: Any) -> None:
    key = f"orchestrate-test-secret-{uuid.uuid4().hex}"
    rules = [
        Rule(step="ask", turn=1, tool_calls=[{"name": "Bash", "input": {"command": "env"}}]),
        Rule(step="ask", turn=2, text="looked"),
        Rule(
            step="denied",
            error={
                "status": 401,
                "type": "authentication_error",
                "message": f"invalid x-api-key: {key}",
            },
        ),
    ]
    sim = sim_factory(SimConfig(seed=3, rules=rules))
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    env = child_env(ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=sim.base_url)
    done = orchestrate(tmp_path, "run", "wf.yaml", "--db", "state.db", "--json", env=env)

    assert done.code == 1, done.stderr  # `denied` failed with a fatal 401
    sent = {e.headers.get("x-api-key") or e.headers.get("authorization") for e in sim.log.find()}
    assert sent in ({key}, {f"Bearer {key}"}), "the key was sent with every request"
    assert sim.log.count(step="denied") == 1, "a 401 is not retried"

    assert key not in done.stdout
    assert key not in done.stderr
    assert _files_containing(tmp_path, key.encode()) == []

    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "failed"
    assert "401" in result["error"] and "ANTHROPIC_API_KEY" in result["error"]
    with Store.open(str(tmp_path / "state.db"), readonly=True) as store:
        run_id = store.resolve_run("last")
        denied = store.list_tasks(run_id, step="denied")
        assert [t.status for t in denied] == ["failed"]
        assert denied[0].error and "invalid x-api-key" in denied[0].error
        calls = store.task_calls(denied[0].id)
        assert [c.http_status for c in calls] == [401]
        assert calls[0].error and key not in calls[0].error
        # the shell saw the environment, minus the key
        shell = store.list_tasks(run_id, step="shell")[0]
        assert "PATH=" in json.dumps(shell.output)
        ask = store.list_tasks(run_id, step="ask")[0]
        (bash,) = tool_results(store, ask.id)
        assert bash["name"] == "Bash" and not bash["is_error"]
        assert "PATH=" in str(bash["text"])
        exported = "\n".join(json.dumps(row, default=str) for row in store.export_run(run_id))
    assert key not in exported
    # neither `env` in the run step nor in the Bash tool showed the variables at all
    assert "ANTHROPIC_API_KEY=" not in exported
    assert "ANTHROPIC_BASE_URL=" not in exported
