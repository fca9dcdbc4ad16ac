"""Every example in workflows/ runs to success on the simulator, through the real SDK path.

Each runs from a copy of workflows/ under the test's folder: an example with `workspace: .`
(mcp_tools.yaml, whose server script sits beside it) then works in the copy, never in the
source tree. Agents are still found in ./agents, the repository's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.events import StepFinished, TaskFinished
from orchestrator.people.memory import MemoryPeople

ALL_EXAMPLES = sorted((Path(__file__).parents[2] / "workflows").glob("*.yaml"))
# Claude Code examples need the CLI and a git checkout: tests/runtimes/test_example.py runs them.
EXAMPLES = [p for p in ALL_EXAMPLES if "runtime: claude-code" not in p.read_text("utf-8")]


def test_there_is_an_example_per_pattern() -> None:
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
async def test_example_runs_on_the_simulator(path: Path, make_harness: Any, tmp_path: Path) -> None:
    copy = shutil.copytree(path.parent, tmp_path / "workflows") / path.name
    h = make_harness()
    # a person who says yes to every question (the approval gate's plan, writes and budget)
    people = MemoryPeople(first_option=True)
    outcome = await h.run(copy, engine_hook=lambda engine: setattr(engine, "people", people))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    assert all(value not in (None, "") for value in outcome.outputs.values())
    assert h.of(TaskFinished), "the workflow did some work"
    assert all(e.status in ("succeeded", "skipped") for e in h.of(StepFinished))
