"""`runs logs [--follow]`, `rm`, `prune`, `cancel`, and the import weight of the read commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

from orchestrator import events as ev
from orchestrator.store import Store

from .conftest import Invoke, exit_code
from .synthetic import RUN_A, RUN_B, RUN_C, fill, full_run, live_run, plan_step, research_step


def test_logs_text_and_json(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "logs", RUN_A, "--db", filled)
    assert exit_code(result) == 0, result.output
    out = result.stdout
    for piece in (
        f"run {RUN_A} started: research",
        "step plan started (agent)",
        "task plan started",
        "call plan claude-sonnet-5-5",
        "tool Read by plan",
        "step research started (fanout, 3 tasks)",
        "call retried for research[1] (overloaded HTTP 529, attempt 1), waiting 2.0s",
        "task research[1] failed: HTTP 400 invalid request",
        "step research failed",
        "run failed",
    ):
        assert piece in out, piece
    assert out.index("step plan started") < out.index("run failed")
    result = invoke("runs", "logs", RUN_A, "--db", filled, "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["type"] == "run_started" and rows[0]["run_id"] == RUN_A
    assert rows[-1]["type"] == "run_finished" and rows[-1]["status"] == "failed"
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {"seq", "type", "ts", "run_id"} <= set(rows[1])


def test_logs_follow_returns_when_the_live_run_ends(db: str, invoke: Invoke) -> None:
    t0 = time.time()
    fill(db, live_run(RUN_C, t0))
    late = [*plan_step(RUN_C, t0)[2:], *research_step(RUN_C, t0, fail=False)]

    def finish_later() -> None:
        async def write() -> None:
            store = Store.open(db)
            try:
                async with store.writer() as writer:
                    for event in late:
                        await asyncio.sleep(0.01)
                        writer.send(event)
                    await writer.flush()
                    await asyncio.sleep(0.5)
                    writer.send(ev.RunFinished(run_id=RUN_C, status="succeeded", outputs={}))
                    await writer.flush()
            finally:
                store.close()

        time.sleep(0.5)
        asyncio.run(write())

    thread = threading.Thread(target=finish_later)
    thread.start()
    try:
        started = time.monotonic()
        result = invoke("runs", "logs", "last", "--follow", "--db", db, "--poll", "0.05")
        elapsed = time.monotonic() - started
    finally:
        thread.join()
    assert exit_code(result) == 0, result.output
    out = result.stdout
    assert out.index(f"run {RUN_C} started") < out.index("step research succeeded")
    assert out.rstrip().endswith("run succeeded")
    assert 0.5 < elapsed < 30


def test_logs_follow_of_a_finished_run_returns_at_once(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "logs", RUN_A, "--follow", "--db", filled, "--json")
    assert exit_code(result) == 0
    assert json.loads(result.stdout.splitlines()[-1])["type"] == "run_finished"


def _ids(db: str) -> set[str]:
    store = Store.open(db, readonly=True)
    try:
        return {r.id for r in store.list_runs(limit=100)}
    finally:
        store.close()


def test_rm_asks_and_refuses_a_running_run(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "rm", RUN_A, "--db", filled, stdin="n\n")
    assert exit_code(result) == 1 and "nothing deleted" in result.stdout
    assert RUN_A in _ids(filled)
    result = invoke("runs", "rm", RUN_A, "--db", filled, stdin="y\n")
    assert exit_code(result) == 0 and f"deleted run {RUN_A}" in result.stdout
    assert RUN_A not in _ids(filled)
    result = invoke("runs", "rm", RUN_A, "--db", filled, "--yes")
    assert exit_code(result) == 2  # gone
    result = invoke("runs", "rm", RUN_C, "--db", filled, "--yes")
    assert exit_code(result) == 2 and "still running" in result.stderr
    assert RUN_C in _ids(filled)
    result = invoke("runs", "rm", RUN_C, "--db", filled, "--yes", "--force")
    assert exit_code(result) == 0 and RUN_C not in _ids(filled)
    tasks = invoke("runs", "tasks", RUN_B, "--db", filled, "--json")
    assert len(json.loads(tasks.stdout)) == 4  # the other runs keep their rows


def test_prune(db: str, invoke: Invoke) -> None:
    now = time.time()
    fill(db, full_run(RUN_A, now - 40 * 86400))
    fill(db, full_run(RUN_B, now - 3600))
    result = invoke("runs", "prune", "--older-than", "30d", "--db", db, stdin="n\n")
    assert exit_code(result) == 1 and _ids(db) == {RUN_A, RUN_B}
    result = invoke("runs", "prune", "--older-than", "30d", "--db", db, "--yes")
    assert exit_code(result) == 0, result.output
    assert "deleted 1 run" in result.stdout
    assert _ids(db) == {RUN_B}
    bad = invoke("runs", "prune", "--older-than", "soon", "--db", db, "--yes")
    assert exit_code(bad) == 2 and "--older-than" in bad.stderr


def test_cancel_asks_a_live_run_through_the_store(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "cancel", "last", "--db", filled)
    assert exit_code(result) == 0, result.output
    assert f"cancel requested for run {RUN_C}" in result.stdout
    store = Store.open(filled, readonly=True)
    try:
        run = store.get_run(RUN_C)
        assert run is not None and run.cancel_requested
    finally:
        store.close()
    finished = invoke("runs", "cancel", RUN_A, "--db", filled)
    assert exit_code(finished) == 2 and "not running" in finished.stderr


_PROBE = """
import sys
sys.argv = ["orchestrate", *sys.argv[1:]]
from orchestrator.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(
    m for m in sys.modules
    if m == "anthropic" or m.startswith(("anthropic.", "orchestrator.engine", "orchestrator.llm",
                                         "orchestrator.sim", "orchestrator.worker"))
)
print("HEAVY", heavy, "EXIT", code, file=sys.stderr)
"""


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("ORCHESTRATE_DB", None)
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_read_commands_import_neither_the_sdk_nor_the_engine(filled: str) -> None:
    for args in (["runs", "list", "--db", filled], ["runs", "show", "last", "--db", filled]):
        proc = _probe(*args)
        assert "HEAVY [] EXIT 0" in proc.stderr, proc.stderr
        assert RUN_C in proc.stdout


def test_errors_exit_2_with_a_message_and_no_traceback(filled: str) -> None:
    proc = _probe("runs", "show", "01nope", "--db", filled)
    assert "EXIT 2" in proc.stderr
    assert "error:" in proc.stderr and "01nope" in proc.stderr
    assert "Traceback" not in proc.stderr
