"""Migrations: from an empty database, from version 1, and the migrated schema == the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
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
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
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


def test_upgrade_from_version_1_keeps_the_data(db_path: Path, make_run: Any) -> None:
    old = Store.open(str(db_path), migrate_to=1)
    run = make_run(items=2)

    async def write() -> None:
        async with old.writer() as w:
            for e in run.events:
                w.send(e)

    anyio.run(write)
    old.close()
    assert versions(db_path) == [1]
    assert "ix_calls_run_step" not in indexes(db_path)

    store = Store.open(str(db_path), readonly=True)  # even a read-only open upgrades
    try:
        assert versions(db_path) == [m.version for m in MIGRATIONS]
        assert {"ix_calls_run_step", "ix_runs_workflow_started"} <= indexes(db_path)
        rec = store.get_run(run.run_id)
        assert rec is not None and rec.calls == 5
        assert len(store.cost_breakdown(run.run_id)) == 3
    finally:
        store.close()


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
