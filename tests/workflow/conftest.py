"""Spec tests run in an empty temporary directory, so agents in the repository's `agents/` (found
through ./agents) never leak into a test's agent lookup."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import Diagnostic, SpecError
from orchestrator.workflow import Workflow, load_workflow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(text, name="wf.yaml") -> path, in the project directory (text is dedented)."""

    def _write(text: str, name: str = "wf.yaml") -> Path:
        path = tmp_path / "project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load(write: Callable[..., Path]) -> Callable[[str], Workflow]:
    def _load(text: str) -> Workflow:
        return load_workflow(write(text))

    return _load


@pytest.fixture
def errors(write: Callable[..., Path]) -> Callable[[str], list[Diagnostic]]:
    """The diagnostics a workflow text raises (fails the test if it loads)."""

    def _errors(text: str) -> list[Diagnostic]:
        path = write(text)
        with pytest.raises(SpecError) as info:
            load_workflow(path)
        return info.value.diagnostics

    return _errors
