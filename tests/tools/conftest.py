from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.contracts import CLIENT_TOOLS
from orchestrator.tools import Toolset, build_toolset


class FakeState:
    """An in-memory StateAccess."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self.data.get(key)

    async def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def list(self, prefix: str = "") -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace holding a secret no tool may reach."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text("TOP SECRET\n")
    return out


@pytest.fixture
def state() -> FakeState:
    return FakeState()


@pytest.fixture
def toolset(workspace: Path, state: FakeState) -> Toolset:
    return build_toolset(list(CLIENT_TOOLS), workspace=workspace, state=state)
