"""A state database that cannot be created or written: exit 2, the path named, no traceback.

Root ignores directory modes, so a read-only directory is made with a read-only bind mount in a
private mount namespace of the child (`unshare`), which leaves the host's mounts untouched; as
another user a `chmod 0500` directory does. Without either the read-only cases are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import CLI, Cli, child_env

WORKFLOW = "version: 1\nname: tiny\nsteps:\n  - id: a\n    prompt: hi\n"


def _can_bind_readonly(tmp: Path) -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = tmp / ".probe"
    probe.mkdir()
    script = f'mount --bind -o ro "{probe}" "{probe}" && ! touch "{probe}/x" 2>/dev/null'
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
        capture_output=True,
        timeout=300,
    )
    probe.rmdir()
    return proc.returncode == 0


def run_with_readonly_dir(
    tmp: Path, readonly: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`orchestrate ARGS` in `tmp`, with the directory `readonly` not writable by the child."""
    if os.geteuid() != 0:
        readonly.chmod(0o500)
        try:
            return subprocess.run(
                [str(CLI), *args],
                cwd=tmp,
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            readonly.chmod(0o700)
    if not _can_bind_readonly(tmp):
        pytest.skip("running as root without mount namespaces: no way to make a read-only dir")
    quoted = " ".join(f"'{a}'" for a in args)
    script = f'mount --bind -o ro "{readonly}" "{readonly}" && exec "{CLI}" {quoted}'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
        cwd=tmp,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _clean_error(stderr: str, path: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert path in stderr, stderr
    assert stderr.startswith("error: "), stderr


def test_db_under_a_regular_file_cannot_be_created(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "notes.txt").write_text("a file, not a directory\n")
    done = cli.run("run", "wf.yaml", "--simulate", "--db", "notes.txt/state.db")
    assert done.code == 2
    _clean_error(done.stderr, "notes.txt/state.db")
    assert "cannot create" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "a file, not a directory\n"


def test_db_path_that_is_a_directory_is_refused(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "history.db").mkdir()
    done = cli.run("run", "wf.yaml", "--simulate", "--db", "history.db")
    assert done.code == 2
    _clean_error(done.stderr, "history.db")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite\n" * 100)
    for args in (("run", "wf.yaml", "--simulate"), ("runs", "list")):
        done = cli.run(*args, "--db", "junk.db")
        assert done.code == 2, (args, done.stderr)
        _clean_error(done.stderr, "junk.db")
    assert (tmp_path / "junk.db").read_bytes() == b"this is not sqlite\n" * 100


def test_new_db_in_a_readonly_directory(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    locked = tmp_path / "locked"
    locked.mkdir()
    proc = run_with_readonly_dir(
        tmp_path, locked, "run", "wf.yaml", "--simulate", "--db", "locked/state.db"
    )
    assert proc.returncode == 2, proc.stderr
    _clean_error(proc.stderr, "locked/state.db")
    assert "cannot create" in proc.stderr
    assert not (locked / "state.db").exists()


def test_existing_db_in_a_readonly_directory(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    locked = tmp_path / "locked"
    first = cli.run("run", "wf.yaml", "--simulate", "-q", "--db", "locked/state.db")
    assert first.code == 0, first.stderr
    before = (locked / "state.db").read_bytes()
    proc = run_with_readonly_dir(
        tmp_path, locked, "run", "wf.yaml", "--simulate", "--db", "locked/state.db"
    )
    assert proc.returncode == 2, proc.stderr
    _clean_error(proc.stderr, "locked/state.db")
    assert (locked / "state.db").read_bytes() == before
