"""The store: opening (with migrations), the engine's reads, and the history queries of the CLI.

Writes during a run go through `Store.writer()` only (one writer per process, see `writer.py`).
The few writes made here -- `claim_run` by a resume, `request_cancel` from another process,
`delete_run`, `prune` -- are short BEGIN IMMEDIATE transactions that wait behind the writer (busy
timeout) rather than fail. Reads use a short-lived pooled connection or ORM session and return
the table classes of `models.py`, detached (usable after the session is gone); in WAL mode
readers never wait for the writer.

Run status "interrupted" is never stored: a run whose row says "running" but whose heartbeat is
older than `stale_after_s` died with its process, and the read side reports it so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
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
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from orchestrator.contracts import RecordedCall
from orchestrator.errors import UsageError
from orchestrator.ids import new_id
from orchestrator.store import _db, _refs, _replay
from orchestrator.store.migrations import LATEST_VERSION, migrate, schema_version
from orchestrator.store.models import (
    CALLS,
    EVENTS,
    RUN_TABLES,
    RUNS,
    STATE,
    STEPS,
    TASKS,
    Call,
    Run,
    Step,
    StoredEvent,
    Task,
)
from orchestrator.store.records import (
    USAGE_FIELDS,
    Claim,
    CostRow,
    PriorResult,
    ResumePoint,
    StepSummary,
    usage_of,
)

if TYPE_CHECKING:
    from orchestrator.store.writer import StoreWriter

STALE_AFTER_S = 30.0
_Row = TypeVar("_Row")


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there yet ("no runs yet"); a server database
    is assumed to exist (opening it says otherwise)."""
    path = _db.parse_location(url).path
    return path is None or path.exists()


