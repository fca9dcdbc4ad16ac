from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.contracts import CLIENT_TOOLS, StateAccess
from orchestrator.tools import Toolset, build_toolset

# --- Read ---------------------------------------------------------------------------------------


async def test_read_numbers_lines_like_cat_n(toolset: Toolset, workspace: Path) -> None:
    (workspace / "a.txt").write_text("alpha\nbeta\n")
    out = await toolset.execute("Read", {"file_path": "a.txt"})
    assert not out.is_error
    assert out.content == "     1\talpha\n     2\tbeta"


async def test_read_accepts_absolute_path_inside_workspace(
    toolset: Toolset, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("alpha\n")
    out = await toolset.execute("Read", {"file_path": str(workspace / "a.txt")})
    assert out.content == "     1\talpha"


async def test_read_offset_and_limit(toolset: Toolset, workspace: Path) -> None:
    (workspace / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = await toolset.execute("Read", {"file_path": "n.txt", "offset": 3, "limit": 2})
    assert out.content.startswith("     3\tline 3\n     4\tline 4")
    assert "showing lines 3-4 of 10" in out.content
    assert "offset=5" in out.content


async def test_read_offset_past_end_is_an_error(toolset: Toolset, workspace: Path) -> None:
    (workspace / "n.txt").write_text("one\ntwo\n")
    out = await toolset.execute("Read", {"file_path": "n.txt", "offset": 5})
    assert out.is_error
    assert "has 2 lines" in out.content


async def test_read_empty_file_is_an_error(toolset: Toolset, workspace: Path) -> None:
    (workspace / "empty.txt").write_text("")
    out = await toolset.execute("Read", {"file_path": "empty.txt"})
    assert out.is_error
    assert "is empty" in out.content


async def test_read_missing_file_is_an_error(toolset: Toolset) -> None:
    out = await toolset.execute("Read", {"file_path": "nope.txt"})
    assert out.is_error
    assert "not found" in out.content
    assert "nope.txt" in out.content


async def test_read_directory_and_binary_are_errors(toolset: Toolset, workspace: Path) -> None:
    (workspace / "d").mkdir()
    (workspace / "b.bin").write_bytes(b"\x00\x01\x02")
    out = await toolset.execute("Read", {"file_path": "d"})
    assert out.is_error and "directory" in out.content
    out = await toolset.execute("Read", {"file_path": "b.bin"})
    assert out.is_error and "binary" in out.content


async def test_read_truncates_long_lines(toolset: Toolset, workspace: Path) -> None:
    (workspace / "wide.txt").write_text("x" * 5000 + "\nshort\n")
    out = await toolset.execute("Read", {"file_path": "wide.txt"})
    first, second = out.content.splitlines()
    assert first.endswith("[line truncated]") and len(first) < 2100
    assert second == "     2\tshort"


async def test_read_truncates_long_output(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(["Read"], workspace=workspace, state=state, max_output_chars=500)
    (workspace / "long.txt").write_text("".join(f"row {i}\n" for i in range(1000)))
    out = await toolset.execute("Read", {"file_path": "long.txt"})
    assert not out.is_error
    assert len(out.content) < 700
    assert "of 1000" in out.content


# --- Write --------------------------------------------------------------------------------------


async def test_write_creates_parent_directories(toolset: Toolset, workspace: Path) -> None:
    out = await toolset.execute("Write", {"file_path": "deep/er/f.txt", "content": "hi\n"})
    assert not out.is_error
    assert (workspace / "deep/er/f.txt").read_text() == "hi\n"
    assert "deep/er/f.txt" in out.content


async def test_write_replaces_existing_file(toolset: Toolset, workspace: Path) -> None:
    (workspace / "f.txt").write_text("old")
    out = await toolset.execute("Write", {"file_path": "f.txt", "content": "new"})
    assert not out.is_error and "Updated" in out.content
    assert (workspace / "f.txt").read_text() == "new"


async def test_write_onto_a_directory_is_an_error(toolset: Toolset, workspace: Path) -> None:
    (workspace / "d").mkdir()
    out = await toolset.execute("Write", {"file_path": "d", "content": "x"})
    assert out.is_error and "directory" in out.content


async def test_write_under_a_file_is_an_error(toolset: Toolset, workspace: Path) -> None:
    (workspace / "f").write_text("x")
    out = await toolset.execute("Write", {"file_path": "f/g.txt", "content": "x"})
    assert out.is_error


# --- Edit ---------------------------------------------------------------------------------------


async def test_edit_replaces_a_unique_string(toolset: Toolset, workspace: Path) -> None:
    (workspace / "c.py").write_text("x = 1\ny = 2\n")
    out = await toolset.execute(
        "Edit", {"file_path": "c.py", "old_string": "y = 2", "new_string": "y = 3"}
    )
    assert not out.is_error
    assert (workspace / "c.py").read_text() == "x = 1\ny = 3\n"


async def test_edit_not_found_is_an_error(toolset: Toolset, workspace: Path) -> None:
    (workspace / "c.py").write_text("x = 1\n")
    out = await toolset.execute("Edit", {"file_path": "c.py", "old_string": "z", "new_string": "w"})
    assert out.is_error and "not found" in out.content
    assert (workspace / "c.py").read_text() == "x = 1\n"


async def test_edit_ambiguous_match_says_how_many(toolset: Toolset, workspace: Path) -> None:
    (workspace / "c.txt").write_text("a a a")
    out = await toolset.execute(
        "Edit", {"file_path": "c.txt", "old_string": "a", "new_string": "b"}
    )
    assert out.is_error
    assert "3 times" in out.content and "replace_all" in out.content
    assert (workspace / "c.txt").read_text() == "a a a"


async def test_edit_replace_all(toolset: Toolset, workspace: Path) -> None:
    (workspace / "c.txt").write_text("a a a")
    out = await toolset.execute(
        "Edit",
        {"file_path": "c.txt", "old_string": "a", "new_string": "b", "replace_all": True},
    )
    assert not out.is_error and "3 replacements" in out.content
    assert (workspace / "c.txt").read_text() == "b b b"


async def test_edit_same_strings_is_an_error(toolset: Toolset, workspace: Path) -> None:
    (workspace / "c.txt").write_text("a")
    out = await toolset.execute(
        "Edit", {"file_path": "c.txt", "old_string": "a", "new_string": "a"}
    )
    assert out.is_error and "same" in out.content


async def test_edit_missing_file_is_an_error(toolset: Toolset) -> None:
    out = await toolset.execute(
        "Edit", {"file_path": "no.txt", "old_string": "a", "new_string": "b"}
    )
    assert out.is_error and "not found" in out.content


async def test_edit_keeps_crlf_line_endings(toolset: Toolset, workspace: Path) -> None:
    (workspace / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    await toolset.execute("Edit", {"file_path": "w.txt", "old_string": "two", "new_string": "2"})
    assert (workspace / "w.txt").read_bytes() == b"one\r\n2\r\n"


async def test_edit_with_empty_old_string_creates_a_file(toolset: Toolset, workspace: Path) -> None:
    out = await toolset.execute(
        "Edit", {"file_path": "new.txt", "old_string": "", "new_string": "hello"}
    )
    assert not out.is_error
    assert (workspace / "new.txt").read_text() == "hello"
    out = await toolset.execute(
        "Edit", {"file_path": "new.txt", "old_string": "", "new_string": "x"}
    )
    assert out.is_error


# --- Glob ---------------------------------------------------------------------------------------


def _touch(path: Path, mtime: float, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


async def test_glob_newest_first_relative_to_workspace(toolset: Toolset, workspace: Path) -> None:
    _touch(workspace / "old.py", 1_000_000)
    _touch(workspace / "pkg/new.py", 3_000_000)
    _touch(workspace / "pkg/mid.py", 2_000_000)
    _touch(workspace / "notes.md", 4_000_000)
    out = await toolset.execute("Glob", {"pattern": "**/*.py"})
    assert out.content.splitlines() == ["pkg/new.py", "pkg/mid.py", "old.py"]


async def test_glob_with_path_braces_and_no_match(toolset: Toolset, workspace: Path) -> None:
    _touch(workspace / "src/a.ts", 1)
    _touch(workspace / "src/b/c.tsx", 2)
    _touch(workspace / "other/d.ts", 3)
    out = await toolset.execute("Glob", {"pattern": "**/*.{ts,tsx}", "path": "src"})
    assert sorted(out.content.splitlines()) == ["src/a.ts", "src/b/c.tsx"]
    out = await toolset.execute("Glob", {"pattern": "*.rs"})
    assert not out.is_error and out.content == "No files found"


async def test_glob_skips_git_and_caps_results(toolset: Toolset, workspace: Path) -> None:
    _touch(workspace / ".git/config.py", 1)
    for i in range(105):
        _touch(workspace / f"f{i:03}.py", 10 + i)
    out = await toolset.execute("Glob", {"pattern": "**/*.py"})
    lines = out.content.splitlines()
    assert lines[0] == "f104.py"
    assert ".git/config.py" not in out.content
    assert "100 most recently modified of 105" in out.content


async def test_glob_accepts_absolute_pattern_inside_workspace(
    toolset: Toolset, workspace: Path
) -> None:
    _touch(workspace / "a.py", 1)
    out = await toolset.execute("Glob", {"pattern": f"{os.path.realpath(workspace)}/*.py"})
    assert out.content == "a.py"


async def test_glob_literal_pattern_and_file_path(toolset: Toolset, workspace: Path) -> None:
    _touch(workspace / "docs/README.md", 1)
    out = await toolset.execute("Glob", {"pattern": "docs/README.md"})
    assert out.content == "docs/README.md"
    out = await toolset.execute("Glob", {"pattern": "*.md", "path": "docs/README.md"})
    assert out.is_error and "not a directory" in out.content


# --- Grep ---------------------------------------------------------------------------------------


@pytest.fixture
def corpus(workspace: Path) -> Path:
    _touch(workspace / "a.py", 2, "import os\ndef Foo():\n    return 1\n")
    _touch(workspace / "b/c.py", 3, "foo = 2\nbar = 3\nfoo()\n")
    _touch(workspace / "d.md", 1, "Foo is documented here\n")
    _touch(workspace / ".git/HEAD", 5, "foo\n")
    (workspace / "blob.bin").write_bytes(b"foo\x00\x01")
    return workspace


async def test_grep_files_with_matches_default(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute("Grep", {"pattern": "foo"})
    assert out.content.splitlines() == ["Found 1 file", "b/c.py"]


async def test_grep_case_insensitive_newest_first(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute("Grep", {"pattern": "foo", "-i": True})
    assert out.content.splitlines() == ["Found 3 files", "b/c.py", "a.py", "d.md"]


async def test_grep_content_with_line_numbers(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute("Grep", {"pattern": "^foo", "output_mode": "content"})
    assert out.content.splitlines() == ["b/c.py:1:foo = 2", "b/c.py:3:foo()"]
    out = await toolset.execute("Grep", {"pattern": "^foo", "output_mode": "content", "-n": False})
    assert out.content.splitlines() == ["b/c.py:foo = 2", "b/c.py:foo()"]


async def test_grep_content_with_context(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute(
        "Grep", {"pattern": "bar", "output_mode": "content", "-A": 1, "path": "b"}
    )
    assert out.content.splitlines() == ["b/c.py:2:bar = 3", "b/c.py-3-foo()"]


async def test_grep_count_glob_type_and_head_limit(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute("Grep", {"pattern": "foo", "output_mode": "count", "-i": True})
    assert sorted(out.content.splitlines()) == ["a.py:1", "b/c.py:2", "d.md:1"]
    out = await toolset.execute("Grep", {"pattern": "foo", "-i": True, "glob": "*.md"})
    assert out.content.splitlines()[1:] == ["d.md"]
    out = await toolset.execute("Grep", {"pattern": "foo", "-i": True, "type": "py"})
    assert out.content.splitlines()[1:] == ["b/c.py", "a.py"]
    out = await toolset.execute("Grep", {"pattern": "foo", "-i": True, "head_limit": 1})
    assert "b/c.py" in out.content and "a.py\n" not in out.content
    assert "head_limit" in out.content


async def test_grep_multiline(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute(
        "Grep",
        {"pattern": r"def Foo\(\):.*return", "multiline": True, "output_mode": "content"},
    )
    assert out.content.splitlines() == ["a.py:2:def Foo():", "a.py:3:    return 1"]


async def test_grep_errors(toolset: Toolset, corpus: Path) -> None:
    out = await toolset.execute("Grep", {"pattern": "("})
    assert out.is_error and "invalid regular expression" in out.content
    out = await toolset.execute("Grep", {"pattern": "x", "type": "cobol"})
    assert out.is_error and "unknown file type" in out.content
    out = await toolset.execute("Grep", {"pattern": "x", "path": "missing"})
    assert out.is_error and "does not exist" in out.content
    out = await toolset.execute("Grep", {"pattern": "zzz_no_match"})
    assert not out.is_error and out.content == "No files found"


# --- workspace confinement ----------------------------------------------------------------------


@pytest.fixture
def escapes(workspace: Path, outside: Path) -> dict[str, str]:
    """Ways to name the outside secret (or its directory) from inside the workspace."""
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    (workspace / "linkdir").symlink_to(outside, target_is_directory=True)
    return {
        "dotdot": "../outside/secret.txt",
        "absolute": str(outside / "secret.txt"),
        "symlink_file": "link.txt",
        "symlinked_dir": "linkdir/secret.txt",
        "nested_dotdot": "sub/../../outside/secret.txt",
    }


FILE_ARGS = {
    "Read": {},
    "Write": {"content": "pwned"},
    "Edit": {"old_string": "TOP", "new_string": "pwned"},
}


@pytest.mark.parametrize("tool", sorted(FILE_ARGS))
@pytest.mark.parametrize(
    "kind", ["dotdot", "absolute", "symlink_file", "symlinked_dir", "nested_dotdot"]
)
async def test_file_tools_refuse_paths_outside_the_workspace(
    toolset: Toolset, escapes: dict[str, str], outside: Path, tool: str, kind: str
) -> None:
    path = escapes[kind]
    out = await toolset.execute(tool, {"file_path": path, **FILE_ARGS[tool]})
    assert out.is_error
    assert f"path '{path}' is outside the workspace" in out.content
    assert "TOP SECRET" not in out.content
    assert (outside / "secret.txt").read_text() == "TOP SECRET\n"


async def test_write_through_symlinked_dir_creates_nothing_outside(
    toolset: Toolset, escapes: dict[str, str], outside: Path
) -> None:
    out = await toolset.execute("Write", {"file_path": "linkdir/new/f.txt", "content": "x"})
    assert out.is_error and "outside the workspace" in out.content
    assert not (outside / "new").exists()


@pytest.mark.parametrize("tool", ["Glob", "Grep"])
@pytest.mark.parametrize("path", ["..", "../outside", "ABSOLUTE", "linkdir", "link.txt"])
async def test_search_tools_refuse_paths_outside_the_workspace(
    toolset: Toolset, escapes: dict[str, str], outside: Path, tool: str, path: str
) -> None:
    if path == "ABSOLUTE":
        path = str(outside)
    args = {"pattern": "**/*"} if tool == "Glob" else {"pattern": "SECRET"}
    out = await toolset.execute(tool, {**args, "path": path})
    assert out.is_error
    assert f"path '{path}' is outside the workspace" in out.content
    assert "secret" not in out.content.replace(f"'{path}'", "")


@pytest.mark.parametrize(
    "pattern", ["../outside/*", "../**/*.txt", "/etc/*", "ABSOLUTE", "linkdir/*", "*/../../x"]
)
async def test_glob_patterns_cannot_climb_out(
    toolset: Toolset, escapes: dict[str, str], outside: Path, pattern: str
) -> None:
    if pattern == "ABSOLUTE":
        pattern = f"{outside}/*"
    out = await toolset.execute("Glob", {"pattern": pattern})
    assert out.is_error
    assert f"path '{pattern}' is outside the workspace" in out.content


async def test_search_without_path_does_not_follow_links_out(
    toolset: Toolset, escapes: dict[str, str]
) -> None:
    out = await toolset.execute("Grep", {"pattern": "SECRET"})
    assert out.content == "No files found"
    out = await toolset.execute("Glob", {"pattern": "**/*"})
    assert "secret" not in out.content and "link" not in out.content


async def test_symlink_inside_workspace_is_fine(toolset: Toolset, workspace: Path) -> None:
    (workspace / "real.txt").write_text("ok\n")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    out = await toolset.execute("Read", {"file_path": "alias.txt"})
    assert out.content == "     1\tok"


# --- argument validation ------------------------------------------------------------------------


async def test_missing_required_argument_is_named(toolset: Toolset) -> None:
    out = await toolset.execute("Read", {})
    assert out.is_error and "missing required field 'file_path'" in out.content


async def test_wrong_type_is_named(toolset: Toolset) -> None:
    out = await toolset.execute("Read", {"file_path": "a", "offset": "ten"})
    assert out.is_error and "field 'offset'" in out.content


async def test_unexpected_argument_is_named(toolset: Toolset) -> None:
    out = await toolset.execute("Write", {"file_path": "a", "content": "", "mode": "x"})
    assert out.is_error and "unexpected field 'mode'" in out.content


async def test_bad_enum_is_named(toolset: Toolset) -> None:
    out = await toolset.execute("Grep", {"pattern": "a", "output_mode": "lines"})
    assert out.is_error and "field 'output_mode'" in out.content


async def test_every_client_tool_is_built(workspace: Path, state: StateAccess) -> None:
    toolset = build_toolset(list(CLIENT_TOOLS), workspace=workspace, state=state)
    assert [t["name"] for t in toolset.api_tools()] == list(CLIENT_TOOLS)
