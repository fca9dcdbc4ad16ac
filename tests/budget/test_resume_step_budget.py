"""A step's `budget:` on resume, as a user meets it through `orchestrate run` and `resume` on the
simulator: the step goes on from what its calls spent before, so the same budget buys nothing
more and a larger one only the difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.engine.budget import Budget, StepBudget
from orchestrator.errors import BudgetExceeded
from tests._support.cli import invoke

WORKFLOW = """\
version: 1
name: capped
defaults: {model: sonnet, max_tokens: 100}
limits: {concurrency: 10}
steps:
  - id: wide
    for_each: "{{ range(60) | list }}"
    budget: {max_cost_usd: %s}
    prompt: "item {{ item }}"
"""


def spent(step: str) -> tuple[float, int]:
    """(dollars, calls) the store records for `step` across every process of the last run."""
    code, out, err = invoke("runs", "show", "last", "--json")
    assert code == 0, err
    row = next(s for s in json.loads(out)["steps"] if s["id"] == step)
    return float(row["cost_usd"]), int(row["calls"])


def test_a_resumed_step_budget_counts_what_its_calls_spent_before(project: Path) -> None:
    wf = project / "wf.yaml"
    wf.write_text(WORKFLOW % 0.01)
    code, _, err = invoke("run", "wf.yaml", "--simulate", "-q")
    assert code == 1 and "budget reached for step 'wide'" in err, err
    first_usd, first_calls = spent("wide")
    assert 0 < first_usd <= 0.01
    assert first_calls < 60  # the budget stopped it before every item ran

    # the same budget: the step is already at it, so the resume sends nothing for it
    code, _, err = invoke("resume", "last", "--simulate", "-q")
    assert code == 1 and "budget reached for step 'wide'" in err, err
    assert spent("wide") == (first_usd, first_calls)

    # twice the budget: only the difference is spent, and the step's total stays within it
    wf.write_text(WORKFLOW % 0.02)
    code, _, err = invoke("resume", "last", "--simulate", "-q", "--use-current")
    assert code == 1 and "budget reached for step 'wide'" in err, err
    total_usd, total_calls = spent("wide")
    assert total_calls > first_calls
    assert total_usd <= 0.02 + 1e-9
    assert total_usd - first_usd <= 0.01 + 1e-9


async def test_a_step_budget_counts_its_body_and_items_from_before_not_other_steps() -> None:
    prior = {"polish.draft": (0.004, 400), "topics[3].draft": (0.003, 300), "other": (1.0, 10**6)}
    budget = Budget(
        steps=[StepBudget("polish", 0.01, None), StepBudget("topics", None, 1000)], prior=prior
    )
    await budget.reserve(0.005, 10, step="polish.critique")  # 0.004 + 0.005 fits in 0.01
    with pytest.raises(BudgetExceeded, match=r"step 'polish'.*\$0.0040 spent"):
        await budget.reserve(0.007, 10, step="polish.draft")  # 0.004 + 0.007 never fits
    with pytest.raises(BudgetExceeded, match="300 tokens used"):
        await budget.reserve(0.0, 701, step="topics[5].draft")
