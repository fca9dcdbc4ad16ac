"""Run and task references as people type them: a full id, a unique prefix, `last`, a step id,
`step[index]` for a fan-out item, or `lead/researcher[2]` for the third agent a task started.
Ambiguity is an error that lists the candidates."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, Engine, and_, func, select
from sqlalchemy.orm import Session

from orchestrator.errors import UsageError
from orchestrator.store.models import RUNS, TASKS, Task

# `research[3]`, and a child of a `Task` call under it: `research[3]/researcher[0]`
_ITEM_REF = re.compile(r"^(?P<step>.+)\[(?P<index>\d+)\]$")
_SHOWN_CANDIDATES = 5


def resolve_run(engine: Engine, ref: str) -> str:
    """A full run id, a unique prefix of one, or "last" -> the run id."""
    ref = ref.strip().lower()
    if not ref:
        raise UsageError("no run given")
    with engine.connect() as conn:
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
                .where(_prefix(engine, RUNS.c.id, ref))
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
            select(func.count()).where(_prefix(engine, RUNS.c.id, ref))
        ).scalar_one()
    raise UsageError(f"{ref!r} is ambiguous: matches {_candidates(ids, total)}")


def resolve_task(engine: Engine, run_id: str, ref: str) -> Task:
    """A task id (or a unique prefix), a step id whose step ran one task, or `step[index]`
    for a fan-out item. Where several attempts exist (loop iterations, resumes), the latest."""
    ref = ref.strip()
    if not ref:
        raise UsageError("no task given")
    latest = (TASKS.c.started_at.desc(), TASKS.c.id.desc())
    base = select(Task).where(TASKS.c.run_id == run_id)
    with Session(engine) as session:
        row = session.scalars(base.where(TASKS.c.id == ref.lower())).first()
        if row is not None:
            return row

        item = _ITEM_REF.match(ref)
        if item is not None:
            step, index = item["step"], int(item["index"])
            row = session.scalars(
                base.where(TASKS.c.step_id == step, TASKS.c.index == index)
                .order_by(*latest)
                .limit(1)
            ).first()
            if row is not None:
                return row
            raise UsageError(f"step {step!r} has no item {index} in run {run_id}")

        indexes = session.execute(
            select(TASKS.c.index, func.count())
            .where(TASKS.c.run_id == run_id, TASKS.c.step_id == ref)
            .group_by(TASKS.c.index)
        ).all()
        if indexes:
            if len(indexes) > 1:
                known = sorted(i for i, _ in indexes if i is not None)
                span = f"{ref}[{known[0]}]..{ref}[{known[-1]}]" if known else f"{ref}[N]"
                raise UsageError(
                    f"step {ref!r} ran {len(indexes)} items; name one as {span} or give a task id"
                )
            row = session.scalars(
                base.where(TASKS.c.step_id == ref).order_by(*latest).limit(1)
            ).first()
            assert row is not None
            return row

        prefix = ref.lower()
        rows = session.scalars(
            base.where(_prefix(engine, TASKS.c.id, prefix))
            .order_by(TASKS.c.id)
            .limit(_SHOWN_CANDIDATES + 1)
        ).all()
        if len(rows) == 1:
            return rows[0]
        if rows:
            total = session.execute(
                select(func.count()).where(
                    TASKS.c.run_id == run_id, _prefix(engine, TASKS.c.id, prefix)
                )
            ).scalar_one()
            ids = [r.id for r in rows]
            raise UsageError(f"{ref!r} is ambiguous: matches {_candidates(ids, total)}")
    raise UsageError(f"no task or step matches {ref!r} in run {run_id}")


def _prefix(engine: Engine, column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    if engine.dialect.name == "sqlite":
        # Ids are [0-9a-z] and SQLite compares bytes, so "~" (after "z") bounds the range; a
        # range uses the primary-key index where LIKE (case-insensitive there) would not.
        return and_(column >= prefix, column < prefix + "~")
    return column.startswith(prefix, autoescape=True)


def _candidates(ids: list[str], total: int) -> str:
    shown = ", ".join(ids[:_SHOWN_CANDIDATES])
    more = total - min(len(ids), _SHOWN_CANDIDATES)
    return shown + (f" and {more} more" if more > 0 else "")
