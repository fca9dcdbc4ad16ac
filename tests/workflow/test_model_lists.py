"""`model: [opus, sonnet]` wherever a model is named: the workflow's `defaults:`, inline agents,
agent files' front matter and `engine.model` in the settings load it, and a bad list is refused
with its place and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.engine.resolve import task_settings
from orchestrator.errors import SpecError, UsageError
from orchestrator.workflow import load_workflow


def write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


WITH_DEFAULTS = """
version: 1
name: w
defaults:
  model: %s
steps:
  - id: a
    prompt: hi
"""


def refused(path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_workflow(path)
    return str(caught.value)


def test_a_list_in_defaults_gives_every_step_its_fallbacks(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    wf = load_workflow(write(tmp_path, WITH_DEFAULTS % "[opus, sonnet]"), settings=settings)
    resolved = task_settings(wf.steps[0], wf, settings)
    assert resolved.model == settings.resolve_model("opus")
    assert resolved.fallback_models == (settings.resolve_model("sonnet"),)


@pytest.mark.parametrize(
    "written, place, words",
    [
        ("[]", "wf.yaml:4:", ["defaults.model is an empty list", "[opus, sonnet]"]),
        ("[opus, 3]", "wf.yaml:4:", ["defaults.model[1] must be a model name, got 3"]),
        ("[opus, opus]", "wf.yaml:4:", ["names a model twice"]),
        ("[opus, inherit]", "wf.yaml:4:", ["'inherit' cannot be in a list"]),
        ("[opus, sonet]", "wf.yaml:4:", ["defaults.model: 'sonet'", "did you mean 'sonnet'"]),
        ("{a: 1}", "wf.yaml:4:", ["defaults.model must be a model name or a list"]),
    ],
)
def test_a_bad_list_in_defaults_is_refused_with_its_place_and_fix(
    tmp_path: Path, written: str, place: str, words: list[str]
) -> None:
    message = refused(write(tmp_path, WITH_DEFAULTS % written))
    assert place in message, message
    for word in words:
        assert word in message, message


def test_an_unknown_fallback_on_a_step_is_an_error_not_a_warning(tmp_path: Path) -> None:
    # alone, an unknown name is a warning (the catalog lags the API); as a fallback it would
    # only be found out when the first model is overloaded, so it is refused now
    text = "version: 1\nname: w\nsteps:\n  - id: a\n    model: [opus, haikoo]\n    prompt: hi\n"
    message = refused(write(tmp_path, text))
    assert "wf.yaml:5:" in message and "'haikoo'" in message and "'haiku'" in message
    ok = "version: 1\nname: w\nsteps:\n  - id: a\n    model: [opus, claude-new-1]\n    prompt: hi\n"
    assert load_workflow(write(tmp_path, ok)).steps[0].model == ["opus", "claude-new-1"]


def test_an_agent_file_may_name_a_list(tmp_path: Path) -> None:
    agent = "---\nname: writer\nmodel: [opus, sonnet]\n---\nYou write.\n"
    write(tmp_path, agent, "agents/writer.md")
    text = "version: 1\nname: w\nsteps:\n  - id: a\n    agent: writer\n    prompt: hi\n"
    settings = load_settings(environ={}, cwd=tmp_path)
    wf = load_workflow(write(tmp_path, text), settings=settings)
    resolved = task_settings(wf.steps[0], wf, settings)
    assert resolved.model == settings.resolve_model("opus")
    assert resolved.fallback_models == (settings.resolve_model("sonnet"),)


@pytest.mark.parametrize(
    "written, words",
    [
        ("[]", ["agent 'model' is an empty list"]),
        ("[opus, 7]", ["agent 'model'[1] must be a model name"]),
        ("[opus, sonet]", ["'sonet'", "did you mean 'sonnet'", "writer.md"]),
    ],
)
def test_a_bad_list_in_an_agent_file_is_refused(
    tmp_path: Path, written: str, words: list[str]
) -> None:
    agent = f"---\nname: writer\nmodel: {written}\n---\nYou write.\n"
    write(tmp_path, agent, "agents/writer.md")
    text = "version: 1\nname: w\nsteps:\n  - id: a\n    agent: writer\n    prompt: hi\n"
    message = refused(write(tmp_path, text))
    for word in words:
        assert word in message, message


def test_an_inline_agent_may_name_a_list(tmp_path: Path) -> None:
    text = """
    version: 1
    name: w
    agents:
      writer: {model: [haiku, sonnet], system: You write.}
      bad: {model: [haiku, sonet], system: You write.}
    steps:
      - id: a
        agent: writer
        prompt: hi
    """
    message = refused(write(tmp_path, text))
    assert "wf.yaml:5:" in message and "agent 'bad': model: 'sonet'" in message
    settings = load_settings(environ={}, cwd=tmp_path)
    fixed = text.replace("sonet", "sonnet")
    wf = load_workflow(write(tmp_path, fixed), settings=settings)
    resolved = task_settings(wf.steps[0], wf, settings)
    assert resolved.fallback_models == (settings.resolve_model("sonnet"),)


def test_the_settings_default_model_may_be_a_list(tmp_path: Path) -> None:
    settings = load_settings(environ={"ORCHESTRATE_MODEL": "[opus, sonnet]"}, cwd=tmp_path)
    wf = load_workflow(write(tmp_path, "version: 1\nname: w\nsteps:\n  - {id: a, prompt: hi}\n"))
    resolved = task_settings(wf.steps[0], wf, settings)
    assert resolved.model == settings.resolve_model("opus")
    assert resolved.fallback_models == (settings.resolve_model("sonnet"),)
    for bad, words in (("[]", "non-empty list"), ("[opus, sonet]", "'sonet' is neither")):
        with pytest.raises(UsageError, match=words) as info:
            load_settings(environ={"ORCHESTRATE_MODEL": bad}, cwd=tmp_path)
        assert "engine.model" in str(info.value) and " : " not in str(info.value)
