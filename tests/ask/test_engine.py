"""The engine's side of people in the loop, on FakeLLM: tool calls approved and denied as the
model sees them, a tool call that waits, the budget guard, questions in loops and fan-outs,
and the timeout that a person's time does not count against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from orchestrator.contracts import Answer, Question
from orchestrator.events import QuestionAnswered, QuestionAsked, StepFinished, ToolCalled
from orchestrator.people.memory import MemoryPeople
from orchestrator.testing import Reply
from tests.ask.conftest import resume_from

EDIT = """
version: 1
name: edit
steps:
  - id: edit
    tools: [Write]
    approve: [Write]
    prompt: "Write the note"
  - id: side
    prompt: "Say hi"
outputs:
  said: "{{ steps.edit.output }}"
"""


def _with(people: Any) -> Any:
    return lambda engine: setattr(engine, "people", people)


def _tool_results(request: Any) -> list[dict[str, Any]]:
    last = request.body["messages"][-1]
    return [b for b in last["content"] if b.get("type") == "tool_result"]


def _script_write(h: Any) -> None:
    call = Reply.tool_use(("Write", {"file_path": "note.txt", "content": "hi"}))
    h.llm.on(call, step="edit", turn=1)
    h.llm.on(Reply.text("done"), step="edit", turn=2)


async def test_an_approved_call_runs(fake_harness: Any) -> None:
    h = fake_harness()
    _script_write(h)
    people = MemoryPeople({"edit": "approve"})
    outcome = await h.run(EDIT, engine_hook=_with(people))
    assert outcome.status == "succeeded", outcome.error
    (question,) = people.asked
    assert question.kind == "approval" and question.tool == "Write"
    assert question.tool_input == {"file_path": "note.txt", "content": "hi"}
    assert (h.tmp / "workspace" / "note.txt").read_text() == "hi"
    (result,) = _tool_results(h.llm.find(step="edit")[-1])
    assert not result.get("is_error")


async def test_a_denied_call_reaches_the_model_as_a_tool_error_with_the_reason(
    fake_harness: Any,
) -> None:
    h = fake_harness()
    _script_write(h)
    people = MemoryPeople({"edit": Answer("deny", "not in this repository")})
    outcome = await h.run(EDIT, engine_hook=_with(people))
    assert outcome.status == "succeeded", outcome.error
    assert not (h.tmp / "workspace" / "note.txt").exists()
    (result,) = _tool_results(h.llm.find(step="edit")[-1])
    assert result["is_error"] is True
    assert "denied" in result["content"] and "not in this repository" in result["content"]
    (called,) = h.of(ToolCalled)
    assert called.is_error and called.tool == "Write"


async def test_a_call_no_one_can_approve_now_waits_and_the_rest_runs(fake_harness: Any) -> None:
    h = fake_harness()
    _script_write(h)
    people = MemoryPeople()  # no answers: off a terminal
    outcome = await h.run(EDIT, engine_hook=_with(people), run_id="r1")
    assert outcome.status == "waiting"
    assert outcome.exit_code == 4
    steps = {e.step_id: e.status for e in h.of(StepFinished)}
    assert steps == {"edit": "waiting", "side": "succeeded"}
    assert not (h.tmp / "workspace" / "note.txt").exists()  # nothing of that turn ran
    assert [type(e) for e in h.events if isinstance(e, QuestionAsked | QuestionAnswered)] == [
        QuestionAsked
    ]
    # the person approves; the resumed run makes the same call and gets that answer
    (question,) = people.asked
    people.answer(question, "approve")
    h.events.clear()
    again = await h.run(EDIT, engine_hook=_with(people), run_id="r1", resume=resume_from([]))
    assert again.status == "succeeded", again.error
    assert (h.tmp / "workspace" / "note.txt").read_text() == "hi"
    assert len(people.asked) == 1  # not asked twice


async def test_waiting_for_a_person_does_not_count_against_the_timeout(fake_harness: Any) -> None:
    class Slow(MemoryPeople):
        async def wait(self, question: Question, question_id: str) -> Answer | None:
            await anyio.sleep(1.5)  # longer than the step's timeout
            return Answer("approve")

    h = fake_harness()
    _script_write(h)
    text = EDIT.replace(
        '    prompt: "Write the note"', '    prompt: "Write the note"\n    timeout: 0.5s'
    )
    outcome = await h.run(text, engine_hook=_with(Slow()))
    assert outcome.status == "succeeded", outcome.error
    assert (h.tmp / "workspace" / "note.txt").exists()


async def test_one_fanout_item_waits_while_the_others_finish(fake_harness: Any) -> None:
    h = fake_harness()
    h.llm.on(Reply.tool_use(("Write", {"file_path": "b.txt", "content": "b"})), prompt="b$", turn=1)
    text = """
    version: 1
    name: fan
    steps:
      - id: each
        for_each: [a, b, c]
        tools: [Write]
        approve: all
        prompt: "item {{ item }}"
    """
    people = MemoryPeople()
    outcome = await h.run(text, engine_hook=_with(people))
    assert outcome.status == "waiting"
    (step,) = h.of(StepFinished)
    assert step.status == "waiting" and "1 of 3 items wait" in (step.error or "")
    finished = {e.status for e in h.events if type(e).__name__ == "TaskFinished"}
    assert finished == {"succeeded", "waiting"}


async def test_an_ask_in_a_loop_asks_each_iteration_and_routes_on_the_answer(
    fake_harness: Any,
) -> None:
    text = """
    version: 1
    name: looped
    steps:
      - id: polish
        loop:
          max_iterations: 3
          until: "{{ steps.ok.output == 'yes' }}"
          steps:
            - id: draft
              prompt: "draft {{ loop.iteration }}"
            - id: ok
              ask: "Good enough after draft {{ loop.iteration }}?"
              options: ['yes', 'no']
    outputs:
      rounds: "{{ steps.polish.iterations | length }}"
    """
    answers = iter(["no", "yes"])
    people = MemoryPeople(lambda q: next(answers))
    h = fake_harness()
    outcome = await h.run(text, engine_hook=_with(people))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"rounds": 2}
    assert [q.prompt for q in people.asked] == [
        "Good enough after draft 1?",
        "Good enough after draft 2?",
    ]
    assert len({q.key for q in people.asked}) == 2


async def test_a_json_answer_is_the_steps_output(fake_harness: Any) -> None:
    text = """
    version: 1
    name: pick
    steps:
      - id: pick
        ask: "How many?"
        output: {type: object, required: [n], properties: {n: {type: integer}}}
      - id: use
        run: "echo {{ steps.pick.output.n * 2 }}"
    outputs:
      doubled: "{{ steps.use.output }}"
    """
    h = fake_harness()
    outcome = await h.run(text, engine_hook=_with(MemoryPeople({"pick": {"n": 21}})))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None and outcome.outputs["doubled"].strip() == "42"


BUDGET = """
version: 1
name: spend
defaults: {model: sonnet, max_tokens: 1000}
limits: {ask_above_usd: 0.02}
steps:
  - id: cheap
    prompt: "one"
  - id: wide
    needs: [cheap]
    for_each: [1, 2, 3]
    prompt: "item {{ item }}"
