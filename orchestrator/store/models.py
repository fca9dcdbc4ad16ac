"""The tables of the store, as SQLModel classes: the schema as it is after every migration.

These classes describe the current schema and give the writer and the queries their Core `Table`
objects (`RUNS`, `STEPS`...). They are never instantiated: writes are Core executemany/upserts
and reads return frozen records (`records.py`), so no caller ever holds a session.

Conventions, chosen for fast batch writes and portability to PostgreSQL:
- timestamps are floats (seconds since the epoch), like `Event.ts`;
- JSON values are serialized by the store itself into TEXT columns (`_json.py`);
- `steps.iteration` is 0 outside a loop body, so the (run_id, step_id, iteration) key has no NULL
  and upserts on it work on every backend; records turn 0 back into None.

The schema that migration 1 creates is frozen separately in `migrations.py`; a test checks that
the migrated database matches these classes, so a change here needs a new migration there.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, Table, Text
from sqlmodel import Field, SQLModel


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_workflow_started", "workflow_name", "started_at"),  # migration 2
    )

    id: str = Field(primary_key=True)
    workflow_name: str = Field(default="")
    workflow_path: str = Field(default="")
    workflow_snapshot: str = Field(default="", sa_type=Text)
    workflow_hash: str = Field(default="")
    inputs: str | None = Field(default=None, sa_type=Text)
    workspace: str = Field(default="")
    status: str = Field(default="running")
    error: str | None = Field(default=None, sa_type=Text)
    outputs: str | None = Field(default=None, sa_type=Text)
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    pid: int | None = None
    cancel_requested: bool = Field(default=False)
    limits: str | None = Field(default=None, sa_type=Text)
    tasks_total: int = Field(default=0)
    tasks_done: int = Field(default=0)
    tasks_failed: int = Field(default=0)
    input_tokens: int = Field(default=0)
    output_tokens: int = Field(default=0)
    cache_creation_tokens: int = Field(default=0)
    cache_read_tokens: int = Field(default=0)
    cost_usd: float = Field(default=0.0)
    cost_unknown: bool = Field(default=False)
    calls: int = Field(default=0)
    retries: int = Field(default=0)


class StepRow(SQLModel, table=True):
    __tablename__ = "steps"

    run_id: str = Field(primary_key=True)
    step_id: str = Field(primary_key=True)
    iteration: int = Field(default=0, primary_key=True)
    kind: str = Field(default="")
    status: str = Field(default="pending")
    output: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    exit_code: int | None = None
    iterations: int | None = None
    total_tasks: int | None = None
    started_at: float | None = None
    finished_at: float | None = None


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_run_key", "run_id", "key"),
        Index("ix_tasks_run_step", "run_id", "step_id"),
    )

    id: str = Field(primary_key=True)
    run_id: str = Field(default="")
    step_id: str = Field(default="")
    key: str = Field(default="")
    index: int | None = None
    iteration: int | None = None
    agent: str | None = None
    model: str | None = None
    system: str | None = Field(default=None, sa_type=Text)
    prompt: str = Field(default="", sa_type=Text)
    status: str = Field(default="pending")
    output: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = Field(default=1)
    turns: int = Field(default=0)
    input_tokens: int = Field(default=0)
    output_tokens: int = Field(default=0)
    cache_creation_tokens: int = Field(default=0)
    cache_read_tokens: int = Field(default=0)
    cost_usd: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


class CallRow(SQLModel, table=True):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_task", "task_id"),
        Index("ix_calls_run_step", "run_id", "step_id"),  # migration 2
    )

    id: str = Field(primary_key=True)
    run_id: str = Field(default="")
    task_id: str = Field(default="")
    step_id: str = Field(default="")
    model: str = Field(default="")
    attempt: int = Field(default=1)
    request: str | None = Field(default=None, sa_type=Text)
    response: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default="succeeded")
    error: str | None = Field(default=None, sa_type=Text)
    http_status: int | None = None
    request_id: str | None = None
    latency_s: float = Field(default=0.0)
    input_tokens: int = Field(default=0)
    output_tokens: int = Field(default=0)
    cache_creation_tokens: int = Field(default=0)
    cache_read_tokens: int = Field(default=0)
    cache_creation_5m_tokens: int = Field(default=0)
    cache_creation_1h_tokens: int = Field(default=0)
    cost_usd: float | None = None
    batch: bool = Field(default=False)
    ts: float = Field(default=0.0)


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_run_seq", "run_id", "seq"),
        {"sqlite_autoincrement": True},
    )

    # sqlite_autoincrement: a seq is never reused after a delete, so `logs --follow` never misses
    seq: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=BigInteger().with_variant(Integer(), "sqlite"),
        sa_column_kwargs={"autoincrement": True},
    )
    run_id: str = Field(default="")
    ts: float = Field(default=0.0)
    type: str = Field(default="")
    payload: str | None = Field(default=None, sa_type=Text)


class StateRow(SQLModel, table=True):
    __tablename__ = "state"

    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str | None = Field(default=None, sa_type=Text)
    updated_at: float = Field(default=0.0)


_TABLES = SQLModel.metadata.tables
RUNS: Table = _TABLES["runs"]
STEPS: Table = _TABLES["steps"]
TASKS: Table = _TABLES["tasks"]
CALLS: Table = _TABLES["calls"]
EVENTS: Table = _TABLES["events"]
STATE: Table = _TABLES["state"]

RUN_TABLES: tuple[Table, ...] = (RUNS, STEPS, TASKS, CALLS, EVENTS, STATE)
"""Every table that holds rows of a run (keyed by `run_id`, or `id` for runs)."""
