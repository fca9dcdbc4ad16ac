from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.contracts import StateAccess
from orchestrator.errors import UsageError
from orchestrator.tools import Toolset, build_toolset

# --- state tools --------------------------------------------------------------------------------


async def test_state_set_get_list(toolset: Toolset) -> None:
    value = {"score": 3, "tags": ["a", "b"], "ok": True}
    out = await toolset.execute("state_set", {"key": "findings/1", "value": value})
    assert not out.is_error
    await toolset.execute("state_set", {"key": "findings/2", "value": "text"})
    await toolset.execute("state_set", {"key": "other", "value": None})

    out = await toolset.execute("state_get", {"key": "findings/1"})
    assert json.loads(out.content) == value
    out = await toolset.execute("state_list", {"prefix": "findings/"})
    assert json.loads(out.content) == {"findings/1": value, "findings/2": "text"}
    out = await toolset.execute("state_list", {})
    assert set(json.loads(out.content)) == {"findings/1", "findings/2", "other"}


async def test_state_get_missing_key_is_null(toolset: Toolset) -> None:
    out = await toolset.execute("state_get", {"key": "nothing"})
    assert not out.is_error and out.content == "null"


async def test_state_arguments_are_validated(toolset: Toolset) -> None:
    out = await toolset.execute("state_set", {"key": "k"})
    assert out.is_error and "missing required field 'value'" in out.content
    out = await toolset.execute("state_get", {"key": ""})
    assert out.is_error and "field 'key'" in out.content


class BrokenState:
    async def get(self, key: str) -> Any:
        raise RuntimeError("database is locked")

    async def set(self, key: str, value: Any) -> None:
        raise RuntimeError("database is locked")

    async def list(self, prefix: str = "") -> dict[str, Any]:
        raise RuntimeError("database is locked")


async def test_state_store_failure_is_a_tool_error(workspace: Path) -> None:
    toolset = build_toolset(["state_get"], workspace=workspace, state=BrokenState())
    out = await toolset.execute("state_get", {"key": "k"})
    assert out.is_error and "database is locked" in out.content


# --- Python tools -------------------------------------------------------------------------------

MODULE = '''
from __future__ import annotations

import asyncio
import threading
from typing import Literal

from pydantic import BaseModel


class Point(BaseModel):
    x: int
    y: int


def word_count(text: str, mode: Literal["words", "chars"] = "words") -> int:
    """Count the words (or characters) in a text."""
    return len(text.split()) if mode == "words" else len(text)


def where(p: Point, label: str | None = None) -> dict[str, object]:
    return {"sum": p.x + p.y, "label": label, "thread": threading.current_thread().name}


async def shout(text: str) -> str:
    """Upper-case a text."""
    await asyncio.sleep(0)
    return text.upper()


def explode(reason: str) -> str:
    raise ValueError(f"cannot do it: {reason}")


def long_text(n: int) -> str:
    return "y" * n


def Read(file_path: str) -> str:
    return "shadow"

NOT_A_FUNCTION = 3
'''


@pytest.fixture
def pymod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"tools_sample_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "pysrc"
    src.mkdir()
    (src / f"{name}.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(src))
    yield name
    sys.modules.pop(name, None)


def _py(module: str, *functions: str) -> list[dict[str, str]]:
    return [{"python": f"{module}:{fn}"} for fn in functions]


async def test_python_tool_schema_from_type_hints(
    pymod: str, workspace: Path, state: StateAccess
) -> None:
    toolset = build_toolset(_py(pymod, "word_count", "where"), workspace=workspace, state=state)
    by_name = {tool["name"]: tool for tool in toolset.api_tools()}
    wc = by_name["word_count"]
    assert wc["description"] == "Count the words (or characters) in a text."
    schema = wc["input_schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["text"]
    assert schema["properties"]["text"]["type"] == "string"
    assert schema["properties"]["mode"]["enum"] == ["words", "chars"]
    assert schema["properties"]["mode"]["default"] == "words"
    where = by_name["where"]["input_schema"]
    assert where["required"] == ["p"]
    assert "Point" in where["$defs"]
    assert by_name["where"]["description"]  # a default description when there is no docstring


async def test_python_tools_execute(pymod: str, workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(
        _py(pymod, "word_count", "where", "shout"), workspace=workspace, state=state
    )
    out = await toolset.execute("word_count", {"text": "one two three"})
    assert out.content == "3"
    out = await toolset.execute("word_count", {"text": "abc", "mode": "chars"})
    assert out.content == "3"
    out = await toolset.execute("shout", {"text": "hi"})
    assert out.content == "HI"
    out = await toolset.execute("where", {"p": {"x": 1, "y": 2}, "label": "a"})
    result = json.loads(out.content)
    assert result["sum"] == 3 and result["label"] == "a"
    assert result["thread"] != "MainThread"  # sync functions run off the event loop


async def test_python_tool_errors(pymod: str, workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(
        _py(pymod, "word_count", "explode", "where"), workspace=workspace, state=state
    )
    out = await toolset.execute("explode", {"reason": "no fuel"})
    assert out.is_error and "ValueError" in out.content and "no fuel" in out.content
    out = await toolset.execute("word_count", {"text": 5})
    assert out.is_error and "field 'text'" in out.content
    out = await toolset.execute("word_count", {"text": "a", "mode": "lines"})
    assert out.is_error and "field 'mode'" in out.content
    out = await toolset.execute("where", {"p": {"x": 1}})
    assert out.is_error and "p.y" in out.content


async def test_python_tool_output_is_capped(
    pymod: str, workspace: Path, state: StateAccess
) -> None:
    toolset = build_toolset(
        _py(pymod, "long_text"), workspace=workspace, state=state, max_output_chars=100
    )
    out = await toolset.execute("long_text", {"n": 5000})
    assert out.content.startswith("y" * 100 + "\n")
    assert "truncated" in out.content


def test_python_tool_import_errors(pymod: str, workspace: Path, state: StateAccess) -> None:
    with pytest.raises(UsageError, match="cannot import module 'no_such_module_xyz'"):
        build_toolset([{"python": "no_such_module_xyz:fn"}], workspace=workspace, state=state)
    with pytest.raises(UsageError, match="did you mean 'word_count'"):
        build_toolset(_py(pymod, "word_cont"), workspace=workspace, state=state)
    with pytest.raises(UsageError, match="is not a function"):
        build_toolset(_py(pymod, "NOT_A_FUNCTION"), workspace=workspace, state=state)
    with pytest.raises(UsageError, match=r"expected 'package\.module:function'"):
        build_toolset([{"python": "just_a_module"}], workspace=workspace, state=state)
    with pytest.raises(UsageError, match="built-in tool's name"):
        build_toolset(_py(pymod, "Read"), workspace=workspace, state=state)
