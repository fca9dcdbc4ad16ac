"""Commands (a `run:` step, a Bash call) cannot get the API key back from the engine's process.

Dropping `ANTHROPIC_*` from a child's environment is not enough on its own: the engine process
still holds the key in its environment, readable as `/proc/$PPID/environ` by anything it starts.
The real CLI runs here in real mode with a unique key, against a simulator in this process, and
its commands try every way to read it. With the sandbox (bubblewrap) none works; with
`sandbox: off` the same workflow does get the key back, which is what the sandbox is for.
Without bubblewrap, `sandbox: auto` refuses the Bash call and runs `run:` steps with one warning.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.environment import probe_bubblewrap
from orchestrator.sim import Rule, SimConfig
from orchestrator.store import Store

from .conftest import child_env, orchestrate, tool_results

# Every way a command could read the key from another process: its parent (the engine), PID 1,
# and every process in sight.
STEAL = (
    "cat /proc/$PPID/environ; cat /proc/1/environ; "
    "for f in /proc/[0-9]*/environ; do cat $f; done 2>/dev/null; env; true"
)

WORKFLOW = f"""\
version: 1
name: steal
steps:
  - id: shell
    run: "{STEAL}"
  - id: shell2
    needs: [shell]
    run: echo second
  - id: ask
    needs: [shell2]
    prompt: "Look around."
    tools: [Bash]
outputs:
  shell: "{{{{ steps.shell.output }}}}"
"""

needs_bwrap = pytest.mark.skipif(
    not probe_bubblewrap().usable,
    reason=f"no working bubblewrap here ({probe_bubblewrap().problem}); .ci/run installs it",
)


def _run(tmp_path: Path, sim_factory: Any, **settings: str) -> tuple[Any, str, Store]:
    key = f"orchestrate-test-secret-{uuid.uuid4().hex}"
    rules = [
        Rule(step="ask", turn=1, tool_calls=[{"name": "Bash", "input": {"command": STEAL}}]),
        Rule(step="ask", turn=2, text="looked"),
    ]
    sim = sim_factory(SimConfig(seed=5, rules=rules))
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    env = child_env(ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=sim.base_url, **settings)
    done = orchestrate(tmp_path, "run", "wf.yaml", "--db", "state.db", env=env)
    return done, key, Store.open(str(tmp_path / "state.db"), readonly=True)


def _outputs(store: Store) -> tuple[str, dict[str, Any]]:
    run_id = store.resolve_run("last")
    shell = store.list_tasks(run_id, step="shell")[0]
    ask = store.list_tasks(run_id, step="ask")[0]
    (bash,) = tool_results(store, ask.id)
    return json.dumps(shell.output), bash


@needs_bwrap
def test_sandboxed_commands_cannot_read_the_key_from_the_engine(
    tmp_path: Path, sim_factory: Any
) -> None:
    done, key, store = _run(tmp_path, sim_factory)
    with store:
        assert done.code == 0, done.stderr
        shell, bash = _outputs(store)
        assert "PATH=" in shell and "PATH=" in str(bash["text"]), "the commands did run"
        assert key not in shell
        assert key not in str(bash["text"])
        assert not bash["is_error"]
        run_id = store.resolve_run("last")
        (started,) = store.events(run_id, type="run_started")
        sandbox = started.payload["sandbox"]
        assert sandbox["mode"] == "auto" and sandbox["backend"] == "bubblewrap"
        assert sandbox["network"] is False
        assert not store.events(run_id, type="warning")


@needs_bwrap
def test_without_the_sandbox_the_engine_environment_is_readable(
    tmp_path: Path, sim_factory: Any
) -> None:
    """The control: `sandbox: off` gets the key back through /proc, as before the sandbox."""
    done, key, store = _run(tmp_path, sim_factory, ORCHESTRATE_SANDBOX__MODE="off")
    with store:
        assert done.code == 0, done.stderr
        shell, bash = _outputs(store)
        assert key in shell
        assert key in str(bash["text"])
        (started,) = store.events(store.resolve_run("last"), type="run_started")
        assert started.payload["sandbox"]["backend"] == "none"


def test_auto_without_bubblewrap_refuses_bash_and_warns_once_for_run_steps(
    tmp_path: Path, sim_factory: Any
) -> None:
    done, _, store = _run(tmp_path, sim_factory, ORCHESTRATE_SANDBOX__BWRAP="/nonexistent/bwrap")
    with store:
        assert done.code == 0, done.stderr
        assert done.stderr.count("WITHOUT a sandbox") == 1, done.stderr
        assert "apt-get install bubblewrap" in done.stderr
        run_id = store.resolve_run("last")
        warnings = store.events(run_id, type="warning")
        assert len(warnings) == 1
        assert "WITHOUT a sandbox" in warnings[0].payload["message"]
        (started,) = store.events(run_id, type="run_started")
        sandbox = started.payload["sandbox"]
        assert sandbox["backend"] == "none" and "is not installed" in sandbox["problem"]
        shell, bash = _outputs(store)
        assert "PATH=" in shell, "the author's own command ran"
        assert bash["is_error"], "the model's command did not"
        assert "apt-get install bubblewrap" in str(bash["text"])
        assert "sandbox: off" in str(bash["text"])


def test_on_without_bubblewrap_fails_the_run_step_and_says_why(
    tmp_path: Path, sim_factory: Any
) -> None:
    done, _, store = _run(
        tmp_path,
        sim_factory,
        ORCHESTRATE_SANDBOX__MODE="on",
        ORCHESTRATE_SANDBOX__BWRAP="/nonexistent/bwrap",
    )
    with store:
        assert done.code == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert "sandbox: on requires a sandbox" in done.stderr
        run_id = store.resolve_run("last")
        (shell,) = store.list_tasks(run_id, step="shell")
        assert shell.status == "failed" and shell.attempts == 1, "no retry: it cannot help"
        assert shell.error and "apt-get install bubblewrap" in shell.error
