"""The TTL of a prefix a `loop:` body repeats once per iteration, as the simulator receives it:
5m while the loop comes round within 5 minutes, 1h once its period (expected from the body's
steps, or measured from one iteration's call to the next) is longer; and what `runs show` says.
Time is the engine's virtual clock: a person taking 10 minutes to answer takes no wall time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.contracts import Question, request_fingerprint
from orchestrator.events import CacheTtlChosen
from orchestrator.people.memory import MemoryPeople
from orchestrator.ui.tables import cache_line
from tests._support.harness import VirtualClock

CONTEXT = "Background every iteration shares. " * 600  # ~21,000 characters: ~5,000 tokens

ASKING = """
version: 1
name: review
defaults: {model: sonnet, max_tokens: 100}
inputs:
  background: {type: string}
steps:
  - id: polish
    loop:
      max_iterations: 3
      steps:
        - id: draft
          context: "{{ inputs.background }}"
          prompt: "draft {{ loop.iteration }}"
        - id: review
          ask: "Is draft {{ loop.iteration }} good?"
"""

LONG_BODY = """
version: 1
name: long
defaults: {model: sonnet, max_tokens: %(max_tokens)d}
inputs:
  background: {type: string}
steps:
  - id: polish
    loop:
      max_iterations: 2
      steps:
        - id: draft
          context: "{{ inputs.background }}"
          prompt: "draft {{ loop.iteration }}"
        - id: critique
          prompt: "critique {{ steps.draft.output }}"
"""


def ttls(h: Any, step: str) -> list[str]:
    """The `cache_control.ttl` of the context block of each request for `step`, in order."""
    return [
        e.body["messages"][0]["content"][0]["cache_control"]["ttl"]
        for e in h.sim.log.entries
        if e.step == step
    ]


def person(clock: VirtualClock, minutes: float) -> MemoryPeople:
    """A person who takes `minutes` to answer each question, then says yes."""

    def answer(question: Question) -> str:
        clock.now += minutes * 60
        return "yes"

    return MemoryPeople(answer)


async def test_a_person_who_takes_10_minutes_moves_the_loops_prefix_to_1h(
    make_harness: Any,
) -> None:
    h = make_harness()
    h.clock = VirtualClock()
    outcome = await h.run(
        ASKING,
        {"background": CONTEXT},
        engine_hook=lambda engine: setattr(engine, "people", person(h.clock, 10)),
    )
    assert outcome.status == "succeeded", outcome.error
    # nothing expected the wait at first; from the second iteration on it has been measured
    assert ttls(h, "polish.draft") == ["5m", "1h", "1h"]
    told = h.of(CacheTtlChosen)
    assert [(e.step_id, e.ttl) for e in told] == [("polish.draft", "1h")]
    assert "measured: 10 min" in told[0].why and "loop" in told[0].why


async def test_a_person_who_answers_within_a_minute_keeps_5m(make_harness: Any) -> None:
    h = make_harness()
    h.clock = VirtualClock()
    outcome = await h.run(
        ASKING,
        {"background": CONTEXT},
        engine_hook=lambda engine: setattr(engine, "people", person(h.clock, 1)),
    )
    assert outcome.status == "succeeded", outcome.error
    assert ttls(h, "polish.draft") == ["5m", "5m", "5m"]
    assert h.of(CacheTtlChosen) == []
    # and the 5m entry the first iteration wrote is read by the next two
    reads = [(e.usage or {}).get("cache_read_input_tokens", 0) for e in h.sim.log.entries]
    assert sum(1 for r in reads if r >= 5000) == 2


async def test_a_body_expected_to_outlast_5_minutes_asks_for_1h_from_the_first_iteration(
    make_harness: Any,
) -> None:
    # two steps of up to 8,000 output tokens each: ~5.3 min an iteration at the expected pace
    h = make_harness()
    h.clock = VirtualClock()  # no time passes: the simulator's replies come at once
    outcome = await h.run(LONG_BODY % {"max_tokens": 8000}, {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    # the second iteration came round at once (measured), so 5m is enough for it
    assert ttls(h, "polish.draft") == ["1h", "5m"]
    told = h.of(CacheTtlChosen)
    assert [e.step_id for e in told] == ["polish.draft"]
    assert "expected: 5 min" in told[0].why


async def test_a_short_body_keeps_5m_and_a_ttl_in_configs_wins(make_harness: Any) -> None:
    h = make_harness()
    h.clock = VirtualClock()
    outcome = await h.run(LONG_BODY % {"max_tokens": 100}, {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    assert ttls(h, "polish.draft") == ["5m", "5m"]
    pinned = make_harness(cache={"ttl": "5m"})
    pinned.clock = VirtualClock()
    outcome = await pinned.run(LONG_BODY % {"max_tokens": 8000}, {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    assert ttls(pinned, "polish.draft") == ["5m", "5m"]
    assert pinned.of(CacheTtlChosen) == []


def test_runs_show_says_a_loops_period_chose_1h() -> None:
    totals = {
        "cache_creation_input_tokens": 10000,
        "cache_creation_5m_input_tokens": 5000,
        "cache_creation_1h_input_tokens": 5000,
        "cache_read_input_tokens": 5000,
    }
    why = "its loop's period (measured: 10 min from one iteration's call to the next) is longer"
    line = cache_line(totals, [{"step_id": "polish.draft", "ttl": "1h", "why": why}])
    assert line is not None
    assert "5m and 1h TTLs" in line
    assert "step 'polish.draft'" in line and "loop's period (measured: 10 min" in line


SCHEDULED = """
version: 1
name: nightly
schedule: {%(schedule)s}
defaults: {model: sonnet, max_tokens: 100}
inputs:
  background: {type: string, default: ""}
