"""Issue 13's language additions, run end to end on FakeLLM: what a run does with each syntax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.engine import PriorTask, ResumeState
from orchestrator.events import StepFinished, StepStarted, TaskFinished, TaskStarted
from orchestrator.events import Warning as WarningEvent
from orchestrator.testing import FakeLLM, Reply


def _prompts(h: Any, step: str) -> list[str]:
    return [r.prompt for r in h.llm.find(step=step)]


# --- 1. loops remember --------------------------------------------------------------------

HISTORY = """
version: 1
name: history
inputs:
  rounds: {type: integer, default: 4}
steps:
  - id: fix
    loop:
      max_iterations: "{{ inputs.rounds }}"
      until: "{{ loop.history | length >= 2 }}"
      steps:
        - id: draft
          prompt: >-
            round {{ loop.iteration }} saw {{ loop.history | length }}:
            {{ loop.history | tojson }}
outputs:
  count: "{{ steps.fix.iterations | length }}"
  first: "{{ steps.fix.iterations[0].draft }}"
  exhausted: "{{ steps.fix.exhausted }}"
"""


async def test_loop_history_holds_finished_iterations_oldest_first(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(HISTORY)
    assert outcome.status == "succeeded", outcome.error
    # `until` is checked after each iteration, with that iteration already in the history
    assert outcome.outputs == {
        "count": 2,
        "first": "Answer to: round 1 saw 0: []",
        "exhausted": False,
    }
    second = _prompts(h, "fix.draft")[1]
    assert second == 'round 2 saw 1: [{"draft": "Answer to: round 1 saw 0: []"}]'


async def test_max_iterations_from_an_input_and_exhaustion_warns(fake_harness: Any) -> None:
    h = fake_harness()
    text = HISTORY.replace(">= 2", ">= 99")
    outcome = await h.run(text, {"rounds": 3})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    assert outcome.outputs["count"] == 3 and outcome.outputs["exhausted"] is True
    assert h.llm.count(step="fix.draft") == 3
    warnings = [w for w in h.of(WarningEvent) if w.step_id == "fix"]
    assert len(warnings) == 1 and "max_iterations=3" in warnings[0].message
    assert "exhausted" in warnings[0].message


async def test_on_exhausted_fail_fails_the_loop(fake_harness: Any) -> None:
    h = fake_harness()
    text = HISTORY.replace(">= 2", ">= 99").replace(
        "      until:", "      on_exhausted: fail\n      until:"
    )
    outcome = await h.run(text, {"rounds": 2})
    assert outcome.status == "failed"
    assert "stopped at max_iterations=2" in (outcome.error or "")
    assert "on_exhausted: fail" in (outcome.error or "")


async def test_a_cap_that_is_not_a_number_fails_the_step(fake_harness: Any) -> None:
    h = fake_harness()
    text = HISTORY.replace('"{{ inputs.rounds }}"', "\"{{ 'many' }}\"")
    outcome = await h.run(text)
    assert outcome.status == "failed" and "it must be a positive number" in (outcome.error or "")
    assert h.llm.count() == 0


# --- 2. loop bodies run in the order written ----------------------------------------------

ORDERED = """
version: 1
name: ordered
steps:
  - id: body
    loop:
      max_iterations: 2
      {parallel}
      steps:
        - id: a
          prompt: a
        - id: b
          when: "{{{{ loop.iteration == 2 }}}}"
          prompt: b
        - id: c
          prompt: c
