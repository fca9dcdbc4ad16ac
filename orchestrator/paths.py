"""Private files and folders: what orchestrate creates on disk is for its owner only.

Prompts, replies and outputs end up in the store, the run logs, the workspaces and `-o` files,
so every folder orchestrate creates is 0700 and every file 0600, whatever the umask. One
definition, used by the store (its SQLite file), the assembly (workspaces, logs) and the CLI.
A leaf: it imports nothing of orchestrate but its errors.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import UsageError


def make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parents as 0700 (mkdir's mode is filtered by the umask,
    so each is chmod-ed too); folders that exist already are left as they are. Raises OSError."""
    missing: list[Path] = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):  # every folder we create is private, not just the last
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(folder, 0o700)


def private_dir(path: Path) -> Path:
    """`make_private_dirs`, with a failure as a `UsageError` naming the folder."""
    try:
        make_private_dirs(path)
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` as a 0600 file (an existing file is truncated and made 0600)."""
    try:
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
