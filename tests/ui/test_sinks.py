"""`--json` event lines and the per-run JSON-lines log."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from orchestrator import events as ev
from orchestrator.ui import JsonEventsSink, make_run_log

RUN = "01run"


def _call(**extra: object) -> ev.CallFinished:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    return ev.CallFinished(
        run_id=RUN,
        call_id="c1",
        task_id="t1",
        step_id="plan",
        model="m",
        attempt=1,
        request=request,
        response={"content": [{"type": "text", "text": "hello"}]},
        usage={"input_tokens": 3, "output_tokens": 1},
    )


def test_json_sink_writes_every_event_with_bodies() -> None:
    stream = io.StringIO()
    sink = JsonEventsSink(stream)
    sink(ev.StepStarted(run_id=RUN, step_id="plan", kind="agent"))
    sink(_call())
    sink(ev.Heartbeat(run_id=RUN))
    sink.close()
    rows = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["type"] for r in rows] == ["step_started", "call_finished", "heartbeat"]
    assert rows[1]["request"]["messages"][0]["content"] == "hi"
    assert rows[1]["response"]["content"][0]["text"] == "hello"
    assert rows[1]["usage"] == {"input_tokens": 3, "output_tokens": 1}


def test_json_sink_never_writes_a_key_even_if_one_slips_in() -> None:
    stream = io.StringIO()
    sink = JsonEventsSink(stream)
    sink(_call(api_key="sk-ant-secret", extra_headers={"X-Api-Key": "sk-ant-2", "x-trace": "1"}))
    text = stream.getvalue()
    assert "sk-ant" not in text
    assert json.loads(text)["request"]["extra_headers"] == {"x-trace": "1"}


def test_run_log_writes_json_lines_with_levels_and_no_bodies(tmp_path: Path) -> None:
    path = tmp_path / "logs" / f"{RUN}.jsonl"
    log = make_run_log(path)
    log(
        ev.RunStarted(
            run_id=RUN,
            workflow_name="w",
            workflow_path="w.yaml",
            workflow_snapshot="version: 1\nsteps: []",
            workflow_hash="h",
            inputs={"q": "x"},
            workspace=".",
        )
    )
    log(_call())
    log(ev.Heartbeat(run_id=RUN))
    log(
        ev.CallRetried(
            run_id=RUN,
            task_id="t1",
            step_id="plan",
            attempt=1,
            kind="overloaded",
            error="529",
            wait_s=1.0,
        )
    )
    log(ev.TaskFinished(run_id=RUN, task_id="t1", step_id="plan", status="failed", error="boom"))
    log(ev.StepFinished(run_id=RUN, step_id="plan", status="succeeded", output=["x"] * 1000))
    log(ev.RunFinished(run_id=RUN, status="failed", outputs={"a": "x" * 1000}, error="boom"))
    log.close()
    log(ev.Heartbeat(run_id=RUN))  # after close: ignored, no crash
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["event"] for r in rows] == [
        "run_started",
        "call_finished",
        "call_retried",
        "task_finished",
        "step_finished",
        "run_finished",
    ]
    assert all(r["run_id"] == RUN and "timestamp" in r for r in rows)
    assert [r["level"] for r in rows] == ["info", "info", "warning", "error", "info", "error"]
    assert "output" not in rows[4] and "outputs" not in rows[5]  # in the store, not the log
    assert "request" not in rows[1] and "response" not in rows[1]
    assert rows[1]["usage"] == {"input_tokens": 3, "output_tokens": 1}
    assert "workflow_snapshot" not in rows[0] and rows[0]["inputs"] == {"q": "x"}


def test_the_run_log_leaves_rich_unloaded(tmp_path: Path) -> None:
    """A run that is not on a terminal never needs rich (about 5 MB of a run's memory with
    pygments) nor a logging library for its log. rich is still importable afterwards, for the
    live display."""
    code = (
        "import json, sys, pathlib\n"
        "from orchestrator import events as ev\n"
        "from orchestrator.ui import make_run_log\n"
        f"path = pathlib.Path({str(tmp_path / 'r.jsonl')!r})\n"
        "log = make_run_log(path)\n"
        "log(ev.RunFinished(run_id='r', status='succeeded'))\n"
        "log.close()\n"
        "assert json.loads(path.read_text())['event'] == 'run_finished'\n"
        "assert 'rich' not in sys.modules, 'rich loaded'\n"
        "assert 'structlog' not in sys.modules, 'structlog loaded'\n"
        "import rich.console\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_log_shows_warnings_and_step_ends_at_once(tmp_path: Path) -> None:
    """Routine lines are flushed in batches, but someone tailing the log sees a retry or a
    finished step as soon as it happens, not at the next routine line."""
    path = tmp_path / "logs" / f"{RUN}.jsonl"
    log = make_run_log(path)

    def lines() -> list[str]:
        return [json.loads(line)["event"] for line in path.read_text().splitlines()]

    log(ev.StepStarted(run_id=RUN, step_id="plan", kind="agent"))
    assert lines() == ["step_started"]
    retried = ev.CallRetried(
        run_id=RUN,
        task_id="t1",
        step_id="plan",
        attempt=1,
        kind="overloaded",
        error="529",
        wait_s=1.0,
    )
    log(retried)
    assert lines()[-1] == "call_retried"
    log(ev.StepFinished(run_id=RUN, step_id="plan", status="succeeded"))
    assert lines()[-1] == "step_finished"
    log.close()
