"""Workspace confinement: every path a file tool touches must resolve inside the run's workspace.

A path is resolved with `os.path.realpath` (symlinks followed, including those in parent
directories and dangling ones) before it is checked, so `..`, absolute paths and links that lead
out are all refused the same way. The check is on resolution, not on the spelling: an absolute path
inside the workspace is fine. Blocking calls: run these methods off the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ToolError


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    def contains(self, resolved: Path) -> bool:
        return resolved == self.root or self.root in resolved.parents

    def resolve(self, path_arg: str) -> Path:
        """The real path of `path_arg` (relative to the workspace), or `ToolError` if it escapes."""
        if not path_arg:
            raise ToolError("path is empty")
        if "\0" in path_arg:
            raise ToolError(f"path {path_arg!r} contains a NUL byte")
        candidate = Path(os.path.expanduser(path_arg))
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = Path(os.path.realpath(candidate))
        if not self.contains(resolved):
            raise ToolError(f"path '{path_arg}' is outside the workspace ({self.root})")
        return resolved

    def resolve_dir(self, path_arg: str | None) -> Path:
        """A directory to search from: the workspace itself when `path_arg` is empty."""
        if not path_arg:
            return self.root
        resolved = self.resolve(path_arg)
        if not resolved.exists():
            raise ToolError(f"path '{path_arg}' does not exist")
        return resolved

    def relative(self, resolved: Path) -> str:
        """How results name a path: relative to the workspace, '/'-separated."""
        if resolved == self.root:
            return "."
        return resolved.relative_to(self.root).as_posix()