"""


async def test_body_steps_start_after_the_one_before_ends(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(ORDERED.format(parallel=""))
    assert outcome.status == "succeeded", outcome.error
    order = [
        (type(e).__name__, e.step_id, e.iteration)
        for e in h.events
        if isinstance(e, StepStarted | StepFinished) and e.step_id.startswith("body.")
    ]
    for iteration in (1, 2):
        mine = [(kind, step) for kind, step, it in order if it == iteration]
        assert mine == [
            ("StepStarted", "body.a"),
            ("StepFinished", "body.a"),
            *([("StepStarted", "body.b")] if iteration == 2 else []),
            ("StepFinished", "body.b"),
            ("StepStarted", "body.c"),  # a skipped `b` does not skip `c`
            ("StepFinished", "body.c"),
        ]
    assert h.llm.count(step="body.c") == 2


async def test_a_parallel_body_starts_steps_together(fake_harness: Any) -> None:
    llm = FakeLLM().on(Reply.text("slow").after(0.2), step="body.a")
    h = fake_harness(llm)
    outcome = await h.run(ORDERED.format(parallel="parallel: true"))
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.max_in_flight >= 2


# --- 3. data steps ------------------------------------------------------------------------


async def test_set_steps_compute_native_values_without_a_model(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(
        """
        version: 1
        name: data
        steps:
          - id: pairs
            set: "{{ ['a', 'b', 'c'] | zip([1, 2, 3]) }}"
          - id: grid
            set: "{{ [1, 2] | product(['x', 'y']) }}"
          - id: numbered
            set: "{{ steps.pairs.output | pluck(0) | enumerate }}"
          - id: chunked
            set: "{{ range(5) | chunks(2) }}"
          - id: flag
            set: "{{ steps.pairs.output | length > 2 }}"
        outputs:
          pairs: "{{ steps.pairs.output }}"
          grid: "{{ steps.grid.output }}"
          numbered: "{{ steps.numbered.output }}"
          chunked: "{{ steps.chunked.output }}"
          flag: "{{ steps.flag.output }}"
        """
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {
        "pairs": [["a", 1], ["b", 2], ["c", 3]],
        "grid": [[1, "x"], [1, "y"], [2, "x"], [2, "y"]],
        "numbered": [[0, "a"], [1, "b"], [2, "c"]],
        "chunked": [[0, 1], [2, 3], [4]],
        "flag": True,
    }
    assert h.llm.count() == 0 and not h.of(TaskStarted)


async def test_pluck_names_an_item_without_the_key(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(
        """
        version: 1
        name: data
        steps:
          - id: names
            set: "{{ [{'name': 'a'}, {'title': 'b'}] | pluck('name') }}"
        """
    )
    assert outcome.status == "failed"
    assert "pluck('name'): item 1 has no 'name'" in (outcome.error or "")


# --- 4. per-item control in a fan-out -----------------------------------------------------

PER_ITEM = """
version: 1
name: per_item
inputs:
  labels: {type: array, default: [red, blue]}
steps:
  - id: fan
    for_each: [{m: haiku, n: 1}, {m: sonnet, n: 5}, {m: opus, n: 0}, {m: %s, n: 7}]
    on_item_error: %s
    where: "{{ item.n > 0 }}"
    index_as: i
    model: "{{ item.m }}"
    max_tokens: "{{ 100 * item.n }}"
    prompt: "#{{ i }} n={{ item.n }}"
    output:
      type: object
      required: [label]
      properties:
        label: {enum: "{{ inputs.labels }}"}
"""


async def test_where_index_as_and_per_item_settings(fake_harness: Any) -> None:
    llm = FakeLLM().on(Reply.json({"label": "red"}), step="fan")
    h = fake_harness(llm)
    outcome = await h.run(PER_ITEM % ("haiku", "fail"))
    assert outcome.status == "succeeded", outcome.error
    requests = sorted(h.llm.find(step="fan"), key=lambda r: r.prompt)
    # `where` dropped n=0 before any task; `i` counts the kept items
    assert [r.prompt for r in requests] == ["#0 n=1", "#1 n=5", "#2 n=7"]
    assert [r.body["model"] for r in requests] == [
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
    ]
    assert [r.body["max_tokens"] for r in requests] == [100, 500, 700]
    # the output schema's enum was rendered from the inputs before the call
    assert requests[0].schema is not None
    assert requests[0].schema["properties"]["label"]["enum"] == ["red", "blue"]
    assert len({e.key for e in h.of(TaskStarted)}) == 3


async def test_a_bad_per_item_model_fails_before_anything_is_sent(fake_harness: Any) -> None:
    llm = FakeLLM().on(Reply.json({"label": "red"}), step="fan")
    h = fake_harness(llm)
    outcome = await h.run(PER_ITEM % ("gpt-9", "fail"))
    assert outcome.status == "failed"
    assert "model 'gpt-9' (from '{{ item.m }}') is neither an alias" in (outcome.error or "")
    assert "item 2" in (outcome.error or "")
    assert h.llm.count() == 0


async def test_a_bad_per_item_model_fails_only_its_item_with_skip(fake_harness: Any) -> None:
    llm = FakeLLM().on(Reply.json({"label": "red"}), step="fan")
    h = fake_harness(llm)
    outcome = await h.run(PER_ITEM % ("gpt-9", "skip"))
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.count() == 2
    assert all("{{" not in r.body["model"] for r in h.llm.find())
    assert any("1 of 3 items failed" in w.message for w in h.of(WarningEvent))


# --- 5. groups and nested fan-out ---------------------------------------------------------

GROUPS = """
version: 1
name: groups
inputs:
  skip: {type: boolean, default: false}
steps:
  - id: per
    for_each: [x, y, z]
    as: topic
    index_as: n
    concurrency: 2
    group:
      steps:
        - id: research
          prompt: "research {{ topic }} ({{ n }})"
        - id: summary
          prompt: "sum {{ steps.research.output }}"
  - id: once
    when: "{{ not inputs.skip }}"
    group:
      steps:
        - id: a
          prompt: "a"
        - id: b
          prompt: "b {{ steps.a.output }}"
  - id: after
    prompt: "{{ steps.per.output | pluck('summary') | join(' | ') }}"
outputs:
  per: "{{ steps.per.output }}"
  once: "{{ steps.once.output }}"
