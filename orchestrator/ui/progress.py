"""Sinks that show a run in progress: a rich live display on a terminal, plain lines elsewhere.

The engine calls a sink synchronously for every event, hundreds of thousands in a big run, so a
sink only folds the event into a `RunTally` (O(1)) and never draws. `ProgressDisplay` is redrawn
by rich's own refresh thread at most `refresh_per_second` times; `PlainProgress` writes one line
per notable event (run and step boundaries, failures, retries, rate limits, warnings), never one
per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Self

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from orchestrator import events as ev
from orchestrator.contracts import Usage
from orchestrator.names import task_label
from orchestrator.ui import _format as fmt
from orchestrator.ui._tally import RunTally, StepProgress

_STATUS_STYLE = {
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "skipped": "dim",
    "cancelled": "yellow",
    "budget_exceeded": "magenta",
    "interrupted": "yellow",
    "pending": "dim",
    "waiting": "bold yellow",
}
_STATUS_MARK = {
    "running": "…",
    "succeeded": "✓",
    "failed": "✗",
    "skipped": "-",
    "cancelled": "!",
    "budget_exceeded": "$",
    "waiting": "?",
}


def status_text(status: str, *, exhausted: bool | None = None) -> Text:
    """A status as shown; a loop that stopped at max_iterations with `until` still false
    succeeded, and says "exhausted" beside it (styled as a warning)."""
    if exhausted and status == "succeeded":
        return Text.assemble((status, _STATUS_STYLE.get(status, "")), " ", ("exhausted", "yellow"))
    return Text(status, style=_STATUS_STYLE.get(status, ""))


class ProgressDisplay:
    """A live view of one run: a line per step, a bar per fan-out, totals, elapsed time.

    Use as a context manager (or `start()`/`stop()`) around the run, and pass the instance as an
    event sink. `max_steps` bounds the lines drawn: running steps always show, then the most
    recent finished ones.
    """

    def __init__(
        self,
        console: Console,
        *,
        workflow_name: str,
        refresh_per_second: float = 8.0,
        max_steps: int | None = None,
        clock: Callable[[], float] = time.time,
        steps: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.tally = RunTally(workflow_name=workflow_name)
        self.tally.plan(steps)  # (id, kind) of every step: listed `pending` until they start
        self.console = console
        self.renders = 0
        self._clock = clock
        self._max_steps = max_steps
        self._live = Live(
            _View(self),
            console=console,
            auto_refresh=True,
            refresh_per_second=refresh_per_second,
            transient=False,
        )
        self._started = False

    def __call__(self, event: ev.Event) -> None:
        self.tally.apply(event)

    def start(self) -> None:
        if not self._started:
            self._started = True
            if self.tally.started_at is None:
                self.tally.started_at = self._clock()
            self._live.start()

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._live.stop()  # draws the final state once more

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def renderable(self) -> RenderableType:
        """The current frame (what the refresh thread draws)."""
        self.renders += 1
        tally = self.tally
        now = self._clock()
        header = Text.assemble(
            ("orchestrate ", "bold"),
            (tally.workflow_name, "bold cyan"),
            f"  run {tally.run_id or '-'}  ",
            status_text(tally.status),
            f"  {fmt.clock(tally.elapsed(now))}",
        )
        return Group(header, self._steps_table(now), self._totals(now))

    def _visible_steps(self) -> tuple[list[StepProgress], int]:
        steps = list(self.tally.steps.values())
        limit = self._max_steps
        if limit is None:
            limit = max(5, self.console.size.height - 6)
        if len(steps) <= limit:
            return steps, 0
        running = {s.step_id for s in steps if s.status == "running"}
        finished = [s for s in steps if s.step_id not in running]
        keep = running | {
            s.step_id for s in finished[max(0, len(finished) - (limit - len(running))) :]
        }
        shown = [s for s in steps if s.step_id in keep]
        return shown, len(steps) - len(shown)

    def _steps_table(self, now: float) -> Table:
        narrow = self.console.width < 110  # 80 columns: every step still on one line
        table = Table.grid(padding=(0, 1 if narrow else 2))
        for _ in range(7):
            table.add_column()
        steps, hidden = self._visible_steps()
        if hidden:
            table.add_row(Text(f"… {hidden} earlier steps", style="dim"))
        for step in steps:
            mark = _STATUS_MARK.get(step.status, " ")
            name = "  " * step.depth + f"{mark} {step.step_id}"
            if step.iteration is not None:
                name += f" #{step.iteration}"
            if step.started_at is None:  # not started yet: only its name, kind and status
                table.add_row(
                    Text(name, style="dim"), Text(step.kind, style="dim"), status_text(step.status)
                )
                continue
            table.add_row(
                Text(name, style=_STATUS_STYLE.get(step.status, ""), no_wrap=True),
                Text(step.kind, style="dim"),
                status_text(step.status, exhausted=step.exhausted),
                self._tasks_cell(step, narrow=narrow),
                f"{fmt.tokens(step.tokens)} tok",
                fmt.dollars(step.cost_usd, unknown=step.cost_unknown),
                fmt.duration(step.duration(now)),
            )
        return table

    @staticmethod
    def _tasks_cell(step: StepProgress, narrow: bool = False) -> RenderableType:
        total = step.total_tasks
        if total is None and step.kind != "fanout":
            if step.running:
                return Text(f"{step.running} running" + (" (retrying)" if step.retrying else ""))
            return Text("")
        total = total or max(step.finished_tasks + step.running, 1)
        parts = [f"{step.succeeded}/{total} done"]
        if step.running:
            parts.append(f"{step.running} running")
        if step.failed:
            parts.append(f"{step.failed} failed")
        if step.retrying:
            parts.append(f"{step.retrying} retrying")
        if step.skipped:
            parts.append(f"{step.skipped} skipped")
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            ProgressBar(
                total=total,
                completed=step.finished_tasks,
                width=8 if narrow else 20,
                complete_style="green",
                finished_style="red" if step.failed else "green",
            ),
            Text(
                (" " if narrow else " · ").join(parts),
                no_wrap=True,
                overflow="ellipsis",
            ),
        )
        return grid

    def _totals(self, now: float) -> Text:
        t = self.tally
        tokens = (
            f"tokens {fmt.tokens(t.usage.input_tokens)} in · "
            f"{fmt.tokens(t.usage.output_tokens)} out · "
            f"{fmt.tokens(t.usage.cache_creation_input_tokens)} cache write · "
            f"{fmt.tokens(t.usage.cache_read_input_tokens)} cache read · "
            + fmt.dollars(t.cost_usd, unknown=t.cost_unknown)
        )
        parts = [
            f"elapsed {fmt.duration(t.elapsed(now))}",
            f"{t.tasks_running} running",
            f"{t.calls} calls",
            f"rate-limit wait {fmt.duration(t.rate_limit_wait_s)}",
        ]
        if t.call_retries or t.task_retries:
            parts.append(f"{t.call_retries + t.task_retries} retries")
        if t.concurrency is not None:
            parts.append(f"concurrency {t.concurrency}")
        text = Text(tokens, style="bold")
        text.append("\n" + " · ".join(parts), style="dim")
        if t.warnings:
            text.append(f"\n{t.warnings} warning(s), last: {t.last_warning}", style="yellow")
        if t.error:
            text.append(f"\nerror: {t.error}", style="red")
        return text


class _View:
    """What `Live` redraws: asks the display for a fresh frame at each refresh."""

    def __init__(self, display: ProgressDisplay) -> None:
        self._display = display

    def __rich__(self) -> RenderableType:
        return self._display.renderable()


class PlainProgress:
    """One plain line per notable event, `[MM:SS] ...`, for logs and pipes (no terminal)."""

    def __init__(self, stream: IO[str], *, flush: bool = True) -> None:
        self.tally = RunTally()
        self._stream = stream
        self._flush = flush

    def __call__(self, event: ev.Event) -> None:
        # The label of a finishing task is known only before the tally forgets the task.
        line = describe(event, self.tally)
        self.tally.apply(event)
        if line is None:
            return
        if isinstance(event, ev.StepFinished):
            line += self._step_summary(self.tally.steps[event.step_id])
        elif isinstance(event, ev.RunFinished):
            line += self._run_summary()
        start = self.tally.started_at
        elapsed = fmt.clock(event.ts - start) if start is not None else "--:--"
        self._stream.write(f"[{elapsed}] {line}\n")
        if self._flush:
            self._stream.flush()

    def _step_summary(self, step: StepProgress) -> str:
        parts = [f" in {fmt.duration(step.duration(step.finished_at or step.started_at or 0.0))}"]
        counts = [
            f"{n} {word}"
            for n, word in (
                (step.succeeded, "done"),
                (step.failed, "failed"),
                (step.skipped, "skipped"),
                (step.cancelled, "cancelled"),
            )
            if n
        ]
        if counts:
            parts.append("tasks " + ", ".join(counts))
        if step.exhausted:
            parts.append("exhausted: stopped at max_iterations with 'until' still false")
        if step.tokens:
            parts.append(f"{fmt.tokens(step.tokens)} tokens")
            parts.append(fmt.dollars(step.cost_usd, unknown=step.cost_unknown))
        text = " · ".join(parts)
        return f"{text}: {step.error}" if step.error else text

    def _run_summary(self) -> str:
        t = self.tally
        tasks = f"{t.tasks_succeeded + t.tasks_failed} tasks"
        if t.tasks_failed:
            tasks += f" ({t.tasks_failed} failed)"
        parts = [
            f" in {fmt.duration(t.elapsed(t.finished_at or 0.0))}",
            tasks,
            f"{fmt.tokens(t.total_tokens)} tokens",
            fmt.dollars(t.cost_usd, unknown=t.cost_unknown),
        ]
        if t.rate_limit_wait_s:
            parts.append(f"rate-limit wait {fmt.duration(t.rate_limit_wait_s)}")
        text = " · ".join(parts)
        return f"{text}: {t.error}" if t.error else text


def describe(event: ev.Event, tally: RunTally | None = None) -> str | None:
    """A one-line description of a notable event; None for the routine ones (calls, heartbeats).

    Used by `PlainProgress` and by `orchestrate runs logs`. `tally` (state before the event)
    supplies the `step[index]` label of a task."""

    def label(task_id: str, step_id: str) -> str:
        return tally.task_label(task_id, step_id) if tally else step_id

    if isinstance(event, ev.RunStarted):
        resumed = " (resumed)" if event.resumed else ""
        return f"run {event.run_id} started{resumed}: {event.workflow_name} ({event.workflow_path})"
    if isinstance(event, ev.RunFinished):
        return f"run {event.status}"
    if isinstance(event, ev.StepStarted):
        details = [event.kind]
        if event.total_tasks is not None:
            details.append(f"{event.total_tasks} tasks")
        if event.iteration is not None:
            details.append(f"iteration {event.iteration}")
        return f"step {event.step_id} started ({', '.join(details)})"
    if isinstance(event, ev.StepFinished):
        return f"step {event.step_id} {event.status}"
    if isinstance(event, ev.TaskFinished):
        if event.status != "failed":
            return None
        return f"task {label(event.task_id, event.step_id)} failed: {event.error or 'no reason'}"
    if isinstance(event, ev.TaskRetried):
        return (
            f"task {label(event.task_id, event.step_id)} retried (attempt {event.attempt}) "
            f"after {fmt.duration(event.wait_s)}: {event.error}"
        )
    if isinstance(event, ev.CallRetried):
        http = f" HTTP {event.http_status}" if event.http_status is not None else ""
        return (
            f"call retried for {label(event.task_id, event.step_id)} ({event.kind}{http}, "
            f"attempt {event.attempt}), waiting {fmt.duration(event.wait_s)}: {event.error}"
        )
    if isinstance(event, ev.RateLimited):
        pause = f", pausing {fmt.duration(event.pause_s)}" if event.pause_s else ""
        reason = f": {event.reason}" if event.reason else ""
        return f"rate limited on {event.model}: concurrency {event.concurrency}{pause}{reason}"
    if isinstance(event, ev.Warning):
        where = label(event.task_id, event.step_id or "") if event.task_id else event.step_id
        return f"warning: {event.message}" + (f" ({where})" if where else "")
    if isinstance(event, ev.BatchSubmitted):
        return f"step {event.step_id} submitted batch {event.batch_id} ({event.requests} requests)"
    if isinstance(event, ev.CancelRequested):
        return f"cancel requested ({event.reason})"
    return None


def describe_verbose(event: ev.Event, tally: RunTally | None = None) -> str | None:
    """`describe`, plus a short line for the routine events (task starts and ends, calls, tools,
    shared state); None only for heartbeats. Used by `orchestrate runs logs`."""
    text = describe(event, tally)
    if text is not None:
        if isinstance(event, ev.StepFinished | ev.RunFinished) and event.error:
            text += f": {event.error}"
        return text

    def label(task_id: str, step_id: str) -> str:
        return tally.task_label(task_id, step_id) if tally else step_id

    if isinstance(event, ev.TaskStarted):
        name = task_label(event.step_id, event.index)
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        model = f" on {event.model}" if event.model else ""
        return f"task {name} started{attempt}{model}"
    if isinstance(event, ev.TaskFinished):
        total = Usage.from_dict(event.usage).total_tokens
        return (
            f"task {label(event.task_id, event.step_id)} {event.status} · "
            f"{event.turns} turn{'' if event.turns == 1 else 's'} · {fmt.tokens(total)} tokens · "
            f"{fmt.dollars(event.cost_usd)}"
        )
    if isinstance(event, ev.CallFinished):
        usage = event.usage or {}
        status = "" if event.status == "succeeded" else f" {event.status}"
        error = f": {event.error}" if event.error else ""
        return (
            f"call {label(event.task_id, event.step_id)} {event.model}{status} · "
            f"{fmt.tokens(int(usage.get('input_tokens') or 0))} in / "
            f"{fmt.tokens(int(usage.get('output_tokens') or 0))} out · "
            f"{fmt.duration(event.latency_s)}{error}"
        )
    if isinstance(event, ev.ToolCalled):
        error = " (error)" if event.is_error else ""
        preview = fmt.shorten(event.output_preview, 80)
        return f"tool {event.tool} by {label(event.task_id, event.step_id)}{error}: {preview}"
    if isinstance(event, ev.StateSet):
        return f"state {event.key} = {fmt.shorten(repr(event.value), 80)}"
    return None
