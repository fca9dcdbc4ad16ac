"""`model: [opus, sonnet]` from the workflow's `defaults:`, an agent file, or `engine.model` in
the settings falls back as a step's own list does (on FakeLLM, engine time virtual), a step's
own `model:` still wins, and `orchestrate estimate` prices the first model as the expected one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.events import CallFinished
from orchestrator.testing import FakeLLM, FakeRequest, Reply

SONNET_IN, SONNET_OUT = 3.0, 15.0  # configs/default.yaml, $ a million tokens
OPUS_IN, OPUS_OUT = 5.0, 25.0

RETRY = {"horizon": "30s", "overload_cluster": 1000}  # the horizon decides, not a pause


def opus_down(request: FakeRequest) -> Reply:
    if "opus" in request.body["model"]:
        return Reply.overloaded()
    return Reply.text(f"answered by {request.body['model']}")


def answered(h: Any) -> list[str]:
    return [c.model for c in h.of(CallFinished) if c.status == "succeeded"]


async def test_a_list_in_defaults_falls_back(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM(default=opus_down), virtual_time=True, retry=RETRY)
    text = """
    version: 1
    name: d
    defaults: {model: [opus, sonnet]}
    steps:
      - id: a
        prompt: hi
      - id: own
        model: haiku
        prompt: hi
    """
    outcome = await h.run(text)
    assert outcome.status == "succeeded", outcome.error
    opus, sonnet = h.settings.resolve_model("opus"), h.settings.resolve_model("sonnet")
    a = [c.model for c in h.of(CallFinished) if c.step_id == "a"]
    assert a[0] == opus and a[-1] == sonnet  # tried opus first, answered by sonnet
    own = {c.model for c in h.of(CallFinished) if c.step_id == "own"}
    assert own == {h.settings.resolve_model("haiku")}  # the step's own model wins


async def test_a_list_in_an_agent_file_falls_back(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM(default=opus_down), virtual_time=True, retry=RETRY)
    agents = h.tmp / "agents"
    agents.mkdir()
    (agents / "writer.md").write_text("---\nname: writer\nmodel: [opus, sonnet]\n---\nYou write.\n")
    text = "version: 1\nname: a\nsteps:\n  - {id: a, agent: writer, prompt: hi}\n"
    outcome = await h.run(text)
    assert outcome.status == "succeeded", outcome.error
    assert answered(h) == [h.settings.resolve_model("sonnet")]
    assert h.of(CallFinished)[0].model == h.settings.resolve_model("opus")


async def test_a_list_as_the_settings_default_falls_back(fake_harness: Any) -> None:
    h = fake_harness(
        FakeLLM(default=opus_down),
        virtual_time=True,
        retry=RETRY,
        engine={"model": ["opus", "sonnet"]},
    )
    outcome = await h.run("version: 1\nname: s\nsteps:\n  - {id: a, prompt: hi}\n")
    assert outcome.status == "succeeded", outcome.error
    assert answered(h) == [h.settings.resolve_model("sonnet")]


def test_estimate_prices_the_first_model_of_a_defaults_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = f"""
    version: 1
    name: e
    defaults: {{model: [sonnet, opus], max_tokens: 1000}}
    steps:
      - id: one
        prompt: "{"x" * 400}"
    """
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(text))
    result = CliRunner().invoke(app, ["estimate", "wf.yaml", "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (one,) = json.loads(result.output)["steps"]
    # expected: the model tried first; worst case: the dearest model the task may reach
    assert one["expected_usd"] == pytest.approx((101 * SONNET_IN + 250 * SONNET_OUT) / 1e6)
    assert one["worst_usd"] == pytest.approx((101 * OPUS_IN + 1000 * OPUS_OUT) / 1e6)
