"""The scheduler, end to end on FakeLLM: ordering, bounds, routing, loops, failures, resume."""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.engine import PriorTask, ResumeState
from orchestrator.events import StepFinished, StepStarted, TaskFinished, TaskStarted
from orchestrator.testing import FakeLLM, Reply

PLAN_FANOUT = """
version: 1
name: fan
inputs:
  n: {type: integer, default: 6}
limits: {concurrency: %(conc)s}
steps:
  - id: plan
    prompt: Give {{ inputs.n }} topics.
    output:
      type: object
      required: [topics]
      properties:
        topics: {type: array, items: {type: string}, minItems: %(n)s, maxItems: %(n)s}
  - id: research
    for_each: "{{ steps.plan.output.topics }}"
    as: topic
    %(step_conc)s
    prompt: "Research {{ topic }}"
  - id: joined
    merge: concat
    from: research
    separator: "\\n--\\n"
outputs:
  count: "{{ steps.research.output | length }}"
  joined: "{{ steps.joined.output }}"
"""


def fanout(n: int, conc: int = 50, step_conc: int | None = None) -> str:
    return PLAN_FANOUT % {
        "n": n,
        "conc": conc,
        "step_conc": f"concurrency: {step_conc}" if step_conc else "",
    }


def planned(n: int, latency_s: float = 0.0) -> FakeLLM:
    """A FakeLLM whose planner answers `n` topics, t0 .. t(n-1)."""
    return FakeLLM(latency_s=latency_s).on(
        Reply.json({"topics": [f"t{i}" for i in range(n)]}), step="plan"
    )


def finished(h: Any) -> dict[str, str]:
    return {e.step_id: e.status for e in h.of(StepFinished)}


async def test_fanout_runs_one_worker_per_item_and_merges_in_order(fake_harness: Any) -> None:
    h = fake_harness(planned(7))
    outcome = await h.run(fanout(7))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    assert outcome.outputs["count"] == 7
    research = [e for e in h.of(TaskStarted) if e.step_id == "research"]
    assert sorted(e.index for e in research) == list(range(7))
    # the merge keeps item order: item i's answer quotes its own prompt
    parts = outcome.outputs["joined"].split("\n--\n")
    assert [p.removeprefix("Answer to: Research ") for p in parts] == [f"t{i}" for i in range(7)]
    starts = {e.step_id: i for i, e in enumerate(h.events) if isinstance(e, StepStarted)}
    ends = {e.step_id: i for i, e in enumerate(h.events) if isinstance(e, StepFinished)}
    assert ends["plan"] < starts["research"] < ends["research"] < starts["joined"]
    assert h.llm.count() == 8


async def test_run_wide_concurrency_bound_is_never_exceeded(fake_harness: Any) -> None:
    h = fake_harness(planned(16, latency_s=0.03))
    outcome = await h.run(fanout(16, conc=3))
    assert outcome.status == "succeeded", outcome.error
    assert 2 <= h.llm.max_in_flight <= 3


async def test_step_concurrency_bounds_a_fanout(fake_harness: Any) -> None:
    h = fake_harness(planned(10, latency_s=0.03))
    outcome = await h.run(fanout(10, conc=50, step_conc=2))
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.max_in_flight == 2


async def test_max_workers_fails_the_fanout_before_any_call(fake_harness: Any) -> None:
    h = fake_harness(planned(6))
    outcome = await h.run(fanout(6), max_workers=4)
    assert outcome.status == "failed"
    assert "max_workers=4" in (outcome.error or "")
    assert h.llm.count() == 1  # only the planner


async def test_independent_steps_run_concurrently(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM(latency_s=0.1))
    wf = """
    version: 1
    name: par
    steps:
      - {id: a, prompt: one}
      - {id: b, prompt: two}
      - {id: c, prompt: three}
    """
    outcome = await h.run(wf)
    assert outcome.status == "succeeded"
    assert h.llm.max_in_flight == 3


