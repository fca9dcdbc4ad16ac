"""Notices when a question starts waiting: a command gets the question as JSON on stdin, a URL
gets it POSTed; neither can fail the run, and neither sees an API key."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.contracts.people import Question
from orchestrator.people.notify import NoticeTargets, send_notice

QUESTION = Question(
    run_id="01RUN",
    step_id="confirm",
    key="confirm",
    prompt="Proceed with 3 subtasks?",
    options=["proceed", "redo", "quit"],
)


def _notice(targets: NoticeTargets) -> list[str]:
    warnings: list[str] = []
    anyio.run(lambda: send_notice(targets, QUESTION.to_dict("01Q"), warn=warnings.append))
    return warnings


def test_the_command_receives_the_question_as_json_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    out = tmp_path / "got.json"
    env_out = tmp_path / "env.txt"
    script = (
        "import json, os, sys; data = json.load(sys.stdin); "
        f"open({str(out)!r}, 'w').write(json.dumps(data)); "
        f"open({str(env_out)!r}, 'w').write(os.environ.get('ANTHROPIC_API_KEY', 'absent'))"
    )
    command = f"{sys.executable} -c {json.dumps(script)}"
    assert _notice(NoticeTargets(command=command)) == []
    got = json.loads(out.read_text())
    assert got == {
        "run_id": "01RUN",
        "step": "confirm",
        "question_id": "01Q",
        "kind": "ask",
        "prompt": "Proceed with 3 subtasks?",
        "options": ["proceed", "redo", "quit"],
        "output": None,
        "tool": None,
        "tool_input": None,
    }
    assert env_out.read_text() == "absent"


def test_a_failing_command_is_a_warning_not_an_error() -> None:
    warnings = _notice(NoticeTargets(command="echo nope >&2; exit 3"))
    assert len(warnings) == 1 and "exited with code 3" in warnings[0] and "nope" in warnings[0]


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.received.append({"body": body, "type": self.headers["Content-Type"]})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook/SECRET-TOKEN", received
    server.shutdown()
    server.server_close()


def test_the_url_receives_the_same_json_by_post(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver
    assert _notice(NoticeTargets(url=url)) == []
    assert len(received) == 1
    assert received[0]["type"] == "application/json"
    assert received[0]["body"]["question_id"] == "01Q"
    assert received[0]["body"]["options"] == ["proceed", "redo", "quit"]


def test_an_unreachable_url_is_a_warning_that_hides_its_path() -> None:
    with SocketClosedPort() as port:
        warnings = _notice(NoticeTargets(url=f"http://127.0.0.1:{port}/hook/SECRET-TOKEN"))
    assert len(warnings) == 1 and "could not be reached" in warnings[0]
    assert "SECRET-TOKEN" not in warnings[0]


class SocketClosedPort:
    """A loopback port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        sock.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        return None
