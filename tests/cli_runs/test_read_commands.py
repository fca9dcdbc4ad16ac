"""`orchestrate runs list/show/tasks/transcript/cost/export` on stores the real writer filled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from .conftest import Invoke, exit_code
from .synthetic import PROMPT, RUN_A, RUN_B, RUN_C, SYSTEM, UNPRICED, fill, full_run


def _json(result: Result) -> Any:
    assert exit_code(result) == 0, result.output
    return json.loads(result.stdout)


# --- list ----------------------------------------------------------------------------------------


def test_list_newest_first_text(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "list", "--db", filled)
    assert exit_code(result) == 0, result.output
    out = result.stdout
    assert out.index(RUN_C) < out.index(RUN_B) < out.index(RUN_A)
    assert "research" in out and "digest" in out and "live" in out
    assert "failed" in out and "succeeded" in out and "running" in out
    assert "3/4 (1 failed)" in out  # workers done/total of run A
    assert "+?" in out  # run A used a model without a price


def test_list_json(filled: str, invoke: Invoke) -> None:
    rows = _json(invoke("runs", "list", "--db", filled, "--json"))
    assert isinstance(rows, list)
    assert [r["id"] for r in rows] == [RUN_C, RUN_B, RUN_A]
    a = rows[2]
    assert a["workflow"] == "research" and a["status"] == "failed"
    assert a["tasks_total"] == 4 and a["tasks_done"] == 3 and a["tasks_failed"] == 1
    assert a["duration_s"] == 7.0
    assert a["input_tokens"] == 100 + 150 + 40 + 40
    assert a["cost_unknown"] is True
    assert a["error"] == "step research failed"
    assert a["started_at"].endswith("Z")
    b = rows[1]
    assert b["status"] == "succeeded" and b["cost_unknown"] is True
    assert rows[0]["status"] == "running" and rows[0]["finished_at"] is None


def test_list_filters_and_limit(filled: str, invoke: Invoke) -> None:
    rows = _json(invoke("runs", "list", "--db", filled, "--json", "--status", "failed"))
    assert [r["id"] for r in rows] == [RUN_A]
    rows = _json(invoke("runs", "list", "--db", filled, "--json", "--workflow", "digest"))
    assert [r["id"] for r in rows] == [RUN_B]
    rows = _json(invoke("runs", "list", "--db", filled, "--json", "--limit", "1"))
    assert [r["id"] for r in rows] == [RUN_C]


def test_list_without_a_database(db: str, invoke: Invoke) -> None:
    result = invoke("runs", "list", "--db", db)
    assert exit_code(result) == 0 and "no runs yet" in result.stdout
    assert _json(invoke("runs", "list", "--db", db, "--json")) == []
    assert not Path(db).exists()  # a read never creates the database


def test_db_from_the_environment(
    filled: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATE_DB", filled)
    rows = _json(invoke("runs", "list", "--json"))
    assert len(rows) == 3


def test_stale_heartbeat_is_interrupted(db: str, invoke: Invoke) -> None:
    from .synthetic import live_run

    fill(db, live_run(RUN_C, 1_000_000.0))  # its process died long ago
    rows = _json(invoke("runs", "list", "--db", db, "--json"))
    assert rows[0]["status"] == "interrupted"
    rows = _json(invoke("runs", "list", "--db", db, "--json", "--status", "interrupted"))
    assert len(rows) == 1


# --- run references ------------------------------------------------------------------------------


def test_prefix_last_ambiguous_unknown(filled: str, invoke: Invoke) -> None:
    assert _json(invoke("runs", "show", "01jz", "--db", filled, "--json"))["id"] == RUN_C
    assert _json(invoke("runs", "show", "last", "--db", filled, "--json"))["id"] == RUN_C
    ambiguous = invoke("runs", "show", "01jcommon", "--db", filled)
    assert exit_code(ambiguous) == 2
    assert "01jcommon" in ambiguous.stderr and "error:" in ambiguous.stderr
    unknown = invoke("runs", "show", "01nope", "--db", filled)
    assert exit_code(unknown) == 2 and "01nope" in unknown.stderr


def test_lookup_without_a_database_exits_2(db: str, invoke: Invoke) -> None:
    for args in (["show", "last"], ["tasks", "last"], ["logs", "last"], ["cost", "x"]):
        result = invoke("runs", *args, "--db", db)
        assert exit_code(result) == 2, args
        assert "no runs yet" in result.stderr
    assert not Path(db).exists()


# --- show ----------------------------------------------------------------------------------------


def test_show_text(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "show", RUN_A, "--db", filled)
    assert exit_code(result) == 0, result.output
    out = result.stdout
    for piece in (
        RUN_A,
        "research",
        "workflows/research.yaml",
        "failed",
        "question",
        "why is the sky blue?",
        "plan",
        "agent",
        "fanout",
        "research[1]",
        "HTTP 400 invalid request",
        "step research failed",
        "totals:",
    ):
        assert piece in out, piece


def test_show_json(filled: str, invoke: Invoke) -> None:
    data = _json(invoke("runs", "show", RUN_A, "--db", filled, "--json"))
    assert isinstance(data, dict)
    assert data["inputs"] == {"question": "why is the sky blue?"}
    assert data["status"] == "failed" and data["duration_s"] == 7.0
    steps = {s["id"]: s for s in data["steps"]}
    assert steps["plan"]["kind"] == "agent" and steps["plan"]["status"] == "succeeded"
    assert steps["plan"]["tasks_succeeded"] == 1
    assert steps["plan"]["cache_hit_ratio"] == round(50 / 300, 4)
    research = steps["research"]
    assert research["tasks_total"] == 3 and research["tasks_failed"] == 1
    assert research["cost_unknown"] is True and research["status"] == "failed"
    assert data["errors"][0] == {
        "step": "research",
        "task": f"tr1{RUN_A}",
        "label": "research[1]",
        "error": "HTTP 400 invalid request",
    }
    totals = data["totals"]
    assert totals["input_tokens"] == 330 and totals["output_tokens"] == 70
    assert totals["cache_creation_input_tokens"] == 16 and totals["cache_read_input_tokens"] == 50
    assert totals["cost_unknown"] is True and abs(totals["cost_usd"] - 0.0025) < 1e-9


def test_show_outputs_of_a_successful_run(filled: str, invoke: Invoke) -> None:
    data = _json(invoke("runs", "show", RUN_B, "--db", filled, "--json"))
    assert data["outputs"] == {"report": "the sky is blue"}
    assert data["errors"] == []
    assert "the sky is blue" in invoke("runs", "show", RUN_B, "--db", filled).stdout


# --- tasks ---------------------------------------------------------------------------------------


def test_tasks(filled: str, invoke: Invoke) -> None:
    rows = _json(invoke("runs", "tasks", RUN_A, "--db", filled, "--json"))
    assert {r["label"] for r in rows} == {"plan", "research[0]", "research[1]", "research[2]"}
    rows = _json(invoke("runs", "tasks", RUN_A, "--db", filled, "--json", "--step", "research"))
    assert len(rows) == 3
    failed = _json(invoke("runs", "tasks", RUN_A, "--db", filled, "--json", "--status", "failed"))
    assert [r["label"] for r in failed] == ["research[1]"]
    assert failed[0]["error"] == "HTTP 400 invalid request"
    text = invoke("runs", "tasks", RUN_A, "--db", filled, "--status", "failed").stdout
    assert "research[1]" in text and "HTTP 400" in text and "plan" not in text
    plan = _json(invoke("runs", "tasks", RUN_A, "--db", filled, "--json", "--step", "plan"))
    assert plan[0]["output"] == {"subtasks": ["scattering", "wavelengths", "eyes"]}
    assert plan[0]["turns"] == 2 and plan[0]["agent"] == "planner"


# --- transcript ----------------------------------------------------------------------------------


def test_transcript_of_a_tool_loop(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "transcript", RUN_A, "plan", "--db", filled)
    assert exit_code(result) == 0, result.output
    out = result.stdout
    order = [
        "System",
        SYSTEM,
        "User",
        PROMPT,
        "call 1",
        "Let me check my notes.",
        "Tool call Read",
        "notes.md",
        "Tool result",
        "Rayleigh!",
        "call 2",
        '{"subtasks": ["scattering", "wavelengths", "eyes"]}',
        "Output",
        '"scattering"',
        "total: 2 calls · 250 in · 50 out",
    ]
    pos = 0
    for piece in order:
        found = out.find(piece, pos)
        assert found >= 0, f"{piece!r} missing after {pos}:\n{out}"
        pos = found + len(piece)


def test_transcript_json_and_task_references(filled: str, invoke: Invoke) -> None:
    data = _json(invoke("runs", "transcript", RUN_A, "plan", "--db", filled, "--json"))
    assert isinstance(data, dict)
    assert data["system"] == SYSTEM and data["prompt"] == PROMPT
    first, second = data["turns"]
    assert first["tool_calls"][0]["name"] == "Read"
    assert first["tool_calls"][0]["result"] == "Rayleigh!"
    assert second["stop_reason"] == "end_turn"
    assert data["output"] == {"subtasks": ["scattering", "wavelengths", "eyes"]}
    assert data["usage"]["input_tokens"] == 250
    assert len(data["calls"]) == 2 and data["calls"][0]["request_id"] == f"req_c1{RUN_A}"
    by_index = _json(invoke("runs", "transcript", RUN_A, "research[1]", "--db", filled, "--json"))
    assert by_index["task"]["id"] == f"tr1{RUN_A}"
    assert by_index["turns"][0]["status"] == "fatal_error"
    by_id = _json(invoke("runs", "transcript", RUN_A, "tp", "--db", filled, "--json"))
    assert by_id["task"]["id"] == f"tp{RUN_A}"
    unpriced = _json(invoke("runs", "transcript", RUN_A, f"tr2{RUN_A}", "--db", filled, "--json"))
    assert unpriced["turns"][0]["model"] == UNPRICED and unpriced["cost_unknown"] is True


def test_transcript_unknown_task_exits_2(filled: str, invoke: Invoke) -> None:
    result = invoke("runs", "transcript", RUN_A, "nosuchstep", "--db", filled)
    assert exit_code(result) == 2 and "nosuchstep" in result.stderr
    result = invoke("runs", "transcript", RUN_A, "research", "--db", filled)
    assert exit_code(result) == 2  # three tasks: say which one


# --- cost and export -----------------------------------------------------------------------------


def test_cost(filled: str, invoke: Invoke) -> None:
    data = _json(invoke("runs", "cost", RUN_A, "--db", filled, "--json"))
    assert isinstance(data, dict) and data["run"] == RUN_A
    rows = {(r["step"], r["model"]): r for r in data["rows"]}
    plan = rows[("plan", "claude-sonnet-5-5")]
    assert plan["calls"] == 2 and plan["input_tokens"] == 250
    assert plan["cache_read_input_tokens"] == 50
    assert abs(plan["cost_usd"] - 0.002) < 1e-9
    assert rows[("research", UNPRICED)]["cost_usd"] is None
    assert rows[("research", UNPRICED)]["cost_unknown"] is True
    assert data["totals"]["cost_unknown"] is True and data["totals"]["input_tokens"] == 330
    text = invoke("runs", "cost", RUN_A, "--db", filled).stdout
    assert "claude-sonnet-5-5" in text and UNPRICED in text and "total" in text and "?" in text


def test_export_jsonl_and_json(filled: str, invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("runs", "export", RUN_A, "--db", filled)
    assert exit_code(result) == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and all(isinstance(item, dict) for item in lines)
    assert RUN_A in result.stdout
    target = tmp_path / "a.json"
    result = invoke("runs", "export", RUN_A, "--db", filled, "--format", "json", "-o", str(target))
    assert exit_code(result) == 0, result.output
    assert json.loads(target.read_text()) == lines


def test_runs_list_of_many(db: str, invoke: Invoke) -> None:
    for n in range(5):
        fill(db, full_run(f"01k{n:023d}", 1_700_000_000.0 + n, fail=False))
    rows = _json(invoke("runs", "list", "--db", db, "--json", "--limit", "3"))
    assert [r["id"][-1] for r in rows] == ["4", "3", "2"]
