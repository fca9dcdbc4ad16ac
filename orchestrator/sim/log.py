"""The record of every request the simulator saw, shared with the tests that drive it.

The server appends from its own thread while a test reads from another, so every access takes the
lock. An entry is appended when the request arrives and completed (status, fault) when the
response starts, so a test that awaited its reply always sees the final status.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class LoggedRequest:
    ts: float  # time.time() at arrival
    method: str
    path: str
    body: dict[str, Any] | None  # the parsed JSON body, None when there was none or it was not JSON
    headers: dict[str, str]  # lowercase names
    status: int = 0  # 0 until the response starts
    fault: str | None = None  # "429", "529", "500", "disconnect", "rate_limit", "rule"
    step: str | None = None  # X-Orchestrate-Step
    task: str | None = None  # X-Orchestrate-Task
    agent: str | None = None  # X-Orchestrate-Agent
    request_id: str | None = None
    stream: bool = False
    latency_s: float = 0.0  # simulated delay applied before answering
    usage: dict[str, Any] | None = None  # the usage the reply reported (None: no full reply)


@dataclass
class RequestLog:
    """Thread-safe list of `LoggedRequest`, plus in-flight counters for concurrency checks."""

    entries: list[LoggedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.entries.append(entry)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def find(
        self,
        *,
        path: str | None = "/v1/messages",
        task: str | None = None,
        step: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> list[LoggedRequest]:
        """Entries matching every given filter (`path=None` matches any path)."""
        with self._lock:
            entries = list(self.entries)
        return [
            e
            for e in entries
            if (path is None or e.path == path)
            and (task is None or e.task == task)
            and (step is None or e.step == step)
            and (status is None or e.status == status)
            and (fault is None or e.fault == fault)
        ]

    def count(
        self,
        *,
        path: str | None = "/v1/messages",
        task: str | None = None,
        step: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> int:
        return len(self.find(path=path, task=task, step=step, status=status, fault=fault))

    def bodies(self, *, path: str | None = "/v1/messages", step: str | None = None) -> list[Any]:
        """The parsed request bodies, in arrival order."""
        return [e.body for e in self.find(path=path, step=step)]

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.max_in_flight = self.in_flight
