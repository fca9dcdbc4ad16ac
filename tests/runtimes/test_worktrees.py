"""Worktrees and branch merges on a real git repository (engine/worktrees.py).

Each isolated task checks out its own branch from the run's starting commit; what it wrote is
committed there; merging reports a conflict without losing either side.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.engine.worktrees import Worktrees, task_label
from orchestrator.errors import UsageError


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "hello\n"}).items():
        (path / name).write_text(text)
    sh(path, "git", "add", "-A")
    sh(path, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return path


def test_task_labels_are_branch_safe() -> None:
    assert task_label("fix[2]:ab12cd34ef") == "fix-2"
    assert task_label("polish@2.draft") == "polish-2-draft"
    assert task_label("sub.step") == "sub-step"


async def test_each_task_commits_on_its_own_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = Worktrees(workspace=repo, run_id="RUN1", root=tmp_path / "trees")
    a = await trees.checkout("fix[0]:aa")
    b = await trees.checkout("fix[1]:bb")
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()
    (a.path / "a.txt").write_text("A\n")
    (b.path / "README.md").write_text("hello\nworld\n")
    out_a = await trees.finish(a, "task a")
    out_b = await trees.finish(b, "task b")
    assert out_a["branch"] == "orchestrate/RUN1/fix-0"
    assert len(out_a["commits"]) == 1 and len(out_b["commits"]) == 1
    assert out_a["diffstat"]["files"] == 1 and out_a["diffstat"]["insertions"] == 1
    assert sh(repo, "git", "show", "orchestrate/RUN1/fix-0:a.txt") == "A"
    # the workspace itself is untouched, and the worktrees are gone; the branches stay
    assert not (repo / "a.txt").exists()
    assert not a.path.exists() and not b.path.exists()
    assert "orchestrate/RUN1/fix-1" in sh(repo, "git", "branch", "--list", "orchestrate/*")


async def test_a_task_without_changes_has_no_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")
    task = await trees.checkout("look")
    out = await trees.finish(task, "nothing")
    assert out["commits"] == [] and out["diffstat"]["files"] == 0


async def test_a_new_attempt_starts_from_the_base_again(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")
    first = await trees.checkout("fix[0]:aa")
    (first.path / "half.txt").write_text("half done\n")  # the attempt dies here
    again = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")  # a resumed run
    second = await again.checkout("fix[0]:aa")
    assert second.path == first.path and not (second.path / "half.txt").exists()
    assert await again.base() == sh(repo, "git", "rev-parse", "main")


async def test_the_base_survives_a_moved_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")
    start = await trees.base()
    (repo / "later.txt").write_text("later\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "later")
    resumed = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")
    assert await resumed.base() == start


async def test_merge_reports_a_conflict_and_keeps_the_rest(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"shared.txt": "original\n"})
    trees = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")
    branches = []
    for index, (name, text) in enumerate(
        [
            ("one.txt", "1\n"),
            ("shared.txt", "mine\n"),
            ("shared.txt", "theirs\n"),
            ("two.txt", "2\n"),
        ]
    ):
        task = await trees.checkout(f"fix[{index}]:00")
        (task.path / name).write_text(text)
        branches.append((await trees.finish(task, f"task {index}"))["branch"])
    out = await trees.merge(branches, None)
    assert out["into"] == "orchestrate/R/merged"
    assert out["merged"] == [branches[0], branches[1], branches[3]]
    assert out["conflicts"] == [{"branch": branches[2], "files": ["shared.txt"]}]
    merged = "orchestrate/R/merged"
    assert sh(repo, "git", "show", f"{merged}:shared.txt") == "mine"
    assert sh(repo, "git", "show", f"{merged}:two.txt") == "2"
    # the conflicting branch is untouched: its work is still there to merge by hand
    assert sh(repo, "git", "show", f"{branches[2]}:shared.txt") == "theirs"
    assert out["commit"] == sh(repo, "git", "rev-parse", merged)
    again = await trees.merge(branches, None)  # a resume merging again changes nothing
    assert again["commit"] == out["commit"]
    await trees.close()
    assert not (tmp_path / "trees").exists()


async def test_merge_into_the_checked_out_branch_needs_it_clean(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = Worktrees(workspace=repo, run_id="R", root=tmp_path / "trees")
    task = await trees.checkout("fix")
    (task.path / "new.txt").write_text("new\n")
    branch = (await trees.finish(task, "new"))["branch"]
    (repo / "README.md").write_text("dirty\n")
    with pytest.raises(UsageError, match="uncommitted changes"):
        await trees.merge([branch], "main")
    sh(repo, "git", "checkout", "--", "README.md")
    out = await trees.merge([branch], "main")
    assert out["merged"] == [branch] and (repo / "new.txt").read_text() == "new\n"


async def test_a_workspace_that_is_not_a_repository_says_how_to_fix_it(tmp_path: Path) -> None:
    trees = Worktrees(workspace=tmp_path, run_id="R", root=tmp_path / "trees")
    with pytest.raises(UsageError, match="git init"):
        await trees.checkout("fix")
