"""Kill a real `orchestrate` process at a chosen turn of a conversation, then resume it.

The tests put a `Gate` (tests/_support/gate.py, the `gate_factory` fixture) in front of the
simulator that holds the request of a chosen task once its conversation has reached a chosen turn
(`at_turn`). The held request never reaches the simulator, so the test kills the run while that
call is in flight, without racing the host's speed, and the simulator's request log counts only
what was answered. Children run through tests/reliability's `cli` fixture.
"""

from tests.reliability.conftest import cli  # noqa: F401  (the fixture)
