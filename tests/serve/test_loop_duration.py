"""`loop: {max_duration}`: a loop bounded by time, with or without `max_iterations`."""

from __future__ import annotations

from pathlib import Path

import orchestrator
from orchestrator.store import Store

from .conftest import write

TIMED = """\
version: 1
name: timed
steps:
  - id: poll
    loop:
      max_duration: 300ms
      until: "{{ false }}"
      steps:
        - id: tick
          run: "sleep 0.05; echo tick"
outputs:
  iterations: "{{ steps.poll.iterations | length }}"
  exhausted: "{{ steps.poll.exhausted }}"
"""


def test_a_loop_with_only_max_duration_stops_and_says_it_was_exhausted(tmp_path: Path) -> None:
    wf = write(tmp_path, "timed.yaml", TIMED)
    db = str(tmp_path / "state.db")
    outcome = orchestrator.run(wf, db=db)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None
    assert outcome.outputs["iterations"] >= 1 and outcome.outputs["exhausted"] is True
    with Store.open(db) as store:
        warnings = [e.payload for e in store.events(outcome.run_id, type="warning")]
    assert any("max_duration=0.3s" in (w or {}).get("message", "") for w in warnings)


def test_max_iterations_still_caps_a_timed_loop(tmp_path: Path) -> None:
    text = TIMED.replace("max_duration: 300ms", "max_duration: 8h\n      max_iterations: 2")
    outcome = orchestrator.run(write(tmp_path, "capped.yaml", text), db=str(tmp_path / "s.db"))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None and outcome.outputs["iterations"] == 2
