"""`orchestrate runs ...`: the history of runs, read from the store.

These commands import neither the SDK nor the engine: only the store, the settings and the ui,
inside each command, so `orchestrate --help` stays fast. Reads open the store read-only; only
`rm`, `prune` and `cancel` write. A RUN is a full id, a unique prefix of one, or `last`.

Every `--json` output is a stable contract (keys are only ever added); its shape is written in
each command's help, and comes from the store's typed rows (`to_dict()`). Token counts carry the
Messages API's names: input_tokens, output_tokens, cache_creation_input_tokens (with its parts
cache_creation_5m_input_tokens and cache_creation_1h_input_tokens, present wherever it is),
cache_read_input_tokens, and `tokens`, the sum of the four. Timestamps in JSON are UTC ISO 8601
(`2025-01-31T14:05:09.123456Z`), durations are seconds, costs are US dollars with `cost_unknown:
true` when some model had no price in the configs (the dollars then cover the priced part only).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli._json import clean_costs
from orchestrator.cli._options import DbOpt
from orchestrator.cli.app import runs_app
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from orchestrator.store import Step, Store, StoredEvent, Task

_POLL_S = 0.5

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (shape in the help above).")]
RunArg = Annotated[
    str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")
]


# --- plumbing ----------------------------------------------------------------------------------


class _Ctx:
    """The settings a history command needs, loaded once."""

    def __init__(self, db: str | None) -> None:
        from orchestrator.config import load_settings

        settings = load_settings()
        self.db = db or settings.engine.db
        self.stale_after = settings.engine.stale_after


def _no_database(url: str) -> bool:
    from orchestrator.store import database_exists

    return not database_exists(url)


@contextmanager
def _store(ctx: _Ctx, *, readonly: bool = True) -> Iterator[Store]:
    from orchestrator.store import Store

    if _no_database(ctx.db):
        raise UsageError(f"no runs yet (no database at {ctx.db})")
    store = Store.open(ctx.db, readonly=readonly)
    try:
        yield store
    finally:
        store.close()


def _wait_for_a_run(ctx: _Ctx, poll: float) -> None:
    """`runs logs last --follow` started before the run it is meant for: wait for one to exist
    (a second terminal is usually opened first) instead of failing with "no runs yet"."""
    told = False
    while True:
        if not _no_database(ctx.db):
            try:
                with _store(ctx) as store:
                    if store.list_runs(limit=1):
                        return
            except Exception:  # a store being created right now: not yet
                pass
        if not told:
            print("waiting for a run to start (Ctrl-C to stop)", file=sys.stderr, flush=True)
            told = True
        time.sleep(poll)


def _resolve(store: Store, ref: str) -> str:
    try:
        return store.resolve_run(ref)
    except UsageError:
        raise
    except (LookupError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None


def _console() -> Console:
    from rich.console import Console

    # Piped into a file or `less`, a table gets room for its columns instead of rich's 80;
    # COLUMNS still wins when set.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    return Console(highlight=False, soft_wrap=False, width=width)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(clean_costs(value), indent=2, ensure_ascii=False, default=str))


_TOTALS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "tokens",
    "cost_usd",
    "cost_unknown",
    "calls",
    "retries",
    "tasks_total",
    "tasks_done",
    "tasks_failed",
)
"""The keys of a run's JSON that `runs show` groups under `totals`."""


# --- runs list ---------------------------------------------------------------------------------


@runs_app.command("list")
def list_runs(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only runs in this status: running, interrupted, succeeded, failed, "
            "cancelled, budget_exceeded, waiting.",
        ),
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only runs of this workflow (its name).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most N runs.")] = 20,
    json_: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """List runs, newest first.

    --json prints an array of {id, workflow, workflow_path, status, started_at, finished_at,
    duration_s, tasks_total, tasks_done, tasks_failed, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens, tokens, cost_usd, cost_unknown, calls,
    retries, error}. No database yet: an empty list.
    """
    ctx = _Ctx(db)
    if _no_database(ctx.db):
        if json_:
            _print_json([])
        else:
            typer.echo("no runs yet")
        return
    with _store(ctx) as store:
        records = store.list_runs(
            status=status, workflow=workflow, limit=limit, stale_after_s=ctx.stale_after
        )
        rows = [rec.to_dict() for rec in records]
    if json_:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no runs yet" if status is None and workflow is None else "no matching runs")
        return
    from orchestrator.ui.tables import runs_table

    _console().print(runs_table(rows))


# --- runs show ---------------------------------------------------------------------------------


