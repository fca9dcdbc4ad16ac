"""What the read side returns: frozen dataclasses, never ORM objects, so no caller holds a session.

JSON columns come back decoded; `steps.iteration` 0 comes back as None (see `models.py`).
`to_dict()` gives the JSON-ready form the CLI prints with `--json`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping

from orchestrator.contracts import JSON, Usage

_dumps = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False).encode


def dump_json(value: Any) -> str | None:
    """JSON into a TEXT column; None stays SQL NULL. Unknown types degrade to their str()."""
    if value is None:
        return None
    return _dumps(value)


def load_json(text: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text)


class _Record:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RunRecord(_Record):
    id: str
    workflow_name: str
    workflow_path: str
    workflow_snapshot: str
    workflow_hash: str
    inputs: dict[str, JSON]
    workspace: str
    status: str  # as stored; `Store.list_runs` reports a stale "running" as "interrupted"
    error: str | None
    outputs: dict[str, JSON] | None
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    pid: int | None
    cancel_requested: bool
    limits: dict[str, JSON]
    tasks_total: int
    tasks_done: int
    tasks_failed: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float  # the sum of known call costs
    cost_unknown: bool  # some call had no price, so cost_usd is a lower bound
    calls: int
    retries: int

    @classmethod
    def from_row(cls, row: RowMapping) -> RunRecord:
        return cls(
            id=row["id"],
            workflow_name=row["workflow_name"],
            workflow_path=row["workflow_path"],
            workflow_snapshot=row["workflow_snapshot"],
            workflow_hash=row["workflow_hash"],
            inputs=load_json(row["inputs"]) or {},
            workspace=row["workspace"],
            status=row["status"],
            error=row["error"],
            outputs=load_json(row["outputs"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            heartbeat_at=row["heartbeat_at"],
            pid=row["pid"],
            cancel_requested=bool(row["cancel_requested"]),
            limits=load_json(row["limits"]) or {},
            tasks_total=row["tasks_total"],
            tasks_done=row["tasks_done"],
            tasks_failed=row["tasks_failed"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_creation_tokens=row["cache_creation_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            cost_usd=row["cost_usd"],
            cost_unknown=bool(row["cost_unknown"]),
            calls=row["calls"],
            retries=row["retries"],
        )

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )


@dataclass(frozen=True, slots=True)
class StepRecord(_Record):
    run_id: str
    step_id: str
    iteration: int | None
    kind: str
    status: str
    output: JSON
    error: str | None
    exit_code: int | None
    iterations: int | None
    total_tasks: int | None
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: RowMapping) -> StepRecord:
        return cls(
            run_id=row["run_id"],
            step_id=row["step_id"],
            iteration=row["iteration"] or None,
            kind=row["kind"],
            status=row["status"],
            output=load_json(row["output"]),
            error=row["error"],
            exit_code=row["exit_code"],
            iterations=row["iterations"],
            total_tasks=row["total_tasks"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True, slots=True)
class TaskRecord(_Record):
    id: str
    run_id: str
    step_id: str
    key: str
    index: int | None
    iteration: int | None
    agent: str | None
    model: str | None
    system: str | None
    prompt: str
    status: str
    output: JSON
    error: str | None
    attempts: int
    turns: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float | None
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: RowMapping) -> TaskRecord:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            step_id=row["step_id"],
            key=row["key"],
            index=row["index"],
            iteration=row["iteration"],
            agent=row["agent"],
            model=row["model"],
            system=row["system"],
            prompt=row["prompt"],
            status=row["status"],
            output=load_json(row["output"]),
            error=row["error"],
            attempts=row["attempts"],
            turns=row["turns"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_creation_tokens=row["cache_creation_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            cost_usd=row["cost_usd"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    @property
    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_input_tokens=self.cache_creation_tokens,
            cache_read_input_tokens=self.cache_read_tokens,
        )

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class CallRecord(_Record):
    id: str
    run_id: str
    task_id: str
    step_id: str
    model: str
    attempt: int
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    status: str
    error: str | None
    http_status: int | None
    request_id: str | None
    latency_s: float
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    cost_usd: float | None
    batch: bool
    ts: float

    @classmethod
    def from_row(cls, row: RowMapping) -> CallRecord:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            task_id=row["task_id"],
            step_id=row["step_id"],
            model=row["model"],
            attempt=row["attempt"],
            request=load_json(row["request"]),
            response=load_json(row["response"]),
            status=row["status"],
            error=row["error"],
            http_status=row["http_status"],
            request_id=row["request_id"],
            latency_s=row["latency_s"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_creation_tokens=row["cache_creation_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            cache_creation_5m_tokens=row["cache_creation_5m_tokens"],
            cache_creation_1h_tokens=row["cache_creation_1h_tokens"],
            cost_usd=row["cost_usd"],
            batch=bool(row["batch"]),
            ts=row["ts"],
        )

    @property
    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_input_tokens=self.cache_creation_tokens,
            cache_read_input_tokens=self.cache_read_tokens,
            cache_creation_5m_input_tokens=self.cache_creation_5m_tokens,
            cache_creation_1h_input_tokens=self.cache_creation_1h_tokens,
        )


@dataclass(frozen=True, slots=True)
class EventRecord(_Record):
    """One stored event. `payload` is the event's fields minus type, run_id and ts, and minus
    the bodies stored in their own rows: a call's request/response (`calls`), a task's prompt,
    system prompt and output (`tasks`), a step's output (`steps`), a run's outputs (`runs`)."""

    seq: int
    run_id: str
    ts: float
    type: str
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: RowMapping) -> EventRecord:
        return cls(
            seq=row["seq"],
            run_id=row["run_id"],
            ts=row["ts"],
            type=row["type"],
            payload=load_json(row["payload"]) or {},
        )

    def as_event_dict(self) -> dict[str, Any]:
        """The flat form of `Event.to_dict()` (what `events.event_from_dict` accepts)."""
        return {"type": self.type, "run_id": self.run_id, "ts": self.ts, **self.payload}


@dataclass(frozen=True, slots=True)
class CostRow(_Record):
    """Spend of one model in one step, summed over its calls."""

    step_id: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int  # cache writes
    cache_read_tokens: int
    cost_usd: float | None  # None when some call had no price


@dataclass(frozen=True, slots=True)
class StepSummary(_Record):
    step_id: str
    iteration: int | None
    kind: str
    status: str
    tasks_total: int
    tasks_done: int
    tasks_failed: int
    tasks_skipped: int
    calls: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float | None  # None when some call had no price
    duration_s: float | None  # None while running
    cache_hit_ratio: float | None  # cache_read / (input + cache_read + cache_creation)
