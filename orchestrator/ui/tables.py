"""Tables for the history commands (`orchestrate runs ...`).

They render the same JSON-ready dicts the commands print with `--json` (see
`orchestrator/cli/history.py` for the keys), so text and JSON never disagree and this module
needs nothing from the store.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.ui import _format as fmt
from orchestrator.ui.progress import status_text

Row = Mapping[str, Any]


def _local(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        when = _dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def _cost(row: Row) -> str:
    return fmt.dollars(row.get("cost_usd"), unknown=bool(row.get("cost_unknown")))


_FREE_TEXT = frozenset({"error"})


def _table(*columns: str, title: str | None = None, right: Sequence[str] = ()) -> Table:
    """One line per row: on a narrow terminal cells end in an ellipsis rather than wrap into
    towers; only free text (errors) folds. Full values are always in `--json`."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_edge=False,
        collapse_padding=True,
    )
    for name in columns:
        text = name in _FREE_TEXT
        table.add_column(
            name,
            justify="right" if name in right else "left",
            overflow="fold" if text else "ellipsis",
            no_wrap=not text,
            min_width=12 if text else None,
        )
    return table


def runs_table(rows: Sequence[Row]) -> Table:
    table = _table(
        "run",
        "workflow",
        "status",
        "started",
        "duration",
        "workers",
        "tokens",
        "cost",
        right=("duration", "workers", "tokens", "cost"),
    )
    for row in rows:
        workers = f"{row.get('tasks_done', 0)}/{row.get('tasks_total', 0)}"
        if row.get("tasks_failed"):
            workers += f" ({row['tasks_failed']} failed)"
        table.add_row(
            str(row["id"]),
            str(row.get("workflow") or ""),
            status_text(str(row.get("status"))),
            _local(row.get("started_at")),
            fmt.duration(row.get("duration_s")),
            workers,
            fmt.tokens(row.get("tokens")),
            _cost(row),
        )
    return table


def steps_table(rows: Sequence[Row], *, title: str | None = "steps") -> Table:
    table = _table(
        "step",
        "kind",
        "status",
        "tasks",
        "failed",
        "skipped",
        "tokens",
        "cost",
        "duration",
        "cache hit",
        title=title,
        right=("tasks", "failed", "skipped", "tokens", "cost", "duration", "cache hit"),
    )
    for row in rows:
        name = str(row["id"])
        if row.get("iteration") is not None:
            name += f" #{row['iteration']}"
        hit = row.get("cache_hit_ratio")
        table.add_row(
            name,
            str(row.get("kind") or ""),
            status_text(str(row.get("status")), exhausted=row.get("exhausted")),
            f"{row.get('tasks_succeeded', 0)}/{row.get('tasks_total', 0)}",
            str(row.get("tasks_failed", 0)),
            str(row.get("tasks_skipped", 0)),
            fmt.tokens(row.get("tokens")),
            _cost(row),
            fmt.duration(row.get("duration_s")),
            "-" if hit is None else f"{100 * hit:.0f}%",
        )
    return table


def tasks_table(rows: Sequence[Row]) -> RenderableType:
    """The tasks, one line each; the errors of failed ones follow the table in full."""
    table = _table(
        "task",
        "id",
        "status",
        "attempts",
        "turns",
        "model",
        "tokens",
        "cost",
        "duration",
        right=("attempts", "turns", "tokens", "cost", "duration"),
    )
    errors: list[RenderableType] = []
    for row in rows:
        label = str(row.get("label") or row.get("step"))
        table.add_row(
            label,
            str(row["id"]),
            status_text(str(row.get("status"))),
            str(row.get("attempts", "")),
            str(row.get("turns", "")),
            str(row.get("model") or ""),
            fmt.tokens(row.get("tokens")),
            _cost(row),
            fmt.duration(row.get("duration_s")),
        )
        if row.get("error"):
            errors.append(Text.assemble((f"{label}: ", "bold"), (str(row["error"]), "red")))
    return Group(table, *errors) if errors else table


