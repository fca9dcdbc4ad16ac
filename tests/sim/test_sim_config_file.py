"""`--sim-config FILE` on `sim serve`, `run` and `resume`, and the README's rules examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.sim import SimConfig, load_config_file, load_rules

ROOT = Path(__file__).parents[2]
WORKFLOW = """
version: 1
name: one
steps:
  - {id: ask, prompt: "tell me about rivers", model: my-model, max_tokens: 100}
outputs:
  answer: "{{ steps.ask.output }}"
"""


def test_a_config_file_gives_every_setting(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("- {prompt: rivers, text: Rivers flow.}\n")
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(
        "seed: 7\nlatency: 10ms\nfaults: 429=0.1,stream_cut=0.2\nrules: rules.yaml\n"
        "list_len: 2\ntool_calls: false\nmodels: [my-model]\ncache_after_response_start: false\n"
    )
    config = SimConfig(**load_config_file(cfg))
    assert (config.seed, config.latency_s, config.list_len, config.tool_calls) == (
        7,
        0.01,
        2,
        False,
    )
    assert config.faults == {"429": 0.1, "stream_cut": 0.2}
    assert config.rules[0].text == "Rivers flow." and config.models == ["my-model"]
    assert config.cache_after_response_start is False


def test_unknown_keys_in_a_config_file_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("latncy: 1s\n")
    with pytest.raises(ValueError, match=r"unknown keys \['latncy'\]"):
        load_config_file(cfg)
    result = CliRunner().invoke(app, ["sim", "serve", "--sim-config", str(cfg)])
    assert "--sim-config:" in result.output and "latncy" in result.output


def test_run_and_resume_take_a_sim_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(
        yaml.safe_dump({"models": ["my-model"], "rules": [{"prompt": "rivers", "text": "Wet."}]})
    )
    done = CliRunner().invoke(
        app, ["run", "wf.yaml", "--simulate", "--sim-config", str(cfg), "-q", "--db", "s.db"]
    )
    assert done.exit_code == 0, done.output
    assert "Wet." in done.stdout
    # without the file, my-model is unknown to the simulator: a 404, so the run fails
    failed = CliRunner().invoke(app, ["run", "wf.yaml", "--simulate", "-q", "--db", "s.db"])
    assert failed.exit_code == 1
    resumed = CliRunner().invoke(
        app, ["resume", "last", "--simulate", "--sim-model", "my-model", "-q", "--db", "s.db"]
    )
    assert resumed.exit_code == 0, resumed.output


def test_sim_config_without_simulate_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    done = CliRunner().invoke(app, ["run", str(tmp_path / "wf.yaml"), "--sim-config", "x.yaml"])
    assert done.exit_code == 2
    assert "--sim-config only applies with --simulate" in done.output


def test_the_readme_rules_examples_load(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Simulator", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    (tmp_path / "rules.yaml").write_text(block)
    kinds = [r.reply_kind or "stop_reason" for r in load_rules(tmp_path / "rules.yaml")]
    assert kinds == ["json", "text", "tool_calls", "error", "stop_reason"]
