"""Run inputs: strings from `--input k=v` are converted to the declared type."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.errors import UsageError
from orchestrator.workflow import Workflow

WORKFLOW = """
version: 1
inputs:
  question: {type: string}
  parts: {type: integer, default: 5}
  ratio: {type: number, default: 0.5}
  verbose: {type: boolean, default: false}
  tags: {type: array, default: [a]}
  extra: {type: object, default: {}}
  mode: {type: string, enum: [fast, slow], default: fast}
  short: integer
steps:
  - id: a
    prompt: "{{ inputs.question }}"
"""


@pytest.fixture
def workflow(load: Callable[[str], Workflow]) -> Workflow:
    return load(WORKFLOW)


def test_strings_are_converted_and_defaults_applied(workflow: Workflow) -> None:
    got = workflow.coerce_inputs(
        {
            "question": "q",
            "parts": "7",
            "ratio": "2",
            "verbose": "yes",
            "tags": '["x", "y"]',
            "short": 3,
        }
    )
    assert got == {
        "question": "q",
        "parts": 7,
        "ratio": 2,
        "verbose": True,
        "tags": ["x", "y"],
        "extra": {},
        "mode": "fast",
        "short": 3,
    }


def test_defaults_are_copies(workflow: Workflow) -> None:
    first = workflow.coerce_inputs({"question": "q", "short": 1})
    first["tags"].append("mutated")
    assert workflow.coerce_inputs({"question": "q", "short": 1})["tags"] == ["a"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"short": 1}, "missing required input 'question' (pass --input question=...)"),
        (
            {"question": "q", "short": 1, "part": "3"},
            "unknown input 'part' (did you mean 'parts'?)",
        ),
        (
            {"question": "q", "short": 1, "parts": "five"},
            "input 'parts': expected integer, got 'five'",
        ),
        ({"question": "q", "short": 1, "verbose": "maybe"}, "input 'verbose': expected boolean"),
        ({"question": "q", "short": 1, "tags": "{}"}, "input 'tags': expected array"),
        ({"question": "q", "short": 1, "mode": "medium"}, "input 'mode': \"medium\" is not one of"),
        ({"question": 3, "short": 1}, "input 'question': expected string, got 3"),
    ],
)
def test_bad_inputs_raise_usage_errors_naming_the_input(
    workflow: Workflow, raw: dict[str, object], fragment: str
) -> None:
    with pytest.raises(UsageError) as info:
        workflow.coerce_inputs(raw)
    assert fragment in str(info.value)
    assert info.value.exit_code == 2
