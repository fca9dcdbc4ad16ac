"""The store: opening (with migrations), the engine's reads, and the history queries of the CLI.

Writes during a run go through `Store.writer()` only (one writer per process, see `writer.py`).
The few writes made here -- `request_cancel` from another process, `delete_run`, `prune` -- are
short BEGIN IMMEDIATE transactions that wait behind the writer (busy timeout) rather than fail.
Every read uses a short-lived pooled connection; in WAL mode readers never wait for the writer.

Run status "interrupted" is never stored: a run whose row says "running" but whose heartbeat is
older than `stale_after_s` died with its process, and the read side reports it so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from orchestrator.errors import UsageError
from orchestrator.store import _db
from orchestrator.store.migrations import LATEST_VERSION, migrate, schema_version
from orchestrator.store.models import CALLS, EVENTS, RUN_TABLES, RUNS, STATE, STEPS, TASKS
from orchestrator.store.records import (
    CallRecord,
    CostRow,
    EventRecord,
    RunRecord,
    StepRecord,
    StepSummary,
    TaskRecord,
    load_json,
)

if TYPE_CHECKING:
    from orchestrator.store.writer import StoreWriter

STALE_AFTER_S = 30.0
_ITEM_REF = re.compile(r"^(?P<step>[^\[\]]+)\[(?P<index>\d+)\]$")
_JSON_COLUMNS = {
    "runs": ("inputs", "outputs", "limits"),
    "steps": ("output",),
    "tasks": ("output",),
    "calls": ("request", "response"),
    "events": ("payload",),
    "state": ("value",),
}
_SHOWN_CANDIDATES = 5


class Store:
    """A handle on one database. Thread-safe; cheap to keep open for a process's lifetime."""

    def __init__(self, engine: Engine, location: _db.Location, *, readonly: bool) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{_db.IMMEDIATE: True})
        self._location = location
        self.readonly = readonly
        self.url = location.url

    @classmethod
    def open(cls, url: str, *, readonly: bool = False, migrate_to: int | None = None) -> Store:
        """Open (creating it unless `readonly`) and bring the schema up to date.

        `readonly=True` never creates a database (a missing one is "no runs yet") and refuses the
        write methods; it still applies pending migrations, so a newer orchestrate reads an older
        history. `migrate_to` stops at that schema version (tests of the upgrade path only).
        """
        loc = _db.parse_location(url)
        _db.prepare_file(loc, create=not readonly)
        engine = _db.build_engine(loc)
        store = cls(engine, loc, readonly=readonly)
        try:
            with store._read() as conn:
                current = schema_version(conn)
            wanted = LATEST_VERSION if migrate_to is None else migrate_to
            if current < wanted:  # a read-only file that is up to date needs no write
                with store._write_engine.begin() as conn:
                    migrate(conn, target=migrate_to)
            elif current > LATEST_VERSION:
                raise UsageError(
                    f"{loc.shown} has schema version {current}, newer than this orchestrate "
                    f"knows ({LATEST_VERSION}); upgrade orchestrate"
                )
        except DBAPIError as exc:
            engine.dispose()
            raise UsageError(
                f"cannot open the state database {loc.shown}: {_reason(exc)}"
            ) from None
        except BaseException:
            engine.dispose()
            raise
        _db.secure_sidecars(loc)
        return store

    @property
    def path(self) -> str | None:
        """The SQLite file, or None for a server database."""
        return None if self._location.path is None else str(self._location.path)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._location.shown!r})"

    # --- write side -----------------------------------------------------------------------------

    def writer(self, *, max_batch: int = 250, max_delay_s: float = 0.05) -> StoreWriter:
        """The batching writer (see `writer.py`). `max_batch` also sets the backlog at which the
        engine waits (two batches): 250 events held 4 MB less at the peak of a 1,000-worker run
        than 1,000 did, for the same CPU per task (bench/README.md)."""
        from orchestrator.store.writer import StoreWriter

        return StoreWriter(self, max_batch=max_batch, max_delay_s=max_delay_s)

    def _check_writable(self) -> None:
        if self.readonly:
            raise UsageError(f"the state database {self._location.shown} was opened read-only")

    def _writer_connection(self) -> Connection:
        return self._write_engine.connect()

    def _write(self) -> AbstractContextManager[Connection]:
        self._check_writable()
        return self._write_engine.begin()

    def _read(self) -> Connection:
        return self._engine.connect()

    # --- engine reads -----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.id == run_id)).mappings().first()
        return None if row is None else RunRecord.from_row(row)

    def succeeded_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        """Succeeded tasks by key (the latest one when a key succeeded more than once)."""
        stmt = (
            select(TASKS)
            .where(TASKS.c.run_id == run_id, TASKS.c.status == "succeeded")
            .order_by(TASKS.c.finished_at, TASKS.c.id)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        return {row["key"]: TaskRecord.from_row(row) for row in rows}

    def step_records(self, run_id: str) -> list[StepRecord]:
        stmt = (
            select(STEPS)
            .where(STEPS.c.run_id == run_id)
            .order_by(STEPS.c.started_at, STEPS.c.step_id, STEPS.c.iteration)
        )
        with self._read() as conn:
            return [StepRecord.from_row(r) for r in conn.execute(stmt).mappings()]

    def state_items(self, run_id: str) -> dict[str, Any]:
        stmt = select(STATE.c.key, STATE.c.value).where(STATE.c.run_id == run_id)
        with self._read() as conn:
            return {key: load_json(value) for key, value in conn.execute(stmt)}

    def cancel_requested(self, run_id: str) -> bool:
        with self._read() as conn:
            value = conn.execute(
                select(RUNS.c.cancel_requested).where(RUNS.c.id == run_id)
            ).scalar()
        return bool(value)

    def request_cancel(self, run_id: str) -> None:
        """Ask the process running `run_id` to stop (it polls `cancel_requested`)."""
        with self._write() as conn:
            result = conn.execute(
                update(RUNS).where(RUNS.c.id == run_id).values(cancel_requested=True)
            )
        if result.rowcount == 0:
            raise UsageError(f"no run {run_id!r}")

    # --- history reads --------------------------------------------------------------------------

    def resolve_run(self, ref: str) -> str:
        """A full run id, a unique prefix of one, or "last" -> the run id."""
        ref = ref.strip().lower()
        if not ref:
            raise UsageError("no run given")
        with self._read() as conn:
            if ref == "last":
                last = conn.execute(
                    select(RUNS.c.id).order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc()).limit(1)
                ).scalar()
                if last is None:
                    raise UsageError("no runs yet")
                return str(last)
            ids = list(
                conn.execute(
                    select(RUNS.c.id)
                    .where(self._prefix(RUNS.c.id, ref))
                    .order_by(RUNS.c.id)
                    .limit(_SHOWN_CANDIDATES + 1)
                ).scalars()
            )
            if ref in ids:
                return ref
            if len(ids) == 1:
                return str(ids[0])
            if not ids:
                raise UsageError(f"no run matches {ref!r}")
            total = conn.execute(
                select(func.count()).where(self._prefix(RUNS.c.id, ref))
            ).scalar_one()
        raise UsageError(f"{ref!r} is ambiguous: matches {_candidates(ids, total)}")

    def run_status(self, run: RunRecord, stale_after_s: float = STALE_AFTER_S) -> str:
        """The status to show: "interrupted" for a running run whose heartbeat went stale."""
        if run.status != "running":
            return run.status
        beat = run.heartbeat_at if run.heartbeat_at is not None else run.started_at
        if beat is None or beat < time.time() - stale_after_s:
            return "interrupted"
        return "running"

    def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 20,
        stale_after_s: float = STALE_AFTER_S,
    ) -> list[RunRecord]:
        """Newest first, with the derived status (see `run_status`). `workflow` matches the
        workflow's name or its path; `limit` <= 0 means no limit."""
        stmt = select(RUNS).order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc())
        cutoff = time.time() - stale_after_s
        if status == "interrupted":
            stmt = stmt.where(RUNS.c.status == "running", _stale(cutoff))
        elif status == "running":
            stmt = stmt.where(RUNS.c.status == "running", ~_stale(cutoff))
        elif status is not None:
            stmt = stmt.where(RUNS.c.status == status)
        if workflow is not None:
            stmt = stmt.where(
                or_(RUNS.c.workflow_name == workflow, RUNS.c.workflow_path == workflow)
            )
        if limit > 0:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            records = [RunRecord.from_row(r) for r in conn.execute(stmt).mappings()]
        return [self._with_status(r, stale_after_s) for r in records]

    def _prefix(self, column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
        if self._engine.dialect.name == "sqlite":
            # Ids are [0-9a-z] and SQLite compares bytes, so "~" (after "z") bounds the range; a
            # range uses the primary-key index where LIKE (case-insensitive there) would not.
            return and_(column >= prefix, column < prefix + "~")
        return column.startswith(prefix, autoescape=True)

    def _with_status(self, run: RunRecord, stale_after_s: float) -> RunRecord:
        shown = self.run_status(run, stale_after_s)
        return run if shown == run.status else replace(run, status=shown)

    def list_tasks(
        self, run_id: str, *, step: str | None = None, status: str | None = None
    ) -> list[TaskRecord]:
        """In the order they started (ULIDs sort by creation time)."""
        stmt = select(TASKS).where(TASKS.c.run_id == run_id)
        if step is not None:
            stmt = stmt.where(TASKS.c.step_id == step)
        if status is not None:
            stmt = stmt.where(TASKS.c.status == status)
        stmt = stmt.order_by(TASKS.c.started_at, TASKS.c.id)
        with self._read() as conn:
            return [TaskRecord.from_row(r) for r in conn.execute(stmt).mappings()]

    def resolve_task(self, run_id: str, ref: str) -> TaskRecord:
        """A task id (or a unique prefix), a step id whose step ran one task, or `step[index]`
        for a fan-out item. Where several attempts exist (loop iterations, resumes), the latest."""
        ref = ref.strip()
        if not ref:
            raise UsageError("no task given")
        latest = (TASKS.c.started_at.desc(), TASKS.c.id.desc())
        base = select(TASKS).where(TASKS.c.run_id == run_id)
        with self._read() as conn:
            row = conn.execute(base.where(TASKS.c.id == ref.lower())).mappings().first()
            if row is not None:
                return TaskRecord.from_row(row)

            item = _ITEM_REF.match(ref)
            if item is not None:
                step, index = item["step"], int(item["index"])
                row = (
                    conn.execute(
                        base.where(TASKS.c.step_id == step, TASKS.c.index == index)
                        .order_by(*latest)
                        .limit(1)
                    )
                    .mappings()
                    .first()
                )
                if row is not None:
                    return TaskRecord.from_row(row)
                raise UsageError(f"step {step!r} has no item {index} in run {run_id}")

            indexes = conn.execute(
                select(TASKS.c.index, func.count())
                .where(TASKS.c.run_id == run_id, TASKS.c.step_id == ref)
                .group_by(TASKS.c.index)
            ).all()
            if indexes:
                if len(indexes) > 1:
                    known = sorted(i for i, _ in indexes if i is not None)
                    span = f"{ref}[{known[0]}]..{ref}[{known[-1]}]" if known else f"{ref}[N]"
                    raise UsageError(
                        f"step {ref!r} ran {len(indexes)} items; name one as {span} "
                        "or give a task id"
                    )
                row = (
                    conn.execute(base.where(TASKS.c.step_id == ref).order_by(*latest).limit(1))
                    .mappings()
                    .first()
                )
                assert row is not None
                return TaskRecord.from_row(row)

            prefix = ref.lower()
            rows = (
                conn.execute(
                    base.where(self._prefix(TASKS.c.id, prefix))
                    .order_by(TASKS.c.id)
                    .limit(_SHOWN_CANDIDATES + 1)
                )
                .mappings()
                .all()
            )
            if len(rows) == 1:
                return TaskRecord.from_row(rows[0])
            if rows:
                total = conn.execute(
                    select(func.count()).where(
                        TASKS.c.run_id == run_id, self._prefix(TASKS.c.id, prefix)
                    )
                ).scalar_one()
                ids = [r["id"] for r in rows]
                raise UsageError(f"{ref!r} is ambiguous: matches {_candidates(ids, total)}")
        raise UsageError(f"no task or step matches {ref!r} in run {run_id}")

    def task_calls(self, task_id: str) -> list[CallRecord]:
        stmt = select(CALLS).where(CALLS.c.task_id == task_id).order_by(CALLS.c.ts, CALLS.c.id)
        with self._read() as conn:
            return [CallRecord.from_row(r) for r in conn.execute(stmt).mappings()]

    def events(
        self,
        run_id: str,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        type: str | None = None,  # noqa: A002 - the event's own field name
    ) -> list[EventRecord]:
        """Stored events in order; poll with `after_seq` = the last seq seen to follow a run."""
        stmt = (
            select(EVENTS)
            .where(EVENTS.c.run_id == run_id, EVENTS.c.seq > after_seq)
            .order_by(EVENTS.c.seq)
        )
        if type is not None:
            stmt = stmt.where(EVENTS.c.type == type)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(stmt).mappings()]

    def cost_breakdown(self, run_id: str) -> list[CostRow]:
        """Per step and model, from the calls (failed attempts that consumed tokens included)."""
        unknown = func.sum(case((CALLS.c.cost_usd.is_(None), 1), else_=0))
        stmt = (
            select(
                CALLS.c.step_id,
                CALLS.c.model,
                func.count(),
                func.sum(CALLS.c.input_tokens),
                func.sum(CALLS.c.output_tokens),
                func.sum(CALLS.c.cache_creation_tokens),
                func.sum(CALLS.c.cache_read_tokens),
                func.coalesce(func.sum(CALLS.c.cost_usd), 0.0),
                unknown,
            )
            .where(CALLS.c.run_id == run_id)
            .group_by(CALLS.c.step_id, CALLS.c.model)
            .order_by(func.min(CALLS.c.ts), CALLS.c.step_id, CALLS.c.model)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [
            CostRow(
                step_id=step_id,
                model=model,
                calls=calls,
                input_tokens=int(inp or 0),
                output_tokens=int(out or 0),
                cache_creation_tokens=int(cw or 0),
                cache_read_tokens=int(cr or 0),
                cost_usd=None if n_unknown else float(cost),
            )
            for step_id, model, calls, inp, out, cw, cr, cost, n_unknown in rows
        ]

    def step_summaries(self, run_id: str) -> list[StepSummary]:
        """One line per step (and loop iteration): tasks by status, tokens and cost from its
        calls, duration, and the share of prompt tokens served from the cache."""
        iteration = func.coalesce(TASKS.c.iteration, 0)
        tasks_stmt = (
            select(
                TASKS.c.step_id,
                iteration,
                # a cancelled attempt that a resume ran again is not one of the step's tasks
                func.sum(case((TASKS.c.status == "cancelled", 0), else_=1)),
                func.sum(case((TASKS.c.status == "succeeded", 1), else_=0)),
                func.sum(case((TASKS.c.status == "failed", 1), else_=0)),
                func.sum(case((TASKS.c.status == "skipped", 1), else_=0)),
            )
            .where(TASKS.c.run_id == run_id)
            .group_by(TASKS.c.step_id, iteration)
        )
        calls_stmt = (
            select(
                TASKS.c.step_id,
                iteration,
                func.count(),
                func.sum(CALLS.c.input_tokens),
                func.sum(CALLS.c.output_tokens),
                func.sum(CALLS.c.cache_creation_tokens),
                func.sum(CALLS.c.cache_read_tokens),
                func.coalesce(func.sum(CALLS.c.cost_usd), 0.0),
                func.sum(case((CALLS.c.cost_usd.is_(None), 1), else_=0)),
            )
            .select_from(CALLS.join(TASKS, CALLS.c.task_id == TASKS.c.id))
            .where(CALLS.c.run_id == run_id)
            .group_by(TASKS.c.step_id, iteration)
        )
        steps_stmt = (
            select(STEPS)
            .where(STEPS.c.run_id == run_id)
            .order_by(STEPS.c.started_at, STEPS.c.step_id, STEPS.c.iteration)
        )
        with self._read() as conn:
            steps = [StepRecord.from_row(r) for r in conn.execute(steps_stmt).mappings()]
            tasks = {(s, i): rest for s, i, *rest in conn.execute(tasks_stmt)}
            calls = {(s, i): rest for s, i, *rest in conn.execute(calls_stmt)}
        summaries = []
        for step in steps:
            key = (step.step_id, step.iteration or 0)
            n_tasks, done, failed, skipped = tasks.get(key, (0, 0, 0, 0))
            n_tasks = n_tasks or 0
            n_calls, inp, out, cw, cr, cost, n_unknown = calls.get(key, (0, 0, 0, 0, 0, 0.0, 0))
            inp, out, cw, cr = int(inp or 0), int(out or 0), int(cw or 0), int(cr or 0)
            prompt_tokens = inp + cr + cw
            duration = None
            if step.started_at is not None and step.finished_at is not None:
                duration = step.finished_at - step.started_at
            summaries.append(
                StepSummary(
                    step_id=step.step_id,
                    iteration=step.iteration,
                    kind=step.kind,
                    status=step.status,
                    tasks_total=int(n_tasks),
                    tasks_done=int(done or 0),
                    tasks_failed=int(failed or 0),
                    tasks_skipped=int(skipped or 0),
                    calls=int(n_calls),
                    input_tokens=inp,
                    output_tokens=out,
                    cache_creation_tokens=cw,
                    cache_read_tokens=cr,
                    cost_usd=None if n_unknown else float(cost or 0.0),
                    duration_s=duration,
                    cache_hit_ratio=cr / prompt_tokens if prompt_tokens else None,
                )
            )
        return summaries

    def export_run(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every row of a run, table by table: `{"table": "runs", "row": {...}}`, JSON columns
        decoded. Streams: the rows are read while the caller iterates."""
        with self._read() as conn:
            for table in RUN_TABLES:
                key = table.c.id if table is RUNS else table.c.run_id
                order = [table.c[c.name] for c in table.primary_key.columns]
                result = conn.execution_options(yield_per=500).execute(
                    select(table).where(key == run_id).order_by(*order)
                )
                decode = _JSON_COLUMNS[table.name]
                for mapping in result.mappings():
                    row = dict(mapping)
                    for column in decode:
                        row[column] = load_json(row[column])
                    yield {"table": table.name, "row": row}

    def delete_run(self, run_id: str) -> None:
        with self._write() as conn:
            for table in RUN_TABLES:
                key = table.c.id if table is RUNS else table.c.run_id
                conn.execute(delete(table).where(key == run_id))

    def prune(self, *, older_than_s: float, now: float | None = None) -> int:
        """Delete finished runs (not running, not interrupted) that finished more than
        `older_than_s` ago. Returns how many runs were deleted."""
        cutoff = (time.time() if now is None else now) - older_than_s
        with self._write() as conn:
            ids = list(
                conn.execute(
                    select(RUNS.c.id).where(
                        RUNS.c.status != "running",
                        RUNS.c.finished_at.is_not(None),
                        RUNS.c.finished_at < cutoff,
                    )
                ).scalars()
            )
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for table in RUN_TABLES:
                    key = table.c.id if table is RUNS else table.c.run_id
                    conn.execute(delete(table).where(key.in_(chunk)))
        return len(ids)


def _stale(cutoff: float) -> Any:
    return or_(
        RUNS.c.heartbeat_at < cutoff,
        and_(RUNS.c.heartbeat_at.is_(None), RUNS.c.started_at < cutoff),
    )


def _candidates(ids: list[str], total: int) -> str:
    shown = ", ".join(ids[:_SHOWN_CANDIDATES])
    more = total - min(len(ids), _SHOWN_CANDIDATES)
    return shown + (f" and {more} more" if more > 0 else "")


def _reason(exc: DBAPIError) -> str:
    message = str(exc.orig) if exc.orig is not None else str(exc)
    if isinstance(exc, OperationalError) and "readonly" in message.replace("-", ""):
        return f"{message} (is the file or its directory read-only?)"
    return message
