"""What stops a delegation, each answered as a tool error the model reads: the depth limit, the
cap on one task's children, an unknown agent, a child that fails; and what every child shares
with the run: its budget and its concurrency bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.events import CallFinished
from tests.delegation.conftest import LeadRun, lead_workflow, task_call


def tool_results(done: LeadRun, step: str, turn: int) -> list[dict[str, Any]]:
    """The tool results the `turn`-th request of `step`'s task sent back."""
    requests = done.sim.log.find(step=step)
    assert len(requests) >= turn, f"{step} made {len(requests)} requests"
    content: list[dict[str, Any]] = requests[turn - 1].body["messages"][-1]["content"]
    return content


def test_a_call_deeper_than_max_depth_is_refused_as_a_tool_error(
    lead_run: Callable[..., LeadRun],
) -> None:
    rules = [
        {"step": "lead", "turn": 1, "tool_calls": [task_call("Go deep.", "deep")]},
        {"step": "lead/deep", "turn": 1, "tool_calls": [task_call("Deeper.", "deep", "Agent")]},
        {
            "step": r"lead/deep\[0\]/deep",
            "turn": 1,
            "tool_calls": [task_call("Deepest.", "deep", "Agent")],
        },
    ]
    done = lead_run(lead_workflow(), rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    paths = sorted(e.step_id for e in done.started().values())
    assert paths == ["lead", "lead/deep", "lead/deep[0]/deep"]  # depth 0, 1, 2: no depth 3
    (refused,) = tool_results(done, r"lead/deep[0]/deep", 2)
    assert refused["is_error"] is True
    assert "limits.max_depth" in refused["content"] and "depth 2" in refused["content"]


def test_max_depth_zero_allows_no_delegation(lead_run: Callable[..., LeadRun]) -> None:
    rules = [{"step": "lead", "turn": 1, "tool_calls": [task_call("Part one.")]}]
    done = lead_run(lead_workflow("limits: {max_depth: 0}"), rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    assert [e.step_id for e in done.started().values()] == ["lead"]
    (refused,) = tool_results(done, "lead", 2)
    assert refused["is_error"] is True and "limits.max_depth" in refused["content"]


def test_calls_past_max_children_are_refused_the_rest_run(
    lead_run: Callable[..., LeadRun],
) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call(f"Part {i}.") for i in range(3)],
        },
    ]
    done = lead_run(lead_workflow("limits: {max_children: 2}"), rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    children = [e for e in done.started().values() if e.step_id == "lead/researcher"]
    assert sorted(c.index for c in children) == [0, 1]
    results = tool_results(done, "lead", 2)
    assert [bool(r.get("is_error")) for r in results] == [False, False, True]
    assert "limits.max_children" in results[2]["content"]


def test_an_unknown_subagent_type_lists_the_agents(lead_run: Callable[..., LeadRun]) -> None:
    rules = [{"step": "lead", "turn": 1, "tool_calls": [task_call("Part.", "reseacher")]}]
    done = lead_run(lead_workflow(), rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    (refused,) = tool_results(done, "lead", 2)
    assert refused["is_error"] is True
    message = refused["content"]
    assert "unknown subagent_type 'reseacher'" in message
    assert "did you mean 'researcher'" in message
    assert all(name in message for name in ("deep", "lead", "researcher"))


def test_a_failed_child_is_a_tool_error_and_the_lead_goes_on(
    lead_run: Callable[..., LeadRun],
) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call("Part ok."), task_call("Part broken.")],
        },
        {
            "step": "lead/researcher",
            "prompt": "broken",
            "error": {"status": 400, "type": "invalid_request_error", "message": "no such thing"},
        },
        {"step": "lead", "turn": 2, "text": "Report from what worked."},
    ]
    done = lead_run(lead_workflow(), rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    assert done.outcome.outputs == {"report": "Report from what worked."}
    ok, broken = tool_results(done, "lead", 2)
    assert not ok.get("is_error")
    assert broken["is_error"] is True
    assert "lead/researcher[1] failed" in broken["content"]
    assert "no such thing" in broken["content"]


def test_the_run_budget_stops_children_and_their_lead(lead_run: Callable[..., LeadRun]) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call(f"Part {i} of a long survey.") for i in range(6)],
        },
    ]
    # a call is refused once what was spent plus its worst case (max_tokens 2048 and its input)
    # would cross the limit: room for the lead's first call and some children's, not all six
    done = lead_run(lead_workflow("limits: {max_tokens: 3000}"), rules)
    assert done.outcome.status == "budget_exceeded", done.outcome.error
    finished = done.finished()
    children = [e for e in done.started().values() if e.step_id == "lead/researcher"]
    assert children, "some children started"
    stopped = [c for c in children if finished[c.task_id].status == "cancelled"]
    assert stopped, "the budget reached the children"
    assert len(done.sim.log.find(step="lead")) == 1, "the lead was not called again"
    spent = sum(
        e.usage.get("input_tokens", 0) + e.usage.get("output_tokens", 0)
        for e in done.of(CallFinished)
    )
    assert spent <= 3000


def test_a_step_budget_covers_the_agents_its_task_starts(
    lead_run: Callable[..., LeadRun],
) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call(f"Part {i} of a long survey.") for i in range(6)],
        },
    ]
    workflow = lead_workflow().replace(
        "    prompt: Research the history of tea.",
        "    prompt: Research the history of tea.\n    budget: {max_tokens: 3000}",
    )
    done = lead_run(workflow, rules)
    children = [e for e in done.started().values() if e.step_id == "lead/researcher"]
    finished = done.finished()
    assert children, "some children started"
    refused = [c for c in children if finished[c.task_id].status != "succeeded"]
    assert refused, "the lead's step budget reached its children"
    assert len(done.sim.log.find(step="lead/researcher")) < 6


def test_children_share_the_run_concurrency_bound(lead_run: Callable[..., LeadRun]) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call(f"Part {i}.") for i in range(6)],
        },
    ]
    done = lead_run(lead_workflow("limits: {concurrency: 2}"), rules, latency_s=0.05)
    assert done.outcome.status == "succeeded", done.outcome.error
    assert len(done.sim.log.find(step="lead/researcher")) == 6
    assert done.sim.log.max_in_flight <= 2


def test_max_workers_counts_children(lead_run: Callable[..., LeadRun]) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call(f"Part {i}.") for i in range(4)],
        },
    ]
    done = lead_run(lead_workflow("limits: {max_workers: 3}"), rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    results = tool_results(done, "lead", 2)
    assert [bool(r.get("is_error")) for r in results].count(True) == 2  # lead + 2 children = 3
    assert all("limits.max_workers" in r["content"] for r in results if r.get("is_error"))
