"""`budget:` on a step: the step stops at its own budget, the rest of the run goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.events import CallFinished, TaskFinished
from orchestrator.events import Warning as WarningEvent
from orchestrator.testing import FakeLLM
from orchestrator.workflow import load_workflow

STEP_BUDGET = 0.01
WORKFLOW = """
version: 1
name: capped
defaults: {model: sonnet, max_tokens: 100}
limits: {concurrency: 10}
steps:
  - id: wide
    for_each: "{{ range(200) | list }}"
    budget: {max_cost_usd: %s}
    on_item_error: %s
    prompt: "item {{ item }}"
  - id: other
    prompt: "independent of wide"
"""


async def test_a_fanout_stops_at_its_budget_and_fails_while_the_run_goes_on(
    fake_harness: Any,
) -> None:
    h = fake_harness(FakeLLM())
    outcome = await h.run(WORKFLOW % (STEP_BUDGET, "fail"))
    assert outcome.status == "failed", outcome.error
    assert outcome.exit_code == 1
    error = outcome.error or ""
    assert "step 'wide'" in error and "budget reached for step 'wide'" in error
    assert "budget.max_cost_usd" in error
    spent = h.spent("wide")
    assert 0.8 * STEP_BUDGET <= spent <= STEP_BUDGET
    assert h.llm.count(step="other") == 1  # another step is not held back by this one's budget
    other = [e for e in h.of(TaskFinished) if e.step_id == "other"]
    assert [e.status for e in other] == ["succeeded"]
    # items that never started were not sent: every call made is one that fit
    assert len(h.of(CallFinished)) < 200


async def test_with_skip_a_fanout_keeps_what_its_budget_bought(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    text = (
        WORKFLOW % (STEP_BUDGET, "skip")
    ) + 'outputs:\n  n: "{{ steps.wide.output | length }}"\n'
    outcome = await h.run(text)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    kept = outcome.outputs["n"]
    assert 0 < kept < 200
    assert kept == len([c for c in h.of(CallFinished) if c.step_id == "wide"])
    assert any("items failed and were skipped" in w.message for w in h.of(WarningEvent))


async def test_a_loop_budget_bounds_every_iteration_together(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    outcome = await h.run("""
    version: 1
    name: looped
    defaults: {model: sonnet, max_tokens: 100}
    steps:
      - id: polish
        budget: {max_tokens: 600}
        loop:
          max_iterations: 50
          steps:
            - id: draft
              prompt: "draft {{ loop.iteration }}"
    """)
    assert outcome.status == "failed"
    assert "budget reached for step 'polish'" in (outcome.error or "")
    used = sum(e.usage["input_tokens"] + e.usage["output_tokens"] for e in h.of(CallFinished))
    assert 0 < used <= 600
    assert 1 < len(h.of(CallFinished)) < 50


async def test_the_run_budget_still_binds_under_a_larger_step_budget(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM())
    outcome = await h.run(WORKFLOW % (5.0, "fail"), max_cost_usd=STEP_BUDGET)
    assert outcome.status == "budget_exceeded"
    assert "budget reached for the run" in (outcome.error or "")
    assert h.spent() <= STEP_BUDGET


def test_a_misspelled_budget_key_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "version: 1\nname: w\nsteps:\n  - id: a\n    prompt: hi\n    budget: {max_cost: 1}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_workflow(path)
    message = str(caught.value)
    assert "wf.yaml:6:" in message
    assert "unknown key 'max_cost'" in message and "max_cost_usd" in message


def test_a_negative_step_budget_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "version: 1\nname: w\nsteps:\n  - id: a\n    prompt: hi\n    budget: {max_cost_usd: -1}\n"
    )
    with pytest.raises(SpecError, match="max_cost_usd must be positive"):
        load_workflow(path)
