"""The environment a test starts a child process (`orchestrate`, a server) from.

It is this process's environment less whatever would let the host reach into the child: API keys
and tokens (a child must never see a real key, and a test must never spend one), orchestrate's own
settings (`ORCHESTRATE_*` would change what the child does), Claude Code's, and OpenTelemetry's
(`OTEL_*` would send the child's traces off the machine). A test adds what its child needs.
"""

from __future__ import annotations

import os

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
