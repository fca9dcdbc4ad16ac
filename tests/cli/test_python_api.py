"""The Python API (`orchestrator.run`, `orchestrator.arun`) and the store read with SQLModel alone,
as a user's script or notebook would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ORCHESTRATE = Path(sys.executable).parent / "orchestrate"
WORKFLOW = (
    "version: 1\nname: api\ninputs:\n  topic: {type: string}\n"
    "steps:\n  - {id: a, prompt: 'Say something about {{ inputs.topic }}'}\n"
    "  - {id: bad, run: 'exit 3', allow_failure: false}\n"
    "outputs:\n  said: '{{ steps.a.output }}'\n"
)


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "ORCHESTRATE_", "CLAUDE_"))
    }


def python(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_script_runs_a_workflow_and_the_cli_sees_the_run(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        WORKFLOW.replace("  - {id: bad, run: 'exit 3'", "  - {id: ok, run: 'true'")
    )
    done = python(
        tmp_path,
        """
        import json, orchestrator
        outcome = orchestrator.run("wf.yaml", inputs={"topic": "tides"}, simulate=True)
        print(json.dumps({"id": outcome.run_id, "status": outcome.status,
                          "outputs": outcome.outputs, "exit_code": outcome.exit_code}))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "Unclosed" not in done.stderr and "Traceback" not in done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert isinstance(result["outputs"]["said"], str) and result["outputs"]["said"]
    listed = subprocess.run(
        [str(ORCHESTRATE), "runs", "list", "--json"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (run,) = json.loads(listed.stdout)
    assert run["id"] == result["id"] and run["status"] == "succeeded"
    assert run["workflow"] == "api" and run["calls"] >= 1 and run["input_tokens"] > 0
    assert (tmp_path / ".orchestrate" / "logs" / f"{run['id']}.jsonl").exists()


def test_arun_in_async_code_with_another_store_and_a_failed_run(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    done = python(
        tmp_path,
        """
        import asyncio, json, orchestrator

        async def main():
            seen = []
            outcome = await orchestrator.arun(
                "wf.yaml", {"topic": "tides"}, simulate=True, db="elsewhere/history.db",
                on_event=lambda event: seen.append(event.type),
            )
            print(json.dumps({"status": outcome.status, "error": outcome.error,
                              "exit_code": outcome.exit_code, "seen": seen}))

        asyncio.run(main())
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "Unclosed" not in done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "failed" and result["exit_code"] == 1
    assert "bad" in result["error"]
    assert result["seen"][0] == "run_started" and result["seen"][-1] == "run_finished"
    assert (tmp_path / "elsewhere" / "history.db").exists()
    assert not (tmp_path / ".orchestrate" / "state.db").exists()


def test_bad_inputs_raise_before_anything_is_created(tmp_path: Path) -> None:
    import orchestrator

    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    with pytest.raises(orchestrator.UsageError, match="topic"):
        orchestrator.run(
            tmp_path / "wf.yaml", {"topik": "x"}, simulate=True, db=str(tmp_path / "s.db")
        )
    assert not (tmp_path / "s.db").exists()


def test_the_store_reads_with_sqlmodel_alone_like_a_notebook(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    done = subprocess.run(
        [str(ORCHESTRATE), "run", "wf.yaml", "--simulate", "-q", "-i", "topic=tides"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # the `bad` step fails: one failed task
    done = python(
        tmp_path,
        """
        import json
        from sqlmodel import Session, create_engine, select
        from orchestrator.store import Call, Run, Task

        engine = create_engine("sqlite:///.orchestrate/state.db")
        with Session(engine) as session:
            failed = session.exec(select(Task).where(Task.status == "failed")).all()
            run = session.exec(select(Run)).one()
            calls = session.exec(select(Call).where(Call.run_id == run.id)).all()
            print(json.dumps({
                "failed": [(t.step_id, t.status, t.error) for t in failed],
                "run": [run.status, run.usage.total_tokens, run.inputs],
                "call_tokens": sum(c.usage.total_tokens for c in calls),
                "output": session.exec(select(Task).where(Task.step_id == "a")).one().output,
            }))
        """,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.splitlines()[-1])
    ((step, status, error),) = data["failed"]
    assert (step, status) == ("bad", "failed") and "3" in error
    status, tokens, inputs = data["run"]
    assert status == "failed" and inputs == {"topic": "tides"}  # JSON columns come decoded
    assert tokens == data["call_tokens"] > 0
    assert isinstance(data["output"], str) and data["output"]
