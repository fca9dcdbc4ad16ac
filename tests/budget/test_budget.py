"""The budget on its own: reservations wait for calls in flight instead of ending the run."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.engine.budget import Budget, StepBudget, covers
from orchestrator.errors import BudgetExceeded


async def test_a_call_that_does_not_fit_waits_for_one_in_flight_to_settle() -> None:
    budget = Budget(max_cost_usd=1.0)
    first = await budget.reserve(0.6, 100)
    got: list[float] = []

    async def second() -> None:
        reservation = await budget.reserve(0.6, 100)  # 0.6 reserved + 0.6 > 1.0: waits
        got.append(reservation.cost_usd)

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert got == [], "the second call waits while the first holds its worst case"
        budget.settle(first, 0.1, 50)  # the first cost far less than it reserved
    assert got == [0.6]
    assert budget.spent_usd == pytest.approx(0.1)
    assert budget.reserved_usd == pytest.approx(0.6)
    assert budget.waits == 1
    assert budget.exceeded is None


async def test_a_call_is_refused_only_when_it_cannot_fit_even_if_calls_in_flight_cost_nothing() -> (
    None
):
    budget = Budget(max_cost_usd=1.0, spent_usd=0.5)
    held = await budget.reserve(0.3, 10)
    with pytest.raises(BudgetExceeded) as caught:
        await budget.reserve(0.6, 10)  # 0.5 spent + 0.6 > 1.0, whatever is in flight
    message = str(caught.value)
    assert "$0.5000 spent" in message
    assert "$0.3000 reserved by calls in flight" in message
    assert "$0.2000 remaining of max_cost_usd $1.00" in message
    assert "up to $0.6000" in message and "--max-cost-usd" in message
    assert caught.value.step is None
    budget.settle(held, 0.0, 0)
    with pytest.raises(BudgetExceeded):  # once refused, no new call starts
        await budget.reserve(0.01, 1)


async def test_waiting_calls_are_refused_once_what_settled_leaves_too_little() -> None:
    budget = Budget(max_cost_usd=1.0)
    first = await budget.reserve(0.7, 10)
    outcome: list[str] = []

    async def second() -> None:
        try:
            await budget.reserve(0.5, 10)
            outcome.append("sent")
        except BudgetExceeded as exc:
            outcome.append(str(exc))

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        budget.settle(first, 0.6, 10)  # 0.6 spent + 0.5 > 1.0: can never fit now
    assert len(outcome) == 1 and outcome[0].startswith("budget reached for the run: $0.6000 spent")


async def test_the_token_budget_names_its_flag() -> None:
    budget = Budget(max_tokens=1000, spent_tokens=900)
    with pytest.raises(BudgetExceeded, match="--max-tokens") as caught:
        await budget.reserve(0.0, 200)
    assert "900 tokens used" in str(caught.value) and "100 remaining" in str(caught.value)


async def test_a_step_budget_refuses_for_its_step_and_leaves_the_run_and_other_steps_alone() -> (
    None
):
    budget = Budget(max_cost_usd=10.0, steps=[StepBudget("research", 0.5, None)])
    held = await budget.reserve(0.4, 10, step="research")
    budget.settle(held, 0.4, 10)
    with pytest.raises(BudgetExceeded) as caught:
        await budget.reserve(0.2, 10, step="research")
    assert caught.value.step == "research"
    assert "step 'research'" in str(caught.value) and "budget.max_cost_usd" in str(caught.value)
    assert budget.step_exceeded("research") is not None
    assert budget.exceeded is None  # the run's budget is not reached
    other = await budget.reserve(0.2, 10, step="report")
    assert other.cost_usd == 0.2
    assert budget.spent_usd == pytest.approx(0.4)  # the run counts the step's spending too


def test_a_step_budget_covers_its_items_iterations_and_body() -> None:
    assert covers("research", "research")
    assert covers("topics", "topics[3].draft")
    assert covers("polish.draft", "polish.draft")
    assert covers("topics.draft", "topics[12].draft")
    assert not covers("research", "research_more")
    assert not covers("polish.draft", "polish.critique")
