"""A step's own `sandbox:` key, and `runs show` saying which sandbox a run used.

The key overrides the settings for that step's commands only: here one `run:` step turns the
sandbox off and reads the engine's environment through /proc (the API key with it), while its
neighbour, under the default, cannot. A bad value is a load error naming its place.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from orchestrator.environment import probe_bubblewrap
from orchestrator.store import Store

from .conftest import child_env, orchestrate

needs_bwrap = pytest.mark.skipif(
    not probe_bubblewrap().usable,
    reason=f"no working bubblewrap here ({probe_bubblewrap().problem}); .ci/run installs it",
)

READ = "cat /proc/$PPID/environ 2>/dev/null | tr '\\\\0' '\\\\n'; true"

WORKFLOW = f"""\
version: 1
name: per-step
steps:
  - id: boxed
    run: "{READ}"
  - id: open
    run: "{READ}"
    sandbox: off
  - id: net
    run: echo net
    sandbox: {{network: true}}
"""


@needs_bwrap
def test_a_steps_sandbox_key_overrides_the_settings_for_that_step(tmp_path: Path) -> None:
    key = f"orchestrate-test-secret-{uuid.uuid4().hex}"
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    env = child_env(ANTHROPIC_API_KEY=key)
    done = orchestrate(tmp_path, "run", "wf.yaml", "--db", "state.db", env=env)
    assert done.code == 0, done.stderr
    with Store.open(str(tmp_path / "state.db"), readonly=True) as store:
        run_id = store.resolve_run("last")
        out = {t.step_id: json.dumps(t.output) for t in store.list_tasks(run_id)}
    assert key in out["open"]  # `sandbox: off` on this step: the engine's environment is readable
    assert key not in out["boxed"]
    assert "net" in out["net"]

    shown = orchestrate(
        tmp_path, "runs", "show", "last", "--db", "state.db", env=child_env(COLUMNS="200")
    )
    assert shown.code == 0, shown.stderr
    assert "sandbox" in shown.stdout and "bubblewrap" in shown.stdout
    assert "(mode auto, network off)" in shown.stdout
    data = json.loads(
        orchestrate(tmp_path, "runs", "show", "last", "--json", "--db", "state.db").stdout
    )
    assert data["sandbox"]["backend"] == "bubblewrap" and data["sandbox"]["mode"] == "auto"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "sandbox mode must be one of auto, on, off, got 'maybe'"),
        ("{network: yes please}", "sandbox network must be true or false"),
        ("{bwrap: /bin/x}", "unknown sandbox key bwrap (known: mode, network)"),
    ],
)
def test_a_bad_sandbox_key_is_a_load_error_naming_its_place(
    tmp_path: Path, value: str, message: str
) -> None:
    (tmp_path / "wf.yaml").write_text(
        f"version: 1\nname: bad\nsteps:\n  - id: a\n    run: echo hi\n    sandbox: {value}\n"
    )
    done = orchestrate(tmp_path, "validate", "wf.yaml")
    assert done.code == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert "wf.yaml:6:" in done.stdout and "step 'a': 'sandbox': " + message in done.stdout
