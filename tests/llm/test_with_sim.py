"""The worker over the real SDK path: `run_worker` -> `AnthropicLLM` -> `orchestrator.sim`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.contracts import JSON, LLMResponse, TaskSpec, WorkerContext
from orchestrator.errors import RetryableError
from orchestrator.events import Event, ToolCalled
from orchestrator.llm import SIMULATOR_API_KEY, AnthropicLLM
from orchestrator.sim import Rule, SimConfig, SimServer
from orchestrator.worker import run_worker

SCHEMA = {
    "type": "object",
    "required": ["subtasks"],
    "properties": {"subtasks": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
}


class NoState:
    async def get(self, key: str) -> JSON:
        return None

    async def set(self, key: str, value: JSON) -> None:
        return None

    async def list(self, prefix: str = "") -> dict[str, JSON]:
        return {}


@pytest.fixture
def scripted_sim() -> Iterator[SimServer]:
    rules = [Rule(step="scripted", json={"subtasks": ["alpha", "beta"]})]
    with SimServer(SimConfig(seed=3, rules=rules)) as server:
        yield server


def task(workspace: Path, **overrides: Any) -> TaskSpec:
    values: dict[str, Any] = {
        "run_id": "r1",
        "task_id": "t1",
        "step_id": "plan",
        "key": "plan",
        "agent": "planner",
        "model": "claude-sonnet-5-5",
        "prompt": "Split the question into parts.",
        "workspace": str(workspace),
    }
    values.update(overrides)
    return TaskSpec(**values)


async def run(sim: SimServer, spec: TaskSpec, events: list[Event] | None = None) -> Any:
    llm = AnthropicLLM(api_key=SIMULATOR_API_KEY, base_url=sim.base_url)

    async def call(_: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        return await llm.create(request)

    sink = events if events is not None else []
    try:
        return await run_worker(spec, WorkerContext(call=call, state=NoState(), emit=sink.append))
    finally:
        await llm.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_structured_output_end_to_end(
    scripted_sim: SimServer, tmp_path: Path, stream: bool
) -> None:
    result = await run(scripted_sim, task(tmp_path, output=SCHEMA, stream=stream, cache_ttl="5m"))
    assert isinstance(result.output["subtasks"], list) and result.output["subtasks"]
    assert result.calls >= 1 and result.usage.output_tokens > 0
    (entry,) = scripted_sim.log.find(step="plan")
    assert entry.stream is stream
    assert entry.task == "plan" and entry.agent == "planner"


async def test_scripted_reply_by_step(scripted_sim: SimServer, tmp_path: Path) -> None:
    result = await run(scripted_sim, task(tmp_path, step_id="scripted", output=SCHEMA))
    assert result.output == {"subtasks": ["alpha", "beta"]}


async def test_tool_loop_with_the_real_toolset(scripted_sim: SimServer, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the sky is blue\n")
    events: list[Event] = []
    prompt = "Glob the workspace, Read notes.txt, then answer."  # the simulator calls named tools
    spec = task(tmp_path, tools=["Read", "Glob"], max_turns=10, prompt=prompt)
    result = await run(scripted_sim, spec, events)
    assert isinstance(result.output, str)
    called = [e for e in events if isinstance(e, ToolCalled)]
    assert sorted(e.tool for e in called) == ["Glob", "Read"]
    assert result.turns == len(scripted_sim.log.find(step="plan")) == result.calls
    last = scripted_sim.log.find(step="plan")[-1].body
    assert last is not None and last["messages"][-1]["content"][0]["type"] == "tool_result"


async def test_injected_rate_limit_becomes_retryable(tmp_path: Path) -> None:
    with SimServer(SimConfig(faults={"429": 1.0}, retry_after_s=2.0)) as sim:
        with pytest.raises(RetryableError) as info:
            await run(sim, task(tmp_path))
    assert info.value.kind == "rate_limit"
    assert info.value.retry_after == pytest.approx(2.0)
