"""`orchestrate serve` in this process: schedules and overlap, state across a restart, the
trigger endpoint, draining. Every wait is on a condition (a log event, a file, a run's status),
never on a number of seconds; the bounds in `until` only stop a hung test."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.cli.serve import status_file
from orchestrator.serve import Server
from orchestrator.store import ScopedStore, ServeRuns, Store
from orchestrator.workflow import load_workflow

from .conftest import COUNTER, Log, gated, settings_for, until, write

TOKEN = "test-token-0123456789"
SECRET = "hook-secret"


@asynccontextmanager
async def serving(
    tmp: Path,
    files: list[Path],
    *,
    listen: bool = False,
    token: str | None = TOKEN,
    secret: str | None = SECRET,
    drain_timeout: float = 60.0,
) -> AsyncIterator[tuple[Server, Log, str]]:
    """A started server (its log, and the endpoint's base URL when `listen`); stopped (drained)
    when the block ends."""
    settings = settings_for(tmp)
    store = Store.open(settings.engine.db)
    log = Log()
    workflows = {f.stem: load_workflow(f, settings=settings) for f in files}
    server = Server(
        settings=settings,
        store=store,
        workflows=workflows,
        say=log,
        drain_timeout=drain_timeout,
        token=token,
        webhook_secret=secret,
        handle_signals=False,
        status_path=status_file(settings),
    )
    sock = None
    base = ""
    if listen:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, sock)
            await until(lambda: bool(log.of("serving")), "the server to start")
            yield server, log, base
            server.request_stop()
    finally:
        if sock is not None:
            sock.close()
        store.close()


async def request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()

    def go() -> tuple[int, Any]:
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await anyio.to_thread.run_sync(go)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def finished(log: Log, **match: Any) -> Callable[[], int]:
    return lambda: len(log.of("run_finished", **match))


async def test_a_two_second_schedule_runs_once_per_slot_and_skip_holds_under_a_slow_run(
    tmp_path: Path,
) -> None:
    wf = write(tmp_path, "slow.yaml", gated("slow", schedule="schedule: {every: 2s}"))
    ws = tmp_path / "ws-slow"
    async with serving(tmp_path, [wf]) as (_server, log, _):
        # The first scheduled run starts, then waits on its gate: two more slots come and are
        # skipped while it runs, and no second run starts beside it.
        await until(lambda: len(log.of("slot_skip")) >= 2, "two skipped slots")
        assert len(log.of("run_started")) == 1
        assert (ws / "started.txt").read_text().count("started") == 1
        (ws / "release").write_text("")
        await until(lambda: finished(log)() >= 4, "four runs to finish")
        started = log.of("run_started")
        window = started[-1]["ts"] - started[0]["ts"]
        slots = [e["slot"] for e in started]
        assert len(set(slots)) == len(slots)  # one run per slot: never a burst
        # Runs come no faster than the schedule: at most one per 2 s slot in the window
        # (plus the first); a loaded host may only make it fewer.
        assert len(started) <= window / 2 + 1
        assert all(e["status"] == "succeeded" for e in log.of("run_finished"))
    runs = ServeRuns(Store.open(str(tmp_path / "state.db"))).rows(["slow"])
    assert {r.origin for r in runs} == {"schedule"} and all(r.slot for r in runs)


async def test_overlap_queue_runs_one_waiting_slot_after_the_slow_run(tmp_path: Path) -> None:
    wf = write(tmp_path, "q.yaml", gated("q", schedule="schedule: {every: 2s}", overlap="queue"))
    ws = tmp_path / "ws-q"
    async with serving(tmp_path, [wf]) as (_server, log, _):
        await until(lambda: bool(log.of("slot_drop")), "a slot dropped behind the queued one")
        assert len(log.of("run_started")) == 1 and len(log.of("slot_queue")) == 1
        (ws / "release").write_text("")
        await until(lambda: finished(log)() >= 2, "the queued run to finish")
        second = log.of("run_started")[1]
        assert second["slot"] == log.of("slot_queue")[0]["slot"]


async def test_a_workflow_scoped_counter_counts_across_runs_and_a_restart(
    tmp_path: Path,
) -> None:
    wf = write(tmp_path, "counter.yaml", COUNTER)
    async with serving(tmp_path, [wf]) as (server, log, _):
        for _ in range(2):
            server.start("counter")
        await until(lambda: finished(log)() == 2, "two runs")
    async with serving(tmp_path, [wf]) as (server, log, _):
        run_id = server.start("counter")
        await until(lambda: finished(log)() == 1, "the run after the restart")
        assert server.finished[run_id].outputs == {"runs": 3}
    with Store.open(str(tmp_path / "state.db")) as store:
        assert ScopedStore(store).get("counter", "runs").value == 3


async def test_the_endpoint_starts_a_run_with_inputs_and_refuses_what_is_wrong(
    tmp_path: Path,
) -> None:
    echo = write(
        tmp_path,
        "echo.yaml",
        """\
        version: 1
        name: echo
        inputs:
          n: {type: integer}
          event: {type: string, default: none}
          payload: {type: object, default: {}}
        steps:
          - id: twice
            set: "{{ inputs.n * 2 }}"
        outputs:
          twice: "{{ steps.twice.output }}"
          event: "{{ inputs.event }}"
          action: "{{ inputs.payload.get('action', '') }}"
        """,
    )
    async with serving(tmp_path, [echo], listen=True) as (_server, log, base):
        status, body = await request(
            "POST", f"{base}/runs", {"workflow": "echo", "inputs": {"n": 21}}, auth()
        )
        assert status == 201, body
        run_id = body["run_id"]
        await until(lambda: finished(log, run_id=run_id)() == 1, "the triggered run")
        status, body = await request("GET", f"{base}/runs/{run_id}", headers=auth())
        assert status == 200 and body["status"] == "succeeded"
        assert body["outputs"]["twice"] == 42

        refusals = [
            (await request("POST", f"{base}/runs", {"workflow": "echo", "inputs": {"n": 1}}), 401),
            (await request("POST", f"{base}/runs", {"workflow": "echo"}, auth("wrong")), 401),
            (await request("POST", f"{base}/runs", b"{not json", auth()), 400),
            (await request("POST", f"{base}/runs", {"workflow": "nope"}, auth()), 404),
            (
                await request(
                    "POST", f"{base}/runs", {"workflow": "echo", "inputs": {"n": "x"}}, auth()
                ),
                422,
            ),
            (await request("POST", f"{base}/runs", {"workflow": "echo"}, auth()), 422),
        ]
        for (status, body), wanted in refusals:
            assert status == wanted, body
            assert body["error"]
        assert "n" in refusals[4][0][1]["error"]

        payload = json.dumps({"action": "opened"}).encode()
        good = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
        hook = f"{base}/hooks/github/echo"
        headers = {"X-GitHub-Event": "issues", "Content-Type": "application/json"}
        status, body = await request(
            "POST", hook, payload, {**headers, "X-Hub-Signature-256": "sha256=00"}
        )
        assert status == 401 and "signature" in body["error"].lower()
        status, body = await request("POST", hook, payload, headers)
        assert status == 401
        # the signature is right, but the run lacks its required input `n`: nothing starts
        status, body = await request(
            "POST", hook, payload, {**headers, "X-Hub-Signature-256": good}
        )
        assert status == 422 and "'n'" in body["error"]
        assert finished(log)() == 1 and len(log.of("run_started")) == 1


async def test_a_github_hook_passes_the_event_and_payload(tmp_path: Path) -> None:
    hooked = write(
        tmp_path,
        "hooked.yaml",
        """\
        version: 1
        name: hooked
        inputs:
          event: {type: string}
          payload: {type: object}
        steps:
          - id: seen
            set: "{{ inputs.event }}:{{ inputs.payload.issue.number }}"
        outputs:
          seen: "{{ steps.seen.output }}"
        """,
    )
    async with serving(tmp_path, [hooked], listen=True) as (server, log, base):
        payload = json.dumps({"action": "opened", "issue": {"number": 7}}).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
        status, body = await request(
            "POST",
            f"{base}/hooks/github/hooked",
            payload,
            {"X-GitHub-Event": "issues", "X-Hub-Signature-256": sig},
        )
        assert status == 201, body
        await until(lambda: finished(log)() == 1, "the hooked run")
        assert server.finished[body["run_id"]].outputs == {"seen": "issues:7"}


async def test_without_a_token_the_endpoint_refuses_everything(tmp_path: Path) -> None:
    wf = write(tmp_path, "counter.yaml", COUNTER)
    async with serving(tmp_path, [wf], listen=True, token=None, secret=None) as (_, log, base):
        status, body = await request("POST", f"{base}/runs", {"workflow": "counter"}, auth())
        assert status == 403 and "ORCHESTRATE_SERVE_TOKEN" in body["error"]
        status, body = await request("POST", f"{base}/hooks/github/counter", b"{}", {})
        assert status == 403 and "ORCHESTRATE_WEBHOOK_SECRET" in body["error"]
        assert not log.of("run_started")


async def test_a_stop_lets_running_runs_finish_and_starts_no_new_one(tmp_path: Path) -> None:
    wf = write(tmp_path, "slow.yaml", gated("slow"))
    ws = tmp_path / "ws-slow"
    async with serving(tmp_path, [wf], listen=True) as (server, log, base):
        run_id = server.start("slow")
        await until(lambda: (ws / "started.txt").exists(), "the run to start")
        server.request_stop()
        await until(lambda: bool(log.of("draining")), "the drain")
        status, body = await request("POST", f"{base}/runs", {"workflow": "slow"}, auth())
        assert status == 503 and "stopping" in body["error"]
        (ws / "release").write_text("")
        await until(lambda: bool(log.of("stopped")), "the server to stop")
    assert server.finished[run_id].status == "succeeded"


async def test_a_failing_run_does_not_take_the_server_down(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        """\
        version: 1
        name: bad
        steps:
          - {id: boom, run: "exit 3"}
        """,
    )
    good = write(tmp_path, "counter.yaml", COUNTER)
    async with serving(tmp_path, [bad, good]) as (server, log, _):
        server.start("bad")
        await until(lambda: finished(log, workflow="bad")() == 1, "the failing run")
        server.start("counter")
        await until(lambda: finished(log, workflow="counter")() == 1, "the next run")
    assert log.of("run_finished", workflow="bad")[0]["status"] == "failed"
    assert log.of("run_finished", workflow="counter")[0]["status"] == "succeeded"


async def test_serve_status_shows_what_the_server_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # `serve status` finds the server through this directory's settings
    slow = write(tmp_path, "slow.yaml", gated("slow", schedule="schedule: {every: 1h}"))
    counter = write(tmp_path, "counter.yaml", COUNTER)
    runner = CliRunner()
    async with serving(tmp_path, [slow, counter]) as (server, _log, _):
        run_id = server.start("slow")
        await until(lambda: (tmp_path / "ws-slow" / "started.txt").exists(), "the run")

        def shown() -> dict[str, Any]:
            result = runner.invoke(app, ["serve", "status", "--json"], env={"COLUMNS": "200"})
            assert result.exit_code == 0, result.output
            return dict(json.loads(result.output))

        await until(lambda: bool(shown()["workflows"]["slow"]["next_slot"]), "the next slot")
        data = shown()
        assert data["workflows"]["slow"]["schedule"] == "every 3600s"
        assert data["workflows"]["counter"]["state_scope"] == "counter"
        assert [r["run_id"] for r in data["runs"]] == [run_id]
        (tmp_path / "ws-slow" / "release").write_text("")
    result = runner.invoke(app, ["serve", "status"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "no `orchestrate serve` is running" in result.output
