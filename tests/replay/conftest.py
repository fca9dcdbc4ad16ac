"""Kill a real `orchestrate` process at a chosen turn of a conversation, then resume it.

A `TurnGate` is a loopback proxy in front of the simulator that holds the request of a chosen
task once its conversation has reached a chosen turn (counted from the request body: turn t sends
2t - 1 messages). The held request never reaches the simulator, so the test kills the run while
that call is in flight, without racing the host's speed, and the simulator's request log counts
only what was answered.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ask.conftest import project  # noqa: F401  (the fixture, for test_approval)
from tests.reliability.conftest import CHILD_TIMEOUT_S, Cli

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

Hold = Callable[[str, dict[str, Any]], bool]  # (task key, request body) -> hold it


def at_turn(prefix: str, turn: int) -> Hold:
    """Hold the requests of tasks whose key starts with `prefix` from turn `turn` on."""
    return lambda key, body: (
        key.startswith(prefix) and len(body.get("messages") or ()) >= (2 * turn - 1)
    )


class TurnGate:
    def __init__(self, upstream: str, hold: Hold) -> None:
        self.upstream = urlsplit(upstream)
        self.hold = hold
        self.held = 0
        self._closed = False
        self._cond = threading.Condition()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                gate._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_held(self, count: int = 1, timeout: float = CHILD_TIMEOUT_S) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.held >= count, timeout):
                raise AssertionError(f"no {count} held request(s) within {timeout}s")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        key = handler.headers.get("x-orchestrate-task") or ""
        if self._closed:
            handler.close_connection = True
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if self.hold(key, body):
            with self._cond:
                self.held += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._closed)  # dropped, never answered
            handler.close_connection = True
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=120
        )
        try:
            upstream.request(handler.command, handler.path, body=raw, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        handler.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None


@pytest.fixture
def turn_gate() -> Iterator[Callable[[str, Hold], TurnGate]]:
    gates: list[TurnGate] = []

    def factory(upstream: str, hold: Hold) -> TurnGate:
        gate = TurnGate(upstream, hold)
        gates.append(gate)
        return gate

    yield factory
    for gate in gates:
        gate.close()


@pytest.fixture
def cli(tmp_path: Any) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    yield runner
    runner.close()
