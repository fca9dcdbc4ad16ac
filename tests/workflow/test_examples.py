"""Every shipped workflow validates, and the language schema accepts every one of them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator.workflow import language_schema, load_workflow, validate_paths
from orchestrator.workflow.scaffold import scaffold_files

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "workflows").glob("*.yaml"))


def test_there_is_one_example_per_pattern() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "research",
        "chain",
        "routing",
        "parallel",
        "voting",
        "evaluator",
        "fix_until_green",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_without_warnings(path: Path) -> None:
    assert path.read_text("utf-8").startswith("#"), "each example opens with a comment"
    workflow = load_workflow(path)
    assert workflow.warnings == []
    assert validate_paths([path]) == []
    # Runnable with no --input: every input has a default.
    assert all(spec.has_default for spec in workflow.inputs.values())
    workflow.coerce_inputs({})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_language_schema_accepts_example(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text("utf-8")), language_schema())


def test_language_schema_is_a_valid_schema_and_rejects_nonsense() -> None:
    schema = language_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"version": 1, "steps": [{"id": "a", "prompt": "x", "run": "y"}]})
    assert not validator.is_valid({"version": 2, "steps": [{"id": "a", "prompt": "x"}]})
    assert not validator.is_valid({"version": 1, "stepz": []})


def test_scaffolded_project_validates(tmp_path: Path) -> None:
    for relative, content in scaffold_files().items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    workflow = load_workflow(tmp_path / "workflows" / "hello.yaml")
    assert workflow.warnings == []
    assert set(workflow.resolved_agents) == {"writer", "critic"}
    jsonschema.validate(yaml.safe_load(scaffold_files()["workflows/hello.yaml"]), language_schema())


def test_design_example_shape(tmp_path: Path) -> None:
    """The DESIGN.md example (with its `: ` prompt quoted) loads and wires up as documented."""
    workflow = load_workflow(REPO / "workflows" / "research.yaml")
    research = workflow.step("research")
    assert research.as_ == "topic" and research.concurrency == 10
    assert research.tools == ["Read", "Grep", "state_set"]
    assert research.for_each is not None and research.deps == {"plan"}
    plan = workflow.step("plan")
    assert isinstance(plan.output, dict) and plan.output["required"] == ["subtasks"]
    assert workflow.defaults.timeout == 300.0 and workflow.limits.max_cost_usd == 2.0
    evaluator = load_workflow(REPO / "workflows" / "evaluator.yaml")
    polish = evaluator.step("polish")
    assert polish.kind == "loop" and polish.loop is not None and polish.loop.max_iterations == 3
