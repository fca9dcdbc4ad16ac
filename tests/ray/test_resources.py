"""`resources:` in the language: on a step or in an agent file, checked where it is written, and
carried to the task (no Ray needed: what reaches Ray is tested in test_ray_executor.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.contracts.resources import memory_bytes, resource_options
from orchestrator.engine.resolve import task_settings
from orchestrator.errors import SpecError
from orchestrator.workflow import load_workflow


def _write(tmp_path: Path, step_extra: str, agent_extra: str = "") -> Path:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / "builder.md").write_text(
        f"---\nname: builder\ndescription: Builds.\n{agent_extra}---\nYou build.\n"
    )
    path = tmp_path / "wf.yaml"
    path.write_text(
        "version: 1\nname: r\nsteps:\n  - id: build\n    agent: builder\n"
        f'    prompt: "go"\n{step_extra}'
    )
    return path


def _resolved(path: Path) -> dict[str, object] | None:
    settings = load_settings(None)
    workflow = load_workflow(path, settings=settings)
    return task_settings(workflow.steps[0], workflow, settings).resources


def test_a_step_and_an_agent_file_give_a_task_its_resources(tmp_path: Path) -> None:
    agent_only = _write(tmp_path, "", "resources: {num_cpus: 2, memory: 4GiB}\n")
    assert _resolved(agent_only) == {"num_cpus": 2, "memory": "4GiB"}
    step_wins = _write(tmp_path, "    resources: {num_cpus: 0.5}\n", "resources: {num_cpus: 2}\n")
    assert _resolved(step_wins) == {"num_cpus": 0.5}
    assert _resolved(_write(tmp_path, "")) is None


@pytest.mark.parametrize(
    ("step", "agent", "said"),
    [
        ("    resources: {num_cpus: -1}\n", "", "wf.yaml:7:"),
        ("    resources: {memory: lots}\n", "", "memory must be bytes or a size like"),
        ("    resources: {cpus: 2}\n", "", "unknown resource 'cpus'"),
        ("", "resources: {memory: 2 parsecs}\n", "builder.md"),
    ],
)
def test_a_bad_resource_is_reported_where_it_is_written(
    tmp_path: Path, step: str, agent: str, said: str
) -> None:
    with pytest.raises(SpecError) as raised:
        load_workflow(_write(tmp_path, step, agent), settings=load_settings(None))
    assert said in str(raised.value)


def test_memory_sizes_read_as_ray_expects_them() -> None:
    assert memory_bytes("2GiB") == 2 * 1024**3
    assert memory_bytes("512MiB") == 512 * 1024**2
    assert memory_bytes("1.5GB") == 1_500_000_000
    assert memory_bytes(1024) == 1024
    assert resource_options({"num_cpus": 2, "memory": "1Ki"}) == {"num_cpus": 2, "memory": 1024}
