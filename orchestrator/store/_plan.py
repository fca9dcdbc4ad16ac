"""Events -> row operations for one write transaction.

A batch of events is folded into at most one upsert per primary key (a task started and finished
in the same batch becomes one INSERT), plus one totals upsert per run and the appended events
rows; then each table gets a few `executemany` calls, grouped by the set of columns written. No
per-row SELECT: whether a task is new, and which status it had, comes from `TaskIndex`, a small
in-memory map the writer keeps (loaded once per run from the database, so a resumed run that
another process started is counted right).

Run totals are maintained incrementally: `tasks_total` counts distinct task ids, `tasks_done`
and `tasks_failed` count tasks currently succeeded/failed (a failed task that a resume runs again
moves from one to the other), tokens/cost/calls sum `call_finished` events, `retries` counts
`call_retried` events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import Insert

from orchestrator.events import (
    CallFinished,
    CallRetried,
    CancelRequested,
    Event,
    Heartbeat,
    RunFinished,
    RunStarted,
    StateSet,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskRetried,
    TaskStarted,
)
from orchestrator.store.models import CALLS, EVENTS, RUNS, STATE, STEPS, TASKS
from orchestrator.store.records import USAGE_FIELDS, dump_json

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

_DELTA_COLUMNS = (
    "tasks_total",
    "tasks_done",
    "tasks_failed",
    *USAGE_FIELDS,
    "cost_usd",
    "calls",
    "retries",
)
_PAYLOAD_OMIT = {"run_id", "ts"}
# Bodies already stored in their own row (calls, tasks, steps, runs); repeating them per event
# would double the database, and hold a second copy of a large fan-out's output in memory.
_BODY_OMIT: dict[type[Event], set[str]] = {
    CallFinished: {"request", "response"},
    TaskStarted: {"prompt", "system"},
    TaskFinished: {"output"},
    StepFinished: {"output"},
    RunFinished: {"outputs"},
}
_payload_fields: dict[type[Event], tuple[str, ...]] = {}


def _payload(event: Event) -> str | None:
    cls = type(event)
    names = _payload_fields.get(cls)
    if names is None:
        omit = _PAYLOAD_OMIT | _BODY_OMIT.get(cls, set())
        names = tuple(f.name for f in fields(cls) if f.name not in omit)
        _payload_fields[cls] = names
    return dump_json({name: getattr(event, name) for name in names})


def _tokens(usage: dict[str, int]) -> dict[str, int]:
    """An event's usage dict -> the token columns (the same names: the API's)."""
    return {name: int(usage.get(name) or 0) for name in USAGE_FIELDS}


class TaskIndex:
    """task id -> last status written, per run; the writer's only memory of past batches."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, str]] = {}

    def new_run(self, run_id: str) -> None:
        self._runs[run_id] = {}

    def statuses(self, conn: Connection, run_id: str) -> dict[str, str]:
        known = self._runs.get(run_id)
        if known is None:
            rows = conn.execute(select(TASKS.c.id, TASKS.c.status).where(TASKS.c.run_id == run_id))
            known = {task_id: status for task_id, status in rows}
            self._runs[run_id] = known
        return known

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)


