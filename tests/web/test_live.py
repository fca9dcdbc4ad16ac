"""A run followed from other processes while it goes: the web page changes without a reload,
streamed text included, and `orchestrate runs logs --follow --text` prints the text as it
arrives. The gate workflow waits at a `run:` step until the test lets it go on, so what is
seen "during" the run is decided by the test, not by the host's speed."""

from __future__ import annotations

import codecs
import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

from orchestrator.store import Store
from tests._support.wait import wait_for

from .runs import child_env, gate_workflow, orchestrate, start_workflow, stop


def _running_run(folder: Path, step: str) -> tuple[str, str] | None:
    """(run id, task id of `step`) once the run's step `step` is running."""
    db = folder / "state.db"
    if not db.exists():
        return None
    with Store.open(str(db), readonly=True) as store:
        runs = store.list_runs()
        if not runs:
            return None
        run_id = runs[0].id
        for record in store.step_records(run_id):
            if record.step_id == step and record.status == "running":
                tasks = store.list_tasks(run_id)
                return run_id, tasks[0].id if tasks else ""
    return None


def _outputs(folder: Path, run_id: str) -> dict[str, Any]:
    with Store.open(str(folder / "state.db"), readonly=True) as store:
        return {t.step_id: t for t in store.list_tasks(run_id)}


def test_live_run_page_changes_without_reload(
    tmp_path: Path, serve_ui: Any, page: Any, screenshots: Path
) -> None:
    workflow, go = gate_workflow(tmp_path)
    run = start_workflow(workflow, tmp_path)
    try:
        run_id, _ = wait_for(lambda: _running_run(tmp_path, "gate"), what="the gate step")
        base = serve_ui(tmp_path)
        page.goto(f"{base}/runs/{run_id}")
        page.evaluate("window.__sameDocument = true")
        assert page.locator('a.node.s-running[data-step="gate"]').count() == 1
        assert page.locator('a.node[data-step="last"]:not(.s-succeeded)').count() == 1
        page.wait_for_selector("#live-state:not([hidden])")  # the event stream is open
        page.screenshot(path=str(screenshots / "live-during.png"), full_page=True)

        go.touch()  # the run goes on: `last` streams its reply, the run ends
        assert run.wait(timeout=120) == 0, run.stderr.read() if run.stderr else ""
        page.wait_for_selector("body[data-ended='1']")
        page.wait_for_selector('a.node.s-succeeded[data-step="last"]')
        tasks = _outputs(tmp_path, run_id)
        streamed = page.locator(f'#stream section[data-task="{tasks["last"].id}"] pre')
        assert streamed.inner_text() == tasks["last"].output  # every delta, in order
        assert "succeeded" in page.inner_text(".tiles")
        assert page.evaluate("window.__sameDocument") is True  # changed without a reload
        page.screenshot(path=str(screenshots / "live-after.png"), full_page=True)
        assert page.errors == []
    finally:
        go.touch()
        stop(run)


def test_task_page_streams_only_its_task(tmp_path: Path, serve_ui: Any, page: Any) -> None:
    workflow, go = gate_workflow(tmp_path)
    run = start_workflow(workflow, tmp_path)
    try:
        run_id, _ = wait_for(lambda: _running_run(tmp_path, "gate"), what="the gate step")
        first = _outputs(tmp_path, run_id)["first"]
        base = serve_ui(tmp_path)
        page.goto(f"{base}/runs/{run_id}/tasks/{first.id}")
        page.wait_for_selector("#live-state:not([hidden])")
        go.touch()
        assert run.wait(timeout=120) == 0
        page.wait_for_selector("body[data-ended='1']")
        # `last` streamed while this page was open, but this page follows `first` only
        assert page.locator("#stream section.live-task").count() == 0
        assert first.output in page.inner_text(".transcript")
    finally:
        go.touch()
        stop(run)


def _reader(process: subprocess.Popen[bytes], chunks: queue.Queue[str]) -> None:
    """Whatever the child has flushed, as it comes (a streamed reply has no newline yet)."""
    assert process.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")()
    while data := os.read(process.stdout.fileno(), 4096):
        chunks.put(decoder.decode(data))


def test_runs_logs_follow_text_prints_deltas_as_they_arrive(tmp_path: Path) -> None:
    workflow, go = gate_workflow(tmp_path)
    run = start_workflow(workflow, tmp_path)
    logs = None
    try:
        run_id, _ = wait_for(lambda: _running_run(tmp_path, "gate"), what="the gate step")
        first = _outputs(tmp_path, run_id)["first"]
        logs = subprocess.Popen(
            orchestrate("runs", "logs", run_id, "--follow", "--text", "--db", "state.db"),
            cwd=tmp_path,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_reader, args=(logs, lines), daemon=True)
        reader.start()
        seen: list[str] = []

        def printed(needle: str) -> bool:
            while not lines.empty():
                seen.append(lines.get())
            return needle in "".join(seen)

        # while the run waits at the gate, the first task's text is already out
        wait_for(lambda: printed(first.output.splitlines()[-1]), what="the first reply")
        text = "".join(seen)
        assert text.startswith(f"── first {first.id} ──\n")
        assert first.output in text
        assert logs.poll() is None  # still following: the run is not over

        go.touch()
        assert run.wait(timeout=120) == 0
        assert logs.wait(timeout=60) == 0
        reader.join(timeout=30)  # everything the child printed, up to its end
        printed("")
        text = "".join(seen)
        last = _outputs(tmp_path, run_id)["last"]
        assert f"── last {last.id} ──\n{last.output}" in text
    finally:
        go.touch()
        stop(run)
        if logs is not None:
            stop(logs)

    with Store.open(str(tmp_path / "state.db"), readonly=True) as store:
        assert store.events(run_id, type="text_delta") == []  # the store keeps no deltas
        assert store.events(run_id, type="call_finished")
    log = (tmp_path / ".orchestrate" / "logs" / f"{run_id}.jsonl").read_text("utf-8")
    events = [json.loads(line)["event"] for line in log.splitlines()]
    assert events.count("text_delta") >= 2