steps:
  - id: each
    for_each: [a, b, c]
    context: "{{ inputs.background }}"
    prompt: "item {{ item }}"
"""


async def test_a_schedule_every_10_minutes_keeps_its_prefix_for_the_next_run(
    make_harness: Any,
) -> None:
    # the next run sends the same prefix 10 min later: a 5m entry is gone by then, a 1h one is not
    h = make_harness()
    outcome = await h.run(SCHEDULED % {"schedule": "every: 10m"}, {"background": CONTEXT})
    assert outcome.status == "succeeded", outcome.error
    assert set(ttls(h, "each")) == {"1h"}
    told = h.of(CacheTtlChosen)
    assert [e.step_id for e in told] == ["each"] and "schedule runs it every 10 min" in told[0].why


async def test_a_schedule_rarer_than_an_hour_or_within_5_minutes_keeps_5m(
    make_harness: Any,
) -> None:
    for schedule in ("cron: '0 9 * * *'", "every: 2m"):  # a 1h entry is gone too / 5m reaches
        h = make_harness()
        outcome = await h.run(SCHEDULED % {"schedule": schedule}, {"background": CONTEXT})
        assert outcome.status == "succeeded", outcome.error
        assert set(ttls(h, "each")) == {"5m"}, schedule


def test_runs_show_names_the_step_and_its_loops_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ORCHESTRATE_DB", raising=False)
    text = (
        (LONG_BODY % {"max_tokens": 8000})
        .replace('"{{ inputs.background }}"', json.dumps(CONTEXT))
        .replace("  background: {type: string}", "  background: {type: string, default: ''}")
    )
    (tmp_path / "wf.yaml").write_text(text)
    runner = CliRunner()
    env = {"COLUMNS": "300"}
    result = runner.invoke(app, ["run", "wf.yaml", "--simulate", "-q"], env=env)
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["runs", "show", "last"], env=env)
    assert result.exit_code == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("cache:"))
    assert "1h" in line and "step 'polish.draft'" in line, line
    assert "loop's period (expected: 5 min" in line, line
    result = runner.invoke(app, ["runs", "show", "last", "--json"], env=env)
    told = json.loads(result.stdout)["cache_ttls"]
    assert [(t["step_id"], t["ttl"]) for t in told] == [("polish.draft", "1h")]


def test_a_resumed_conversation_replays_across_a_ttl_change() -> None:
    # a resumed loop measures its period afresh, so a task's request may ask for another TTL
    # than the recorded one: the replay must still match it (the model sees no cache marks)
    def request(ttl: str, text: str = CONTEXT) -> dict[str, Any]:
        block = {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}
        return {"model": "m", "messages": [{"role": "user", "content": [block]}]}

    assert request_fingerprint(request("5m")) == request_fingerprint(request("1h"))
    assert request_fingerprint(request("5m")) != request_fingerprint(request("5m", "other"))
