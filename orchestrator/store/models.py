"""The store's tables, as SQLModel classes: the schema as it is after every migration, and the
typed rows the history API returns (`Store.list_tasks` gives `Task`s).

So a notebook reads the history with nothing but SQLModel:

    from sqlmodel import Session, create_engine, select
    from orchestrator.store import Task
    with Session(create_engine("sqlite:///.orchestrate/state.db")) as s:
        failed = s.exec(select(Task).where(Task.status == "failed")).all()

Rows are written by the store's single writer only, through Core `executemany` on
`Model.__table__` (`_plan.py`), never through a session: the ORM is the read side.

Conventions, chosen for fast batch writes and portability to PostgreSQL:
- timestamps are floats (seconds since the epoch), like `Event.ts`;
- JSON values live in TEXT columns (`JSONText`): reads decode them, the writer encodes them;
- token counts carry the Messages API's names (`input_tokens`, `output_tokens`,
  `cache_creation_input_tokens` = its 5m + 1h parts, `cache_read_input_tokens`), on calls,
  tasks and runs alike, and `usage` gives them as one `contracts.Usage`;
- `steps.iteration` is 0 outside a loop body, so the (run_id, step_id, iteration) key has no NULL
  and upserts on it work on every backend (the JSON view shows it as null);
- a field without `| None` is NOT NULL, and the writer relies on the scalar default of every
  NOT NULL column it may leave out of an insert.

The schema that each migration creates is frozen separately in `migrations.py`; a test checks
that the migrated database matches these classes, so a change here needs a new migration there.
`to_dict()` on each class is its `--json` form in `orchestrate runs ...` (a stable contract:
keys are only ever added).
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, cast

from sqlalchemy import BigInteger, Column, Dialect, Index, Integer, Table, Text, TypeDecorator
from sqlmodel import Field, SQLModel

from orchestrator.contracts import Usage
from orchestrator.names import task_label
from orchestrator.store.records import dump_json, load_json


class JSONText(TypeDecorator[Any]):
    """A JSON value in a TEXT column (portable; `None` stays SQL NULL)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return dump_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return load_json(value)


def _json() -> Any:
    return Field(default=None, sa_type=JSONText, nullable=True)


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with a `Z` (`2025-01-31T14:05:09.123456Z`), the JSON form of a timestamp."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat().replace("+00:00", "Z")


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


