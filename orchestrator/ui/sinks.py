"""Machine-readable sinks: `--json` event lines on a stream, and the per-run JSON-lines log.

Both write every event as one JSON object per line, with orjson (the standard library's `json`
for what it refuses): the run log once went through structlog, whose pipeline (context binding,
level filtering, processors) cost 50 us an event against 18 us written directly with `json`, and
the log is one line per event, nothing a logging library adds to.

Events never carry an API key (the llm boundary strips them); `_scrub_request` still drops any
header-like key that could hold one, so a mistake upstream cannot leak a secret into a log a
person shares.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from orchestrator import events as ev

_SECRET_KEYS = frozenset({"api_key", "x-api-key", "authorization", "anthropic-api-key"})
_FLUSH_EVERY_S = 0.2
# Event types that are worth a flush of their own: a script tailing `--json` sees them at once.
_FLUSH_NOW = frozenset(
    {
        ev.RunStarted.type,
        ev.RunFinished.type,
        ev.StepStarted.type,
        ev.StepFinished.type,
        ev.CancelRequested.type,
        ev.Warning.type,
    }
)


def _scrub_request(request: dict[str, Any]) -> dict[str, Any]:
    if not any(_is_secret_holder(k) for k in request):
        return request
    clean = {k: v for k, v in request.items() if k.lower() not in _SECRET_KEYS}
    for key in ("headers", "extra_headers"):
        headers = clean.get(key)
        if isinstance(headers, dict):
            clean[key] = {k: v for k, v in headers.items() if str(k).lower() not in _SECRET_KEYS}
    return clean


def _is_secret_holder(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered in ("headers", "extra_headers")


def event_dict(event: ev.Event, *, bodies: bool = True) -> dict[str, Any]:
    """`event.to_dict()`, scrubbed; without request/response bodies when `bodies` is False.

    (The workflow snapshot of `run_started` counts as a body: it is the whole YAML file; so do a
    task's system prompt and all but the start of its prompt, and the outputs of tasks, steps
    and the run, which the store holds in full: a fan-out's output can be megabytes.)"""
    data = event.to_dict()
    if isinstance(event, ev.CallFinished):
        if bodies:
            data["request"] = _scrub_request(event.request)
        else:
            del data["request"]
            del data["response"]
    elif bodies:
        return data
    elif isinstance(event, ev.RunStarted):
        del data["workflow_snapshot"]
    elif isinstance(event, ev.TaskStarted):
        del data["system"]  # the same agent prompt for every item; the store keeps it
        data["prompt"] = _clip(event.prompt)
    elif isinstance(event, (ev.TaskFinished, ev.StepFinished)):
        del data["output"]
    elif isinstance(event, ev.RunFinished):
        del data["outputs"]
    return data


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class JsonEventsSink:
    """`orchestrate run --json`: every event as one JSON line (`event.to_dict()`), bodies included.

    Flushed at run/step boundaries and at least every 0.2 s, not after every call event."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last_flush = time.monotonic()

    def __call__(self, event: ev.Event) -> None:
        self._stream.write(_line(event_dict(event)))
        now = time.monotonic()
        if event.type in _FLUSH_NOW or now - self._last_flush >= _FLUSH_EVERY_S:
            self._stream.flush()
            self._last_flush = now

    def close(self) -> None:
        self._stream.flush()


_ERROR_STATUSES = frozenset({"failed", "budget_exceeded", "fatal_error"})
_WARNING_TYPES = frozenset(
    {ev.Warning.type, ev.CallRetried.type, ev.TaskRetried.type, ev.RateLimited.type}
)


def _level(event: ev.Event) -> int:
    if event.type in _WARNING_TYPES:
        return logging.WARNING
    if event.type == ev.Heartbeat.type:
        return logging.DEBUG
    status = getattr(event, "status", None)
    if status in _ERROR_STATUSES:
        return logging.ERROR
    if status in ("retryable_error", "cancelled"):
        return logging.WARNING
    return logging.INFO


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


class RunLog:
    """A JSON-lines file for one run: `.orchestrate/logs/<run>.jsonl`.

    Each event is one line, `{"run_id", <the event's fields>, "event", "level", "timestamp"}`,
    at its level (warnings and retries at warning, failures at error, heartbeats at debug and
    so dropped), without request/response bodies; those are in the store. Routine lines are
    flushed at most every 0.2 s, warnings, errors and run and step boundaries at once (someone
    tailing the log during a 529 storm sees them).
    """

    def __init__(self, path: Path, *, level: int = logging.INFO) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._level = level
        # private: the log holds rendered prompts
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._flushed = time.monotonic()

    def __call__(self, event: ev.Event) -> None:
        if self._file.closed:
            return
        level = _level(event)
        if level < self._level:
            return
        data = event_dict(event, bodies=False)
        del data["type"], data["run_id"]
        line = {
            "run_id": event.run_id,
            **data,
            "event": event.type,
            "level": _LEVEL_NAMES.get(level, "info"),
            "timestamp": _utc_iso(),
        }
        self._file.write(_line(line))
        now = time.monotonic()
        if (
            level >= logging.WARNING
            or event.type in _FLUSH_NOW
            or now - self._flushed >= _FLUSH_EVERY_S
        ):
            self._file.flush()
            self._flushed = now

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()


def _line(data: dict[str, Any]) -> str:
    """One JSON line: orjson (the run log writes one per event), `json` for what it refuses."""
    try:
        return orjson.dumps(data, default=str, option=_ORJSON).decode()
    except TypeError:
        return json.dumps(data, default=str, ensure_ascii=False) + "\n"


_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _utc_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def make_run_log(path: Path, *, level: int = logging.INFO) -> RunLog:
    """The per-run log sink; call `close()` when the run ends."""
    return RunLog(path, level=level)
