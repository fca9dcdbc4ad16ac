"""The web view in a real browser over a store that holds real simulated runs: every page is
reachable by links from the runs page and renders its content on the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.store import Store

from .conftest import chromium_dump_dom
from .runs import WORKFLOWS, run_workflow


@pytest.fixture(scope="module")
def research_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("research")
    (folder / "README.md").write_text("Rate limits: a shared token bucket.\n", encoding="utf-8")
    # the simulator calls the tools a prompt names, as a model would: this one names Read
    question = "Read README.md: how do concurrent LLM workers stay within rate limits?"
    return folder, run_workflow(WORKFLOWS / "research.yaml", folder, "-i", f"question={question}")


def test_every_page_is_reached_by_links_from_the_runs_page(
    research_run: tuple[Path, str], serve_ui: Any, page: Any, screenshots: Path
) -> None:
    folder, run_id = research_run
    base = serve_ui(folder)
    with Store.open(str(folder / "state.db"), readonly=True) as store:
        steps = [s.step_id for s in store.step_records(run_id)]
        fanout = store.list_tasks(run_id, step="research")
        task = fanout[2]
        calls = store.task_calls(task.id)

    page.goto(f"{base}/runs")
    row = page.locator(f'tr[data-run="{run_id}"]')
    assert "research" in row.inner_text() and "succeeded" in row.inner_text()
    page.screenshot(path=str(screenshots / "runs.png"), full_page=True)

    row.get_by_role("link", name=run_id).click()
    page.wait_for_url(f"**/runs/{run_id}")
    for step_id in steps:  # in the graph and in the steps table
        assert page.locator(f'a.node[data-step="{step_id}"]').count() == 1
        assert page.locator(f'table.steps tr[data-step="{step_id}"]').count() == 1
    assert page.locator('a.node.s-succeeded[data-step="research"]').count() == 1
    assert "Spend over the run" in page.inner_text("main")
    costs = page.locator("table.costs").inner_text()
    assert "claude-" in costs and "research" in costs
    page.screenshot(path=str(screenshots / "run.png"), full_page=True)

    page.locator('a.node[data-step="research"]').click()
    page.wait_for_url(f"**/runs/{run_id}/steps/research")
    cells = page.locator(".grid a.cell")
    assert cells.count() == len(fanout)
    assert page.locator(".grid a.cell.s-succeeded").count() == len(fanout)
    page.screenshot(path=str(screenshots / "fanout.png"), full_page=True)

    page.locator(f'.grid a.cell[data-task="{task.id}"]').click()
    page.wait_for_url(f"**/runs/{run_id}/tasks/{task.id}")
    transcript = page.inner_text(".transcript")
    assert task.prompt.splitlines()[0] in transcript
    assert "tool call: Read" in transcript  # the researcher reads a file first
    assert str(task.output).splitlines()[0] in transcript
    assert page.locator("table.calls tbody tr").count() == len(calls)
    first = page.locator(f'table.calls tr[data-call="{calls[0].id}"]').inner_text()
    assert str(calls[0].output_tokens) in first and (calls[0].request_id or "") in first
    page.screenshot(path=str(screenshots / "task.png"), full_page=True)
    assert page.errors == []


def test_pages_render_on_the_server(research_run: tuple[Path, str], serve_ui: Any) -> None:
    """What a crawler or `chromium --dump-dom` sees holds the run, step and task ids."""
    folder, run_id = research_run
    base = serve_ui(folder)
    with Store.open(str(folder / "state.db"), readonly=True) as store:
        tasks = store.list_tasks(run_id, step="research")
    run_dom = chromium_dump_dom(f"{base}/runs/{run_id}")
    assert run_id in run_dom
    for step_id in ("plan", "research", "findings", "report"):
        assert f'data-step="{step_id}"' in run_dom
    step_dom = chromium_dump_dom(f"{base}/runs/{run_id}/steps/research")
    assert all(t.id in step_dom for t in tasks)
    task_dom = chromium_dump_dom(f"{base}/runs/{run_id}/tasks/{tasks[0].id}")
    assert tasks[0].id in task_dom and "Transcript" in task_dom


def test_runs_filter_and_search(tmp_path: Path, serve_ui: Any, page: Any) -> None:
    research = run_workflow(WORKFLOWS / "research.yaml", tmp_path)
    parallel = run_workflow(WORKFLOWS / "parallel.yaml", tmp_path)
    base = serve_ui(tmp_path)
    page.goto(f"{base}/runs")
    assert page.locator("table.runs tbody tr").count() == 2
    page.select_option("select[name=workflow]", "research")
    page.click("button[type=submit]")
    page.wait_for_url("**workflow=research**")
    assert page.locator(f'tr[data-run="{research}"]').count() == 1
    assert page.locator(f'tr[data-run="{parallel}"]').count() == 0
    page.goto(f"{base}/runs?q={parallel[-8:]}")
    assert page.locator("table.runs tbody tr").count() == 1
    page.goto(f"{base}/runs?status=failed")
    assert page.locator("table.runs tbody tr").count() == 0


HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def test_model_output_is_shown_as_text_never_run(tmp_path: Path, serve_ui: Any, page: Any) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(json.dumps({"rules": [{"text": f"Answer: {HOSTILE}"}]}), encoding="utf-8")
    workflow = tmp_path / "one.yaml"
    workflow.write_text(
        'version: 1\nname: one\nsteps:\n  - id: answer\n    prompt: "Say it: {{ inputs.x }}"\n'
        "inputs:\n  x: {type: string}\n",
        encoding="utf-8",
    )
    run_id = run_workflow(workflow, tmp_path, "--sim-script", str(rules), "--input", f"x={HOSTILE}")
    base = serve_ui(tmp_path)
    with Store.open(str(tmp_path / "state.db"), readonly=True) as store:
        (task,) = store.list_tasks(run_id)
    for url in (f"/runs?q={run_id}", f"/runs/{run_id}", f"/runs/{run_id}/tasks/{task.id}"):
        page.goto(base + url)
        assert page.title() != "pwned"
        assert page.locator("main img, main script").count() == 0
    assert HOSTILE in page.inner_text(".transcript")  # the reply and the prompt, as text
    assert page.errors == []