class _Tokens(SQLModel):
    """The usage columns shared by runs, tasks and calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0  # 5m + 1h
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0

    @property
    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens,
            cache_creation_5m_input_tokens=self.cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens=self.cache_creation_1h_input_tokens,
        )

    def _usage_dict(self) -> dict[str, int]:
        usage = self.usage
        return {**usage.to_dict(), "tokens": usage.total_tokens}


class Run(_Tokens, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_workflow_started", "workflow_name", "started_at"),  # migration 2
    )

    id: str = Field(primary_key=True)
    workflow_name: str = ""
    workflow_path: str = ""
    workflow_snapshot: str = Field(default="", sa_type=Text)
    workflow_hash: str = ""
    inputs: dict[str, Any] | None = _json()
    workspace: str = ""
    # As stored; `Store.list_runs` and `get_run(stale_after_s=...)` report a "running" row whose
    # heartbeat went stale as "interrupted" (never stored).
    status: str = "running"
    error: str | None = Field(default=None, sa_type=Text)
    outputs: dict[str, Any] | None = _json()
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    pid: int | None = None
    owner: str | None = None  # the claim of the process running it (migration 3)
    cancel_requested: bool = False
    limits: dict[str, Any] | None = _json()
    tasks_total: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    cost_usd: float = 0.0  # the sum of known call costs
    cost_unknown: bool = False  # some call had no price, so cost_usd is a lower bound
    calls: int = 0
    retries: int = 0

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """`runs list --json`: the run with its status as shown (see `status`)."""
        end: float | None
        if self.finished_at is not None:
            end = self.finished_at
        elif self.status == "running":
            end = time.time() if now is None else now
        else:  # interrupted: the process died some time after its last heartbeat
            end = self.heartbeat_at or self.started_at
        return {
            "id": self.id,
            "workflow": self.workflow_name,
            "workflow_path": self.workflow_path,
            "status": self.status,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_s": _span(self.started_at, end),
            "tasks_total": self.tasks_total,
            "tasks_done": self.tasks_done,
            "tasks_failed": self.tasks_failed,
            **self._usage_dict(),
            "cost_usd": self.cost_usd,
            "cost_unknown": bool(self.cost_unknown),
            "calls": self.calls,
            "retries": self.retries,
            "error": self.error,
        }


class Step(SQLModel, table=True):
    __tablename__ = "steps"

    run_id: str = Field(primary_key=True)
    step_id: str = Field(primary_key=True)
    iteration: int = Field(default=0, primary_key=True)  # 0: not in a loop body
    kind: str = ""
    status: str = "pending"
    output: Any = _json()
    error: str | None = Field(default=None, sa_type=Text)
    exit_code: int | None = None
    iterations: int | None = None
    exhausted: bool | None = None  # a loop stopped at max_iterations, `until` still false
    total_tasks: int | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def loop_iteration(self) -> int | None:
        """The loop iteration (1-based) of a loop body step, None elsewhere."""
        return self.iteration or None

    @property
    def label(self) -> str:
        it = self.loop_iteration
        return self.step_id if it is None else f"{self.step_id}#{it}"


class Task(_Tokens, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_run_key", "run_id", "key"),
        Index("ix_tasks_run_step", "run_id", "step_id"),
    )

    id: str = Field(primary_key=True)
    run_id: str = ""
    step_id: str = ""
    key: str = ""
    index: int | None = None
    iteration: int | None = None
    agent: str | None = None
    model: str | None = None
    system: str | None = Field(default=None, sa_type=Text)
    prompt: str = Field(default="", sa_type=Text)
    status: str = "pending"
    output: Any = _json()
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 1
    turns: int = 0
    cost_usd: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    parent_id: str | None = None  # migration 6: the task whose `Task` call started this one

    @property
    def label(self) -> str:
        return task_label(self.step_id, self.index, self.iteration)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self, *, output: bool = True) -> dict[str, Any]:
        """`runs tasks --json` (and the task of `runs transcript --json`)."""
        data: dict[str, Any] = {
            "id": self.id,
            "step": self.step_id,
            "index": self.index,
            "iteration": self.iteration,
            "label": self.label,
            "key": self.key,
            "status": self.status,
            "agent": self.agent,
            "model": self.model,
            "attempts": self.attempts,
            "turns": self.turns,
            **self._usage_dict(),
            "cost_usd": self.cost_usd,
            "cost_unknown": self.cost_usd is None and self.status != "pending",
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_s": _span(self.started_at, self.finished_at),
            "error": self.error,
            "parent_id": self.parent_id,
        }
        if output:
            data["output"] = self.output
        return data


class Call(_Tokens, table=True):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_task", "task_id"),
        Index("ix_calls_run_step", "run_id", "step_id"),  # migration 2
    )

    id: str = Field(primary_key=True)
    run_id: str = ""
    task_id: str = ""
    step_id: str = ""
    model: str = ""
    attempt: int = 1
    request: dict[str, Any] | None = _json()
    response: dict[str, Any] | None = _json()
    status: str = "succeeded"
    error: str | None = Field(default=None, sa_type=Text)
    http_status: int | None = None
    request_id: str | None = None
    latency_s: float = 0.0
    cost_usd: float | None = None
    batch: bool = False
    ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A raw call in `runs transcript --json`: usage as the API reports it."""
        return {
            "id": self.id,
            "attempt": self.attempt,
            "model": self.model,
            "status": self.status,
            "error": self.error,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "latency_s": self.latency_s,
            "request": self.request,
            "response": self.response,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
        }


class StoredEvent(SQLModel, table=True):
    """One stored event. `payload` is the event's fields minus type, run_id and ts, and minus
    the bodies stored in their own rows: a call's request/response (`calls`), a task's prompt,
    system prompt and output (`tasks`), a step's output (`steps`), a run's outputs (`runs`)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_run_seq", "run_id", "seq"), {"sqlite_autoincrement": True})

    # sqlite_autoincrement: a seq is never reused after a delete, so `logs --follow` never misses
    seq: int | None = Field(
        default=None,
        sa_column=Column(
            "seq",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    run_id: str = ""
    ts: float = 0.0
    type: str = ""
    payload: dict[str, Any] | None = _json()

    def as_event_dict(self) -> dict[str, Any]:
        """The flat form of `Event.to_dict()` (what `events.event_from_dict` accepts)."""
        return {"type": self.type, "run_id": self.run_id, "ts": self.ts, **(self.payload or {})}

    def to_dict(self) -> dict[str, Any]:
        """A line of `runs logs --json`."""
        return {"seq": self.seq, **self.as_event_dict()}


class StateItem(SQLModel, table=True):
    """One key of a run's shared blackboard (`state_set`)."""

    __tablename__ = "state"

    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: Any = _json()
    updated_at: float = 0.0


