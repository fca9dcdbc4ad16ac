"""Claude Code's permission rules in `tools:`: a call outside the rules (or past `max_calls`) is
a tool error the model sees, and the command or file operation never happens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.tools import build_toolset
from orchestrator.tools.permissions import bash_rule_matches, split_command


class _State:
    async def get(self, key: str) -> Any:
        return None

    async def set(self, key: str, value: Any) -> None:
        return None

    async def list(self, prefix: str = "") -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("rule", "command", "allowed"),
    [
        ("git diff:*", "git diff", True),
        ("git diff:*", "git diff --stat HEAD~1", True),
        ("git diff:*", "git difftool", False),
        ("git diff:*", "git status", False),
        ("npm test", "npm test", True),
        ("npm test", "npm test -- --watch", False),
        ("npm run test:*", "npm run test:unit", False),  # `:*` is a word-bounded prefix
        ("npm run test:*", "npm run test unit", True),
        ("ls *", "ls", True),
        ("ls *", "ls -la", True),
        ("ls *", "lsof", False),
        ("ls*", "lsof", True),
        ("git * main", "git checkout main", True),
        ("git * main", "git checkout dev", False),
        ("* --version", "node --version", True),
    ],
)
def test_bash_rules_match_as_claude_code_documents(rule: str, command: str, allowed: bool) -> None:
    assert bash_rule_matches(rule, command) is allowed


def test_compound_commands_split_and_substitution_is_refused() -> None:
    assert split_command("git diff && rm -rf x | tee y; echo 'a && b'") == [
        "git diff",
        "rm -rf x",
        "tee y",
        "echo 'a && b'",
    ]
    assert split_command("timeout 30 nice -n 5 npm test") == ["npm test"]
    assert split_command("echo $(cat secret)") is None
    assert split_command("echo `cat secret`") is None


async def test_a_bash_call_outside_the_rules_never_runs(tmp_path: Path) -> None:
    toolset = build_toolset(["Bash(echo hello:*)", "Bash(ls)"], workspace=tmp_path, state=_State())
    ok = await toolset.execute("Bash", {"command": "echo hello world"})
    assert not ok.is_error and "hello world" in ok.content
    for command in ("touch made", "echo hello && touch made", "echo hello $(touch made)"):
        refused = await toolset.execute("Bash", {"command": command})
        assert refused.is_error and "did not run" in refused.content
        assert "Bash(echo hello:*)" in refused.content or "substitution" in refused.content
    assert not (tmp_path / "made").exists()


async def test_max_calls_caps_a_tool(tmp_path: Path) -> None:
    toolset = build_toolset(
        [{"Bash": {"allow": ["echo:*"], "max_calls": 2}}], workspace=tmp_path, state=_State()
    )
    for _ in range(2):
        assert not (await toolset.execute("Bash", {"command": "echo x"})).is_error
    third = await toolset.execute("Bash", {"command": "echo x > third"})
    assert (
        third.is_error and "max_calls" in third.content and "allows 2 Bash calls" in third.content
    )
    assert not (tmp_path / "third").exists()
    # a refused call does not use up the cap
    capped = build_toolset(
        [{"Bash": {"allow": ["echo:*"], "max_calls": 1}}], workspace=tmp_path, state=_State()
    )
    assert (await capped.execute("Bash", {"command": "rm x"})).is_error
    assert not (await capped.execute("Bash", {"command": "echo ok"})).is_error


async def test_path_rules_limit_file_tools(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / ".env").write_text("KEY=1\n")
    toolset = build_toolset(
        ["Read(src/**)", "Edit(docs/**)", "Write(docs/**)", "Grep(src/**)"],
        workspace=tmp_path,
        state=_State(),
    )
    assert not (await toolset.execute("Read", {"file_path": "src/pkg/a.py"})).is_error
    absolute = str(tmp_path / "src" / "pkg" / "a.py")
    assert not (await toolset.execute("Read", {"file_path": absolute})).is_error
    denied = await toolset.execute("Read", {"file_path": ".env"})
    assert denied.is_error and "outside the paths this step grants (Read(src/**))" in denied.content
    wrote = await toolset.execute("Write", {"file_path": "docs/x.md", "content": "hi"})
    assert not wrote.is_error
    refused = await toolset.execute("Write", {"file_path": "src/x.py", "content": "bad"})
    assert refused.is_error and not (tmp_path / "src" / "x.py").exists()
    assert not (await toolset.execute("Grep", {"pattern": "A", "path": "src"})).is_error
    assert (await toolset.execute("Grep", {"pattern": "KEY"})).is_error  # the whole workspace


async def test_gitignore_style_patterns_match_at_any_depth(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "notes.md").write_text("n\n")
    (tmp_path / "a" / "b" / "code.py").write_text("c\n")
    toolset = build_toolset(["Read(*.md)"], workspace=tmp_path, state=_State())
    assert not (await toolset.execute("Read", {"file_path": "a/b/notes.md"})).is_error
    assert (await toolset.execute("Read", {"file_path": "a/b/code.py"})).is_error


async def test_a_bare_grant_is_not_narrowed(tmp_path: Path) -> None:
    toolset = build_toolset(["Bash(ls)", "Bash"], workspace=tmp_path, state=_State())
    assert not (await toolset.execute("Bash", {"command": "echo free"})).is_error