def pid_alive(pid: int | None) -> bool:
    """Whether the process that ran a run still lives on this host (a fresh heartbeat from a
    process killed a moment ago must not block its resume). Unknown counts as alive."""
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            current = store._migrate(migrate_to)
            if current > LATEST_VERSION:
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

    def _migrate(self, migrate_to: int | None) -> int:
        """Bring the schema up to date; the version found before. Two processes opening one new
        SQLite file at once both upgrade a read lock to a write lock, and SQLite refuses one of
        them at once (no busy wait breaks that deadlock): that one looks again, and finds the
        schema the other wrote."""
        wanted = LATEST_VERSION if migrate_to is None else migrate_to
        for attempt in range(_MIGRATE_TRIES):
            try:
                with self._read() as conn:
                    current = schema_version(conn)
                if current < wanted:  # a read-only file that is up to date needs no write
                    with self._write_engine.begin() as conn:
                        migrate(conn, target=migrate_to)
                return current
            except DBAPIError as exc:
                if not _locked(exc) or attempt == _MIGRATE_TRIES - 1:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

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

    def _rows(self, stmt: Select[_Row]) -> list[_Row]:
        """The typed rows of an ORM select, detached: usable after the session is gone."""
        with Session(self._engine) as session:
            return list(session.scalars(stmt).all())

    # --- engine reads -----------------------------------------------------------------------------

    def get_run(self, run_id: str, *, stale_after_s: float | None = None) -> Run | None:
        """The run as stored; with `stale_after_s`, its status as shown (see `run_status`)."""
        rows = self._rows(select(Run).where(RUNS.c.id == run_id))
        if not rows:
            return None
        return rows[0] if stale_after_s is None else self._with_status(rows[0], stale_after_s)

    def succeeded_tasks(self, run_id: str) -> dict[str, Task]:
        """Succeeded tasks by key (the latest one when a key succeeded more than once)."""
        stmt = (
            select(Task)
            .where(TASKS.c.run_id == run_id, TASKS.c.status == "succeeded")
            .order_by(TASKS.c.finished_at, TASKS.c.id)
        )
        return {task.key: task for task in self._rows(stmt)}

    def resume_point(self, run_id: str) -> ResumePoint:
        """What a resume keeps: every succeeded task's output, the shared state, the Message
        Batches already submitted (resume polls them instead of paying again), and what the
        run has spent so far (its budgets go on from there)."""
        run = self.get_run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r}")
        batches: dict[str, list[str]] = {}
        for event in self.events(run_id, type="batch_submitted"):
            payload = event.payload or {}
            batches.setdefault(payload["step_id"], []).append(payload["batch_id"])
        tasks = {
            key: PriorResult(output=task.output, usage=task.usage, cost_usd=task.cost_usd)
            for key, task in self.succeeded_tasks(run_id).items()
        }
        by_step: dict[str, tuple[float, int]] = {}
        for row in self.cost_breakdown(run_id):  # per step and model: summed per step
            usd, tokens = by_step.get(row.step_id, (0.0, 0))
            by_step[row.step_id] = (usd + (row.cost_usd or 0.0), tokens + row.usage.total_tokens)
        return ResumePoint(
            tasks=tasks,
            state=self.state_items(run_id),
            batches=batches,
            spent_usd=run.cost_usd or 0.0,
            spent_tokens=run.usage.total_tokens,
            spent_by_step=by_step,
            conversations=self.conversations(run_id),
        )

    def conversations(self, run_id: str) -> dict[str, list[RecordedCall]]:
        """The recorded calls of every task key that was in flight when its process ended, for
        call-level replay (see `_replay.py`)."""
        return _replay.conversations(self, run_id)

    def conversation_calls(self, task: Task) -> list[Call]:
        """A task's calls, preceded by the calls it replayed from the earlier processes of its
        conversation: what `runs transcript` shows as one conversation."""
        return _replay.conversation_calls(self, task)

    def claim_run(
        self,
        run_id: str,
        *,
        pid: int,
        stale_after_s: float = STALE_AFTER_S,
        alive: Callable[[int | None], bool] = pid_alive,
    ) -> Claim:
        """Take a run over for a resume, atomically: of two processes claiming one run at the
        same moment, exactly one gets `ok`. A run that succeeded, or that a live process still
        runs (fresh heartbeat), is refused. The claim is one conditional UPDATE on what was
        read (status, heartbeat, pid, owner): whoever changes the row first wins, and it marks
        the run running under a new owner, with a fresh heartbeat, before any work starts."""
        self._check_writable()
        run = self.get_run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r}")
        shown = self.run_status(run, stale_after_s)
        if shown == "succeeded":
            return Claim(False, shown, f"run {run_id} already succeeded: nothing to resume")
        if shown == "running" and alive(run.pid):
            return Claim(
                False,
                shown,
                f"run {run_id} is still running (process {run.pid}, heartbeat fresh); "
                f"cancel it first with `orchestrate runs cancel {run_id[:10]}`",
            )
        stmt = (
            update(RUNS)
            .where(
                RUNS.c.id == run_id,
                RUNS.c.status == run.status,
                RUNS.c.heartbeat_at.is_not_distinct_from(run.heartbeat_at),
                RUNS.c.pid.is_not_distinct_from(run.pid),
                RUNS.c.owner.is_not_distinct_from(run.owner),
            )
            .values(
                status="running",
                owner=new_id(),
                pid=pid,
                heartbeat_at=time.time(),
                cancel_requested=False,
            )
        )
        with self._write() as conn:
            won = conn.execute(stmt).rowcount == 1
        if not won:
            return Claim(
                False,
                "running",
                f"run {run_id} was just taken over by another process; "
                f"see `orchestrate runs show {run_id[:10]}`",
            )
        return Claim(True, shown)

    def step_records(self, run_id: str) -> list[Step]:
        stmt = (
            select(Step)
            .where(STEPS.c.run_id == run_id)
            .order_by(STEPS.c.started_at, STEPS.c.step_id, STEPS.c.iteration)
        )
        return self._rows(stmt)

    def state_items(self, run_id: str) -> dict[str, Any]:
        stmt = select(STATE.c.key, STATE.c.value).where(STATE.c.run_id == run_id)
        with self._read() as conn:
            return {key: value for key, value in conn.execute(stmt)}

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
        return _refs.resolve_run(self._engine, ref)

    def resolve_task(self, run_id: str, ref: str) -> Task:
        """A task id (or a unique prefix), a step id whose step ran one task, or `step[index]`
        for a fan-out item. Where several attempts exist (loop iterations, resumes), the latest."""
        return _refs.resolve_task(self._engine, run_id, ref)

    def run_status(self, run: Run, stale_after_s: float = STALE_AFTER_S) -> str:
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
    ) -> list[Run]:
        """Newest first, with the derived status (see `run_status`). `workflow` matches the
        workflow's name or its path; `limit` <= 0 means no limit."""
        stmt = select(Run).order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc())
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
        return [self._with_status(r, stale_after_s) for r in self._rows(stmt)]

    def _with_status(self, run: Run, stale_after_s: float) -> Run:
        run.status = self.run_status(run, stale_after_s)  # a detached row: only ours changes
        return run

    def list_tasks(
        self, run_id: str, *, step: str | None = None, status: str | None = None
    ) -> list[Task]:
        """In the order they started (ULIDs sort by creation time)."""
        stmt = select(Task).where(TASKS.c.run_id == run_id)
        if step is not None:
            stmt = stmt.where(TASKS.c.step_id == step)
        if status is not None:
            stmt = stmt.where(TASKS.c.status == status)
        return self._rows(stmt.order_by(TASKS.c.started_at, TASKS.c.id))

    def task_calls(self, task_id: str) -> list[Call]:
        return self._rows(
            select(Call).where(CALLS.c.task_id == task_id).order_by(CALLS.c.ts, CALLS.c.id)
        )

    def events(
        self,
        run_id: str,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        type: str | None = None,  # noqa: A002 - the event's own field name
    ) -> list[StoredEvent]:
        """Stored events in order; poll with `after_seq` = the last seq seen to follow a run."""
        stmt = (
            select(StoredEvent)
            .where(EVENTS.c.run_id == run_id, EVENTS.c.seq > after_seq)
            .order_by(EVENTS.c.seq)
        )
        if type is not None:
            stmt = stmt.where(EVENTS.c.type == type)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._rows(stmt)

    def cost_breakdown(self, run_id: str) -> list[CostRow]:
        """Per step and model, from the calls (failed attempts that consumed tokens included)."""
        stmt = (
            select(
                CALLS.c.step_id,
                CALLS.c.model,
                func.count(),
                func.coalesce(func.sum(CALLS.c.cost_usd), 0.0),
                _unpriced(),
                *_usage_sums(),
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
                usage=usage_of(usage),
                cost_usd=None if n_unknown else float(cost),
            )
            for step_id, model, calls, cost, n_unknown, *usage in rows
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
                func.sum(case((TASKS.c.status.in_(("cancelled", "waiting")), 0), else_=1)),
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
                func.coalesce(func.sum(CALLS.c.cost_usd), 0.0),
                _unpriced(),
                *_usage_sums(),
            )
            .select_from(CALLS.join(TASKS, CALLS.c.task_id == TASKS.c.id))
            .where(CALLS.c.run_id == run_id)
            .group_by(TASKS.c.step_id, iteration)
        )
        with self._read() as conn:
            tasks = {(s, i): rest for s, i, *rest in conn.execute(tasks_stmt)}
            calls = {(s, i): rest for s, i, *rest in conn.execute(calls_stmt)}
        summaries = []
        for step in self.step_records(run_id):
            key = (step.step_id, step.iteration)
            n_tasks, done, failed, skipped = tasks.get(key, (0, 0, 0, 0))
            n_calls, cost, n_unknown, *usage = calls.get(key, (0, 0.0, 0))
            duration = None
            if step.started_at is not None and step.finished_at is not None:
                duration = step.finished_at - step.started_at
            summaries.append(
                StepSummary(
                    step_id=step.step_id,
                    iteration=step.loop_iteration,
                    kind=step.kind,
                    status=step.status,
                    tasks_total=int(n_tasks or 0),
                    tasks_done=int(done or 0),
                    tasks_failed=int(failed or 0),
                    tasks_skipped=int(skipped or 0),
                    calls=int(n_calls),
                    usage=usage_of(usage),
                    cost_usd=None if n_unknown else float(cost or 0.0),
                    duration_s=duration,
                    exhausted=step.exhausted,
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
                for mapping in result.mappings():  # JSON columns come decoded (JSONText)
                    yield {"table": table.name, "row": dict(mapping)}

    def delete_run(self, run_id: str) -> None:
        with self._write() as conn:
            for table in RUN_TABLES:
                key = table.c.id if table is RUNS else table.c.run_id
                conn.execute(delete(table).where(key == run_id))

    def prune(self, *, older_than_s: float, now: float | None = None) -> int:
        """Delete finished runs (not running, not interrupted, not waiting for a person: their
        questions are still to be answered) that finished more than `older_than_s` ago.
        Returns how many runs were deleted."""
        cutoff = (time.time() if now is None else now) - older_than_s
        with self._write() as conn:
            ids = list(
                conn.execute(
                    select(RUNS.c.id).where(
                        RUNS.c.status.not_in(("running", "waiting")),
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


def _usage_sums() -> list[Any]:
    """SUM of each token column of calls, in `USAGE_FIELDS` order (see `usage_of`)."""
    return [func.sum(CALLS.c[name]) for name in USAGE_FIELDS]


def _unpriced() -> Any:
    """How many calls had no price (their cost is unknown, so the sum is a lower bound)."""
    return func.sum(case((CALLS.c.cost_usd.is_(None), 1), else_=0))


def _stale(cutoff: float) -> Any:
    return or_(
        RUNS.c.heartbeat_at < cutoff,
        and_(RUNS.c.heartbeat_at.is_(None), RUNS.c.started_at < cutoff),
    )


_MIGRATE_TRIES = 200  # 0.05 s apart: another process migrating the same new file finishes


def _locked(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig or exc)


def _reason(exc: DBAPIError) -> str:
    message = str(exc.orig) if exc.orig is not None else str(exc)
    if isinstance(exc, OperationalError) and "readonly" in message.replace("-", ""):
        return f"{message} (is the file or its directory read-only?)"
    return message
