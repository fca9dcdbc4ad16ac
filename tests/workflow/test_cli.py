"""`orchestrate validate | graph | schema | init | agents list | config show`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

GOOD = (
    "version: 1\nname: good\nsteps:\n  - id: a\n    prompt: hi\n"
    "  - id: b\n    prompt: '{{ steps.a.output }}'\n"
)
BAD = "version: 1\nsteps:\n  - id: a\n    prompt: hi\n    tols: [Read]\n"


def test_validate_ok_and_errors(write: Callable[..., Path]) -> None:
    good, bad = write(GOOD, "good.yaml"), write(BAD, "bad.yaml")
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ok: {good} (2 steps)"
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:5:5: step 'a': unknown key 'tols' (did you mean 'tools'?)" in result.output
    assert f"ok: {good} (2 steps)" in result.output


def test_validate_prints_warnings_and_still_passes(write: Callable[..., Path]) -> None:
    write("---\nname: w\ndescription: d\ncolor: red\n---\nx\n", "agents/w.md")
    path = write("version: 1\nsteps:\n  - id: a\n    agent: w\n    prompt: hi\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert ":4:1: warning: front-matter keys not used by orchestrate" in result.output


def test_validate_unknown_filter_is_a_diagnostic_not_a_traceback(
    write: Callable[..., Path],
) -> None:
    path = write("version: 1\nsteps:\n  - id: a\n    prompt: '{{ 1 | uper }}'\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == (
        f"{path}:4:13: step 'a': 'prompt': unknown filter 'uper' (did you mean 'upper'?)\n"
    )


def test_validate_broken_agent_front_matter_fails_naming_the_agent_file(
    write: Callable[..., Path],
) -> None:
    agent = write('---\nname: w\ntools: "Read, Grep\n---\nx\n', "agents/w.md")
    path = write("version: 1\nsteps:\n  - id: a\n    agent: w\n    prompt: hi\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{agent}:3:8: invalid front matter: a quoted value that starts here" in result.output


def test_validate_json(write: Callable[..., Path]) -> None:
    good, bad = write(GOOD, "good.yaml"), write(BAD, "bad.yaml")
    result = runner.invoke(app, ["validate", "--json", str(good), str(bad)])
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert [r["ok"] for r in report] == [True, False]
    assert report[1]["diagnostics"][0]["line"] == 5
    assert report[1]["diagnostics"][0]["severity"] == "error"


def test_validate_missing_and_binary_files(tmp_path: Path) -> None:
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\x00\xff\x00")
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml"), str(binary)])
    assert result.exit_code == 2
    assert "cannot read workflow file" in result.output
    assert "not a text file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_validate_shipped_workflows() -> None:
    files = sorted(str(p) for p in (REPO / "workflows").glob("*.yaml"))
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok: ") == len(files)


def test_graph(write: Callable[..., Path]) -> None:
    path = write(GOOD)
    result = runner.invoke(app, ["graph", str(path)])
    assert result.exit_code == 0
    assert result.output.startswith("flowchart TD") and "a --> b" in result.output
    result = runner.invoke(app, ["graph", str(path), "--format", "dot"])
    assert result.exit_code == 0 and "a -> b;" in result.output
    result = runner.invoke(app, ["graph", str(path), "--format", "png"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["graph", str(write(BAD, "bad.yaml"))])
    assert result.exit_code == 2 and "unknown key 'tols'" in result.output


def test_schema_validates_every_example() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((REPO / "workflows").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text("utf-8")), schema)


def test_init_scaffolds_a_valid_project_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    for relative in (
        "workflows/hello.yaml",
        "agents/writer.md",
        "agents/critic.md",
        "orchestrate.yaml",
    ):
        assert (target / relative).is_file()
    assert yaml.safe_load((target / "orchestrate.yaml").read_text()) is None  # all commented
    result = runner.invoke(app, ["validate", str(target / "workflows" / "hello.yaml")])
    assert result.exit_code == 0, result.output
    before = (target / "agents" / "writer.md").read_text()
    (target / "agents" / "writer.md").write_text("mine")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 2
    assert "already exists" in result.output and "hello.yaml" in result.output
    assert (target / "agents" / "writer.md").read_text() == "mine" != before


def test_agents_list(write: Callable[..., Path]) -> None:
    write(
        "---\nname: alpha\ndescription: first\ntools: Read, Grep\nmodel: haiku\n---\nA\n",
        "agents/alpha.md",
    )
    write("---\nname: beta\ndescription: second\n---\nB\n", ".claude/agents/beta.md")
    write("---\nname: alpha\ndescription: shadowed\n---\nC\n", ".claude/agents/alpha2.md")
    write("---\nname: gamma\ntools: []\n---\nG\n", "agents/gamma.md")
    result = runner.invoke(app, ["agents", "list"])
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines()]
    assert lines[0].split() == ["NAME", "MODEL", "TOOLS", "SOURCE"]
    assert lines[1].split() == ["alpha", "haiku", "Read,", "Grep", "agents/alpha.md"]
    # beta names no tools: it inherits the default set (every built-in but Bash), and says so
    assert lines[2].split()[:3] == ["beta", "inherit", "Read,"]
    assert "(inherited)" in lines[2] and "Bash" not in lines[2]
    assert lines[3].split() == ["gamma", "inherit", "none", "agents/gamma.md"]
    # two files give the name 'alpha': a warning names both
    assert "given by agents/alpha.md and by .claude/agents/alpha2.md" in result.stderr
    result = runner.invoke(app, ["agents", "list", "--json"])
    data = json.loads(result.stdout)
    rows = data["agents"]
    assert [r["name"] for r in rows] == ["alpha", "beta", "gamma"]
    assert rows[0]["tools"] == ["Read", "Grep"] and not rows[0]["inherited_tools"]
    assert rows[1]["inherited_tools"] and "Write" in rows[1]["tools"]
    assert "Bash" not in rows[1]["tools"]
    assert rows[2]["tools"] == []
    assert [p["severity"] for p in data["problems"]] == ["warning"]


def test_agents_list_fails_when_a_file_does_not_load(write: Callable[..., Path]) -> None:
    write("---\nname: ok\n---\nA\n", "agents/ok.md")
    write("---\nname: broken\ntools: 'Read, Grep\n---\nB\n", "agents/broken.md")
    result = runner.invoke(app, ["agents", "list", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["agents"]] == ["ok"]
    problem = data["problems"][0]
    assert problem["severity"] == "error" and problem["file"].endswith("broken.md")
    assert problem["line"] == 3 and "never closed" in problem["message"]
    assert runner.invoke(app, ["agents", "list"]).exit_code == 1


def test_agents_list_empty() -> None:
    result = runner.invoke(app, ["agents", "list"])
    assert result.exit_code == 0 and "no agents found" in result.output


def test_config_show(write: Callable[..., Path]) -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert result.output.startswith("# layers applied, lowest first: packaged defaults")
    data = yaml.safe_load(result.output)
    assert data["engine"]["model"] == "sonnet"
    custom = write("engine:\n  concurrency: 7\n", "custom.yaml")
    result = runner.invoke(app, ["config", "show", "--json", "--config", str(custom)])
    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown["settings"]["engine"]["concurrency"] == 7
    assert shown["sources"] == ["packaged defaults", str(custom)]
    result = runner.invoke(app, ["config", "show", "--config", "missing.yaml"])
    assert result.exit_code == 2 and "config file not found" in result.output
