"""`orchestrate run` and `resume` as a user meets them: in a fresh directory, on the simulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).parents[2]
ORCHESTRATE = Path(sys.executable).parent / "orchestrate"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project directory with the examples and agents, as a user would have."""
    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    shutil.copytree(ROOT / "agents", tmp_path / "agents")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_run_on_the_simulator_prints_run_id_first_and_outputs_last(project: Path) -> None:
    code, out, err = invoke("run", "workflows/research.yaml", "--simulate", "--quiet")
    assert code == 0, err
    assert err.splitlines()[0].startswith("run ")
    run_id = err.splitlines()[0].split()[1]
    assert "Simulated reply" in out  # the report output
    assert (project / ".orchestrate" / "state.db").exists()
    assert (project / ".orchestrate" / "runs" / run_id / "workspace").is_dir()
    assert (project / ".orchestrate" / "logs" / f"{run_id}.jsonl").exists()


def test_run_json_prints_events_then_the_result(project: Path) -> None:
    code, out, _ = invoke("run", "workflows/chain.yaml", "--simulate", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "run"
    assert lines[-1]["type"] == "result" and lines[-1]["status"] == "succeeded"
    types = {line["type"] for line in lines}
    assert {"run_started", "step_started", "task_finished", "run_finished"} <= types


def test_run_writes_outputs_to_a_file(project: Path) -> None:
    code, _, _ = invoke("run", "workflows/voting.yaml", "--simulate", "-q", "--output", "out.json")
    assert code == 0
    outputs = json.loads((project / "out.json").read_text())
    assert outputs and all(v is not None for v in outputs.values())


def test_unknown_input_is_exit_2_naming_it(project: Path) -> None:
    code, _, err = invoke("run", "workflows/research.yaml", "--simulate", "-i", "questoin=x")
    assert code == 2
    assert "questoin" in err and "question" in err


def test_wrongly_typed_input_is_exit_2(project: Path) -> None:
    code, _, err = invoke("run", "workflows/research.yaml", "--simulate", "-i", "parts=many")
    assert code == 2
    assert "parts" in err


def test_no_key_and_no_simulate_says_both_ways_out(project: Path) -> None:
    code, _, err = invoke("run", "workflows/research.yaml")
    assert code == 2
    assert "ANTHROPIC_API_KEY" in err and "--simulate" in err
    assert not (project / ".orchestrate" / "state.db").exists()


def test_bad_workflow_is_exit_2_with_file_line_col(project: Path) -> None:
    (project / "bad.yaml").write_text("version: 1\nname: bad\nsteps:\n  - id: a\n    promt: hi\n")
    code, _, err = invoke("run", "bad.yaml", "--simulate")
    assert code == 2
    assert "bad.yaml:5:5:" in err and "prompt" in err
    assert "Traceback" not in err


def test_inputs_file_and_flags_are_merged(project: Path) -> None:
    (project / "in.yaml").write_text("question: from the file\nparts: 2\n")
    code, _, err = invoke(
        "run",
        "workflows/research.yaml",
        "--simulate",
        "-q",
        "--inputs",
        "in.yaml",
        "-i",
        "parts=3",
    )
    assert code == 0, err
    code, out, _ = invoke("runs", "show", "last", "--json")
    shown = json.loads(out)
    assert shown["inputs"] == {"question": "from the file", "parts": 3}


def test_history_commands_on_a_real_simulated_run(project: Path) -> None:
    code, _, err = invoke("run", "workflows/research.yaml", "--simulate", "-q")
    assert code == 0, err
    code, out, _ = invoke("runs", "list", "--json")
    runs = json.loads(out)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    run_id = runs[0]["id"]
    code, out, _ = invoke("runs", "tasks", run_id[:8], "--step", "research", "--json")
    tasks = json.loads(out)
    assert len(tasks) >= 2 and all(t["status"] == "succeeded" for t in tasks)
    code, out, _ = invoke("runs", "transcript", "last", "research[1]", "--json")
    assert code == 0
    transcript = json.loads(out)
    text = json.dumps(transcript)
    assert "Research this sub-question" in text  # the worker's own prompt
    others = [t["output"] for t in tasks if t["index"] != 1]
    assert not any(other in text for other in others)  # no other worker's conversation
    code, out, _ = invoke("runs", "cost", "last", "--json")
    assert code == 0 and json.loads(out)
    code, out, _ = invoke("runs", "logs", "last", "--json")
    assert code == 0
    assert any(json.loads(line)["type"] == "run_finished" for line in out.splitlines())


def test_resume_refuses_a_changed_workflow_unless_use_current(project: Path) -> None:
    wf = project / "wf.yaml"
    wf.write_text(
        "version: 1\nname: r\nsteps:\n  - {id: bad, run: 'exit 1'}\n  - {id: a, prompt: hi}\n"
    )
    code, _, _ = invoke("run", "wf.yaml", "--simulate", "-q")
    assert code == 1
    wf.write_text(
        "version: 1\nname: r\nsteps:\n  - {id: bad, run: 'exit 0'}\n  - {id: a, prompt: hi}\n"
    )
    code, _, err = invoke("resume", "last", "--simulate")
    assert code == 2 and "--use-current" in err
    code, _, err = invoke("resume", "last", "--simulate", "--use-current", "-q")
    assert code == 0, err
    code, out, _ = invoke("runs", "list", "--json")
    assert [r["status"] for r in json.loads(out)] == ["succeeded"]


def test_help_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from orchestrator.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "for name in ('anthropic', 'orchestrator.engine', 'sqlalchemy'):\n"
        "    assert name not in sys.modules, name\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_console_script_exit_codes() -> None:
    env = {**os.environ, "ORCHESTRATE_DB": "/nonexistent-dir-for-test/state.db"}
    result = subprocess.run(
        [str(ORCHESTRATE), "runs", "show", "nope"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_runs_cancel_stops_a_live_run_in_another_process(project: Path) -> None:
    env = {
        **os.environ,
        "ORCHESTRATE_ENGINE__HEARTBEAT": "100ms",  # the live run checks for a cancel this often
    }
    wf = project / "slow.yaml"
    wf.write_text(
        "version: 1\nname: slow\nsteps:\n"
        "  - {id: each, for_each: '{{ range(6) | list }}', prompt: 'item {{ item }}'}\n"
    )
    child = subprocess.Popen(
        [str(ORCHESTRATE), "run", "slow.yaml", "--simulate", "--sim-latency", "3s", "-q"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = child.stderr.readline().split()[1] if child.stderr else ""
        assert run_id, "the run id comes first"
        deadline = 100
        while deadline:
            code, out, _ = invoke("runs", "list", "--json")
            if code == 0 and json.loads(out) and json.loads(out)[0]["status"] == "running":
                break
            deadline -= 1
            time.sleep(0.1)
        code, _, err = invoke("runs", "cancel", run_id[:10])
        assert code == 0, err
        assert child.wait(timeout=30) == 130
    finally:
        child.kill()
    code, out, _ = invoke("runs", "show", run_id, "--json")
    assert json.loads(out)["status"] == "cancelled"


def test_export_and_rm_on_a_real_run(project: Path) -> None:
    assert invoke("run", "workflows/chain.yaml", "--simulate", "-q")[0] == 0
    code, out, _ = invoke("runs", "export", "last", "--format", "jsonl")
    assert code == 0
    tables = {json.loads(line)["table"] for line in out.splitlines()}
    assert {"runs", "steps", "tasks", "calls", "events"} <= tables
    code, _, _ = invoke("runs", "rm", "last", "--yes")
    assert code == 0
    code, out, _ = invoke("runs", "list", "--json")
    assert json.loads(out) == []


def test_logs_follow_tails_a_run_another_process_is_executing(project: Path) -> None:
    env = {**os.environ, "ORCHESTRATE_ENGINE__HEARTBEAT": "100ms"}
    (project / "slow.yaml").write_text(
        "version: 1\nname: slow\nsteps:\n"
        "  - {id: each, for_each: '{{ range(4) | list }}', prompt: 'item {{ item }}'}\n"
    )
    child = subprocess.Popen(
        [str(ORCHESTRATE), "run", "slow.yaml", "--simulate", "--sim-latency", "700ms", "-q"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = child.stderr.readline().split()[1] if child.stderr else ""
        for _ in range(100):  # until the run is in the store
            if invoke("runs", "list", "--json")[1].strip() not in ("", "[]"):
                break
            time.sleep(0.05)
        code, out, err = invoke("runs", "logs", run_id, "--follow", "--json")
        assert code == 0, err
        types = [json.loads(line)["type"] for line in out.splitlines()]
        assert types[0] == "run_started" and types[-1] == "run_finished"
        assert types.count("task_finished") == 4  # followed to the end, nothing missed
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()


def test_resume_works_from_another_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = project / "flows"
    (flows / "agents").mkdir(parents=True)
    (flows / "agents" / "local.md").write_text("---\nname: local\n---\nYou help.\n")
    (flows / "wf.yaml").write_text(
        "version: 1\nname: r\nsteps:\n"
        "  - {id: flaky, run: 'test -f ok || (touch ok; exit 1)'}\n"
        "  - {id: a, agent: local, prompt: hi}\n"  # found next to the workflow
    )
    assert invoke("run", "flows/wf.yaml", "--simulate", "-q")[0] == 1  # first attempt fails
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    db = str(project / ".orchestrate" / "state.db")
    code, _, err = invoke("resume", "last", "--simulate", "-q", "--db", db)
    assert code == 0, err
