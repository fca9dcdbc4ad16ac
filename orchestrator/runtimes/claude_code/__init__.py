"""`runtime: claude-code`: each task is a headless Claude Code process whose model calls go
through the engine's dispatcher by way of a loopback Messages API proxy.

- `runtime.py`: `ClaudeCodeRuntime`, the `WorkerFn` and the lifetime of the run's proxy.
- `proxy.py`: the proxy (per-task tokens, the dispatcher behind it, SSE replies).
- `process.py`: the CLI's command line, its from-scratch environment, its stream-json output.
- `sse.py`: a final message replayed as the stream a client asked for.
"""

from orchestrator.runtimes.claude_code.process import CLI_ENV, find_cli, missing_cli_message
from orchestrator.runtimes.claude_code.proxy import Lease, MessagesProxy
from orchestrator.runtimes.claude_code.runtime import ClaudeCodeRuntime

__all__ = [
    "CLI_ENV",
    "ClaudeCodeRuntime",
    "Lease",
    "MessagesProxy",
    "find_cli",
    "missing_cli_message",
]
