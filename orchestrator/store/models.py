"""The tables of the store, as SQLAlchemy Core `Table`s: the schema as it is after every migration.

Writes are Core executemany/upserts and reads return frozen records (`records.py`), so no row is
ever an object and no caller holds a session: Core tables are all the store needs. (They were
SQLModel classes, never instantiated; importing SQLModel and SQLAlchemy's ORM cost every
`orchestrate run` 5.6 MB, half of its memory overhead over the bare SDK. See CHANGELOG.md.)

Conventions, chosen for fast batch writes and portability to PostgreSQL:
- timestamps are floats (seconds since the epoch), like `Event.ts`;
- JSON values are serialized by the store itself into TEXT columns (`records.py`);
- `steps.iteration` is 0 outside a loop body, so the (run_id, step_id, iteration) key has no NULL
  and upserts on it work on every backend; records turn 0 back into None;
- a column without `nullable=True` is NOT NULL, and the writer relies on the Python-side
  `default` of every NOT NULL column it may leave out of an insert.

The schema that migration 1 creates is frozen separately in `migrations.py`; a test checks that
the migrated database matches these tables, so a change here needs a new migration there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _col(name: str, type_: Any, default: Any = None, **kw: Any) -> Column[Any]:
    """NOT NULL unless `nullable=True`; `default` fills the column when an insert leaves it out."""
    kw.setdefault("nullable", False)
    return Column(name, type_, default=default, **kw)


def _key(name: str, type_: Any = String, **kw: Any) -> Column[Any]:
    return Column(name, type_, primary_key=True, nullable=False, **kw)


def _opt(name: str, type_: Any) -> Column[Any]:
    return Column(name, type_, nullable=True)


def _counters(*names: str) -> list[Column[Any]]:
    return [_col(name, Integer, 0) for name in names]


_TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")

RUNS = Table(
    "runs",
    metadata,
    _key("id"),
    _col("workflow_name", String, ""),
    _col("workflow_path", String, ""),
    _col("workflow_snapshot", Text, ""),
    _col("workflow_hash", String, ""),
    _opt("inputs", Text),
    _col("workspace", String, ""),
    _col("status", String, "running"),
    _opt("error", Text),
    _opt("outputs", Text),
    _opt("started_at", Float),
    _opt("finished_at", Float),
    _opt("heartbeat_at", Float),
    _opt("pid", Integer),
    _col("cancel_requested", Boolean, False),
    _opt("limits", Text),
    *_counters("tasks_total", "tasks_done", "tasks_failed", *_TOKENS),
    _col("cost_usd", Float, 0.0),
    _col("cost_unknown", Boolean, False),
    *_counters("calls", "retries"),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_workflow_started", "workflow_name", "started_at"),  # migration 2
)

STEPS = Table(
    "steps",
    metadata,
    _key("run_id"),
    _key("step_id"),
    _key("iteration", Integer, default=0),
    _col("kind", String, ""),
    _col("status", String, "pending"),
    _opt("output", Text),
    _opt("error", Text),
    _opt("exit_code", Integer),
    _opt("iterations", Integer),
    _opt("total_tasks", Integer),
    _opt("started_at", Float),
    _opt("finished_at", Float),
)

TASKS = Table(
    "tasks",
    metadata,
    _key("id"),
    _col("run_id", String, ""),
    _col("step_id", String, ""),
    _col("key", String, ""),
    _opt("index", Integer),
    _opt("iteration", Integer),
    _opt("agent", String),
    _opt("model", String),
    _opt("system", Text),
    _col("prompt", Text, ""),
    _col("status", String, "pending"),
    _opt("output", Text),
    _opt("error", Text),
    _col("attempts", Integer, 1),
    *_counters("turns", *_TOKENS),
    _opt("cost_usd", Float),
    _opt("started_at", Float),
    _opt("finished_at", Float),
    Index("ix_tasks_run_key", "run_id", "key"),
    Index("ix_tasks_run_step", "run_id", "step_id"),
)

CALLS = Table(
    "calls",
    metadata,
    _key("id"),
    _col("run_id", String, ""),
    _col("task_id", String, ""),
    _col("step_id", String, ""),
    _col("model", String, ""),
    _col("attempt", Integer, 1),
    _opt("request", Text),
    _opt("response", Text),
    _col("status", String, "succeeded"),
    _opt("error", Text),
    _opt("http_status", Integer),
    _opt("request_id", String),
    _col("latency_s", Float, 0.0),
    *_counters(*_TOKENS, "cache_creation_5m_tokens", "cache_creation_1h_tokens"),
    _opt("cost_usd", Float),
    _col("batch", Boolean, False),
    _col("ts", Float, 0.0),
    Index("ix_calls_task", "task_id"),
    Index("ix_calls_run_step", "run_id", "step_id"),  # migration 2
)

EVENTS = Table(
    "events",
    metadata,
    # sqlite_autoincrement: a seq is never reused after a delete, so `logs --follow` never misses
    _key("seq", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True),
    _col("run_id", String, ""),
    _col("ts", Float, 0.0),
    _col("type", String, ""),
    _opt("payload", Text),
    Index("ix_events_run_seq", "run_id", "seq"),
    sqlite_autoincrement=True,
)

STATE = Table(
    "state",
    metadata,
    _key("run_id"),
    _key("key"),
    _opt("value", Text),
    _col("updated_at", Float, 0.0),
)

RUN_TABLES: tuple[Table, ...] = (RUNS, STEPS, TASKS, CALLS, EVENTS, STATE)
"""Every table that holds rows of a run (keyed by `run_id`, or `id` for runs)."""
