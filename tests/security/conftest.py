"""Security tests drive the real `orchestrate` CLI in child processes, like tests/reliability."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._support.children import clean_environ, give_child_tests_time

CLI = Path(sys.executable).parent / "orchestrate"

FAST_ENV = {
    "ORCHESTRATE_RETRY__BASE_DELAY": "10ms",
    "ORCHESTRATE_RETRY__MAX_DELAY": "100ms",
    "ORCHESTRATE_RETRY__OVERLOAD_PAUSE": "50ms",
    "ORCHESTRATE_ENGINE__HEARTBEAT": "200ms",
}


def child_env(**extra: str) -> dict[str, str]:
    """`clean_environ` (tests/_support/children.py) with fast retries, plus `extra`."""
    return clean_environ(**{**FAST_ENV, **extra})


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


def orchestrate(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Done:
    proc = subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env=env if env is not None else child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,  # a bound against a hang, not a speed requirement
    )
    return Done(proc.returncode, proc.stdout, proc.stderr)


def tool_results(store: object, task_id: str) -> list[dict[str, object]]:
    """Every `tool_result` block the worker sent back to the model, from the stored requests,
    each with the `tool_use` it answers (`name`, `input`) added."""
    uses: dict[str, dict[str, object]] = {}
    results: dict[str, dict[str, object]] = {}
    for call in store.task_calls(task_id):  # type: ignore[attr-defined]
        for message in (call.request or {}).get("messages", []):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for block in content:
                if block.get("type") == "tool_use":
                    uses[block["id"]] = block
                elif block.get("type") == "tool_result":
                    results[block["tool_use_id"]] = block
    out = []
    for use_id, block in results.items():
        use = uses.get(use_id, {})
        text = block.get("content")
        if isinstance(text, list):
            text = "\n".join(str(b.get("text", "")) for b in text if isinstance(b, dict))
        out.append(
            {
                "name": use.get("name"),
                "input": use.get("input"),
                "is_error": bool(block.get("is_error")),
                "text": str(text),
            }
        )
    return out


class MemoryState:
    """An in-memory StateAccess, for tests that build a toolset directly."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    async def get(self, key: str) -> object:
        return self.data.get(key)

    async def set(self, key: str, value: object) -> None:
        self.data[key] = value

    async def list(self, prefix: str = "") -> dict[str, object]:
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    give_child_tests_time(items, Path(__file__).parent)
