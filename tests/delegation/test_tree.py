"""A lead agent's `Task` calls become child tasks: recorded with their parent, run at once, and
answered with the child's final text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.delegation.conftest import LeadRun, lead_workflow, task_call

LEAD = lead_workflow()


def test_three_task_calls_start_three_children_under_the_lead(
    lead_run: Callable[..., LeadRun],
) -> None:
    rules = [
        {
            "step": "lead",
            "turn": 1,
            "tool_calls": [task_call(f"Research part {i} of tea history.") for i in range(3)],
        },
        {"step": "lead", "turn": 2, "text": "The report."},
    ]
    done = lead_run(LEAD, rules)
    assert done.outcome.status == "succeeded", done.outcome.error
    assert done.outcome.outputs == {"report": "The report."}
    started = done.started()
    lead = next(e for e in started.values() if e.step_id == "lead")
    children = [e for e in started.values() if e.parent_id == lead.task_id]
    assert sorted((c.step_id, c.index) for c in children) == [
        ("lead/researcher", 0),
        ("lead/researcher", 1),
        ("lead/researcher", 2),
    ]
    assert all(c.agent == "researcher" for c in children)
    # each child saw only its own prompt and the researcher's system prompt
    for child in children:
        (request,) = done.sim.log.find(task=child.key)
        body: dict[str, Any] = request.body
        assert len(body["messages"]) == 1
        assert "research one question" in str(body["system"])
    # the lead's second turn got each child's final text as a tool result, in order
    second = [r for r in done.sim.log.find(step="lead")][1].body
    results = second["messages"][-1]["content"]
    assert [r["type"] for r in results] == ["tool_result"] * 3
    texts = {done.finished()[c.task_id].output for c in children}
    assert {r["content"] for r in results} == texts
    with done.store() as store:
        rows = store.list_tasks(done.outcome.run_id)
        assert {r.parent_id for r in rows if r.step_id == "lead/researcher"} == {lead.task_id}
