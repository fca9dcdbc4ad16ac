"""Git worktrees for `isolation: worktree`, and merging their branches for `merge: branches`.

The repository is the run's workspace (the workflow's `workspace:`, which must be a git checkout
with at least one commit). Each isolated task gets its own worktree, checked out on the branch
`orchestrate/<run id>/<task label>` from the run's starting commit; when the task ends its
changes are committed there and the worktree is removed. Branches stay: they are the result.

Invariants:
- The run's starting commit is kept as the ref `refs/orchestrate/<run id>/base` the first time
  it is needed, so a resumed run branches and merges from the same commit whatever HEAD is now.
- An attempt always starts from that commit: a worktree or branch left by an earlier attempt
  (a retry, or a process killed mid-task) is reset, never built upon.
- Worktrees live outside the repository's working tree (under the run's folder), so neither
  `git status` there nor the workers' file tools see each other's checkouts.
- Adding and removing worktrees is serialised per run (git locks shared files for both);
  commits inside worktrees run concurrently, each in its own index.
- Nothing is lost in a merge: a conflicting branch is aborted, listed with its files, and left
  as it was; the branches merged before and after it stay merged.
- git runs without the API key in its environment (`environment.without_secrets`) and never
  prompts (`GIT_TERMINAL_PROMPT=0`); commits skip hooks, since a hook that fails would lose what
  the worker did.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.environment import without_secrets
from orchestrator.errors import OrchestrateError, UsageError

BRANCH_PREFIX = "orchestrate"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "orchestrate",
    "GIT_AUTHOR_EMAIL": "orchestrate@localhost",
    "GIT_COMMITTER_NAME": "orchestrate",
    "GIT_COMMITTER_EMAIL": "orchestrate@localhost",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class GitError(OrchestrateError):
    """A git command failed; the message holds the command and git's own words."""


def not_a_repository(path: Path) -> UsageError:
    return UsageError(
        f"isolation: worktree needs the run's workspace to be a git repository with a commit, "
        f"and {path} is not one: set the workflow's `workspace:` to a git checkout, or run "
        f"`git init && git add -A && git commit -m start` in {path}"
    )


def task_label(key: str) -> str:
    """A branch-safe label from a task key: `fix[2]:ab12` -> `fix-2`, `polish@2.draft` ->
    `polish-2-draft` (the item hash is dropped: the index already tells items apart)."""
    parts = [re.sub(r":[0-9a-f]+$", "", part) for part in key.split(".")]
    label = "-".join(parts).replace("[", "-").replace("]", "").replace("@", "-")
    label = _UNSAFE.sub("-", label).strip("-.")
    return re.sub(r"-{2,}", "-", label) or "task"


def branch_name(run_id: str, label: str) -> str:
    return f"{BRANCH_PREFIX}/{run_id}/{label}"


async def git(
    *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run git; with `check`, a non-zero exit raises `GitError` carrying git's stderr."""
    full_env = without_secrets()
    full_env["GIT_TERMINAL_PROMPT"] = "0"
    full_env.update(env or {})
    done = await anyio.run_process(
        ["git", *args], cwd=cwd, env=full_env, check=False, stdin=subprocess.DEVNULL
    )
    if check and done.returncode != 0:
        words = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-800:]
        raise GitError(f"git {' '.join(args)} (in {cwd}) failed: {words}")
    return done


def _text(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode("utf-8", "replace").strip()


async def repository_root(path: Path) -> Path:
    """The top of the git checkout that holds `path`; `UsageError` (how to fix it) otherwise."""
    if shutil.which("git") is None:
        raise UsageError("isolation: worktree needs git: install it (e.g. apt-get install git)")
    if not await anyio.Path(path).is_dir():
        raise not_a_repository(path)
    top = await git("rev-parse", "--show-toplevel", cwd=path, check=False)
    head = await git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=path, check=False)
    if top.returncode != 0 or head.returncode != 0:
        raise not_a_repository(path)
    return Path(_text(top))


@dataclass(slots=True)
class TaskBranch:
    """One isolated task's checkout: where it works and the branch it commits to."""

    label: str
    branch: str
    path: Path


