"""Where the database lives and how to connect to it: URL parsing, file modes, SQLite pragmas.

A location is a path (`.orchestrate/state.db`), a `sqlite:///` URL or a server URL
(`postgresql://...`). For SQLite the store owns the file: its directory is created 0700 and the
file 0600 (SQLite gives the -wal and -shm files the database file's mode), since prompts and
replies are kept there. Every SQLite connection runs in WAL mode with a 30 s busy timeout, so
readers in other processes are never blocked and a writer waits instead of failing; the store
emits BEGIN itself so the writer can take the write lock up front with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from orchestrator.errors import UsageError
from orchestrator.paths import make_private_dirs

BUSY_TIMEOUT_S = 30.0
IMMEDIATE = "orchestrate_begin_immediate"  # execution option: start transactions for writing


@dataclass(frozen=True, slots=True)
class Location:
    url: str  # the SQLAlchemy URL, absolute for SQLite files
    path: Path | None  # the SQLite file, None for server databases
    shown: str  # what the person gave, for messages


def parse_location(raw: str) -> Location:
    raw = raw.strip()
    if not raw:
        raise UsageError("no database location given")
    if "://" not in raw:
        return _sqlite_location(Path(raw).expanduser(), raw)
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise UsageError(f"not a database URL: {raw!r} ({exc})") from None
    if url.get_backend_name() != "sqlite":
        if url.drivername == "postgresql":  # the driver orchestrate ships (extra `postgres`)
            url = url.set(drivername="postgresql+psycopg")
        return Location(
            url=url.render_as_string(hide_password=False),
            path=None,
            shown=url.render_as_string(hide_password=True),
        )
    if url.query.get("uri") in ("true", "1"):
        return Location(url=raw, path=None, shown=raw)  # a SQLite URI: the caller's business
    if not url.database or url.database == ":memory:":
        raise UsageError(f"{raw}: in-memory databases are not supported; give a file path")
    return _sqlite_location(Path(url.database).expanduser(), raw)


def _sqlite_location(path: Path, shown: str) -> Location:
    if str(path) == ":memory:":
        raise UsageError("in-memory databases are not supported; give a file path")
    path = path.absolute()
    url = URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)
    return Location(url=url, path=path, shown=shown)


def prepare_file(loc: Location, *, create: bool) -> None:
    """Make sure the SQLite file exists with private modes, or say plainly why it cannot."""
    path = loc.path
    if path is None:
        return
    if path.exists():
        if path.is_dir():
            raise UsageError(f"{loc.shown} is a directory, not a database file")
        return
    if not create:
        raise UsageError(f"no runs yet: {loc.shown} does not exist")
    try:
        make_private_dirs(path.parent)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except FileExistsError:
        pass  # another process created it first; fine
    except OSError as exc:
        raise UsageError(
            f"cannot create the state database {loc.shown}: {exc.strerror or exc}"
        ) from None


def secure_sidecars(loc: Location) -> None:
    """Tighten -wal/-shm files that a foreign umask or an older SQLite left readable."""
    if loc.path is None:
        return
    for suffix in ("-wal", "-shm"):
        side = loc.path.with_name(loc.path.name + suffix)
        try:
            if side.stat().st_mode & 0o077:
                os.chmod(side, 0o600)
        except OSError:
            continue  # absent, or not ours to change


def build_engine(loc: Location) -> Engine:
    if loc.url.startswith("sqlite"):
        engine = create_engine(
            loc.url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
            pool_size=8,
            max_overflow=56,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    try:
        return create_engine(loc.url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise UsageError(f"cannot use database {loc.shown}: {exc}") from None


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # The driver must not start transactions on its own: `_sqlite_on_begin` does, with the
    # right lock mode. COMMIT/ROLLBACK still go through the driver.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = OFF")
        cursor.execute("PRAGMA temp_store = MEMORY")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock now (waiting up to busy_timeout), instead of failing
    # with "database is locked" when a deferred read transaction tries to upgrade.
    if conn.get_execution_options().get(IMMEDIATE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
