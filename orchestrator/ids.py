"""Time-sortable ids (ULIDs): run, task and call ids sort by creation time, like `llm logs`."""

from __future__ import annotations

from ulid import ULID


def new_id() -> str:
    return str(ULID()).lower()
