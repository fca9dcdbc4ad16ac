"""`orchestrate estimate`: worst and expected cost before a run, from the workflow alone."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.engine.estimate import estimate_workflow
from orchestrator.testing import FakeLLM, Reply
from orchestrator.workflow import load_workflow

SONNET_IN, SONNET_OUT = 3.0, 15.0  # configs/default.yaml, $ a million tokens
OPUS_IN, OPUS_OUT = 5.0, 25.0
PROMPT = "x" * 400  # 101 tokens at four characters a token

WORKFLOW = f"""
version: 1
name: costly
inputs:
  n: {{type: integer, default: 2}}
defaults: {{model: sonnet, max_tokens: 1000}}
steps:
  - id: one
    prompt: "{PROMPT}"
  - id: known
    for_each: "{{{{ range(inputs.n) | list }}}}"
    prompt: "{PROMPT}"
  - id: plan
    prompt: "plan"
    output:
      type: object
      required: [parts]
      properties:
        parts: {{type: array, items: {{type: string}}, minItems: 2, maxItems: 6}}
  - id: bounded
    for_each: "{{{{ steps.plan.output.parts }}}}"
    prompt: "{{{{ item }}}}"
  - id: either
    model: [sonnet, opus]
    prompt: "{PROMPT}"
"""


def estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, *args: str) -> Any:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(text))
    return CliRunner().invoke(app, ["estimate", "wf.yaml", *args], env={"COLUMNS": "200"})


def steps_of(result: Any) -> dict[str, dict[str, Any]]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["approximate"] is True
    return {s["step"]: s for s in data["steps"]}


def test_a_single_call_is_priced_from_its_prompt_and_max_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = steps_of(estimate(tmp_path, monkeypatch, WORKFLOW, "--json"))
    one = steps["one"]
    assert one["input_tokens"] == 101 and one["max_tokens"] == 1000 and one["calls"] == 1
    assert one["worst_usd"] == pytest.approx((101 * SONNET_IN + 1000 * SONNET_OUT) / 1e6)
    assert one["expected_usd"] == pytest.approx((101 * SONNET_IN + 250 * SONNET_OUT) / 1e6)


def test_a_fanout_counts_its_items_from_the_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = steps_of(estimate(tmp_path, monkeypatch, WORKFLOW, "--input", "n=7", "--json"))
    known = steps["known"]
    assert known["tasks"] == 7 and known["count"] == "known"
    assert known["worst_usd"] == pytest.approx(7 * steps["one"]["worst_usd"])


def test_a_count_decided_at_run_time_is_bounded_and_says_by_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = steps_of(estimate(tmp_path, monkeypatch, WORKFLOW, "--json"))
    bounded = steps["bounded"]
    assert bounded["tasks"] == 6 and bounded["tasks_expected"] == 4
    assert bounded["count"] == "bound: maxItems of steps.plan.output.parts"
    # a structured output may take its repair turns too (retries, 3 by default)
    assert steps["plan"]["calls"] == 4


def test_with_no_schema_bound_the_run_s_max_workers_bounds_a_fanout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """
    version: 1
    name: open
    limits: {max_workers: 40}
    steps:
      - id: plan
        prompt: "plan"
        output: json
      - id: each
        for_each: "{{ steps.plan.output }}"
        prompt: "{{ item }}"
    """
    each = steps_of(estimate(tmp_path, monkeypatch, text, "--json"))["each"]
    assert each["tasks"] == 40 and "limits.max_workers" in each["count"]


def test_a_model_list_is_priced_at_its_dearest_model_in_the_worst_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    either = steps_of(estimate(tmp_path, monkeypatch, WORKFLOW, "--json"))["either"]
    assert either["worst_usd"] == pytest.approx((101 * OPUS_IN + 1000 * OPUS_OUT) / 1e6)
    assert either["expected_usd"] == pytest.approx((101 * SONNET_IN + 250 * SONNET_OUT) / 1e6)


def test_the_text_report_compares_the_estimate_with_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = estimate(tmp_path, monkeypatch, WORKFLOW, "--max-cost-usd", "0.05")
    assert result.exit_code == 0, result.output
    assert "approximate" in result.output
    assert "bounded" in result.output and "6*" in result.output
    assert "note: bounded: * bound: maxItems of steps.plan.output.parts" in result.output
    assert "max_cost_usd $0.05 covers the expected cost but not the worst case" in result.output
    roomy = estimate(tmp_path, monkeypatch, WORKFLOW, "--max-cost-usd", "5")
    assert "covers the worst case" in roomy.output


def test_a_bad_input_is_refused_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = estimate(tmp_path, monkeypatch, WORKFLOW, "--input", "n=many")
    assert result.exit_code == 2
    assert "input 'n': expected integer" in result.output


async def test_a_run_costs_no_more_than_its_worst_case_estimate(
    tmp_path: Path, fake_harness: Any
) -> None:
    llm = FakeLLM()
    llm.on(Reply.json({"parts": ["a", "b", "c", "d", "e", "f"]}), step="plan")
    h = fake_harness(llm)
    path = h.write(WORKFLOW)
    outcome = await h.run(path)
    assert outcome.status == "succeeded", outcome.error
    workflow = load_workflow(path, settings=h.settings)
    worst = estimate_workflow(workflow, h.settings, workflow.coerce_inputs({})).worst_usd
    assert worst is not None and 0 < h.spent() <= worst


def test_a_prompt_that_reads_earlier_output_counts_its_most_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """
    version: 1
    name: chain
    defaults: {max_tokens: 1000}
    steps:
      - id: each
        for_each: [a, b, c]
        prompt: "{{ item }}"
      - id: joined
        merge: concat
        from: each
      - id: report
        prompt: "Merge: {{ steps.joined.output }}"
    """
    report = steps_of(estimate(tmp_path, monkeypatch, text, "--json"))["report"]
    assert report["input_tokens"] >= 3 * 1000  # three items of at most 1000 tokens each
    assert "prompt reads joined" in report["notes"][0]
    assert report["expected_usd"] < report["worst_usd"]
