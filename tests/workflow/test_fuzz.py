"""Whatever a file holds, `validate_paths` answers with diagnostics, never an exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import Diagnostic
from orchestrator.workflow import validate_paths
from orchestrator.workflow.loader import STEP_KEYS, TOP_KEYS

WORDS = [
    *TOP_KEYS,
    *STEP_KEYS,
    "steps",
    "loop",
    "max_iterations",
    "until",
    "type",
    "default",
    "a",
    "b",
    "plan",
    "{{ steps.a.output }}",
    "{{ item }}",
    "{% for %}",
    "Read",
    "concat",
    "text",
    "json",
    "1",
    "5m",
    "-1",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=10))
documents: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=6),
    ),
    max_leaves=30,
)


def _steps_like() -> st.SearchStrategy[dict[str, Any]]:
    step = st.dictionaries(st.sampled_from(STEP_KEYS), documents, max_size=6)
    return st.fixed_dictionaries(
        {"version": st.sampled_from([1, 1, 2, "1"]), "steps": st.lists(step, max_size=4)},
        optional={k: documents for k in TOP_KEYS if k not in ("version", "steps")},
    )


def _check(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wf.yaml"
        path.write_bytes(content)
        found = validate_paths([path])
    assert isinstance(found, list)
    assert all(isinstance(d, Diagnostic) and d.line >= 1 and d.col >= 1 for d in found)
    assert not any("internal error" in d.message for d in found), found


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(documents)
def test_arbitrary_yaml_documents(data: Any) -> None:
    _check(yaml.safe_dump(data, allow_unicode=True).encode("utf-8"))


@FUZZ
@given(_steps_like())
def test_workflow_shaped_documents(data: dict[str, Any]) -> None:
    _check(yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8"))


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _check(text.encode("utf-8", errors="surrogatepass"))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(content: bytes) -> None:
    _check(content)