async def test_when_routes_and_skips_dependents(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.json({"route": "billing"}), step="classify"))
    wf = """
    version: 1
    name: route
    steps:
      - id: classify
        prompt: classify this
        output:
          type: object
          required: [route]
          properties: {route: {enum: [billing, tech]}}
      - id: billing
        when: "{{ steps.classify.output.route == 'billing' }}"
        prompt: handle billing
      - id: tech
        when: "{{ steps.classify.output.route == 'tech' }}"
        prompt: handle tech
      - id: tech_followup
        prompt: "follow up {{ steps.tech.output }}"
      - id: answer
        prompt: "answer {{ steps.billing.output }} {{ steps.tech.output }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "succeeded", outcome.error
    status = finished(h)
    assert status["billing"] == "succeeded"
    assert status["tech"] == "skipped"
    assert status["tech_followup"] == "skipped"  # all its dependencies were skipped
    assert status["answer"] == "succeeded"  # one dependency ran
    assert h.llm.count(step="tech") == 0


async def test_failed_step_cancels_dependents_but_not_independent_branches(
    fake_harness: Any,
) -> None:
    h = fake_harness(FakeLLM().on(Reply.fatal("prompt is too long"), step="bad"))
    wf = """
    version: 1
    name: fail
    steps:
      - {id: bad, prompt: x}
      - {id: after, prompt: "{{ steps.bad.output }}"}
      - {id: other, prompt: y}
    """
    outcome = await h.run(wf)
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert "prompt is too long" in (outcome.error or "")
    status = finished(h)
    assert status == {"bad": "failed", "after": "cancelled", "other": "succeeded"}
    # a fatal API error is not retried
    assert h.llm.count(step="bad") == 1


async def test_on_item_error_skip_drops_failed_items(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.fatal("nope"), prompt="item 2$"))
    wf = """
    version: 1
    name: skip
    steps:
      - id: each
        for_each: [0, 1, 2, 3]
        on_item_error: skip
        prompt: "item {{ item }}"
    outputs:
      n: "{{ steps.each.output | length }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"n": 3}
    failed = [e for e in h.of(TaskFinished) if e.status == "failed"]
    assert len(failed) == 1 and "nope" in (failed[0].error or "")


async def test_on_item_error_fail_waits_for_all_items(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.fatal("nope"), prompt="item 0$"))
    wf = """
    version: 1
    name: failitems
    steps:
      - id: each
        for_each: [0, 1, 2, 3]
        prompt: "item {{ item }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "failed"
    assert "1 of 4 items failed" in (outcome.error or "")
    assert len([e for e in h.of(TaskFinished) if e.status == "succeeded"]) == 3


async def test_loop_until_with_previous_iteration(fake_harness: Any) -> None:
    llm = FakeLLM()
    llm.on(Reply.json({"verdict": "fail", "feedback": "shorter"}), step="polish.critique", times=1)
    llm.on(Reply.json({"verdict": "pass", "feedback": "good"}), step="polish.critique")
    h = fake_harness(llm)
    wf = """
    version: 1
    name: loop
    steps:
      - id: polish
        loop:
          max_iterations: 5
          until: "{{ steps.critique.output.verdict == 'pass' }}"
          steps:
            - id: draft
              prompt: |
                {% if loop.previous -%}
                Revise: {{ loop.previous.critique.feedback }} (iteration {{ loop.iteration }})
                {%- else %}First draft{% endif %}
            - id: critique
              prompt: "Critique {{ steps.draft.output }}"
              output:
                type: object
                required: [verdict, feedback]
                properties:
                  verdict: {enum: [pass, fail]}
                  feedback: {type: string}
    outputs:
      iterations: "{{ steps.polish.iterations | length }}"
      verdict: "{{ steps.polish.output.critique.verdict }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"iterations": 2, "verdict": "pass"}
    drafts = [e for e in h.of(TaskStarted) if e.step_id == "polish.draft"]
    assert [d.iteration for d in drafts] == [1, 2]
    assert drafts[0].prompt.strip() == "First draft"
    assert "Revise: shorter (iteration 2)" in drafts[1].prompt
    assert len({d.key for d in drafts}) == 2  # per-iteration task keys


async def test_loop_stops_at_max_iterations(fake_harness: Any) -> None:
    h = fake_harness()
    wf = """
    version: 1
    name: cap
    steps:
      - id: again
        loop:
          max_iterations: 3
          until: "{{ false }}"
          steps:
            - {id: work, prompt: "go {{ loop.iteration }}"}
    outputs:
      n: "{{ steps.again.iterations | length }}"
    """
    outcome = await h.run(wf)
    assert outcome.outputs == {"n": 3}


