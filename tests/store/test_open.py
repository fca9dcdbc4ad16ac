"""Opening a store: locations, private file modes, and plain errors for places we cannot write."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.errors import UsageError
from orchestrator.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write(store: Store, events: list[Any]) -> None:
    async def main() -> None:
        async with store.writer() as w:
            for e in events:
                w.send(e)

    anyio.run(main)


def test_directory_is_0700_and_files_0600(tmp_path: Path, make_run: Any) -> None:
    db = tmp_path / "a" / "b" / "state.db"
    old_umask = os.umask(0o022)  # a permissive umask must not leak prompts to other users
    try:
        store = Store.open(str(db))
        write(store, make_run(items=2).events)
        files = [db, db.with_name("state.db-wal"), db.with_name("state.db-shm")]
        assert all(f.exists() for f in files)  # WAL files exist while the store is open
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
        assert mode(db.parent) == 0o700
        assert mode(db.parent.parent) == 0o700  # created by us as well
        store.close()
    finally:
        os.umask(old_umask)


def test_existing_directories_are_not_chmodded(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    Store.open(str(tmp_path / "state.db")).close()
    assert mode(tmp_path) == 0o755


@pytest.mark.parametrize("form", ["path", "relative", "sqlite-url"])
def test_location_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.chdir(tmp_path)
    given = {
        "path": str(tmp_path / "x" / "state.db"),
        "relative": "x/state.db",
        "sqlite-url": f"sqlite:///{tmp_path}/x/state.db",
    }[form]
    store = Store.open(given)
    try:
        assert store.path == str(tmp_path / "x" / "state.db")
        assert store.url.startswith("sqlite:///")
        assert (tmp_path / "x" / "state.db").exists()
    finally:
        store.close()


def test_in_memory_is_refused() -> None:
    with pytest.raises(UsageError, match="in-memory"):
        Store.open("sqlite://")


def test_readonly_open_of_a_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / ".orchestrate" / "state.db"
    with pytest.raises(UsageError) as info:
        Store.open(str(missing), readonly=True)
    assert str(info.value) == f"no runs yet: {missing} does not exist"
    assert not missing.parent.exists()  # nothing was created


def test_readonly_store_refuses_writes(db_path: Path, make_run: Any) -> None:
    Store.open(str(db_path)).close()
    ro = Store.open(str(db_path), readonly=True)
    try:
        assert ro.list_runs() == []
        for call in (lambda: ro.delete_run("x"), lambda: ro.prune(older_than_s=0)):
            with pytest.raises(UsageError, match="read-only"):
                call()
    finally:
        ro.close()


def test_uncreatable_directory_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(UsageError) as info:
        Store.open(str(blocker / "sub" / "state.db"))
    assert str(blocker / "sub" / "state.db") in str(info.value)
    assert str(info.value).startswith("cannot create the state database")


def test_a_directory_even_root_cannot_write_is_a_usage_error() -> None:
    # /proc refuses new entries to everyone, so this holds when the suite runs as root too
    with pytest.raises(UsageError, match="cannot create the state database /proc/"):
        Store.open("/proc/orchestrate-test/state.db")


@contextlib.contextmanager
def read_only_dir(path: Path, prepare: Any = None) -> Iterator[Path]:
    """A directory nobody may write to: chmod for a user; a read-only mount for root,
    whom permissions do not stop."""
    path.mkdir()
    if prepare is not None:
        prepare(path)
    if os.geteuid() != 0:
        for child in path.iterdir():
            child.chmod(0o400)
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
        return
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_directory_is_a_usage_error(tmp_path: Path) -> None:
    with (
        read_only_dir(tmp_path / "ro") as ro_dir,
        pytest.raises(UsageError, match=str(ro_dir / "state.db")),
    ):
        Store.open(str(ro_dir / "state.db"))


def test_existing_database_in_a_read_only_directory(tmp_path: Path) -> None:
    def prepare(path: Path) -> None:
        Store.open(str(path / "state.db")).close()  # closed cleanly: no -wal/-shm left

    with (
        read_only_dir(tmp_path / "ro", prepare) as ro_dir,
        pytest.raises(UsageError, match="cannot open the state database"),
    ):
        Store.open(str(ro_dir / "state.db"))


def test_no_api_key_reaches_the_database(
    db_path: Path, make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-ant-api03-do-not-store-me"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    store = Store.open(str(db_path))
    write(store, make_run(items=3).events)
    store.close()
    blob = b"".join(p.read_bytes() for p in db_path.parent.iterdir())
    assert secret.encode() not in blob
    assert b"x-api-key" not in blob.lower()
