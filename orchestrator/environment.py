"""The environment a child process gets: the parent's, minus every credential.

One rule for every process the engine starts (`run:` steps, the Bash tool), so a command, or a
prompt-injected one, can never read the run's API key or another service's token."""

from __future__ import annotations

import os
from collections.abc import Mapping

_SECRET_PREFIXES = ("ANTHROPIC_",)
_SECRET_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN")
_SECRET_NAMES = frozenset({"CLAUDE_CODE_OAUTH_TOKEN"})


def without_secrets(parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """`parent` (default: this process's environment) without credential variables."""
    env = os.environ if parent is None else parent
    return {
        name: value
        for name, value in env.items()
        if not name.upper().startswith(_SECRET_PREFIXES)
        and not name.upper().endswith(_SECRET_SUFFIXES)
        and name.upper() not in _SECRET_NAMES
    }
