"""Issue 14 items 5 and 6: one attempt budget per task, and an empty reply is never an output.

Each test counts the model calls a user pays for: a reply that never fits its schema, a turn the
server keeps pausing, a `max_tokens` cut, an empty `content: []`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.events import CallFinished, TaskFinished, TaskRetried
from orchestrator.testing import FakeLLM, Reply

_SCHEMA_STEP = """
version: 1
name: budget
steps:
  - id: pick
    prompt: pick a number
    retries: 3
    output: {type: object, required: [n], properties: {n: {type: integer, minimum: 100}}}
"""


async def test_a_reply_that_never_fits_costs_one_plus_retries_calls(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.json({"n": 5}), step="pick"))
    outcome = await h.run(_SCHEMA_STEP)
    assert outcome.status == "failed"
    assert h.llm.count(step="pick") == 4  # 1 + 3 repairs, not (3 + 1)^2 = 16
    [task] = h.of(TaskFinished)
    assert task.attempts == 1 and "after 3 repair attempts" in (task.error or "")
    assert h.of(TaskRetried) == []  # a schema failure is not a transport retry


async def test_a_timeout_retry_leaves_fewer_repairs_for_the_next_attempt(fake_harness: Any) -> None:
    # The first call hangs past the timeout (one attempt used), then every reply is invalid:
    # the second attempt may repair only what is left of `retries: 2`.
    llm = FakeLLM().queue(Reply.json({"n": 5}).after(60)).on(Reply.json({"n": 5}), step="pick")
    h = fake_harness(llm, virtual_time=True)
    outcome = await h.run(_SCHEMA_STEP.replace("retries: 3", "retries: 2\n    timeout: 5s"))
    assert outcome.status == "failed"
    assert len(h.of(TaskRetried)) == 1
    assert h.llm.count(step="pick") == 3  # the hung call, then one reply + one repair


async def test_pause_turn_continuations_are_bounded(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.text("searching", stop_reason="pause_turn"), step="s"))
    outcome = await h.run("""
    version: 1
    name: paused
    steps:
      - id: s
        prompt: search the web
        max_turns: 50
    """)
    assert outcome.status == "failed"
    [task] = h.of(TaskFinished)
    assert "pause_turn" in (task.error or "")
    assert h.llm.count(step="s") == 6  # the first reply and 5 continuations, one attempt


async def test_a_max_tokens_cut_is_not_retried_with_the_same_max_tokens(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.text('{"n": 1', stop_reason="max_tokens"), step="pick"))
    outcome = await h.run(_SCHEMA_STEP)
    assert outcome.status == "failed"
    assert h.llm.count(step="pick") == 1
    [task] = h.of(TaskFinished)
    assert "raise max_tokens" in (task.error or "")


_TEXT_STEP = """
version: 1
name: empty
steps:
  - id: say
    prompt: say something
    retries: 1
"""


async def test_an_empty_reply_never_succeeds_with_empty_output(fake_harness: Any) -> None:
    h = fake_harness(FakeLLM().on(Reply.message({"content": []}), step="say"))
    outcome = await h.run(_TEXT_STEP)
    assert outcome.status == "failed"
    [task] = h.of(TaskFinished)
    assert task.output is None and "empty reply" in (task.error or "")
    assert h.llm.count(step="say") == 2  # the empty reply, then one nudge from the budget


async def test_an_empty_reply_is_nudged_in_a_new_user_turn(fake_harness: Any) -> None:
    llm = FakeLLM().queue(Reply.message({"content": []})).on(Reply.text("hello"), step="say")
    h = fake_harness(llm)
    outcome = await h.run(_TEXT_STEP)
    assert outcome.status == "succeeded"
    [task] = h.of(TaskFinished)
    assert task.output == "hello"
    nudge = h.llm.find(step="say")[1].body["messages"]
    assert [m["role"] for m in nudge] == ["user", "user"]  # the empty turn is not echoed
    assert len(h.of(CallFinished)) == 2