@dataclass
class Worktrees:
    """The worktrees and branches of one run in one repository (the run's workspace)."""

    workspace: Path
    run_id: str
    root: Path  # where this run's worktrees are checked out: <runs_dir>/<run id>/worktrees
    _repo: Path | None = None
    _base: str | None = None
    _identity: dict[str, str] | None = None
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    _open: dict[Path, str] = field(default_factory=dict)  # worktree path -> branch

    async def repo(self) -> Path:
        if self._repo is None:
            self._repo = await repository_root(self.workspace)
        return self._repo

    @property
    def base_ref(self) -> str:
        return f"refs/{BRANCH_PREFIX}/{self.run_id}/base"

    async def base(self) -> str:
        """The run's starting commit: recorded on first use, read back on resume."""
        if self._base is None:
            repo = await self.repo()
            found = await git(
                "rev-parse", "--verify", "--quiet", self.base_ref, cwd=repo, check=False
            )
            if found.returncode == 0:
                self._base = _text(found)
            else:
                self._base = _text(await git("rev-parse", "HEAD^{commit}", cwd=repo))
                await git("update-ref", self.base_ref, self._base, cwd=repo)
        return self._base

    async def _env(self) -> dict[str, str]:
        """A commit identity for repositories that have none configured."""
        if self._identity is None:
            repo = await self.repo()
            name = await git("config", "user.name", cwd=repo, check=False)
            email = await git("config", "user.email", cwd=repo, check=False)
            configured = name.returncode == 0 and email.returncode == 0
            self._identity = {} if configured else dict(_IDENTITY)
        return self._identity

    async def checkout(self, key: str) -> TaskBranch:
        """A fresh worktree for the task with `key`, on its branch reset to the base commit."""
        label = task_label(key)
        branch = branch_name(self.run_id, label)
        path = self.root / label
        repo = await self.repo()
        base = await self.base()
        async with self._lock:
            await self._drop(repo, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            await git("worktree", "add", "--quiet", "-B", branch, str(path), base, cwd=repo)
            self._open[path] = branch
        return TaskBranch(label=label, branch=branch, path=path)

    async def _drop(self, repo: Path, path: Path) -> None:
        """Remove a worktree left at `path` (by an earlier attempt or a killed process)."""
        if await anyio.Path(path).exists():
            await git("worktree", "remove", "--force", str(path), cwd=repo, check=False)
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(path, ignore_errors=True))
        await git("worktree", "prune", cwd=repo, check=False)
        self._open.pop(path, None)

    async def finish(self, task: TaskBranch, message: str) -> dict[str, Any]:
        """Commit what the task changed on its branch, remove its worktree, and describe the
        branch: `{branch, base, commits, diffstat}` (commits oldest first, as full shas)."""
        repo = await self.repo()
        base = await self.base()
        env = await self._env()
        if task.path.exists():
            await git("add", "--all", cwd=task.path)
            staged = await git("diff", "--cached", "--quiet", cwd=task.path, check=False)
            if staged.returncode != 0:
                await git("commit", "--quiet", "--no-verify", "-m", message, cwd=task.path, env=env)
        described = await self.describe(task.branch)
        async with self._lock:
            await self._drop(repo, task.path)
        return described | {"base": base}

    async def describe(self, branch: str) -> dict[str, Any]:
        repo = await self.repo()
        base = await self.base()
        span = f"{base}..{branch}"
        commits = _text(await git("rev-list", "--reverse", span, cwd=repo)).split()
        stat = _text(await git("diff", "--stat", base, branch, cwd=repo))
        numstat = _text(await git("diff", "--numstat", base, branch, cwd=repo))
        files, insertions, deletions = 0, 0, 0
        for line in numstat.splitlines():
            added, removed, _ = line.split("\t", 2)
            files += 1
            insertions += int(added) if added.isdigit() else 0
            deletions += int(removed) if removed.isdigit() else 0
        return {
            "branch": branch,
            "commits": commits,
            "diffstat": {
                "files": files,
                "insertions": insertions,
                "deletions": deletions,
                "text": stat,
            },
        }

    async def close(self) -> None:
        """Remove every worktree of this run still checked out (branches stay)."""
        if self._repo is None:
            return
        async with self._lock:
            for path in list(self._open):
                await self._drop(self._repo, path)
            if self.root.exists():
                for leftover in self.root.iterdir():
                    await self._drop(self._repo, leftover)
                shutil.rmtree(self.root, ignore_errors=True)

    # --- merge: branches ------------------------------------------------------------------

    async def merge(self, branches: list[str], into: str | None) -> dict[str, Any]:
        """Merge `branches` one by one into `into` (default `orchestrate/<run>/merged`, made
        from the base commit if missing). Returns `{into, merged, conflicts, commit}`; each
        conflict is `{branch, files}` and leaves that branch unmerged."""
        repo = await self.repo()
        base = await self.base()
        env = await self._env()
        target = into or branch_name(self.run_id, "merged")
        exists = await git(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{target}", cwd=repo, check=False
        )
        where = await self._checked_out(repo, target)
        temporary = where is None
        if temporary:
            where = self.root / f"_merge-{task_label(target)}"
            async with self._lock:
                await self._drop(repo, where)
                where.parent.mkdir(parents=True, exist_ok=True)
                if exists.returncode == 0:
                    await git("worktree", "add", "--quiet", str(where), target, cwd=repo)
                else:
                    await git(
                        "worktree", "add", "--quiet", "-b", target, str(where), base, cwd=repo
                    )
                self._open[where] = target
        else:
            assert where is not None
            dirty = _text(await git("status", "--porcelain", "--untracked-files=no", cwd=where))
            if dirty:
                raise UsageError(
                    f"merge: branches into '{target}': it is checked out at {where} with "
                    "uncommitted changes; commit or stash them, or merge into another branch"
                )
        assert where is not None
        merged: list[str] = []
        conflicts: list[dict[str, Any]] = []
        try:
            for branch in branches:
                done = await git(
                    "merge",
                    "--no-ff",
                    "--no-edit",
                    "-m",
                    f"orchestrate: merge {branch}",
                    branch,
                    cwd=where,
                    check=False,
                    env=env,
                )
                if done.returncode == 0:
                    merged.append(branch)
                    continue
                files = _text(
                    await git("diff", "--name-only", "--diff-filter=U", cwd=where, check=False)
                ).splitlines()
                await git("merge", "--abort", cwd=where, check=False)
                if not files:  # not a conflict: git could not merge at all
                    words = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
                    raise GitError(f"git merge {branch} into {target} failed: {words[-800:]}")
                conflicts.append({"branch": branch, "files": sorted(files)})
            commit = _text(await git("rev-parse", "HEAD", cwd=where))
        finally:
            if temporary:
                async with self._lock:
                    await self._drop(repo, where)
        return {"into": target, "merged": merged, "conflicts": conflicts, "commit": commit}

    async def _checked_out(self, repo: Path, branch: str) -> Path | None:
        """The worktree where `branch` is checked out now, if any (git refuses a second)."""
        listing = _text(await git("worktree", "list", "--porcelain", cwd=repo))
        path: Path | None = None
        for line in listing.splitlines():
            if line.startswith("worktree "):
                path = Path(line.removeprefix("worktree "))
            elif line == f"branch refs/heads/{branch}" and path is not None and path.exists():
                return path
        return None
