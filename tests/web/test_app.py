"""The application in process: headers that keep injected markup inert, loopback Host names
only, pages that name what is missing, and every page of a run that went wrong rendering what
went wrong (templates fail on a missing attribute instead of showing a blank)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from orchestrator.config import load_settings
from orchestrator.store import Store
from orchestrator.web import LOOPBACK_HOSTS, create_app

from .runs import child_env, orchestrate


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store.open(str(tmp_path / "state.db"))
    app = create_app(store, load_settings(), allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    store.close()


def test_pages_forbid_inline_script(client: TestClient) -> None:
    response = client.get("/runs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "0 runs in this store" in response.text


def test_a_foreign_host_name_is_refused(client: TestClient) -> None:
    assert client.get("/runs", headers={"host": "attacker.example"}).status_code == 400


def test_missing_things_are_named(client: TestClient) -> None:
    response = client.get("/runs/nosuchrun")
    assert response.status_code == 404 and "no run &#39;nosuchrun&#39;" in response.text
    assert client.get("/runs/nosuchrun/stream").status_code == 404


ROUGH = """version: 1
name: rough
description: A call rate limited once, a reply cut at max_tokens, a reply never valid.
defaults: {model: haiku, max_tokens: 300, retries: 1}
steps:
  - id: flaky
    prompt: "Say hello."
  - id: cut
    prompt: "Write a long essay."
  - id: broken
    needs: [flaky, cut]
    prompt: "Give a verdict."
    output:
      type: object
      required: [verdict]
      properties: {verdict: {enum: [pass, fail]}}
"""
RULES = """rules:
  - {step: flaky, times: 1, error: {status: 429, type: rate_limit_error, message: slow down}}
  - {step: cut, stop_reason: max_tokens}
  - {step: broken, json: {verdict: maybe}}
"""


def _section(html: str, start: str) -> str:
    """From `start` to the end of the element's table or list (enough to scope an assertion)."""
    at = html.index(start)
    end = re.search(r"</table>|</ul>", html[at:])
    assert end, start
    return html[at : at + end.end()]


def test_every_page_of_a_run_that_went_wrong_shows_what_went_wrong(tmp_path: Path) -> None:
    (tmp_path / "rough.yaml").write_text(ROUGH, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    done = subprocess.run(
        orchestrate(
            "run", "rough.yaml", "--simulate", "--sim-script", "rules.yaml", "--db", "state.db"
        ),
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # the run failed, as scripted
    store = Store.open(str(tmp_path / "state.db"), readonly=True)
    app = create_app(store, load_settings(), allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        (run,) = store.list_runs()
        tasks = {t.step_id: t for t in store.list_tasks(run.id)}
        pages: dict[str, str] = {}
        urls = ["/runs", f"/runs/{run.id}"]
        urls += [f"/runs/{run.id}/steps/{s.step_id}" for s in store.step_records(run.id)]
        urls += [f"/runs/{run.id}/tasks/{t.id}" for t in tasks.values()]
        for url in urls:
            for fragment in ("", "?fragment=live") if url != "/runs" else ("",):
                response = client.get(url + fragment)
                assert response.status_code == 200, (url + fragment, response.text[-2000:])
                pages[url + fragment] = response.text
    store.close()
    assert run.status == "failed" and run.usage.total_tokens > 0

    row = _section(pages["/runs"], f'<tr data-run="{run.id}">')
    assert f"<td>{run.usage.total_tokens:,}</td>" in row  # the run's tokens, not a blank

    errors = _section(pages[f"/runs/{run.id}"], '<table class="errors">')
    assert "<td>429</td>" in errors and "slow down" in errors
    # One attempt budget (issue 14 item 5): the repair used `retries: 1`, no task retry follows.
    assert "is not one of" in errors and "(after 1 repair attempt)" in errors
    assert "<td>run</td>" in errors
    warnings = _section(pages[f"/runs/{run.id}"], '<ul class="warnings">')
    assert "reply cut off at max_tokens=300" in warnings

    flaky = _section(pages[f"/runs/{run.id}/tasks/{tasks['flaky'].id}"], '<table class="retries">')
    assert "<td>call</td>" in flaky and "<td>rate_limit 429</td>" in flaky
    broken = pages[f"/runs/{run.id}/tasks/{tasks['broken'].id}"]
    assert "is not one of" in broken and '<table class="retries">' not in broken
    cut = pages[f"/runs/{run.id}/tasks/{tasks['cut'].id}"]
    assert '<p class="warning-box">reply cut off at max_tokens=300' in cut
