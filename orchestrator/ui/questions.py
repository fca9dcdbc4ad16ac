"""The table of questions for people: `runs waiting` and the questions of `runs show`.

It renders the JSON-ready dicts of `Question.to_dict()` (see `orchestrator/cli/answer.py` for the
keys), so text and JSON never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from orchestrator.ui import _format as fmt

__all__ = ["questions_table"]


def _answers(row: Mapping[str, Any]) -> str:
    options = row.get("options")
    if options:
        return " | ".join(f"{i}) {option}" for i, option in enumerate(options, 1))
    output = row.get("output")
    if output == "json":
        return "JSON"
    if isinstance(output, dict):
        return "JSON: " + json.dumps(output, ensure_ascii=False)
    return "text"


def _prompt(row: Mapping[str, Any]) -> str:
    prompt = str(row.get("prompt") or "")
    if row.get("kind") == "approval" and row.get("tool_input") is not None:
        prompt += " " + json.dumps(row["tool_input"], ensure_ascii=False)
    return prompt


def questions_table(rows: Sequence[Mapping[str, Any]], *, title: str = "questions") -> Table:
    """One line per question: the run and step asking, the prompt, what may be answered (or
    the answer given), how long it has waited, and the id to answer it by."""
    answered = any(row.get("status") == "answered" for row in rows)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for name in ("run", "step", "kind", "prompt", "answer" if answered else "answers"):
        table.add_column(name, overflow="fold")
    table.add_column("age", justify="right", no_wrap=True)
    table.add_column("question", no_wrap=True)
    for row in rows:
        if row.get("status") == "answered":
            given = row.get("answer")
            shown = given if isinstance(given, str) else json.dumps(given, ensure_ascii=False)
            if row.get("reason"):
                shown += f" ({row['reason']})"
            cell = Text(f"{shown} — {row.get('answered_by') or '?'}", style="green")
        else:
            cell = Text(_answers(row), style="yellow")
        table.add_row(
            str(row.get("run_id") or "")[:10],
            str(row.get("step") or ""),
            str(row.get("kind") or ""),
            fmt.shorten(_prompt(row), 200),
            cell,
            fmt.duration(row.get("age_s")),
            str(row.get("id") or ""),
        )
    return table