def _errors(steps: list[Step], failed_tasks: list[Task]) -> list[dict[str, Any]]:
    """Failed tasks with their error, then failed steps whose error no task explains."""
    errors: list[dict[str, Any]] = []
    with_task = set()
    for task in failed_tasks:
        with_task.add(task.step_id)
        errors.append(
            {"step": task.step_id, "task": task.id, "label": task.label, "error": task.error}
        )
    for step in steps:
        if step.status == "failed" and step.error and step.step_id not in with_task:
            errors.append(
                {"step": step.step_id, "task": None, "label": step.label, "error": step.error}
            )
    return errors


@runs_app.command("show")
def show(run: RunArg, json_: JsonOpt = False, db: DbOpt = None) -> None:
    """Show one run: workflow, inputs, status, timings, a table per step, outputs, errors, totals.

    --json prints {id, workflow, workflow_path, status, started_at, finished_at, duration_s,
    sandbox: {mode, network, backend, version?, path?, problem?} (as the last process to run it
    recorded it), inputs, outputs, error, steps: [{id, kind, status, iteration, tasks_total,
    tasks_succeeded, tasks_failed, tasks_skipped, input_tokens, output_tokens,
    cache_creation_input_tokens, calls, cache_read_input_tokens, tokens, cost_usd, cost_unknown,
    duration_s, cache_hit_ratio}],
    errors: [{step, task, label, error}], questions: [as in `runs waiting`, answered ones too],
    cache_ttls: [{step_id, ttl, why}] (each step `cache.ttl: auto` gave the 1h TTL, and why),
    totals: {input_tokens,
    output_tokens, cache_creation_input_tokens, cache_read_input_tokens, tokens, cost_usd,
    cost_unknown, calls, retries, tasks_total, tasks_done, tasks_failed}}.
    """
    from orchestrator.store import Questions

    ctx = _Ctx(db)
    with _store(ctx) as store:
        run_id = _resolve(store, run)
        rec = store.get_run(run_id, stale_after_s=ctx.stale_after)
        assert rec is not None
        base = rec.to_dict()
        steps = [s.to_dict() for s in store.step_summaries(run_id)]
        failed = store.list_tasks(run_id, status="failed")
        errors = _errors(store.step_records(run_id), failed)
        questions = [q.to_dict() for q in Questions(store).of_run(run_id)]
        every = [t.to_dict(output=False) for t in store.list_tasks(run_id)]
        started = store.events(run_id, type="run_started")  # one per process that ran it
        sandbox = (started[-1].payload or {}).get("sandbox") if started else None
        ttls = [e.payload or {} for e in store.events(run_id, type="cache_ttl")]
    detail: dict[str, Any] = {
        **{k: v for k, v in base.items() if k not in _TOTALS},
        "sandbox": sandbox,
        "inputs": rec.inputs or {},
        "outputs": rec.outputs,
        "steps": steps,
        "errors": errors,
        "questions": questions,
        "cache_ttls": [{k: t.get(k) for k in ("step_id", "ttl", "why")} for t in ttls],
        "totals": {k: base[k] for k in _TOTALS},
    }
    if json_:
        _print_json(detail)
        return
    from orchestrator.cli._tree import delegation_tree
    from orchestrator.ui.tables import run_detail

    console = _console()
    console.print(run_detail(detail))
    tree = delegation_tree(every)  # agents that started agents (`Task` calls)
    if tree is not None:
        console.print(tree)


# --- runs tasks --------------------------------------------------------------------------------