"""


async def test_the_budget_guard_asks_before_a_step_that_could_cross_the_line(
    fake_harness: Any,
) -> None:
    # sonnet output is $15/MTok: `cheap` can cost $0.015 (under $0.02), `wide` up to $0.045
    h = fake_harness()
    people = MemoryPeople({"wide": "stop"})
    outcome = await h.run(BUDGET, engine_hook=_with(people))
    (question,) = people.asked
    assert question.kind == "budget" and question.step_id == "wide"
    assert "up to $0.0450" in question.prompt and "$0.02" in question.prompt
    assert outcome.status == "failed" and "stopped by a person" in (outcome.error or "")
    assert h.llm.count(step="wide") == 0 and h.llm.count(step="cheap") == 1


async def test_the_budget_guard_lets_the_run_go_on_after_proceed(fake_harness: Any) -> None:
    h = fake_harness()
    people = MemoryPeople({"wide": "proceed"})
    outcome = await h.run(BUDGET, engine_hook=_with(people))
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.count(step="wide") == 3
    assert [q.kind for q in people.asked] == ["budget"]


async def test_the_approval_gate_example_asks_each_kind(fake_harness: Any) -> None:
    h = fake_harness()
    h.llm.on(Reply.json({"subtasks": ["one", "two"]}), step="plan")
    h.llm.on(
        lambda req: Reply.tool_use(("Write", {"file_path": f"{req.key[-4:]}.md", "content": "x"})),
        step="edit",
        turn=1,
    )
    people = MemoryPeople(first_option=True)
    path = Path(__file__).parents[2] / "workflows" / "approval_gate.yaml"
    outcome = await h.run(path, engine_hook=_with(people))
    assert outcome.status == "succeeded", outcome.error
    kinds = [q.kind for q in people.asked]
    assert kinds.count("ask") == 1 and kinds.count("budget") == 1 and kinds.count("approval") == 2
    assert outcome.outputs is not None and outcome.outputs["decision"] == "proceed"
    assert json.dumps(people.asked[0].prompt).startswith('"Proceed with these 2 subtasks?')
