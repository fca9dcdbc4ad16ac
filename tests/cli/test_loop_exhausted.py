"""A loop that stops at `max_iterations` with `until` still false succeeded, and every surface a
user reads says "exhausted": the progress lines, `runs show`, `runs show --json`, the web view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from orchestrator.config import load_settings
from orchestrator.store import Store
from orchestrator.web import LOOPBACK_HOSTS, create_app
from tests._support.cli import invoke

LOOP = """version: 1
name: polish
steps:
  - id: polish
    loop:
      max_iterations: 2
      until: "{{ 'DONE' in steps.draft.output }}"
      steps:
        - id: draft
          prompt: "Improve the draft, round {{ loop.iteration }}"
  - id: after
    set: "{{ steps.polish.exhausted }}"
outputs:
  exhausted: "{{ steps.after.output }}"
"""


@pytest.fixture
def project(project: Path) -> Path:
    (project / "loop.yaml").write_text(LOOP)
    return project


def test_an_exhausted_loop_says_so_everywhere(project: Path) -> None:
    code, out, err = invoke("run", "loop.yaml", "--simulate")
    assert code == 0, err
    run_id = err.splitlines()[0].split()[1]
    assert "exhausted" in out  # the outputs
    # the progress lines: the loop's own line says why it ended
    finished = [line for line in err.splitlines() if "step polish succeeded" in line]
    assert finished and "exhausted" in finished[0], err

    code, shown, err = invoke("runs", "show", run_id)
    assert code == 0, err
    rows = {line.split()[0]: line for line in shown.splitlines() if line.strip()}
    assert "succeeded exhausted" in rows["polish"]
    assert "exhausted" not in rows["after"]

    code, data, _ = invoke("runs", "show", run_id, "--json")
    steps = {s["id"]: s for s in json.loads(data)["steps"]}
    assert steps["polish"]["status"] == "succeeded" and steps["polish"]["exhausted"] is True
    assert steps["after"]["exhausted"] is None

    store = Store.open(str(project / ".orchestrate" / "state.db"))
    try:
        web = create_app(store, load_settings(), allowed_hosts=LOOPBACK_HOSTS)
        with TestClient(web, base_url="http://127.0.0.1") as client:
            page = client.get(f"/runs/{run_id}")
            assert page.status_code == 200
            assert page.text.count('class="badge s-exhausted"') == 1
            step_page = client.get(f"/runs/{run_id}/steps/polish")
            assert 'class="badge s-exhausted"' in step_page.text
    finally:
        store.close()


def test_a_loop_that_meets_until_is_not_exhausted(project: Path) -> None:
    (project / "loop.yaml").write_text(LOOP.replace("'DONE' in", "'' in"))
    code, _, err = invoke("run", "loop.yaml", "--simulate", "--quiet")
    assert code == 0, err
    run_id = err.splitlines()[0].split()[1]
    _, data, _ = invoke("runs", "show", run_id, "--json")
    steps = {s["id"]: s for s in json.loads(data)["steps"]}
    assert steps["polish"]["exhausted"] is False
