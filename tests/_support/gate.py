"""A loopback HTTP proxy in front of a simulator that holds chosen requests until told.

Tests that kill or interrupt a run mid-flight used to race the run against the host's speed: on
a loaded machine a 12-item fan-out could finish before the test got to kill it. A `Gate` holds the
requests its `hold(task_key, body)` picks (by their `X-Orchestrate-Task` key, and for a chosen turn
of a conversation by the request body: `at_turn`), so the run cannot finish until the test
releases them, and the test waits on conditions (`wait_held`) instead of on time.

Requests still held when the gate closes are dropped without ever reaching the simulator, so the
simulator's request log counts only what a live client asked for and got an answer to.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

# A bound against a dead child only: a loaded 2-core host may take minutes to get a child's
# request here, and the wait ends as soon as the condition holds.
WAIT_S = 300.0

Hold = Callable[[str, dict[str, Any]], bool]  # (task key, request body as JSON) -> hold it


def by_key(prefix: str) -> Hold:
    """Hold every request of the tasks whose key starts with `prefix` (`step[i]:` for an item)."""
    return lambda key, body: key.startswith(prefix)


def at_turn(prefix: str, turn: int) -> Hold:
    """Hold the requests of tasks whose key starts with `prefix` from turn `turn` on (turn t of a
    conversation sends 2t - 1 messages)."""
    return lambda key, body: (
        key.startswith(prefix) and len(body.get("messages") or ()) >= (2 * turn - 1)
    )


class Gate:
    """`hold(task_key, body)` says which requests wait; `release()` lets them (and later ones)
    go; `close()` drops whatever is still held."""

    def __init__(self, upstream: str, hold: Hold) -> None:
        self.upstream = urlsplit(upstream)
        self.hold = hold
        self.held = 0  # requests waiting right now
        self.held_keys: set[str] = set()  # every task key ever held
        self._released = False
        self._closed = False
        self._cond = threading.Condition()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                gate._handle(self)

            def do_GET(self) -> None:
                gate._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_held(self, count: int = 1, timeout: float = WAIT_S) -> None:
        """Block until `count` requests are being held (a bound only against a dead child)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.held >= count, timeout):
                raise AssertionError(f"no {count} held request(s) within {timeout}s")

    def release(self) -> None:
        with self._cond:
            self._released = True
            self._cond.notify_all()

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
        if self._closed:  # a kept-alive connection of a killed child, after the test
            handler.close_connection = True
            return
        if self.hold(key, _json(raw)):
            with self._cond:
                self.held += 1
                self.held_keys.add(key)
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._released or self._closed)
                self.held -= 1
                dropped = self._closed
            if dropped:
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


def _json(raw: bytes) -> dict[str, Any]:
    """The request body for `hold`; anything but a JSON object reads as `{}`."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class _QuietServer(ThreadingHTTPServer):
    """A client killed mid-request (what these tests do) is expected, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None
