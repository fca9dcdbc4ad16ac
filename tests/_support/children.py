"""The environment a test starts a child process (`orchestrate`, a server) from.

It is this process's environment less whatever would let the host reach into the child: API keys
and tokens (a child must never see a real key, and a test must never spend one), orchestrate's own
settings (`ORCHESTRATE_*` would change what the child does), Claude Code's, and OpenTelemetry's
(`OTEL_*` would send the child's traces off the machine). A test adds what its child needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HOST_PREFIXES = ("ANTHROPIC_", "ORCHESTRATE_", "CLAUDE_", "OTEL_")
_SECRET_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN")


def clean_environ(**extra: str) -> dict[str, str]:
    """`os.environ` without keys, tokens and host settings (see above), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_HOST_PREFIXES) and not k.endswith(_SECRET_SUFFIXES)
    }
    env.update(extra)
    return env


# Under the engine's 15-minute retry horizon, so a test stuck retrying still fails.
CHILD_TEST_TIMEOUT_S = 600


def give_child_tests_time(items: list[pytest.Item], folder: Path) -> None:
    """For a folder's `pytest_collection_modifyitems`: its tests drive real CLI processes, and on
    a loaded 2-core host one takes well over pytest's default 120 s without anything being
    wrong, so each test below `folder` without a timeout of its own gets a larger one (still only
    a bound against a hang: the tests wait on conditions, not on time)."""
    for item in items:
        if item.path.is_relative_to(folder) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(CHILD_TEST_TIMEOUT_S))
