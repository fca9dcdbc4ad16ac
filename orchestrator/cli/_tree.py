"""Tasks as the tree their `Task` calls make: for `runs tasks` and `runs show`.

A task started by another's `Task`/`Agent` call names it in `parent_id`; these pure functions
put each child right after its parent (depth-first, in start order) and draw the tree. A row
whose parent is not among the rows (filtered out by `--step`/`--status`) is shown as a root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from rich.tree import Tree

from orchestrator.ui.progress import status_text

Row = dict[str, Any]


def tree_order(rows: Sequence[Row]) -> list[Row]:
    """`rows` (in start order) with each child after its parent, each with its `depth`."""
    ids = {row["id"] for row in rows}
    children: dict[str | None, list[Row]] = {}
    for row in rows:
        parent = row.get("parent_id")
        children.setdefault(parent if parent in ids else None, []).append(row)
    out: list[Row] = []

    def visit(row: Row, depth: int) -> None:
        out.append({**row, "depth": depth})
        for child in children.get(row["id"], []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return out


def indented(rows: Sequence[Row]) -> list[Row]:
    """Tree-ordered rows whose `label` is indented by depth, for the `runs tasks` table."""
    return [
        {**row, "label": "  " * row["depth"] + ("└ " if row["depth"] else "") + str(row["label"])}
        for row in tree_order(rows)
    ]


def delegation_tree(rows: Sequence[Row]) -> Tree | None:
    """The tasks that started agents, with every agent they started; None when none did."""
    ordered = tree_order(rows)
    parents = {row.get("parent_id") for row in ordered if row.get("parent_id")}
    if not parents:
        return None
    tree = Tree(Text("agents started by agents", style="bold"))
    stack: list[tuple[int, Tree]] = []
    for row in ordered:
        if row["depth"] == 0 and row["id"] not in parents:
            continue
        while stack and stack[-1][0] >= row["depth"]:
            stack.pop()
        label = Text.assemble(
            (str(row["label"]), "bold" if row["depth"] == 0 else ""),
            "  ",
            status_text(str(row.get("status"))),
            (f"  {row['agent']}" if row.get("agent") else "", "dim"),
        )
        node = (stack[-1][1] if stack else tree).add(label)
        stack.append((row["depth"], node))
    return tree
