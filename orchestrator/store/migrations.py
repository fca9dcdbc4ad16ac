"""Versioned schema migrations, applied on open (like `llm`'s, simpler than Alembic).

`MIGRATIONS` is an ordered list; `schema_migrations` records which versions a database has.
`migrate` applies the missing ones inside the caller's transaction (SQLite and PostgreSQL both
have transactional DDL, so a failed upgrade leaves the previous schema intact; the store opens
that transaction with BEGIN IMMEDIATE, so two processes opening one database never race).

A migration is frozen once released: migration 1 spells out the initial schema in its own
`MetaData` instead of reusing `models.py` (later ones are SQL text), so later changes to the
models never change what migration 1 creates. To change the schema: edit `models.py` and append
a migration that brings a database at the previous version to it;
`tests/store/test_migrations.py` checks they agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)

from orchestrator.errors import UsageError

VERSIONS_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


def _initial_schema(conn: Connection) -> None:
    md = MetaData()

    def tokens(*names: str) -> list[Column[int]]:
        return [Column(n, Integer, nullable=False, default=0) for n in names]

    Table(
        "runs",
        md,
        Column("id", String, primary_key=True),
        Column("workflow_name", String, nullable=False),
        Column("workflow_path", String, nullable=False),
        Column("workflow_snapshot", Text, nullable=False),
        Column("workflow_hash", String, nullable=False),
        Column("inputs", Text),
        Column("workspace", String, nullable=False),
        Column("status", String, nullable=False),
        Column("error", Text),
        Column("outputs", Text),
        Column("started_at", Float),
        Column("finished_at", Float),
        Column("heartbeat_at", Float),
        Column("pid", Integer),
        Column("cancel_requested", Boolean, nullable=False),
        Column("limits", Text),
        *tokens(
            "tasks_total",
            "tasks_done",
            "tasks_failed",
            "input_tokens",
            "output_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
        ),
        Column("cost_usd", Float, nullable=False),
        Column("cost_unknown", Boolean, nullable=False),
        *tokens("calls", "retries"),
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_status", "status"),
    )
    Table(
        "steps",
        md,
        Column("run_id", String, primary_key=True),
        Column("step_id", String, primary_key=True),
        Column("iteration", Integer, primary_key=True),
        Column("kind", String, nullable=False),
        Column("status", String, nullable=False),
        Column("output", Text),
        Column("error", Text),
        Column("exit_code", Integer),
        Column("iterations", Integer),
        Column("total_tasks", Integer),
        Column("started_at", Float),
        Column("finished_at", Float),
    )
    Table(
        "tasks",
        md,
        Column("id", String, primary_key=True),
        Column("run_id", String, nullable=False),
        Column("step_id", String, nullable=False),
        Column("key", String, nullable=False),
        Column("index", Integer),
        Column("iteration", Integer),
        Column("agent", String),
        Column("model", String),
        Column("system", Text),
        Column("prompt", Text, nullable=False),
        Column("status", String, nullable=False),
        Column("output", Text),
        Column("error", Text),
        *tokens(
            "attempts",
            "turns",
            "input_tokens",
            "output_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
        ),
        Column("cost_usd", Float),
        Column("started_at", Float),
        Column("finished_at", Float),
        Index("ix_tasks_run_key", "run_id", "key"),
        Index("ix_tasks_run_step", "run_id", "step_id"),
    )
    Table(
        "calls",
        md,
        Column("id", String, primary_key=True),
        Column("run_id", String, nullable=False),
        Column("task_id", String, nullable=False),
        Column("step_id", String, nullable=False),
        Column("model", String, nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("request", Text),
        Column("response", Text),
        Column("status", String, nullable=False),
        Column("error", Text),
        Column("http_status", Integer),
        Column("request_id", String),
        Column("latency_s", Float, nullable=False),
        *tokens(
            "input_tokens",
            "output_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
            "cache_creation_5m_tokens",
            "cache_creation_1h_tokens",
        ),
        Column("cost_usd", Float),
        Column("batch", Boolean, nullable=False),
        Column("ts", Float, nullable=False),
        Index("ix_calls_task", "task_id"),
    )
    Table(
        "events",
        md,
        Column(
            "seq",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("run_id", String, nullable=False),
        Column("ts", Float, nullable=False),
        Column("type", String, nullable=False),
        Column("payload", Text),
        Index("ix_events_run_seq", "run_id", "seq"),
        sqlite_autoincrement=True,
    )
    Table(
        "state",
        md,
        Column("run_id", String, primary_key=True),
        Column("key", String, primary_key=True),
        Column("value", Text),
        Column("updated_at", Float, nullable=False),
    )
    md.create_all(conn)


def _history_indexes(conn: Connection) -> None:
    # `runs list --workflow` and the per-run cost/summary queries over calls.
    conn.execute(text("CREATE INDEX ix_runs_workflow_started ON runs (workflow_name, started_at)"))
    conn.execute(text("CREATE INDEX ix_calls_run_step ON calls (run_id, step_id)"))


_USAGE_RENAMES = {
    "cache_creation_tokens": "cache_creation_input_tokens",
    "cache_read_tokens": "cache_read_input_tokens",
}
_SPLIT_RENAMES = {
    "cache_creation_5m_tokens": "cache_creation_5m_input_tokens",
    "cache_creation_1h_tokens": "cache_creation_1h_input_tokens",
}


def _usage_names_and_owner(conn: Connection) -> None:
    # One vocabulary from the API to the screen: the columns take the Messages API's usage
    # names, and tasks and runs get the 5m/1h split that only calls had (summed from their
    # calls, so old runs show it too). `owner` makes claiming a run one conditional UPDATE.
    for table in ("runs", "tasks", "calls"):
        for old, new in _USAGE_RENAMES.items():
            conn.execute(text(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}"))
    for old, new in _SPLIT_RENAMES.items():
        conn.execute(text(f"ALTER TABLE calls RENAME COLUMN {old} TO {new}"))
    for table, key in (("tasks", "task_id"), ("runs", "run_id")):
        for column in _SPLIT_RENAMES.values():
            conn.execute(
                text(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
            )
            conn.execute(
                text(
                    f"UPDATE {table} SET {column} = COALESCE((SELECT SUM(calls.{column}) "
                    f"FROM calls WHERE calls.{key} = {table}.id), 0)"
                )
            )
    conn.execute(text("ALTER TABLE runs ADD COLUMN owner VARCHAR"))


def _loop_exhausted(conn: Connection) -> None:
    # A loop that stopped at max_iterations with `until` still false succeeded, but says so
    # (issue 13): `runs show`, `--json` and the web view read it from the step's row.
    conn.execute(text("ALTER TABLE steps ADD COLUMN exhausted BOOLEAN"))


def _questions(conn: Connection) -> None:
    # Questions for people (issue 17): asks, tool approvals and budget guards, with their answers.
    md = MetaData()
    Table(
        "questions",
        md,
        Column("id", String, primary_key=True),
        Column("run_id", String, nullable=False),
        Column("step_id", String, nullable=False),
        Column("key", String, nullable=False),
        Column("kind", String, nullable=False),
        Column("prompt", Text, nullable=False),
        Column("options", Text),
        Column("output", Text),
        Column("tool", String),
        Column("tool_input", Text),
        Column("status", String, nullable=False),
        Column("answer", Text),
        Column("reason", Text),
        Column("answered_by", String),
        Column("asked_at", Float, nullable=False),
        Column("answered_at", Float),
        Index("ux_questions_run_key", "run_id", "key", unique=True),
        Index("ix_questions_status", "status", "asked_at"),
    )
    md.create_all(conn)


def _task_parents(conn: Connection) -> None:
    # Agents that start agents (issue 16): a task started by another's `Task` call names it.
    conn.execute(text("ALTER TABLE tasks ADD COLUMN parent_id VARCHAR"))


def _scoped_state_and_serve(conn: Connection) -> None:
    # Issue 18: state scopes that outlive a run (per-key version for compare-and-set), and the
    # runs `orchestrate serve` started (to resume them and to know the slots already run).
    md = MetaData()
    Table(
        "scoped_state",
        md,
        Column("scope", String, primary_key=True),
        Column("key", String, primary_key=True),
        Column("value", Text),
        Column("version", Integer, nullable=False),
        Column("updated_at", Float, nullable=False),
        Column("updated_by", String),
    )
    Table(
        "serve_runs",
        md,
        Column("run_id", String, primary_key=True),
        Column("workflow", String, nullable=False),
        Column("origin", String, nullable=False),
        Column("slot", Float),
        Column("created_at", Float, nullable=False),
        Column("drained_at", Float),
        Index("ix_serve_runs_workflow", "workflow", "slot"),
    )
    md.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _initial_schema),
    Migration(2, "history indexes: runs by workflow, calls by run", _history_indexes),
    Migration(
        3,
        "usage columns named as the API names them; 5m/1h on tasks, runs; owner",
        _usage_names_and_owner,
    ),
    Migration(4, "questions for people: asks, tool approvals, budget guards", _questions),
    Migration(5, "steps.exhausted: a loop that stopped at max_iterations", _loop_exhausted),
    Migration(6, "tasks.parent_id: the task whose Task call started this one", _task_parents),
    Migration(7, "scoped state across runs; the runs serve started", _scoped_state_and_serve),
)
LATEST_VERSION = MIGRATIONS[-1].version

_VERSIONS = Table(
    VERSIONS_TABLE,
    MetaData(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String, nullable=False),
    Column("applied_at", Float, nullable=False),
)


def schema_version(conn: Connection) -> int:
    """The highest applied migration; 0 for an empty database."""
    if not inspect(conn).has_table(VERSIONS_TABLE):
        return 0
    applied = conn.execute(_VERSIONS.select().with_only_columns(_VERSIONS.c.version)).scalars()
    return max(applied, default=0)


def migrate(conn: Connection, *, target: int | None = None) -> list[int]:
    """Apply every missing migration up to `target` (default: all) in the caller's transaction.

    Returns the versions applied. A database from a newer orchestrate is refused, not guessed at.
    """
    if conn.dialect.name == "postgresql":
        # Two processes opening a new database at once would both create the tables: the
        # first takes this lock for its transaction, the second then sees the work done.
        conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
    _VERSIONS.create(conn, checkfirst=True)
    applied = set(conn.execute(_VERSIONS.select().with_only_columns(_VERSIONS.c.version)).scalars())
    newest = max(applied, default=0)
    if newest > LATEST_VERSION:
        raise UsageError(
            f"the database has schema version {newest}, newer than this orchestrate "
            f"knows ({LATEST_VERSION}); upgrade orchestrate"
        )
    done: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        if target is not None and migration.version > target:
            break
        migration.upgrade(conn)
        conn.execute(
            _VERSIONS.insert().values(
                version=migration.version, name=migration.name, applied_at=time.time()
            )
        )
        done.append(migration.version)
    return done
