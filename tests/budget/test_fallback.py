"""`model: [opus, sonnet]`: availability over model, on FakeLLM with engine time virtual."""

from __future__ import annotations

from typing import Any

from orchestrator.events import CallFinished, TaskFinished
from orchestrator.events import Warning as WarningEvent
from orchestrator.testing import FakeLLM, FakeRequest, Reply

ONE = """
version: 1
name: fallback
steps:
  - id: only
    model: %s
    prompt: hi
"""


def opus_down(request: FakeRequest) -> Reply:
    """Every opus call is overloaded; every other model answers."""
    if "opus" in request.body["model"]:
        return Reply.overloaded()
    return Reply.text(f"answered by {request.body['model']}")


async def test_a_task_overloaded_through_its_retries_moves_on_to_the_next_model(
    fake_harness: Any,
) -> None:
    h = fake_harness(
        FakeLLM(default=opus_down),
        virtual_time=True,
        retry={"horizon": "30s", "overload_cluster": 1000},  # the horizon decides, not a pause
    )
    outcome = await h.run(ONE % "[opus, sonnet]")
    assert outcome.status == "succeeded", outcome.error
    calls = h.of(CallFinished)
    opus = h.settings.resolve_model("opus")
    sonnet = h.settings.resolve_model("sonnet")
    assert {c.model for c in calls} == {opus, sonnet}
    assert all(c.status == "retryable_error" for c in calls if c.model == opus)
    assert [c.model for c in calls if c.status == "succeeded"] == [sonnet]
    assert calls[-1].model == sonnet and calls[-1].request["model"] == sonnet  # as sent
    assert h.clock is not None and h.clock.now >= 30  # opus had its whole horizon first
    assert any(f"next calls go to {sonnet}" in w.message for w in h.of(WarningEvent))
    (task,) = h.of(TaskFinished)
    assert task.status == "succeeded" and task.output == f"answered by {sonnet}"


async def test_without_a_list_the_task_fails_at_the_horizon_as_before(fake_harness: Any) -> None:
    h = fake_harness(
        FakeLLM(default=opus_down),
        virtual_time=True,
        retry={"horizon": "30s", "overload_cluster": 1000},
    )
    outcome = await h.run(ONE % "opus")
    assert outcome.status == "failed"
    assert "overloaded" in (outcome.error or "").lower()
    assert {c.model for c in h.of(CallFinished)} == {h.settings.resolve_model("opus")}


async def test_the_run_wide_pause_opening_twice_for_a_model_moves_tasks_on(
    fake_harness: Any,
) -> None:
    # every overload opens the run-wide pause (cluster 1); the horizon is far away
    h = fake_harness(
        FakeLLM(default=opus_down),
        virtual_time=True,
        retry={"horizon": "1h", "overload_cluster": 1, "overload_pause": "5s"},
    )
    outcome = await h.run(ONE % "[opus, sonnet]")
    assert outcome.status == "succeeded", outcome.error
    models = [c.model for c in h.of(CallFinished)]
    opus, sonnet = h.settings.resolve_model("opus"), h.settings.resolve_model("sonnet")
    assert models == [opus, opus, sonnet], "two pauses on opus, then the next call to sonnet"
    assert h.clock is not None and h.clock.now < 3600


async def test_the_last_model_of_the_list_is_kept_when_it_is_overloaded_too(
    fake_harness: Any,
) -> None:
    h = fake_harness(
        FakeLLM(default=Reply.overloaded()),
        virtual_time=True,
        retry={"horizon": "30s", "overload_cluster": 1000},
    )
    outcome = await h.run(ONE % "[opus, sonnet]")
    assert outcome.status == "failed"
    models = {c.model for c in h.of(CallFinished)}
    assert models == {h.settings.resolve_model("opus"), h.settings.resolve_model("sonnet")}


async def test_a_fallback_fanout_records_the_model_of_every_call(fake_harness: Any) -> None:
    h = fake_harness(
        FakeLLM(default=opus_down),
        virtual_time=True,
        retry={"horizon": "1h", "overload_cluster": 1, "overload_pause": "5s"},
    )
    outcome = await h.run("""
    version: 1
    name: wide
    limits: {concurrency: 1}
    steps:
      - id: each
        for_each: [a, b, c]
        model: [opus, haiku]
        prompt: "{{ item }}"
    """)
    assert outcome.status == "succeeded", outcome.error
    haiku = h.settings.resolve_model("haiku")
    ok = [c for c in h.of(CallFinished) if c.status == "succeeded"]
    assert len(ok) == 3 and {c.model for c in ok} == {haiku}
    # once opus was ruled out run-wide, later items go straight to haiku
    assert len(h.of(CallFinished)) == 2 + 3
