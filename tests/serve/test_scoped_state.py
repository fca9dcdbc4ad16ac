"""State that outlives a run (`state_scope:`): a counter across runs, concurrent runs that lose
no update (per-key versions, compare-and-set), the state tools' conflict, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

import orchestrator
from orchestrator.cli import app
from orchestrator.engine.state import SharedState, StateConflict
from orchestrator.errors import SpecError
from orchestrator.store import AsyncScopes, ScopedStore, Store
from orchestrator.workflow import load_workflow

from .conftest import COUNTER, write

LOOPED = """\
version: 1
name: looped
state_scope: shared-counter
steps:
  - id: many
    loop:
      max_iterations: {n}
      steps:
        - id: bump
          set: "{{{{ state.get('hits', 0) + 1 }}}}"
          to_state: hits
"""


def test_a_counter_in_workflow_scope_goes_up_by_one_per_run(tmp_path: Path) -> None:
    wf = write(tmp_path, "counter.yaml", COUNTER)
    db = str(tmp_path / "state.db")
    seen = [orchestrator.run(wf, db=db).outputs for _ in range(3)]
    assert seen == [{"runs": 1}, {"runs": 2}, {"runs": 3}]
    with Store.open(db) as store:
        assert ScopedStore(store).get("counter", "runs").value == 3  # scope = workflow name


async def test_two_overlapping_runs_incrementing_one_key_lose_nothing(tmp_path: Path) -> None:
    n = 15
    wf = write(tmp_path, "looped.yaml", LOOPED.format(n=n))
    db = str(tmp_path / "state.db")
    outcomes: list[str] = []

    async def one() -> None:
        outcome = await orchestrator.arun(wf, db=db)
        outcomes.append(outcome.status)

    async with anyio.create_task_group() as tg:  # two runs, each its own store connection
        tg.start_soon(one)
        tg.start_soon(one)
    assert outcomes == ["succeeded", "succeeded"]
    with Store.open(db) as store:
        found = ScopedStore(store).get("shared-counter", "hits")
    assert found.value == 2 * n
    assert found.version == 2 * n  # every increment was one winning compare-and-set


async def test_state_set_after_another_run_wrote_the_key_is_refused_until_read_again(
    tmp_path: Path,
) -> None:
    store = Store.open(str(tmp_path / "state.db"))
    try:
        scopes = AsyncScopes(store)
        a = SharedState("run-a", lambda e: None, scope="s", scopes=scopes)
        b = SharedState("run-b", lambda e: None, scope="s", scopes=scopes)
        await a.set("seen", ["#1"])
        assert await b.get("seen") == ["#1"]
        assert await a.get("seen") == ["#1"]
        await b.set("seen", ["#1", "#2"])
        with pytest.raises(StateConflict, match="read it again"):
            await a.set("seen", ["#1", "#3"])  # would drop b's #2
        current = await a.get("seen")
        await a.set("seen", [*current, "#3"])
        assert await b.get("seen") == ["#1", "#2", "#3"]
    finally:
        store.close()


def test_a_bad_state_scope_or_schedule_names_the_fix(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        """\
        version: 1
        name: bad
        state_scope: "has space"
        schedule: {every: 10m, cron: "0 9 * * *"}
        steps:
          - {id: a, set: 1}
        """,
    )
    with pytest.raises(SpecError) as info:
        load_workflow(bad)
    text = str(info.value)
    assert "state_scope" in text and "exactly one of 'every'" in text
    cron = write(
        tmp_path,
        "cron.yaml",
        """\
        version: 1
        schedule: {cron: "61 * * * *", timezone: Mars/Olympus}
        steps:
          - {id: a, set: 1}
        """,
    )
    with pytest.raises(SpecError, match="unknown timezone 'Mars/Olympus'"):
        load_workflow(cron)


def test_state_cli_set_get_list_rm(tmp_path: Path) -> None:
    db = str(tmp_path / "state.db")
    runner = CliRunner()
    env = {"COLUMNS": "200"}

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--db", db], env=env)
        return result.exit_code, result.output

    assert cli("state", "set", "handled/12", "true", "--scope", "triage")[0] == 0
    assert cli("state", "set", "note", "hello world", "--scope", "triage")[0] == 0
    code, out = cli("state", "get", "handled/12", "--scope", "triage", "--json")
    assert code == 0 and json.loads(out) == {
        "scope": "triage",
        "key": "handled/12",
        "value": True,
        "version": 1,
    }
    code, out = cli("state", "list", "--scope", "triage", "--json")
    assert [(r["key"], r["value"]) for r in json.loads(out)] == [
        ("handled/12", True),
        ("note", "hello world"),
    ]
    code, out = cli("state", "set", "note", "x", "--scope", "triage", "--expect-version", "5")
    assert code == 2 and "version 1, not 5" in out
    assert cli("state", "rm", "note", "--scope", "triage")[0] == 0
    code, out = cli("state", "get", "note", "--scope", "triage")
    assert code == 2 and "no key 'note'" in out
