"""Reading a run's JSON log (`.orchestrate/logs/<run>.jsonl`) as it grows: the stream of text
deltas that the store does not keep.

Streaming calls emit one `text_delta` event per SSE text delta; the run log writes each as a line
(the store skips them: a long reply is thousands of deltas, and the call's response holds the
text once it is complete). Both `orchestrate runs logs --text` and the web view follow the file
with `LogTail`, which keeps a partial last line until the writer completes it, and fold it with
`LiveText`: each task's label and the text of its call in flight.

Plain files and plain data: no store, no SDK, no event loop (callers run `read` off the loop).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DELTA = "text_delta"
_RESETS = frozenset({"call_finished", "task_finished"})


def find_log(run_id: str, logs_dir: str | Path, db: str | None = None) -> Path:
    """Where the run log of `run_id` is: under `logs_dir` (the `engine.logs_dir` setting,
    relative to the current directory), else beside a SQLite store given as a path, in its
    `logs/` folder (`--db /x/.orchestrate/state.db` -> `/x/.orchestrate/logs`). The first
    candidate when neither exists yet (a run that has not written its first line)."""
    name = f"{run_id}.jsonl"
    candidates = [Path(logs_dir) / name]
    if db and "://" not in db and db != ":memory:":
        candidates.append(Path(db).expanduser().parent / "logs" / name)
    elif db and db.startswith("sqlite:///"):
        candidates.append(Path(db[len("sqlite:///") :].split("?", 1)[0]).parent / "logs" / name)
    for path in candidates:
        if path.exists():
            return path
    return candidates[0]


class LogTail:
    """Follows one JSON-lines file from its start. `read()` returns the complete lines written
    since the last call, decoded; a line that is not a JSON object is skipped."""

    def __init__(self, path: Path, *, max_read: int = 4 * 1024 * 1024) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._max_read = max_read

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size < self._offset:  # replaced or truncated: start again
                    self._offset, self._partial = 0, b""
                file.seek(self._offset)
                chunk = file.read(self._max_read)
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" after a complete last line
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out


def task_label(line: dict[str, Any]) -> str:
    """`step`, `step[3]` for a fan-out item, `step#2` in loop iteration 2."""
    label = str(line.get("step_id") or "?")
    if line.get("index") is not None:
        label += f"[{line['index']}]"
    if line.get("iteration") is not None:
        label += f"#{line['iteration']}"
    return label


@dataclass(frozen=True, slots=True)
class Delta:
    task_id: str
    step_id: str
    label: str
    text: str


class LiveText:
    """The fold of a run log: each task's label, and the text its call in flight has streamed so
    far (cleared when the call or the task finishes: the store then holds the reply)."""

    def __init__(self, *, keep_chars: int = 20_000) -> None:
        self.labels: dict[str, str] = {}
        self.current: dict[str, str] = {}
        self._keep = keep_chars

    def apply(self, line: dict[str, Any]) -> Delta | str | None:
        """A `Delta` for a text line, the task id for a finished call or task, else None."""
        kind = line.get("event")
        task_id = line.get("task_id")
        if not isinstance(task_id, str):
            return None
        if kind == DELTA:
            text = str(line.get("text") or "")
            step_id = str(line.get("step_id") or "")
            label = self.labels.get(task_id) or step_id
            so_far = self.current.get(task_id, "") + text
            self.current[task_id] = so_far[-self._keep :]
            return Delta(task_id=task_id, step_id=step_id, label=label, text=text)
        if kind == "task_started":
            self.labels[task_id] = task_label(line)
        elif kind in _RESETS:
            self.current.pop(task_id, None)
            return task_id
        return None
