"""On a terminal, `run` asks inline: an option by its value or its number; a refused answer is
asked again; an empty line leaves the question pending (exit 4), as off a terminal. The child
is a real `orchestrate` on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

from tests.ask.conftest import GATE, ORCHESTRATE, child_env, invoke_json, write

TIMEOUT_S = 60.0


class Terminal:
    """A child process on a pty: read what it shows, type lines into it."""

    def __init__(self, cwd: Path, *args: str) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [str(ORCHESTRATE), *args],
            cwd=cwd,
            env=child_env(COLUMNS="120", TERM="dumb"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while text not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"never showed {text!r}; showed:\n{self.seen[-2000:]}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    if self.proc.poll() is not None and text not in self.seen:
                        raise AssertionError(f"exited before {text!r}:\n{self.seen}") from None

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self) -> int:
        deadline = time.monotonic() + TIMEOUT_S
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
        code = self.proc.wait(timeout=TIMEOUT_S)
        os.close(self.master)
        return code


def test_on_a_terminal_the_question_is_asked_inline_and_a_number_answers(project: Path) -> None:
    write(project, GATE)
    term = Terminal(project, "run", "wf.yaml", "--simulate")
    term.expect("Proceed with these 2 subtasks?")
    term.expect("> ")
    term.type("maybe")
    term.expect("'maybe' is not an option")
    term.type("1")
    assert term.finish() == 0, term.seen
    (run,) = invoke_json("runs", "list")
    shown = invoke_json("runs", "show", run["id"])
    assert shown["outputs"]["decision"] == "proceed"
    (question,) = shown["questions"]
    assert question["answered_by"] == "terminal"


def test_an_empty_line_leaves_the_question_pending(project: Path) -> None:
    write(project, GATE)
    term = Terminal(project, "run", "wf.yaml", "--simulate")
    term.expect("> ")
    term.type("")
    assert term.finish() == 4, term.seen
    (pending,) = invoke_json("runs", "waiting")
    assert pending["step"] == "confirm"