async def test_run_steps_exit_codes_json_and_allow_failure(fake_harness: Any) -> None:
    h = fake_harness()
    wf = """
    version: 1
    name: cmds
    steps:
      - id: data
        run: "echo '{\\"x\\": [1, 2]}'"
        output: json
      - id: soft
        run: "exit 3"
        allow_failure: true
      - id: hard
        run: "echo boom >&2; exit 4"
    outputs:
      x: "{{ steps.data.output.x }}"
      soft_code: "{{ steps.soft.exit_code }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "failed"
    status = finished(h)
    assert status == {"data": "succeeded", "soft": "succeeded", "hard": "failed"}
    soft = next(e for e in h.of(StepFinished) if e.step_id == "soft")
    assert soft.exit_code == 3
    data = next(e for e in h.of(StepFinished) if e.step_id == "data")
    assert data.output == {"x": [1, 2]}
    assert "exited with code 4" in (outcome.error or "")


async def test_run_step_works_in_the_workspace(fake_harness: Any) -> None:
    h = fake_harness()
    wf = """
    version: 1
    name: ws
    steps:
      - {id: make, run: "echo hi > made.txt && pwd"}
    outputs:
      cwd: "{{ steps.make.output | trim }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "succeeded", outcome.error
    assert (h.tmp / "workspace" / "made.txt").read_text() == "hi\n"
    assert outcome.outputs == {"cwd": str(h.tmp / "workspace")}


async def test_sub_workflow_runs_as_child_steps(fake_harness: Any) -> None:
    h = fake_harness()
    h.write(
        """
        version: 1
        name: child
        inputs:
          word: {type: string}
        steps:
          - {id: shout, run: "echo {{ inputs.word | upper }}"}
        outputs:
          loud: "{{ steps.shout.output | trim }}"
        """,
        "child.yaml",
    )
    wf = """
    version: 1
    name: parent
    steps:
      - id: sub
        workflow: child.yaml
        inputs: {word: hello}
    outputs:
      got: "{{ steps.sub.output.loud }}"
    """
    outcome = await h.run(wf)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"got": "HELLO"}
    assert "sub.shout" in finished(h)


async def test_resume_skips_tasks_that_already_succeeded(fake_harness: Any) -> None:
    h = fake_harness(planned(5))
    wf = h.write(fanout(5))
    first = await h.run(wf)
    assert first.status == "succeeded"
    outputs = {e.task_id: e.output for e in h.of(TaskFinished) if e.status == "succeeded"}
    keys = {e.task_id: e.key for e in h.of(TaskStarted)}
    # pretend items 0 and 3 never finished
    prior = {
        keys[tid]: PriorTask(output=out)
        for tid, out in outputs.items()
        if not keys[tid].startswith(("research[0]", "research[3]"))
    }
    h.llm.requests.clear()
    h.events.clear()
    second = await h.run(wf, resume=ResumeState(tasks=prior), run_id=first.run_id)
    assert second.status == "succeeded", second.error
    assert second.outputs == first.outputs  # the same answers, two of them asked again
    assert h.llm.count() == 2
    assert sorted(e.index for e in h.of(TaskStarted)) == [0, 3]


async def test_cancel_marks_run_cancelled_and_in_flight_tasks(fake_harness: Any) -> None:
    h = fake_harness(planned(3).on(Reply.text("late").after(60), step="research"))
    engines: list[Any] = []

    async def cancel_once_items_are_in_flight() -> None:
        while h.llm.in_flight < 3:
            await anyio.sleep(0.005)
        engines[0].cancel("SIGINT")

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_once_items_are_in_flight)
        outcome = await h.run(fanout(3), engine_hook=engines.append)
    assert outcome.status == "cancelled"
    assert outcome.exit_code == 130
    assert outcome.error == "run cancelled (SIGINT)"
    ended = {e.step_id: e.status for e in h.of(TaskFinished)}
    assert ended == {"plan": "succeeded", "research": "cancelled"}
    assert len([e for e in h.of(TaskFinished) if e.step_id == "research"]) == 3
    assert finished(h) == {"plan": "succeeded", "research": "cancelled", "joined": "cancelled"}