def cost_table(rows: Sequence[Row], totals: Row | None = None) -> Table:
    table = _table(
        "step",
        "model",
        "calls",
        "input",
        "output",
        "cache write",
        "cache read",
        "cost",
        right=("calls", "input", "output", "cache write", "cache read", "cost"),
    )
    for row in rows:
        table.add_row(
            str(row.get("step") or ""),
            str(row.get("model") or ""),
            str(row.get("calls", "")),
            fmt.tokens(row.get("input_tokens")),
            fmt.tokens(row.get("output_tokens")),
            fmt.tokens(row.get("cache_creation_input_tokens")),
            fmt.tokens(row.get("cache_read_input_tokens")),
            _cost(row),
        )
    if totals is not None:
        table.add_section()
        table.add_row(
            Text("total", style="bold"),
            "",
            str(totals.get("calls", "")),
            fmt.tokens(totals.get("input_tokens")),
            fmt.tokens(totals.get("output_tokens")),
            fmt.tokens(totals.get("cache_creation_input_tokens")),
            fmt.tokens(totals.get("cache_read_input_tokens")),
            Text(_cost(totals), style="bold"),
        )
    return table


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _mapping_table(title: str, values: Mapping[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in values.items():
        table.add_row(key, Text(fmt.shorten(_value(value), 2000)))
    table.title = title
    table.title_justify = "left"
    return table


def cache_line(totals: Mapping[str, Any], choices: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """`runs show`'s cache line: the TTL the run's writes used and how much was read back.
    `choices` are the run's `cache_ttl` events ({step_id, ttl, why}): why `cache.ttl: auto`
    chose 1h for a step (a long fan-out, a loop's period, the schedule). Without them (runs
    recorded before they were told, or `cache.ttl: 1h`) the line says what 1h can mean."""
    written = int(totals.get("cache_creation_input_tokens") or 0)
    read = int(totals.get("cache_read_input_tokens") or 0)
    if not written and not read:
        return None
    long = int(totals.get("cache_creation_1h_input_tokens") or 0)
    if long and long < written:
        ttl = f"5m and 1h TTLs (1h: {_why_1h(choices)})"
    elif long:
        ttl = f"1h TTL ({_why_1h(choices)})"
    else:
        ttl = "5m TTL" if written else "read only"
    ratio = read / (read + written)
    return (
        f"cache: {ttl} · {fmt.tokens(written)} written · {fmt.tokens(read)} read · "
        f"{ratio:.1%} of cached-prefix tokens read from the cache"
    )


def _why_1h(choices: Sequence[Mapping[str, Any]]) -> str:
    if not choices:
        return "a step expected to outlast 5 min, a loop's period over 5 min, or cache.ttl: 1h"
    first = choices[0]
    more = f"; {len(choices) - 1} more step(s) chose 1h too" if len(choices) > 1 else ""
    return f"step '{first.get('step_id')}': {first.get('why')}{more}"


def sandbox_text(sandbox: Row) -> str:
    """`bubblewrap 0.8.0 (mode auto, network off)`, or `none: why (mode auto, network off)`."""
    network = "on" if sandbox.get("network") else "off"
    settings = f"(mode {sandbox.get('mode', '?')}, network {network})"
    if sandbox.get("backend") == "bubblewrap":
        version = f" {sandbox['version']}" if sandbox.get("version") else ""
        return f"bubblewrap{version} {settings}"
    problem = f": {sandbox['problem']}" if sandbox.get("problem") else ""
    return f"none{problem} {settings}"


def run_detail(detail: Row) -> RenderableType:
    """`runs show`: header, inputs, steps, outputs, errors, totals."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("run", str(detail["id"]))
    head.add_row("workflow", f"{detail.get('workflow')}  ({detail.get('workflow_path') or '-'})")
    head.add_row("status", status_text(str(detail.get("status"))))
    head.add_row("started", _local(detail.get("started_at")))
    head.add_row("finished", _local(detail.get("finished_at")))
    head.add_row("duration", fmt.duration(detail.get("duration_s")))
    sandbox = detail.get("sandbox")
    if isinstance(sandbox, dict):
        head.add_row("sandbox", sandbox_text(sandbox))
    if detail.get("error"):
        head.add_row("error", Text(str(detail["error"]), style="red"))
    parts: list[RenderableType] = [head, Text("")]
    inputs = detail.get("inputs") or {}
    if inputs:
        parts += [_mapping_table("inputs", inputs), Text("")]
    parts.append(steps_table(detail.get("steps") or []))
    outputs = detail.get("outputs")
    if outputs:
        parts += [_mapping_table("outputs", outputs), Text("")]
    errors = detail.get("errors") or []
    if errors:
        table = _table("where", "task", "error", title="errors")
        for err in errors:
            table.add_row(
                str(err.get("label") or err.get("step") or ""),
                str(err.get("task") or ""),
                Text(str(err.get("error") or ""), style="red"),
            )
        parts.append(table)
    questions = detail.get("questions") or []
    if questions:
        from orchestrator.ui.questions import questions_table

        parts += [questions_table(questions), Text("")]
    totals = detail.get("totals") or {}
    cache = cache_line(totals, detail.get("cache_ttls") or ())
    if cache:
        parts.append(Text(cache))
    parts.append(
        Text(
            f"totals: {fmt.tokens(totals.get('input_tokens'))} input · "
            f"{fmt.tokens(totals.get('output_tokens'))} output · "
            f"{fmt.tokens(totals.get('cache_creation_input_tokens'))} cache write · "
            f"{fmt.tokens(totals.get('cache_read_input_tokens'))} cache read tokens · "
            f"{_cost(totals)} · {totals.get('calls', 0)} calls · "
            f"{totals.get('retries', 0)} retries",
            style="bold",
        )
    )
    return Group(*parts)