class Question(SQLModel, table=True):
    """A question for a person (migration 4): an `ask` step, a tool call that waits for its
    approval (`kind` "approval", answered "approve" or "deny" with a `reason`), or a budget
    guard. `key` is deterministic (the task key, plus the tool call for an approval), so a
    resumed run finds the answer instead of asking again; one row per (run_id, key)."""

    __tablename__ = "questions"
    __table_args__ = (
        Index("ux_questions_run_key", "run_id", "key", unique=True),
        Index("ix_questions_status", "status", "asked_at"),
    )

    id: str = Field(primary_key=True)
    run_id: str = ""
    step_id: str = ""
    key: str = ""
    kind: str = "ask"  # ask | approval | budget
    prompt: str = Field(default="", sa_type=Text)
    options: list[str] | None = _json()
    output: Any = _json()  # None (free text), "json" or a JSON Schema the answer must match
    tool: str | None = None
    tool_input: Any = _json()
    status: str = "pending"  # pending | answered
    answer: Any = _json()
    reason: str | None = Field(default=None, sa_type=Text)
    answered_by: str | None = None
    asked_at: float = 0.0
    answered_at: float | None = None

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """`runs waiting --json` and `runs show --json`: age_s counts while it waits."""
        end = self.answered_at or (time.time() if now is None else now)
        return {
            "id": self.id,
            "run_id": self.run_id,
            "step": self.step_id,
            "kind": self.kind,
            "prompt": self.prompt,
            "options": self.options,
            "output": self.output,
            "tool": self.tool,
            "tool_input": self.tool_input,
            "status": self.status,
            "answer": self.answer,
            "reason": self.reason,
            "answered_by": self.answered_by,
            "asked_at": iso(self.asked_at),
            "answered_at": iso(self.answered_at),
            "age_s": _span(self.asked_at, end),
        }


class ScopedStateItem(SQLModel, table=True):
    """One key of a named state scope (migration 6): memory that outlives a run. `version`
    goes up by one on every write, so a writer that read version N replaces the value only
    if it is still N (compare-and-set): of two runs updating one key at once, one wins and
    the other reads again, and no update is lost."""

    __tablename__ = "scoped_state"

    scope: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: Any = _json()
    version: int = 1
    updated_at: float = 0.0
    updated_by: str | None = None  # the run (or "cli") that wrote it last


class ServeRun(SQLModel, table=True):
    """A run that `orchestrate serve` started (migration 6): which hosted workflow, why
    (schedule, trigger, hook), and for a scheduled run its slot, so a restarted server
    resumes what it left and knows which slots it already ran."""

    __tablename__ = "serve_runs"
    __table_args__ = (Index("ix_serve_runs_workflow", "workflow", "slot"),)

    run_id: str = Field(primary_key=True)
    workflow: str = ""  # the hosted workflow's file stem
    origin: str = ""  # schedule | trigger | hook
    slot: float | None = None  # the scheduled time a `schedule:` run is for
    created_at: float = 0.0
    drained_at: float | None = None  # the server cancelled it to stop: resume it on restart


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]  # set by table=True


RUNS = _table(Run)
STEPS = _table(Step)
TASKS = _table(Task)
CALLS = _table(Call)
EVENTS = _table(StoredEvent)
STATE = _table(StateItem)
QUESTIONS = _table(Question)
SCOPED_STATE = _table(ScopedStateItem)
SERVE_RUNS = _table(ServeRun)

RUN_TABLES: tuple[Table, ...] = (RUNS, STEPS, TASKS, CALLS, EVENTS, STATE, QUESTIONS)
"""Every table that holds rows of a run (keyed by `run_id`, or `id` for runs)."""
OTHER_TABLES: tuple[Table, ...] = (SCOPED_STATE, SERVE_RUNS)
"""Tables that outlive any one run (`delete_run` and `prune` leave them)."""
