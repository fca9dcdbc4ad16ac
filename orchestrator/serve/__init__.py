"""`orchestrate serve`: the long-lived host of many runs (schedules, triggers), sharing one
store writer, one client and one dispatcher's limits.

- `host.py`: `Server`, the runs' life in one process (start, survive, drain, resume).
- `schedule.py`: the pure decisions on slots (next, latest, catch-up, overlap).
- `http.py`: the trigger endpoint (bearer token, GitHub webhook signatures).
"""

from orchestrator.serve.host import Draining, Server, log_printer

__all__ = ["Draining", "Server", "log_printer"]