@runs_app.command("tasks")
def tasks(
    run: RunArg,
    step: Annotated[str | None, typer.Option("--step", help="Only this step's tasks.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only tasks in this status (pending, running, succeeded, failed...)."
        ),
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """List a run's tasks (one per worker); agents started by a `Task` call follow their parent,
    indented.

    --json prints an array of {id, step, index, iteration, label, key, status, agent, model,
    attempts, turns, input_tokens, output_tokens, cache_creation_input_tokens,
    cache_read_input_tokens, tokens, cost_usd, cost_unknown, started_at, finished_at, duration_s,
    error, parent_id, output} (parent_id: the task whose `Task` call started it, or null).
    """
    ctx = _Ctx(db)
    with _store(ctx) as store:
        run_id = _resolve(store, run)
        rows = [t.to_dict() for t in store.list_tasks(run_id, step=step, status=status)]
    if json_:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no matching tasks")
        return
    from orchestrator.cli._tree import indented
    from orchestrator.ui.tables import tasks_table

    _console().print(tasks_table(indented(rows)))  # an agent's children under it


# --- runs transcript ---------------------------------------------------------------------------


@runs_app.command("transcript")
def transcript(
    run: RunArg,
    task: Annotated[
        str,
        typer.Argument(
            metavar="TASK",
            help="A task id or unique prefix, a step id (a single-task step), `step[index]`, "
            "or an agent a task started: `lead/researcher[2]`.",
        ),
    ],
    json_: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """One worker's isolated conversation, rebuilt from its calls: system prompt, user prompt,
    each assistant turn with its tool calls and their results, the final output, usage.

    --json prints {task: {...as in `runs tasks`, plus system, prompt}, system, prompt, tools,
    output_schema, turns: [{call_id, attempt, status, error, model, request_id, latency_s,
    stop_reason, usage, cost_usd, text, tool_calls: [{id, name, input, server, result,
    is_error}], server_results, followups}], output, usage, cost_usd, cost_unknown, calls: [the
    raw calls: {id, attempt, model, status, error, http_status, request_id, latency_s, request,
    response, usage, cost_usd}]}.
    """
    from orchestrator.ui.transcript import build_transcript, render_transcript

    ctx = _Ctx(db)
    with _store(ctx) as store:
        run_id = _resolve(store, run)
        try:
            rec = store.resolve_task(run_id, task)
        except UsageError:
            raise
        except (LookupError, ValueError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        # a resumed task's calls follow those it replayed: one conversation
        calls = [c.to_dict() for c in store.conversation_calls(rec)]
    info = {**rec.to_dict(), "system": rec.system, "prompt": rec.prompt}
    result = build_transcript(calls, task=info)
    if json_:
        _print_json({**result, "calls": calls})
        return
    _console().print(render_transcript(result))


# --- runs logs ---------------------------------------------------------------------------------


class _LogPrinter:
    """Text lines for `runs logs`: the notable events as in plain progress, plus the routine ones
    (task starts, calls, tools, state) in short; heartbeats are left out."""

    def __init__(self, run_id: str) -> None:
        from orchestrator.ui._tally import RunTally

        self.run_id = run_id
        self.tally = RunTally()

    def line(self, rec: StoredEvent) -> str | None:
        from orchestrator.events import event_from_dict
        from orchestrator.ui._format import timestamp
        from orchestrator.ui.progress import describe_verbose

        data = rec.as_event_dict()
        if rec.type == "call_finished":
            data.setdefault("request", {})  # the bodies live in `calls`, not in the event log
        try:
            event = event_from_dict(data)
        except (KeyError, TypeError):
            return f"{timestamp(rec.ts)}  {rec.type}"
        text = describe_verbose(event, self.tally)
        self.tally.apply(event)
        return None if text is None else f"{timestamp(rec.ts)}  {text}"


@runs_app.command("logs")
def logs(
    run: RunArg,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new events until the run is no longer running."
        ),
    ] = False,
    json_: JsonOpt = False,
    db: DbOpt = None,
    poll: Annotated[float, typer.Option("--poll", hidden=True, min=0.01)] = _POLL_S,
    text: Annotated[
        bool,
        typer.Option("--text", help="Print the text workers stream, labelled by task, instead."),
    ] = False,
) -> None:
    """A run's event stream, oldest first. With --follow, wait for new events of a run another
    process executes, until it finishes (or its heartbeat goes stale: interrupted).

    --json prints one JSON object per line (JSON Lines): {seq, type, ts, run_id, ...the event's
    fields as `orchestrate run --json` prints them}, less the bodies stored once, in their own
    rows: call requests and responses, task prompts and outputs, step and run outputs (see
    `runs transcript`, `runs tasks --json`, `runs show --json`, or all of it: `runs export`).
    """
    ctx = _Ctx(db)
    if follow and run == "last":
        _wait_for_a_run(ctx, poll)
    with _store(ctx) as store:
        run_id = _resolve(store, run)
        if text:  # from the run's JSON log, which holds the deltas the store does not (cli/web.py)
            from orchestrator.cli.web import print_text

            print_text(
                store,
                run_id,
                ctx.db,
                follow=follow,
                stale_after=ctx.stale_after,
                poll=poll,
                json_lines=json_,
            )
            return
        printer = _LogPrinter(run_id)
        after = 0

        def drain() -> int:
            nonlocal after
            records = store.events(run_id, after_seq=after)
            for rec in records:
                after = max(after, rec.seq or 0)
                if json_:
                    sys.stdout.write(json.dumps(clean_costs(rec.to_dict()), default=str) + "\n")
                else:
                    text = printer.line(rec)
                    if text is not None:
                        sys.stdout.write(text + "\n")
            sys.stdout.flush()
            return len(records)

        drain()
        while follow:
            rec = store.get_run(run_id)
            if rec is None or store.run_status(rec, ctx.stale_after) != "running":
                drain()  # the last events, written before the status changed
                break
            if not drain():
                time.sleep(poll)


# --- runs cost ---------------------------------------------------------------------------------


@runs_app.command("cost")
def cost(run: RunArg, json_: JsonOpt = False, db: DbOpt = None) -> None:
    """Tokens and dollars per step and model.

    --json prints {run, rows: [{step, model, calls, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens, tokens, cost_usd, cost_unknown}], totals:
    {calls, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
    tokens, cost_usd, cost_unknown}}.
    """
    from orchestrator.store import CostRow

    ctx = _Ctx(db)
    with _store(ctx) as store:
        run_id = _resolve(store, run)
        breakdown = store.cost_breakdown(run_id)
    rows = [r.to_dict() for r in breakdown]
    totals = CostRow.totals(breakdown)
    if json_:
        _print_json({"run": run_id, "rows": rows, "totals": totals})
        return
    from orchestrator.ui.tables import cost_table

    _console().print(cost_table(rows, totals))


# --- runs export -------------------------------------------------------------------------------


class ExportFormat(StrEnum):
    json = "json"
    jsonl = "jsonl"


@runs_app.command("export")
def export(
    run: RunArg,
    format_: Annotated[
        ExportFormat, typer.Option("--format", help="One JSON document, or JSON Lines.")
    ] = ExportFormat.jsonl,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export everything the store holds about a run: the run, its steps, tasks, calls (full
    requests and responses), events and shared state.

    jsonl: one object per line, {table, row}, table by table (runs, steps, tasks, calls, events,
    state), JSON columns decoded; json: the same objects in one array.
    """
    ctx = _Ctx(db)
    with _store(ctx) as store:
        run_id = _resolve(store, run)
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            if format_ is ExportFormat.jsonl:
                for item in store.export_run(run_id):
                    stream.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
            else:
                stream.write("[")
                for n, item in enumerate(store.export_run(run_id)):
                    stream.write(",\n" if n else "\n")
                    stream.write(json.dumps(item, ensure_ascii=False, default=str))
                stream.write("\n]\n")
        finally:
            if output:
                stream.close()
            else:
                stream.flush()
    if output:
        typer.echo(f"exported run {run_id} to {output}", err=True)


# --- runs rm / prune / cancel ------------------------------------------------------------------


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@runs_app.command("rm")
def rm(
    run: RunArg,
    yes: YesOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even a run that is still running.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Delete a run and everything recorded about it (asks first unless --yes)."""
    ctx = _Ctx(db)
    with _store(ctx, readonly=False) as store:
        run_id = _resolve(store, run)
        rec = store.get_run(run_id)
        assert rec is not None
        status = store.run_status(rec, ctx.stale_after)
        if status == "running" and not force:
            raise UsageError(
                f"run {run_id} is still running; cancel it first "
                f"(orchestrate runs cancel {run_id}) or use --force"
            )
        if not yes and not typer.confirm(
            f"Delete run {run_id} ({rec.workflow_name}, {status})?", default=False
        ):
            typer.echo("nothing deleted")
            raise typer.Exit(1)
        store.delete_run(run_id)
    typer.echo(f"deleted run {run_id}")


@runs_app.command("prune")
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", metavar="DURATION", help="Age of the runs to delete: 30d, 12h, 90m."
        ),
    ],
    yes: YesOpt = False,
    db: DbOpt = None,
) -> None:
    """Delete the runs that finished longer ago than --older-than (asks unless --yes). Running,
    interrupted and waiting runs are kept: resume (answer first) or `runs rm` them."""
    from orchestrator.config import parse_duration

    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    ctx = _Ctx(db)
    if _no_database(ctx.db):
        typer.echo("no runs yet")
        return
    if not yes and not typer.confirm(
        f"Delete every run that finished more than {older_than} ago?", default=False
    ):
        typer.echo("nothing deleted")
        raise typer.Exit(1)
    with _store(ctx, readonly=False) as store:
        count = store.prune(older_than_s=seconds)
    typer.echo(f"deleted {count} run{'s' if count != 1 else ''}")


@runs_app.command("cancel")
def cancel(run: RunArg, db: DbOpt = None) -> None:
    """Ask a run that another process executes to stop gracefully: in-flight workers finish
    their current call, nothing new starts, and the run ends `cancelled` (resumable)."""
    ctx = _Ctx(db)
    with _store(ctx, readonly=False) as store:
        run_id = _resolve(store, run)
        rec = store.get_run(run_id)
        assert rec is not None
        status = store.run_status(rec, ctx.stale_after)
        if status != "running":
            raise UsageError(f"run {run_id} is not running (it is {status})")
        store.request_cancel(run_id)
    typer.echo(f"cancel requested for run {run_id}; it stops at its next checkpoint")
