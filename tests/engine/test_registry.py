"""Step kinds plug into the scheduler through the registry (engine/registry.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import load_settings
from orchestrator.engine import Engine, RunRequest
from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import Scope, StepResult
from orchestrator.engine.registry import kinds, lookup, register
from orchestrator.errors import UsageError
from orchestrator.events import Event, StepFinished, StepStarted
from orchestrator.states import StepStatus
from orchestrator.testing import FakeLLM
from orchestrator.workflow import Step, load_workflow


@register("test_shout")
async def shout_step(
    run: RunContext, step: Step, scope: Scope, ctx: dict[str, Any], path: str
) -> StepResult:
    """A kind made up for this test: upper-cases the output of the step before it."""
    before = ctx["steps"]["first"]["output"]
    return StepResult(StepStatus.SUCCEEDED, output=f"{path}: {before.upper()}")


def test_every_builtin_kind_has_a_handler() -> None:
    assert {"agent", "run", "fanout", "merge", "loop", "workflow"} <= set(kinds())


def test_a_kind_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("agent")(shout_step)


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="no handler for step kind 'nonesuch'"):
        lookup("nonesuch")


async def test_a_registered_kind_runs_as_a_step(tmp_path: Path) -> None:
    text = """
    version: 1
    name: plug
    steps:
      - {id: first, prompt: hello}
      - {id: loud, prompt: "{{ steps.first.output }}"}
    outputs:
      loud: "{{ steps.loud.output }}"
    """
    settings = load_settings(environ={}, cwd=tmp_path)
    wf = load_workflow(tmp_path / "wf.yaml", text=textwrap.dedent(text), settings=settings)
    # the language has no such kind yet; a later issue would add its key to the loader
    steps = [wf.steps[0], wf.steps[1].model_copy(update={"kind": "test_shout"})]
    wf = wf.model_copy(update={"steps": steps})
    events: list[Event] = []
    llm = FakeLLM()
    engine = Engine(settings=settings, llm=llm, emit=events.append)
    outcome = await engine.run(RunRequest(workflow=wf, inputs={}, workspace=tmp_path))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"loud": "loud: ANSWER TO: HELLO"}
    assert [e.kind for e in events if isinstance(e, StepStarted)] == ["agent", "test_shout"]
    assert [e.status for e in events if isinstance(e, StepFinished)] == ["succeeded"] * 2
    assert llm.count() == 1  # the new kind made no call