"""


async def test_a_group_fan_out_runs_each_body_with_its_item(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(GROUPS)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    per = outcome.outputs["per"]
    assert [item["research"] for item in per] == [
        "Answer to: research x (0)",
        "Answer to: research y (1)",
        "Answer to: research z (2)",
    ]
    assert per[1]["summary"] == "Answer to: sum Answer to: research y (1)"
    assert outcome.outputs["once"] == {"a": "Answer to: a", "b": "Answer to: b Answer to: a"}
    keys = [e.key for e in h.of(TaskStarted) if e.step_id.startswith("per[")]
    assert len(keys) == len(set(keys)) == 6
    assert {e.step_id for e in h.of(TaskStarted)} >= {"per[0].research", "per[2].summary"}


async def test_a_false_when_skips_the_whole_group(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(GROUPS, {"skip": True})
    assert outcome.status == "succeeded", outcome.error
    assert h.llm.count(step=r"once\..*") == 0
    skipped = [e for e in h.of(StepFinished) if e.step_id == "once"]
    assert skipped and skipped[0].status == "skipped"


async def test_a_resumed_group_fan_out_reuses_every_item(fake_harness: Any) -> None:
    h = fake_harness()
    path: Path = h.write(GROUPS)
    first = await h.run(path)
    assert first.status == "succeeded", first.error
    outputs = {e.task_id: e.output for e in h.of(TaskFinished) if e.status == "succeeded"}
    keys = {e.task_id: e.key for e in h.of(TaskStarted)}
    prior = {keys[t]: PriorTask(output=out) for t, out in outputs.items()}
    h.llm.requests.clear()
    second = await h.run(path, resume=ResumeState(tasks=prior), run_id=first.run_id)
    assert second.status == "succeeded" and second.outputs == first.outputs
    assert h.llm.count() == 0


async def test_loop_and_workflow_steps_fan_out_too(fake_harness: Any) -> None:
    h = fake_harness()
    h.write(
        "version: 1\ninputs:\n  word: string\nsteps:\n  - id: t\n"
        "    prompt: 'sub {{ inputs.word }}'\noutputs:\n  said: '{{ steps.t.output }}'\n",
        "sub.yaml",
    )
    outcome = await h.run(
        """
        version: 1
        name: nested
        steps:
          - id: each
            for_each: [2, 1]
            as: times
            loop:
              max_iterations: 3
              until: "{{ loop.iteration >= times }}"
              steps:
                - id: say
                  prompt: "say {{ times }}/{{ loop.iteration }}"
          - id: subs
            for_each: [p, q]
            workflow: sub.yaml
            inputs:
              word: "{{ item }}"
        outputs:
          each: "{{ steps.each.output }}"
          subs: "{{ steps.subs.output }}"
        """
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {
        "each": [{"say": "Answer to: say 2/2"}, {"say": "Answer to: say 1/1"}],
        "subs": [{"said": "Answer to: sub p"}, {"said": "Answer to: sub q"}],
    }
    keys = [e.key for e in h.of(TaskStarted)]
    assert len(keys) == len(set(keys)) == 5


# --- 8. a step's tools replace its agent's -------------------------------------------------


async def test_a_step_narrows_its_agents_tools(fake_harness: Any) -> None:
    h = fake_harness()
    outcome = await h.run(
        """
        version: 1
        name: narrow
        agents:
          coder: {tools: [Read, Write, Edit]}
        steps:
          - id: wide
            agent: coder
            prompt: hi
          - id: narrow
            agent: coder
            tools: [Read]
            prompt: hi
          - id: none
            agent: coder
            tools: []
            prompt: hi
        """
    )
    assert outcome.status == "succeeded", outcome.error

    def names(step: str) -> list[str]:
        return [t["name"] for t in h.llm.find(step=step)[0].body.get("tools") or []]

    assert names("wide") == ["Read", "Write", "Edit"]
    assert names("narrow") == ["Read"]
    assert names("none") == []


# --- 7. permission rules in a run ---------------------------------------------------------


async def test_a_call_outside_the_rules_is_a_tool_error_and_never_runs(
    fake_harness: Any,
) -> None:
    llm = (
        FakeLLM()
        .on(Reply.tool_use(("Bash", {"command": "touch made"})), step="cmd", turn=1)
        .on(Reply.tool_use(("Bash", {"command": "echo ok"})), step="cmd", turn=2)
        .on(Reply.text("done"), step="cmd", turn=3)
    )
    h = fake_harness(llm)
    outcome = await h.run(
        """
        version: 1
        name: rules
        steps:
          - id: cmd
            tools: ["Bash(echo:*)"]
            prompt: go
        """
    )
    assert outcome.status == "succeeded", outcome.error
    results = [
        block
        for message in h.llm.find(step="cmd")[1].body["messages"]
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert results and results[0]["is_error"] is True
    assert "outside the rules this step grants (Bash(echo:*))" in str(results[0]["content"])
    assert not (h.tmp / "workspace" / "made").exists()
