"""`Server`: one long-lived process hosting many runs of a set of workflows.

Every run is an ordinary run in the store (the same `assembly.execute` as `orchestrate run`),
but they share one store writer, one client and one `SharedLimits` (rate limiters, overload
gate, calls in flight), so overlapping runs back off together instead of each on its own.

Invariants:
- a run's failure (an error escaping the engine included) ends that run only; the server logs
  it and goes on;
- a run is recorded in `serve_runs` before it starts, so a restart knows it;
- stopping (SIGTERM/SIGINT, or `request_stop`) drains: no new run starts (schedules stop, the
  endpoint answers 503), running ones get `drain_timeout` seconds to finish, then are cancelled
  and marked drained; a second signal cancels them at once. A restart resumes every run it left
  unfinished: drained ones, and ones a killed server left `interrupted`;
- a scheduled workflow never gets more than one catch-up run for the slots missed while down.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from orchestrator.errors import UsageError
from orchestrator.serve import schedule as sched

if TYPE_CHECKING:
    import socket

    from orchestrator.assembly import Hosted, RunPlan
    from orchestrator.config import Settings
    from orchestrator.engine import Engine, RunOutcome
    from orchestrator.sim import SimConfig
    from orchestrator.store import Store
    from orchestrator.workflow import Workflow

__all__ = ["Draining", "Server"]

DRAIN_REASON = "serve stopped (drained)"
# A run the store shows with one of these was left unfinished by a server: resume it.
_UNFINISHED = ("interrupted", "running")


class Draining(UsageError):
    """The server is stopping: it starts no new run."""


@dataclass
class _Active:
    run_id: str
    workflow: str
    origin: str
    started_at: float
    slot: float | None = None
    engine: Engine | None = None


@dataclass
class _Hosting:
    """What the server knows of one hosted workflow while it runs."""

    workflow: Workflow
    scheduled_running: int = 0
    queued_slot: float | None = None
    next_slot: float | None = None
    skipped: int = 0


@dataclass
class _Finished:
    run_id: str
    workflow: str
    status: str
    outputs: dict[str, Any] | None
    error: str | None
    finished_at: float = field(default_factory=time.time)


class Server:
    """Build with the loaded workflows (by file stem); `await serve()` until stopped."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        workflows: dict[str, Workflow],
        sim: SimConfig | None = None,
        say: Callable[..., None] | None = None,
        drain_timeout: float = 30.0,
        concurrency: int | None = None,
        status_path: Path | None = None,
        token: str | None = None,
        webhook_secret: str | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.hosting = {stem: _Hosting(wf) for stem, wf in workflows.items()}
        self.sim = sim
        self.say = say or (lambda event, **fields: None)
        self.drain_timeout = drain_timeout
        self.concurrency = concurrency or settings.engine.concurrency
        self.status_path = status_path
        self.token = token or None
        self.webhook_secret = webhook_secret or None
        self.handle_signals = handle_signals
        self.accepting = False
        self.listen: str | None = None
        self.active: dict[str, _Active] = {}
        self.finished: dict[str, _Finished] = {}  # recent outcomes, for GET /runs/ID
        self.started_at = time.time()
        self._stop = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._hosted: Hosted | None = None
        self._runs_tg: anyio.abc.TaskGroup | None = None

    # --- starting runs ----------------------------------------------------------------------

    def start(
        self,
        workflow: str,
        inputs: dict[str, Any] | None = None,
        *,
        origin: str = "trigger",
        slot: float | None = None,
    ) -> str:
        """Start a run of a hosted workflow (its file stem) now; returns its id. Raises
        `UsageError` for an unknown workflow or bad inputs (nothing started), `Draining` while
        stopping. Call from the server's event loop."""
        from orchestrator.assembly import new_run

        if not self.accepting or self._runs_tg is None:
            raise Draining("the server is stopping (draining): it starts no new runs")
        hosting = self.hosting.get(workflow)
        if hosting is None:
            names = ", ".join(sorted(self.hosting)) or "none"
            raise UsageError(f"unknown workflow {workflow!r}; this server hosts: {names}")
        coerced = hosting.workflow.coerce_inputs(dict(inputs or {}))
        plan = new_run(self.settings, hosting.workflow, coerced)
        self._launch(plan, workflow, origin, slot, record=True)
        return plan.run_id

    def _launch(
        self, plan: RunPlan, workflow: str, origin: str, slot: float | None, *, record: bool
    ) -> None:
        assert self._runs_tg is not None
        active = _Active(plan.run_id, workflow, origin, time.time(), slot)
        self.active[plan.run_id] = active
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        if origin == "schedule":
            self.hosting[workflow].scheduled_running += 1
        self._runs_tg.start_soon(self._run, plan, active, record)

    async def _run(self, plan: RunPlan, active: _Active, record: bool) -> None:
        from orchestrator.assembly import Hosted, execute
        from orchestrator.store import ServeRuns

        assert self._hosted is not None
        outcome: RunOutcome | None = None
        error: str | None = None
        try:
            if record:
                await anyio.to_thread.run_sync(
                    ServeRuns(self.store).add,
                    plan.run_id,
                    active.workflow,
                    active.origin,
                    active.slot,
                )
            self.say(
                "run_started",
                run_id=plan.run_id,
                workflow=active.workflow,
                origin=active.origin,
                resumed=plan.resume is not None,
                **({"slot": _iso(active.slot)} if active.slot is not None else {}),
            )
            await self._write_status()

            def keep(engine: Engine) -> None:
                active.engine = engine
                if not self.accepting and self._stop.is_set() and self._cancel_now:
                    engine.cancel(DRAIN_REASON)

            hosted = Hosted(
                writer=self._hosted.writer,
                llm=self._hosted.llm,
                shared=self._hosted.shared,
                on_engine=keep,
            )
            outcome = await execute(self.settings, plan, self.store, sim=None, hosted=hosted)
        except Exception as exc:  # one run's failure never takes the server down
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with anyio.CancelScope(shield=True):
                await self._ended(plan, active, outcome, error)

    _cancel_now = False

    async def _ended(
        self, plan: RunPlan, active: _Active, outcome: RunOutcome | None, error: str | None
    ) -> None:
        self.active.pop(plan.run_id, None)
        status = str(outcome.status) if outcome is not None else "failed"
        self.finished[plan.run_id] = _Finished(
            plan.run_id,
            active.workflow,
            status,
            outcome.outputs if outcome is not None else None,
            outcome.error if outcome is not None else error,
        )
        while len(self.finished) > 1000:  # the store has them all; this is a recent cache
            self.finished.pop(next(iter(self.finished)))
        self.say(
            "run_finished",
            run_id=plan.run_id,
            workflow=active.workflow,
            status=status,
            seconds=round(time.time() - active.started_at, 3),
            **({"error": self.finished[plan.run_id].error} if status != "succeeded" else {}),
        )
        hosting = self.hosting[active.workflow]
        if active.origin == "schedule":
            hosting.scheduled_running -= 1
            if hosting.scheduled_running == 0 and hosting.queued_slot is not None:
                slot, hosting.queued_slot = hosting.queued_slot, None
                if self.accepting:
                    try:
                        self.start(active.workflow, origin="schedule", slot=slot)
                    except UsageError as exc:
                        self.say("slot_failed", workflow=active.workflow, error=str(exc))
        if not self.active:
            self._idle.set()
        await self._write_status()

    # --- the server's life ------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin draining (what SIGTERM does)."""
        self._stop.set()

    async def serve(self, sock: socket.socket | None = None) -> None:
        """Host the workflows until stopped: resume what a previous server left, run the
        schedules, answer the endpoint on `sock` (bound by the caller), drain, return."""
        from orchestrator.assembly import Hosted, host_client
        from orchestrator.engine.dispatch import SharedLimits

        closers: list[Callable[[], None]] = []
        workflows = [h.workflow for h in self.hosting.values()]
        llm = host_client(self.settings, workflows, self.sim, self.concurrency, closers)
        try:
            async with self.store.writer() as writer, anyio.create_task_group() as outer:
                self._hosted = Hosted(
                    writer=writer,
                    llm=llm,
                    shared=SharedLimits(self.settings, concurrency=self.concurrency),
                )
                signals = anyio.CancelScope()
                if self.handle_signals:
                    outer.start_soon(self._signals, signals)
                http_done = anyio.Event()
                if sock is not None:
                    outer.start_soon(self._http, sock, http_done)
                async with anyio.create_task_group() as runs:
                    self._runs_tg = runs
                    self.accepting = True
                    await self._resume_unfinished()
                    self.say(
                        "serving",
                        workflows=sorted(self.hosting),
                        listen=self.listen,
                        pid=os.getpid(),
                    )
                    await self._write_status()
                    async with anyio.create_task_group() as schedules:
                        for stem, hosting in self.hosting.items():
                            if hosting.workflow.schedule is not None:
                                schedules.start_soon(self._schedule, stem)
                        await self._stop.wait()
                        schedules.cancel_scope.cancel()
                    self.accepting = False
                    await self._drain()
                http_done.set()
                signals.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await llm.aclose()
            for close in reversed(closers):
                close()
            self._hosted = None
            self._runs_tg = None
            if self.status_path is not None:
                self.status_path.unlink(missing_ok=True)
            self.say("stopped")

    async def _drain(self) -> None:
        from orchestrator.store import ServeRuns

        if self.active:
            self.say("draining", running=len(self.active), timeout_s=self.drain_timeout)
            await self._write_status()
        with anyio.move_on_after(self.drain_timeout):
            await self._idle.wait()
        if self.active:
            await self._cancel_all()
            await anyio.to_thread.run_sync(ServeRuns(self.store).drained, list(self.active))
        await self._idle.wait()

    async def _cancel_all(self) -> None:
        self._cancel_now = True
        for active in list(self.active.values()):
            if active.engine is not None:
                active.engine.cancel(DRAIN_REASON)

    async def _signals(self, scope: anyio.CancelScope) -> None:
        with scope, anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            count = 0
            async for signum in received:
                count += 1
                name = signal.Signals(signum).name
                if count == 1:
                    self.say("signal", signal=name, action="drain")
                    self.request_stop()
                elif count == 2:
                    self.say("signal", signal=name, action="cancel runs")
                    self.drain_timeout = 0
                    await self._cancel_all()
                else:
                    os._exit(130)

    async def _resume_unfinished(self) -> None:
        """Resume every run of a hosted workflow that a previous server left unfinished."""
        from orchestrator.assembly import AlreadySucceeded, resume_run
        from orchestrator.store import ServeRuns, pid_alive

        rows = await anyio.to_thread.run_sync(ServeRuns(self.store).rows, list(self.hosting))
        stale = self.settings.engine.stale_after
        for row in rows:
            record = await anyio.to_thread.run_sync(
                functools.partial(self.store.get_run, row.run_id, stale_after_s=stale)
            )
            if record is None:
                continue  # recorded, then killed before its first event
            shown = record.status
            left = shown in _UNFINISHED and (shown == "interrupted" or not pid_alive(record.pid))
            if not left and not (shown == "cancelled" and row.drained_at is not None):
                continue
            try:
                plan = await anyio.to_thread.run_sync(
                    functools.partial(
                        resume_run, self.store, self.settings, row.run_id, sim=self.sim
                    )
                )
            except UsageError as exc:
                self.say("resume_refused", run_id=row.run_id, error=str(exc))
                continue
            if isinstance(plan, AlreadySucceeded):
                continue
            self._launch(plan, row.workflow, row.origin, row.slot, record=False)

    # --- schedules --------------------------------------------------------------------------

    async def _schedule(self, stem: str) -> None:
        from orchestrator.store import ServeRuns

        hosting = self.hosting[stem]
        schedule = hosting.workflow.schedule
        assert schedule is not None
        last = await anyio.to_thread.run_sync(ServeRuns(self.store).last_slot, stem)
        now = time.time()
        after = max(now, last or now)
        missed = sched.catch_up(schedule, last, now)
        if missed is not None:
            self.say("catch_up", workflow=stem, slot=_iso(missed))
            self._on_slot(stem, missed)
            after = max(after, missed)
        while True:
            slot = sched.next_slot(schedule, after)
            hosting.next_slot = slot
            await self._write_status()
            await anyio.sleep(max(0.0, slot - time.time()))
            # asleep past several slots (a suspended host): one run, for the latest
            slot = max(slot, sched.latest_slot(schedule, time.time()))
            self._on_slot(stem, slot)
            after = slot

    def _on_slot(self, stem: str, slot: float) -> None:
        hosting = self.hosting[stem]
        state = sched.Overlap(hosting.scheduled_running, hosting.queued_slot is not None)
        action = sched.decide(hosting.workflow.overlap, state)
        if action is sched.SlotAction.START:
            try:
                self.start(stem, origin="schedule", slot=slot)
            except UsageError as exc:
                self.say("slot_failed", workflow=stem, slot=_iso(slot), error=str(exc))
            return
        if action is sched.SlotAction.QUEUE:
            hosting.queued_slot = slot
        else:
            hosting.skipped += 1
        self.say("slot_" + str(action), workflow=stem, slot=_iso(slot))

    # --- the endpoint -----------------------------------------------------------------------

    async def _http(self, sock: socket.socket, done: anyio.Event) -> None:
        import uvicorn

        from orchestrator.serve.http import create_app

        config = uvicorn.Config(
            create_app(self), log_level="warning", timeout_graceful_shutdown=1, lifespan="off"
        )
        server = _Uvicorn(config)

        async def stop_when_done() -> None:
            await done.wait()
            server.should_exit = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_when_done)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()

    # --- what it hosts ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`serve status` and `GET /status`."""
        return {
            "pid": os.getpid(),
            "started_at": _iso(self.started_at),
            "listen": self.listen,
            "db": self.store.url,
            "draining": self._stop.is_set(),
            "workflows": {
                stem: {
                    "name": h.workflow.name,
                    "path": str(h.workflow.path),
                    "schedule": sched.describe(h.workflow.schedule)
                    if h.workflow.schedule
                    else None,
                    "overlap": h.workflow.overlap,
                    "state_scope": h.workflow.state_scope_name,
                    "next_slot": _iso(h.next_slot) if h.next_slot else None,
                    "queued": h.queued_slot is not None,
                    "skipped": h.skipped,
                }
                for stem, h in sorted(self.hosting.items())
            },
            "runs": [
                {
                    "run_id": a.run_id,
                    "workflow": a.workflow,
                    "origin": a.origin,
                    "started_at": _iso(a.started_at),
                }
                for a in self.active.values()
            ],
        }

    async def _write_status(self) -> None:
        if self.status_path is None:
            return
        text = json.dumps(self.status(), indent=2)
        path = self.status_path

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, "utf-8")
            tmp.replace(path)  # readers never see half a file

        try:
            await anyio.to_thread.run_sync(write)
        except OSError as exc:  # `serve status` goes stale; the runs go on
            self.say("warning", message=f"cannot write {path}: {exc.strerror}")


class _Uvicorn:
    """uvicorn's server without its signal handlers: the host owns SIGTERM (it drains)."""

    def __init__(self, config: Any) -> None:
        import contextlib

        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        self._server = Quiet(config)

    @property
    def should_exit(self) -> bool:
        return bool(self._server.should_exit)

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._server.should_exit = value

    async def serve(self, sockets: list[Any]) -> None:
        await self._server.serve(sockets=sockets)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def log_printer(json_lines: bool, out: Any = None) -> Callable[..., None]:
    """The server's log: one JSON object a line (`--json`), or `time event key=value`."""
    stream = out if out is not None else sys.stderr

    def say(event: str, **fields: Any) -> None:
        now = time.time()
        if json_lines:
            record = {"ts": round(now, 3), "event": event, **fields}
            stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        else:
            shown = " ".join(f"{k}={v}" for k, v in fields.items())
            stream.write(f"{time.strftime('%H:%M:%S', time.localtime(now))} {event} {shown}\n")
        stream.flush()

    return say
