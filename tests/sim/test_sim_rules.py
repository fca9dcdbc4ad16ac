"""Scripted replies: rules files, matching, `times`, errors, stop reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from orchestrator.sim import Rule, SimConfig, load_rules

MODEL = "claude-sonnet-5-5"

RULES_YAML = """
- step: plan
  json: {subtasks: [a, b]}
- step: research
  prompt: "topic (\\\\d+)"
  times: 1
  text: first research answer
- step: research
  tool_calls:
    - {name: state_set, input: {key: k, value: v}}
  turn: 1
- agent: critic
  error: {status: 529, type: overloaded_error, message: busy}
- system: "^You are terse"
  text: ok
  stop_reason: max_tokens
- prompt: pause
  stop_reason: pause_turn
"""


def ask(
    client: anthropic.AsyncAnthropic,
    prompt: str,
    *,
    step: str = "",
    agent: str = "",
    system: str | None = None,
    messages: list[Any] | None = None,
) -> Any:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 500,
        "messages": messages or [{"role": "user", "content": prompt}],
        "extra_headers": {"X-Orchestrate-Step": step, "X-Orchestrate-Agent": agent},
    }
    if system is not None:
        params["system"] = system
    return client.messages.create(**params)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    return path


async def test_rules_file_matching_and_times(sim_factory, clients, rules_file):
    sim = sim_factory(SimConfig(rules=load_rules(rules_file)))
    client = clients(sim)
    plan = await ask(client, "Split it", step="plan")
    assert json.loads(plan.content[0].text) == {"subtasks": ["a", "b"]}
    assert plan.stop_reason == "end_turn"
    # `plan` is matched in full, not as a prefix
    planner = await ask(client, "Split it", step="planner")
    assert "Simulated reply" in planner.content[0].text

    first = await ask(client, "Research topic 1", step="research")
    assert first.content[0].text == "first research answer"
    second = await ask(client, "Research topic 2", step="research")  # times: 1 used up
    assert second.stop_reason == "tool_use"
    [call] = second.content
    assert (
        call.type == "tool_use"
        and call.name == "state_set"
        and call.input
        == {
            "key": "k",
            "value": "v",
        }
    )
    assert call.id.startswith("toolu_")

    # turn 2 of the same conversation: the tool-call rule no longer matches
    later = await ask(
        client,
        "",
        step="research",
        messages=[
            {"role": "user", "content": "Research topic 2"},
            {"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "ok"}],
            },
        ],
    )
    assert later.stop_reason == "end_turn"


async def test_rule_errors_and_stop_reasons(sim_factory, clients, rules_file):
    client = clients(sim_factory(SimConfig(rules=load_rules(rules_file))))
    with pytest.raises(anthropic.InternalServerError) as info:
        await ask(client, "Judge", agent="critic")
    assert info.value.status_code == 529
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "busy"}

    terse = await ask(client, "Hi", system="You are terse.")
    assert terse.content[0].text == "ok"
    assert terse.stop_reason == "max_tokens"

    paused = await ask(client, "please pause here")
    assert paused.stop_reason == "pause_turn"
    assert "please pause here" in paused.content[0].text


async def test_rules_in_python_with_400(sim_factory, clients):
    rules = [
        Rule(prompt="item 2$", error={"status": 400, "type": "invalid_request_error"}),
        Rule(step="s", times=2, text="scripted"),
    ]
    sim = sim_factory(SimConfig(rules=rules))
    client = clients(sim)
    with pytest.raises(anthropic.BadRequestError):
        await ask(client, "do item 2")
    texts = [(await ask(client, "x", step="s")).content[0].text for _ in range(3)]
    assert texts[:2] == ["scripted", "scripted"]
    assert texts[2] != "scripted"
    assert sim.log.count(step="s") == 3


async def test_rules_apply_to_streams(sim_factory, clients):
    sim = sim_factory(SimConfig(rules=[Rule(text="streamed script " * 5)]))
    async with clients(sim).messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = await stream.get_final_text()
    assert text == "streamed script " * 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- text: [unclosed", "not valid YAML"),
        ("just a string", "expected a list of rules"),
        ("- 42", "rule 1: expected a mapping"),
        ("- {step: a, text: x}\n- {stepp: b, text: y}", "rule 2: unknown keys ['stepp']"),
        ("- {step: a}", "rule 1: no reply"),
        ("- {text: a, json: {}}", "give only one of text, json"),
        ("- {prompt: '(', text: a}", "'prompt' is not a valid regex"),
        ("- {turn: 0, text: a}", "'turn' must be an integer >= 1"),
        ("- {times: -1, text: a}", "'times' must be an integer >= 0"),
        ("- {error: {status: 200}}", "error 'status' must be an HTTP error code"),
        ("- {tool_calls: [{input: {}}]}", "tool call 1 needs a 'name'"),
    ],
)
def test_bad_rules_files_name_file_and_rule(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"bad\.yaml") as info:
        load_rules(path)
    assert message in str(info.value)


def test_rules_file_forms(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - {step: a, text: x}\n")
    [rule] = load_rules(path)
    assert rule.step == "a" and rule.text == "x" and rule.name.endswith("r.yaml rule 1")
    path.write_text("")
    assert load_rules(path) == []
    with pytest.raises(ValueError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml")
