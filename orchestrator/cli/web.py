"""`orchestrate ui` (the web view) and the text stream of `orchestrate runs logs --text`.

Both read what another process writes: the store (read-only) and the run's JSON log, where
streaming calls leave their text deltas. Starlette, uvicorn and the web package are imported
inside the commands, so `orchestrate --help` stays fast.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from orchestrator.cli._options import DbOpt
from orchestrator.cli.app import app

if TYPE_CHECKING:
    from orchestrator.store import Store


@app.command("ui")
def ui(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free).")
    ] = 8765,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Loopback by default: the view has no login, and it "
            "shows every prompt and reply.",
        ),
    ] = "127.0.0.1",
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="Do not let the view answer questions and approvals (use orchestrate answer).",
        ),
    ] = False,
    db: DbOpt = None,
) -> None:
    """Serve the web view of the runs in the store: runs, each run's step graph, costs and
    chart, a fan-out's tasks, a task's transcript; a running run updates live, streamed text
    included. A run's page answers its questions and tool approvals (as `orchestrate answer`,
    `approve` and `deny` do) unless --read-only. Stop with Ctrl-C."""
    import uvicorn

    from orchestrator.config import load_settings
    from orchestrator.errors import UsageError
    from orchestrator.store import Store
    from orchestrator.web import LOOPBACK_HOSTS, create_app

    settings = load_settings()
    url = db or settings.engine.db
    if _missing_sqlite(url):
        raise UsageError(f"no runs yet (no database at {url}); start one with `orchestrate run`")
    store = Store.open(url, readonly=True)
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    if not loopback:
        print(
            f"warning: serving on {host}: anyone who can reach it reads every prompt and reply"
            + ("" if read_only else " and answers its questions (--read-only stops that)"),
            file=sys.stderr,
        )
    answers = None if read_only else Store.open(url)
    application = create_app(
        store,
        settings,
        db=url,
        allowed_hosts=[*LOOPBACK_HOSTS, host] if loopback else None,
        answers=answers,
    )
    config = uvicorn.Config(
        application,
        log_level="warning",
        timeout_graceful_shutdown=1,  # live pages hold their event streams open
    )
    server = uvicorn.Server(config)
    # Bound here, not by uvicorn, so that `--port 0` can say which port it got.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # from now on connections wait in the backlog until uvicorn serves
    except OSError as exc:
        sock.close()
        store.close()
        if answers is not None:
            answers.close()
        raise UsageError(f"--host {host} --port {port}: cannot listen: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"orchestrate ui: http://{shown}:{bound}/runs (store {url}); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        store.close()
        if answers is not None:
            answers.close()


def _missing_sqlite(url: str) -> bool:
    from pathlib import Path

    if "://" in url:
        if not url.startswith("sqlite:///"):
            return False
        url = url[len("sqlite:///") :].split("?", 1)[0]
    return url not in ("", ":memory:") and not Path(url).expanduser().exists()


def print_text(
    store: Store,
    run_id: str,
    db: str,
    *,
    follow: bool,
    stale_after: float,
    poll: float,
    json_lines: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    """`runs logs RUN --text`: the text workers streamed, from the run's JSON log, labelled by
    task (a `── step[i] task ──` line whenever the writer changes). With `follow`, as it arrives,
    until the run is no longer running."""
    from orchestrator.config import load_settings
    from orchestrator.errors import UsageError
    from orchestrator.web.runlog import Delta, LiveText, LogTail, find_log

    path = find_log(run_id, load_settings().engine.logs_dir, db)
    if not follow and not path.exists():
        raise UsageError(
            f"no run log for run {run_id} at {path} (set engine.logs_dir, or run this where "
            "the run was started)"
        )
    tail, live = LogTail(path), LiveText()
    writer: str | None = None
    mid_line = False

    def drain() -> int:
        nonlocal writer, mid_line
        lines = tail.read()
        for line in lines:
            change = live.apply(line)
            if not isinstance(change, Delta):
                continue
            if json_lines:
                record = {"task_id": change.task_id, "step_id": change.step_id}
                record |= {"label": change.label, "text": change.text}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            if change.task_id != writer:
                writer = change.task_id
                out.write(("\n" if mid_line else "") + f"── {change.label} {change.task_id} ──\n")
            out.write(change.text)
            mid_line = not change.text.endswith("\n")
        out.flush()
        return len(lines)

    drain()
    while follow:
        record = store.get_run(run_id)
        if record is None or store.run_status(record, stale_after) != "running":
            drain()  # the last deltas, written before the status changed
            break
        if not drain():
            time.sleep(poll)
    if mid_line and not json_lines:
        out.write("\n")
        out.flush()