class BatchPlan:
    def __init__(self, conn: Connection, index: TaskIndex) -> None:
        self._conn = conn
        self._index = index
        self.runs: dict[str, dict[str, Any]] = {}
        self.steps: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.deltas: dict[str, dict[str, Any]] = {}
        self.finished_runs: set[str] = set()

    # --- folding ------------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        if type(event) is not Heartbeat:
            self.events.append(
                {
                    "run_id": event.run_id,
                    "ts": event.ts,
                    "type": event.type,
                    "payload": _payload(event),
                }
            )

    def _run(self, run_id: str, values: dict[str, Any]) -> None:
        row = self.runs.get(run_id)
        if row is None:
            self.runs[run_id] = {"id": run_id, **values}
        else:
            row.update(values)

    def _delta(self, run_id: str) -> dict[str, Any]:
        delta = self.deltas.get(run_id)
        if delta is None:
            delta = dict.fromkeys(_DELTA_COLUMNS, 0)
            delta["id"] = run_id
            delta["cost_usd"] = 0.0
            delta["cost_unknown"] = False
            self.deltas[run_id] = delta
        return delta

    def _task(self, task_id: str, values: dict[str, Any]) -> None:
        row = self.tasks.get(task_id)
        if row is None:
            self.tasks[task_id] = {"id": task_id, **values}
        else:
            row.update(values)

    def _task_status(self, run_id: str, task_id: str, status: str) -> None:
        statuses = self._index.statuses(self._conn, run_id)
        previous = statuses.get(task_id)
        delta = self._delta(run_id)
        # A cancelled attempt, or one that waits for a person, is not one of the run's workers:
        # resume runs that task again.
        again = ("cancelled", "waiting")
        delta["tasks_total"] += (status not in again) - (
            previous is not None and previous not in again
        )
        if previous == "succeeded":
            delta["tasks_done"] -= 1
        elif previous == "failed":
            delta["tasks_failed"] -= 1
        if status == "succeeded":
            delta["tasks_done"] += 1
        elif status == "failed":
            delta["tasks_failed"] += 1
        statuses[task_id] = status

    def _run_started(self, e: Event) -> None:
        assert isinstance(e, RunStarted)
        common = {
            "status": "running",
            "error": None,
            "outputs": None,
            "finished_at": None,
            "heartbeat_at": e.ts,
            "pid": e.pid,
            "cancel_requested": False,
        }
        if e.resumed:
            self._index.forget(e.run_id)  # reload: another process may have written tasks
            self._close_interrupted(e.run_id, e.ts)
            self._run(e.run_id, common)
            return
        self._index.new_run(e.run_id)
        self._run(
            e.run_id,
            {
                "workflow_name": e.workflow_name,
                "workflow_path": e.workflow_path,
                "workflow_snapshot": e.workflow_snapshot,
                "workflow_hash": e.workflow_hash,
                "inputs": dump_json(e.inputs),
                "workspace": e.workspace,
                "started_at": e.ts,
                "limits": dump_json(e.limits),
                **common,
            },
        )

    def _close_interrupted(self, run_id: str, ts: float) -> None:
        """Tasks and steps a dead process left `running` end as `cancelled` when a resume takes
        the run over, so the history never shows work that nobody is doing."""
        error = "interrupted: the process ended before this finished"
        for status in self._index.statuses(self._conn, run_id).values():
            if status in ("running", "pending"):
                self._delta(run_id)["tasks_total"] -= 1
        self._conn.execute(
            update(TASKS)
            .where(TASKS.c.run_id == run_id, TASKS.c.status.in_(("running", "pending")))
            .values(status="cancelled", error=error, finished_at=ts)
        )
        self._conn.execute(
            update(STEPS)
            .where(STEPS.c.run_id == run_id, STEPS.c.status.in_(("running", "pending")))
            .values(status="cancelled", error=error, finished_at=ts)
        )
        self._index.forget(run_id)

    def _run_finished(self, e: Event) -> None:
        assert isinstance(e, RunFinished)
        self._run(
            e.run_id,
            {
                "status": e.status,
                "outputs": dump_json(e.outputs),
                "error": e.error,
                "finished_at": e.ts,
            },
        )
        self.finished_runs.add(e.run_id)

    def _heartbeat(self, e: Event) -> None:
        self._run(e.run_id, {"heartbeat_at": e.ts})

    def _cancel_requested(self, e: Event) -> None:
        self._run(e.run_id, {"cancel_requested": True})

    def _step_started(self, e: Event) -> None:
        assert isinstance(e, StepStarted)
        pk = (e.run_id, e.step_id, e.iteration or 0)
        values = {
            "kind": e.kind,
            "status": "running",
            "output": None,
            "error": None,
            "exit_code": None,
            "iterations": None,
            "exhausted": None,
            "total_tasks": e.total_tasks,
            "started_at": e.ts,
            "finished_at": None,
        }
        self._step(pk, values)

    def _step_finished(self, e: Event) -> None:
        assert isinstance(e, StepFinished)
        pk = (e.run_id, e.step_id, e.iteration or 0)
        values = {
            "status": e.status,
            "output": dump_json(e.output),
            "error": e.error,
            "exit_code": e.exit_code,
            "iterations": e.iterations,
            "exhausted": e.exhausted,
            "finished_at": e.ts,
        }
        self._step(pk, values)

    def _step(self, pk: tuple[str, str, int], values: dict[str, Any]) -> None:
        row = self.steps.get(pk)
        if row is None:
            self.steps[pk] = {"run_id": pk[0], "step_id": pk[1], "iteration": pk[2], **values}
        else:
            row.update(values)

    def _task_started(self, e: Event) -> None:
        assert isinstance(e, TaskStarted)
        self._task_status(e.run_id, e.task_id, "running")
        self._task(
            e.task_id,
            {
                "run_id": e.run_id,
                "step_id": e.step_id,
                "key": e.key,
                "index": e.index,
                "iteration": e.iteration,
                "agent": e.agent,
                "model": e.model,
                "system": e.system,
                "prompt": e.prompt,
                "status": "running",
                "output": None,
                "error": None,
                "attempts": e.attempt,
                "started_at": e.ts,
                "finished_at": None,
                "parent_id": e.parent_id,
            },
        )

    def _task_finished(self, e: Event) -> None:
        assert isinstance(e, TaskFinished)
        self._task_status(e.run_id, e.task_id, e.status)
        self._task(
            e.task_id,
            {
                "run_id": e.run_id,
                "step_id": e.step_id,
                "status": e.status,
                "output": dump_json(e.output),
                "error": e.error,
                **_tokens(e.usage),
                "cost_usd": e.cost_usd,
                "attempts": e.attempts,
                "turns": e.turns,
                "finished_at": e.ts,
            },
        )

    def _task_retried(self, e: Event) -> None:
        assert isinstance(e, TaskRetried)
        self._task(
            e.task_id,
            {"run_id": e.run_id, "step_id": e.step_id, "attempts": e.attempt, "error": e.error},
        )

    def _call_finished(self, e: Event) -> None:
        assert isinstance(e, CallFinished)
        tokens = _tokens(e.usage)
        self.calls[e.call_id] = {
            "id": e.call_id,
            "run_id": e.run_id,
            "task_id": e.task_id,
            "step_id": e.step_id,
            "model": e.model,
            "attempt": e.attempt,
            "request": dump_json(e.request),
            "response": dump_json(e.response),
            "status": e.status,
            "error": e.error,
            "http_status": e.http_status,
            "request_id": e.request_id,
            "latency_s": e.latency_s,
            **tokens,
            "cost_usd": e.cost_usd,
            "batch": e.batch,
            "ts": e.ts,
        }
        delta = self._delta(e.run_id)
        for name, value in tokens.items():
            delta[name] += value
        delta["calls"] += 1
        if e.cost_usd is None:
            delta["cost_unknown"] = True
        else:
            delta["cost_usd"] += e.cost_usd

    def _call_retried(self, e: Event) -> None:
        self._delta(e.run_id)["retries"] += 1

    def _state_set(self, e: Event) -> None:
        assert isinstance(e, StateSet)
        self.state[(e.run_id, e.key)] = {
            "run_id": e.run_id,
            "key": e.key,
            "value": dump_json(e.value),
            "updated_at": e.ts,
        }

    # --- execution ----------------------------------------------------------------------------

    def execute(self, conn: Connection) -> None:
        _upsert(conn, RUNS, self.runs.values())
        if self.deltas:
            conn.execute(_totals_statement(conn), list(self.deltas.values()))
        _upsert(conn, STEPS, self.steps.values())
        _upsert(conn, TASKS, self.tasks.values())
        _upsert(conn, CALLS, self.calls.values())
        _upsert(conn, STATE, self.state.values())
        if self.events:
            insert = _driver_statement(conn, EVENTS, _EVENT_COLUMNS, on_conflict=False)
            conn.exec_driver_sql(insert.sql, insert.params(self.events))


