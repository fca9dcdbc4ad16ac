"""Migrations: from an empty database, from version 1, and the migrated schema == the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from orchestrator.errors import UsageError
from orchestrator.store import LATEST_VERSION, Store
from orchestrator.store.migrations import MIGRATIONS, VERSIONS_TABLE
from orchestrator.store.models import RUN_TABLES


def versions(path: Path) -> list[int]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(text(f"SELECT version FROM {VERSIONS_TABLE} ORDER BY 1")).scalars()
            )
    finally:
        engine.dispose()


def indexes(path: Path) -> set[str]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        insp = inspect(engine)
        return {
            ix["name"] for t in insp.get_table_names() for ix in insp.get_indexes(t) if ix["name"]
        }
    finally:
        engine.dispose()


def test_migrations_are_numbered_in_order() -> None:
    numbers = [m.version for m in MIGRATIONS]  # handed out per change: gaps close at merge
    assert numbers == sorted(set(numbers)) and numbers[0] == 1
    assert LATEST_VERSION == MIGRATIONS[-1].version >= 2


def test_an_empty_database_gets_every_migration(db_path: Path) -> None:
    Store.open(str(db_path)).close()
    assert versions(db_path) == [m.version for m in MIGRATIONS]
    Store.open(str(db_path)).close()  # reopening applies nothing twice
    assert versions(db_path) == [m.version for m in MIGRATIONS]


def test_the_migrated_schema_is_what_the_models_say(db_path: Path) -> None:
    Store.open(str(db_path)).close()
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        insp = inspect(engine)
        for table in RUN_TABLES:
            columns = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
            pk = insp.get_pk_constraint(table.name)["constrained_columns"]
            assert pk == [c.name for c in table.primary_key.columns], table.name
            found = {ix["name"]: list(ix["column_names"]) for ix in insp.get_indexes(table.name)}
            wanted = {ix.name: [c.name for c in ix.columns] for ix in table.indexes}
            assert found == wanted, table.name
    finally:
        engine.dispose()


def _old_run(path: Path, run_id: str = "r1") -> None:
    """A run as a version 1 or 2 orchestrate wrote it: the old usage column names, no 5m/1h
    split on tasks and runs, no owner."""
    engine = create_engine(f"sqlite:///{path}")
    usage = "input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (id, workflow_name, workflow_path, workflow_snapshot, "
                "workflow_hash, workspace, status, cancel_requested, tasks_total, tasks_done, "
                f"tasks_failed, {usage}, cost_usd, cost_unknown, calls, retries, started_at) "
                "VALUES (:id, 'wf', 'wf.yaml', 'version: 1', 'h', '/ws', 'failed', 0, 1, 1, 0, "
                "30, 8, 12, 40, 0.5, 0, 2, 0, 1.0)"
            ),
            {"id": run_id},
        )
        conn.execute(
            text(
                "INSERT INTO tasks (id, run_id, step_id, key, prompt, status, attempts, turns, "
                f"{usage}) VALUES ('t1', :id, 'a', 'a', 'hi', 'succeeded', 1, 2, 30, 8, 12, 40)"
            ),
            {"id": run_id},
        )
        for n, (five, hour) in enumerate(((2, 0), (4, 6))):
            conn.execute(
                text(
                    "INSERT INTO calls (id, run_id, task_id, step_id, model, attempt, status, "
                    f"latency_s, {usage}, cache_creation_5m_tokens, cache_creation_1h_tokens, "
                    "batch, ts) VALUES (:cid, :id, 't1', 'a', 'm', 1, 'succeeded', 0.1, "
                    "15, 4, :cw, 20, :five, :hour, 0, :ts)"
                ),
                {
                    "cid": f"c{n}",
                    "id": run_id,
                    "cw": five + hour,
                    "five": five,
                    "hour": hour,
                    "ts": n,
                },
            )
    engine.dispose()


def test_upgrade_from_version_1_keeps_the_data(db_path: Path) -> None:
    Store.open(str(db_path), migrate_to=1).close()
    _old_run(db_path)
    assert versions(db_path) == [1]
    assert "ix_calls_run_step" not in indexes(db_path)

    store = Store.open(str(db_path), readonly=True)  # even a read-only open upgrades
    try:
        assert versions(db_path) == [m.version for m in MIGRATIONS]
        assert {"ix_calls_run_step", "ix_runs_workflow_started"} <= indexes(db_path)
        rec = store.get_run("r1")
        assert rec is not None and rec.calls == 2
        assert len(store.cost_breakdown("r1")) == 1
    finally:
        store.close()


def test_upgrade_to_the_api_usage_names_keeps_every_count(db_path: Path) -> None:
    Store.open(str(db_path), migrate_to=2).close()
    _old_run(db_path)
    store = Store.open(str(db_path))
    try:
        run = store.get_run("r1")
        assert run is not None
        # renamed, not lost; and the 5m/1h split, which only calls had, summed from them
        assert run.usage.to_dict() == {
            "input_tokens": 30,
            "output_tokens": 8,
            "cache_creation_input_tokens": 12,
            "cache_read_input_tokens": 40,
            "cache_creation_5m_input_tokens": 6,
            "cache_creation_1h_input_tokens": 6,
        }
        (task,) = store.list_tasks("r1")
        assert task.usage.cache_creation_input_tokens == 12
        assert (
            task.usage.cache_creation_5m_input_tokens,
            task.usage.cache_creation_1h_input_tokens,
        ) == (6, 6)
        calls = store.task_calls("t1")
        assert [c.usage.cache_creation_1h_input_tokens for c in calls] == [0, 6]
        (cost,) = store.cost_breakdown("r1")
        assert cost.usage.cache_read_input_tokens == 40
        assert run.owner is None
    finally:
        store.close()
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        names = {c["name"] for c in inspect(engine).get_columns("calls")}
        assert "cache_creation_tokens" not in names and "cache_read_tokens" not in names
    finally:
        engine.dispose()


def test_a_database_from_a_newer_orchestrate_is_refused(db_path: Path) -> None:
    Store.open(str(db_path)).close()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO {VERSIONS_TABLE} (version, name, applied_at) VALUES (99, 'x', 0)")
        )
    engine.dispose()
    with pytest.raises(UsageError, match="schema version 99, newer than"):
        Store.open(str(db_path))


def test_a_failed_migration_leaves_the_previous_schema(db_path: Path) -> None:
    Store.open(str(db_path), migrate_to=1).close()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:  # make migration 2 collide with an existing object
        conn.execute(text("CREATE TABLE ix_calls_run_step (x INTEGER)"))
    engine.dispose()
    with pytest.raises(UsageError, match="cannot open the state database"):
        Store.open(str(db_path))
    assert versions(db_path) == [1]
    assert "ix_runs_workflow_started" not in indexes(db_path)  # rolled back as a whole
