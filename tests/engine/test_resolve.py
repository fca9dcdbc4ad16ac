"""Settings resolution, without running anything: step > agent > workflow defaults > settings,
and flags > `limits:` > settings for a run (engine/resolve.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from orchestrator.config import load_settings
from orchestrator.engine import RunRequest
from orchestrator.engine.resolve import run_limits, task_settings, task_spec
from orchestrator.workflow import Workflow, load_workflow

SETTINGS = load_settings(
    environ={},
    overrides={"engine": {"model": "haiku", "max_tokens": 111, "retries": 7, "timeout": "9m"}},
)

WORKFLOW = """
version: 1
name: layered
defaults: {model: sonnet, max_tokens: 222, retries: 2, timeout: 30s, max_turns: 4}
limits: {concurrency: 9, max_workers: 40, max_cost_usd: 1.5}
agents:
  writer:
    model: opus
    max_tokens: 333
    tools: [Read, Grep]
    system: You write.
steps:
  - id: bare
    prompt: hi
  - id: by_agent
    agent: writer
    prompt: hi
  - id: by_step
    agent: writer
    model: claude-custom-1
    max_tokens: 20000
    retries: 0
    timeout: 5s
    max_turns: 2
    system: Be brief.
    tools: [Grep, Write]
    prompt: "hi {{ inputs.who }}"
    context: "shared {{ inputs.who }}"
  - id: fan
    for_each: [1]
    prompt: "{{ item }}"
inputs:
  who: {type: string, default: you}
"""


def workflow() -> Workflow:
    return load_workflow(Path("wf.yaml"), text=textwrap.dedent(WORKFLOW), settings=SETTINGS)


def test_workflow_defaults_beat_settings() -> None:
    wf = workflow()
    got = task_settings(wf.step("bare"), wf, SETTINGS)
    assert (got.model, got.max_tokens, got.retries, got.timeout_s, got.max_turns) == (
        "claude-sonnet-5-5",
        222,
        2,
        30.0,
        4,
    )
    assert got.agent is None and got.system is None and got.tools == ()


def test_the_agent_beats_workflow_defaults() -> None:
    wf = workflow()
    got = task_settings(wf.step("by_agent"), wf, SETTINGS)
    assert (got.agent, got.model, got.max_tokens) == ("writer", "claude-opus-5-5", 333)
    assert got.system == "You write." and got.tools == ("Read", "Grep")


def test_the_step_beats_its_agent() -> None:
    wf = workflow()
    got = task_settings(wf.step("by_step"), wf, SETTINGS)
    assert (got.model, got.max_tokens, got.retries, got.timeout_s, got.max_turns) == (
        "claude-custom-1",
        20000,
        0,
        5.0,
        2,
    )
    assert got.system == "You write.\n\nBe brief."  # the agent's body, then the step's
    assert got.tools == ("Grep", "Write")  # the step's replace the agent's (issue 13)
    assert got.stream  # above the settings' stream_above_max_tokens (16000)
    assert got.cache_ttl is None  # only fan-out items share a cacheable prefix


def test_settings_fill_what_nothing_else_sets() -> None:
    wf = load_workflow(
        Path("wf.yaml"),
        text="version: 1\nname: plain\nsteps:\n  - {id: a, prompt: hi}\n",
        settings=SETTINGS,
    )
    got = task_settings(wf.step("a"), wf, SETTINGS)
    assert (got.model, got.max_tokens, got.retries, got.timeout_s) == (
        "claude-haiku-5-5",
        111,
        7,
        540.0,
    )
    assert got.max_turns == SETTINGS.engine.max_turns and not got.stream


def test_fanout_items_mark_their_shared_prefix_unless_caching_is_off() -> None:
    wf = workflow()
    assert task_settings(wf.step("fan"), wf, SETTINGS).cache_ttl == "5m"
    off = load_settings(environ={}, overrides={"cache": {"enabled": False}})
    assert task_settings(wf.step("fan"), wf, off).cache_ttl is None


def test_task_spec_renders_the_templates_over_the_context() -> None:
    wf = workflow()
    step = wf.step("by_step")
    spec = task_spec(
        task_settings(step, wf, SETTINGS),
        step,
        {"inputs": {"who": "Ada"}},
        run_id="r",
        task_id="t",
        path="by_step",
        key="by_step",
        index=None,
        workspace="/ws",
    )
    assert (spec.prompt, spec.context, spec.workspace) == ("hi Ada", "shared Ada", "/ws")
    assert spec.tools == ["Grep", "Write"] and spec.retries == 0


def test_run_limits_flags_beat_the_workflow_which_beats_settings() -> None:
    wf = workflow()
    base = RunRequest(workflow=wf, inputs={}, workspace=Path("."))
    assert run_limits(base, SETTINGS).to_dict() == {
        "concurrency": 9,
        "max_workers": 40,
        "max_cost_usd": 1.5,
        "max_tokens": None,
        "max_depth": 2,  # the defaults of `Task` delegation
        "max_children": 20,
    }
    flags = RunRequest(
        workflow=wf, inputs={}, workspace=Path("."), concurrency=3, max_cost_usd=0.0, max_tokens=9
    )
    got = run_limits(flags, SETTINGS)
    assert (got.concurrency, got.max_workers, got.max_cost_usd, got.max_tokens) == (3, 40, 0.0, 9)
    plain = load_workflow(
        Path("wf.yaml"), text="version: 1\nname: p\nsteps:\n  - {id: a, prompt: hi}\n"
    )
    got = run_limits(RunRequest(workflow=plain, inputs={}, workspace=Path(".")), SETTINGS)
    assert (got.concurrency, got.max_workers) == (
        SETTINGS.engine.concurrency,
        SETTINGS.engine.max_workers,
    )