_HANDLERS: dict[type[Event], Callable[[BatchPlan, Event], None]] = {
    RunStarted: BatchPlan._run_started,
    RunFinished: BatchPlan._run_finished,
    Heartbeat: BatchPlan._heartbeat,
    CancelRequested: BatchPlan._cancel_requested,
    StepStarted: BatchPlan._step_started,
    StepFinished: BatchPlan._step_finished,
    TaskStarted: BatchPlan._task_started,
    TaskFinished: BatchPlan._task_finished,
    TaskRetried: BatchPlan._task_retried,
    CallFinished: BatchPlan._call_finished,
    CallRetried: BatchPlan._call_retried,
    StateSet: BatchPlan._state_set,
}

_statements: dict[tuple[str, str, tuple[str, ...]], Insert] = {}


def _insert(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """The dialect's INSERT, which has `on_conflict_do_update`. PostgreSQL's dialect package
    is imported for a PostgreSQL store only: it would cost a SQLite run 2.3 MB."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """An INSERT (an upsert unless compiled with `on_conflict=False`), compiled once per
    (dialect, table, column set) and run through the DB-API's executemany (`exec_driver_sql`):
    per row only a tuple or dict is built, where SQLAlchemy's `execute` would construct and
    process bound parameters in Python, holding the GIL the event loop needs (a third of the
    writer's time in a 1,000-worker run). Values go to the driver as they are: the store's
    columns are strings, numbers, booleans and JSON text, which sqlite3 and psycopg take."""

    sql: str
    names: tuple[str, ...]  # every inserted column, in the statement's parameter order
    defaults: dict[str, Any]  # the Python-side defaults of the columns a row leaves out
    positional: bool

    def params(self, rows: list[dict[str, Any]]) -> list[Any]:
        defaults, names = self.defaults, self.names
        if self.positional:
            return [tuple(row[n] if n in row else defaults[n] for n in names) for row in rows]
        return [{**defaults, **row} for row in rows] if defaults else rows


_driver_statements: dict[tuple[str, str, tuple[str, ...], bool], _DriverStatement] = {}
_EVENT_COLUMNS = ("run_id", "ts", "type", "payload")  # `seq` is the database's


def _driver_statement(
    conn: Connection, table: Table, columns: tuple[str, ...], *, on_conflict: bool = True
) -> _DriverStatement:
    key = (conn.dialect.name, table.name, columns, on_conflict)
    statement = _driver_statements.get(key)
    if statement is None:
        statement = _driver_statements[key] = _compile_write(conn, table, columns, on_conflict)
    return statement


def _compile_write(
    conn: Connection, table: Table, columns: tuple[str, ...], on_conflict: bool
) -> _DriverStatement:
    defaults: dict[str, Any] = {}
    for column in table.columns:
        if column.name not in columns and column.default is not None:
            assert column.default.is_scalar, f"{table.name}.{column.name}: scalar defaults only"
            defaults[column.name] = column.default.arg  # type: ignore[attr-defined]
    inserted = (*columns, *defaults)
    base = _insert(conn, table).values({name: bindparam(name) for name in inserted})
    if on_conflict:
        pk = [c.name for c in table.primary_key.columns]
        updates = {c: base.excluded[c] for c in columns if c not in pk}
        compiled = base.on_conflict_do_update(index_elements=pk, set_=updates).compile(
            dialect=conn.dialect
        )
    else:
        compiled = base.compile(dialect=conn.dialect)
    positional = bool(conn.dialect.positional)
    names = tuple(compiled.positiontup or ()) if positional else inserted
    assert set(names) == set(inserted), (names, inserted)
    return _DriverStatement(compiled.string, names, defaults, positional)


def _upsert(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (pk) DO UPDATE SET <the columns given>, one executemany per
    distinct column set (columns not given keep their value, or their default on insert)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for columns, group in groups.items():
        upsert = _driver_statement(conn, table, columns)
        conn.exec_driver_sql(upsert.sql, upsert.params(group))


def _totals_statement(conn: Connection) -> Insert:
    cache_key = (conn.dialect.name, "runs", ("<totals>",))
    stmt = _statements.get(cache_key)
    if stmt is None:
        base = _insert(conn, RUNS)
        updates: dict[str, Any] = {c: RUNS.c[c] + base.excluded[c] for c in _DELTA_COLUMNS}
        updates["cost_unknown"] = RUNS.c.cost_unknown | base.excluded.cost_unknown
        stmt = base.on_conflict_do_update(index_elements=["id"], set_=updates)
        _statements[cache_key] = stmt
    return stmt
