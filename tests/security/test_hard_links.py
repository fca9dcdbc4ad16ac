"""File tools refuse a hard-linked file: its other name may be outside the workspace.

A hard link is the same file under two names; unlike a symlink, nothing in the workspace says
where the other name is, so resolving paths cannot catch it. Before this rule, `ln
/outside/secret.txt ws/notes.txt` (by an earlier unsandboxed command, or a checked-out repo) let
Read show the secret and Write/Edit change it. Now any regular file with a link count above one
is refused with a message that says why; Grep skips such files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.contracts import StateAccess
from orchestrator.tools import Toolset, build_toolset

SECRET = "TOP SECRET original\n"


@pytest.fixture
def linked(tmp_path: Path, workspace: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(SECRET)
    os.link(secret, workspace / "notes.txt")
    return secret


@pytest.fixture
def tools(workspace: Path, state: StateAccess) -> Toolset:
    return build_toolset(
        ["Read", "Write", "Edit", "Grep", "Glob"], workspace=workspace, state=state
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("Read", {"file_path": "notes.txt"}),
        ("Write", {"file_path": "notes.txt", "content": "pwned"}),
        ("Edit", {"file_path": "notes.txt", "old_string": "TOP", "new_string": "pwned"}),
    ],
)
async def test_hard_linked_file_is_refused(
    tools: Toolset, linked: Path, name: str, args: dict[str, str]
) -> None:
    out = await tools.execute(name, args)
    assert out.is_error
    assert "'notes.txt' has 2 hard links" in out.content
    assert "outside the workspace" in out.content
    assert "pwned" not in linked.read_text()
    assert linked.read_text() == SECRET


async def test_grep_skips_hard_linked_files(tools: Toolset, linked: Path, workspace: Path) -> None:
    (workspace / "plain.txt").write_text("TOP of the plain file\n")
    out = await tools.execute("Grep", {"pattern": "TOP", "output_mode": "content"})
    assert "plain.txt" in out.content
    assert "SECRET" not in out.content and "notes.txt" not in out.content


async def test_single_link_files_still_work(tools: Toolset, workspace: Path) -> None:
    out = await tools.execute("Write", {"file_path": "a.txt", "content": "one\n"})
    assert not out.is_error, out.content
    out = await tools.execute(
        "Edit", {"file_path": "a.txt", "old_string": "one", "new_string": "1"}
    )
    assert not out.is_error, out.content
    out = await tools.execute("Read", {"file_path": "a.txt"})
    assert out.content.endswith("1")
    assert (workspace / "a.txt").read_text() == "1\n"


async def test_write_shortens_a_file(tools: Toolset, workspace: Path) -> None:
    """Writes open without O_TRUNC (to check links first), so the truncation is explicit."""
    (workspace / "long.txt").write_text("a much longer first version\n")
    out = await tools.execute("Write", {"file_path": "long.txt", "content": "short\n"})
    assert not out.is_error, out.content
    assert (workspace / "long.txt").read_text() == "short\n"
