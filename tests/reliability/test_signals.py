"""Issue 14 items 8 and 10: SIGINT/SIGTERM are honoured from the moment the process starts, and
reach a template that renders for a long time.

A signal is sent while the child is provably still loading: it blocks reading its `--inputs`
file, a FIFO, and the test's `open(fifo, "w")` returns only once the child opened it for reading.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests._support.wait import wait_for

from .conftest import Cli, child_env, open_readonly

WORKFLOW = """\
version: 1
name: early
inputs:
  topic: {type: string}
steps:
  - id: a
    prompt: "Write one line on {{ inputs.topic }}."
outputs:
  a: "{{ steps.a.output }}"
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_process_loads_cancels_the_run(
    tmp_path: Path, cli: Cli, sig: signal.Signals
) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    fifo = tmp_path / "inputs.json"
    os.mkfifo(fifo)
    db = tmp_path / "state.db"
    child = cli.start("run", "wf.yaml", "--inputs", str(fifo), "--simulate", "--db", str(db), "-q")
    with fifo.open("w") as writer:  # returns once the child is reading it: it is past start-up
        child.proc.send_signal(sig)
        writer.write(json.dumps({"topic": "bees"}))
    assert child.wait() == 130, child.stderr
    assert "Traceback" not in child.stderr
    run_id = child.run_id()
    store = open_readonly(db)
    record = store.get_run(run_id)
    assert record is not None and record.status == "cancelled"  # left resumable, not lost
    done = cli.run("resume", run_id, "--db", str(db), "--simulate", "-q", "-o", "out.json")
    assert done.code == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text())["a"]
    store.close()


def test_sigterm_during_a_long_render_stops_the_run(tmp_path: Path, cli: Cli) -> None:
    """A prompt whose render would run for hours (10^10 loop turns, within every bound) holds
    the event loop; SIGTERM still ends the run, cancelled, exit 130. The render starts once the
    `gate` command has left its file (the store cannot say so: its writer needs the loop)."""
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: slow\nsteps:\n"
        "  - id: gate\n    run: touch gate.done\n"
        "  - id: slow\n    needs: [gate]\n"
        '    prompt: "{% for i in range(100000) %}{% for j in range(100000) %}'
        '{{ i if i < 0 }}{% endfor %}{% endfor %}"\n'
    )
    db = tmp_path / "state.db"
    child = cli.start("run", "wf.yaml", "--simulate", "--db", str(db), "-q", env=child_env())
    run_id = child.run_id()
    wait_for(lambda: list(tmp_path.rglob("gate.done")), what="the gate step's file")
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 130, child.stderr  # bounded by the child timeout, not a speed figure
    assert "Traceback" not in child.stderr
    store = open_readonly(db)
    record = store.get_run(run_id)
    assert record is not None and record.status == "cancelled"
    store.close()
