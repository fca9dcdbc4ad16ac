"""Following a run log as another process appends to it."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.web.runlog import Delta, LiveText, LogTail, find_log


def _line(**fields: object) -> str:
    return json.dumps(fields) + "\n"


def test_a_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    tail = LogTail(path)
    assert tail.read() == []  # no file yet: nothing, not an error
    whole = _line(event="text_delta", task_id="t", text="héllo")
    path.write_bytes(whole.encode()[:10])
    assert tail.read() == []
    with path.open("ab") as file:
        file.write(whole.encode()[10:] + b"not json\n")
    assert tail.read() == [{"event": "text_delta", "task_id": "t", "text": "héllo"}]
    assert tail.read() == []


def test_live_text_labels_tasks_and_forgets_finished_calls() -> None:
    live = LiveText()
    assert live.apply({"event": "task_started", "task_id": "t", "step_id": "s", "index": 3}) is None
    change = live.apply({"event": "text_delta", "task_id": "t", "step_id": "s", "text": "ab"})
    assert change == Delta(task_id="t", step_id="s", label="s[3]", text="ab")
    live.apply({"event": "text_delta", "task_id": "t", "step_id": "s", "text": "c"})
    assert live.current == {"t": "abc"}
    assert live.apply({"event": "call_finished", "task_id": "t"}) == "t"
    assert live.current == {}


def test_the_log_is_found_beside_a_store_given_by_path(tmp_path: Path) -> None:
    logs = tmp_path / ".orchestrate" / "logs"
    logs.mkdir(parents=True)
    (logs / "r1.jsonl").write_text("")
    db = str(tmp_path / ".orchestrate" / "state.db")
    assert find_log("r1", "elsewhere/logs", db) == logs / "r1.jsonl"
    assert find_log("r2", "elsewhere/logs", db) == Path("elsewhere/logs/r2.jsonl")
