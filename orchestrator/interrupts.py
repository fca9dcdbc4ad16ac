"""SIGINT and SIGTERM for a process that is one run, honoured from the moment it starts.

`orchestrate run` and `resume` install `defer()` first thing, before the SDK, the engine or the
store are imported: a signal that arrives while the process is still loading (or at any later
moment) is remembered, not lost, and the run it belongs to is cancelled as soon as it exists
(`listening`): it ends `cancelled`, resumable, exit 130. A second signal leaves at once (exit 130).

The handlers are Python-level (`signal.signal`), not the event loop's: Python runs them between
bytecodes of the main thread, so they also reach code that holds the loop, such as a template
that renders for a long time; such code polls `interrupted()` and stops.

Invariants: stdlib only (this module is imported before anything heavy); handlers are installed
only from the main thread; a listener must be safe to call from a signal handler (the run's
listener only schedules work on its event loop, `call_soon_threadsafe`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["defer", "interrupted", "listening", "restore"]

EXIT_CANCELLED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_first: list[str] = []  # the first signal's name, once one arrived
_listeners: list[Callable[[str], None]] = []
_previous: dict[int, Any] = {}


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _first:
        os._exit(EXIT_CANCELLED)  # a second signal: leave at once
    name = signal.Signals(signum).name
    _first.append(name)
    for listener in list(_listeners):
        listener(name)


def defer() -> bool:
    """From now on, SIGINT and SIGTERM are remembered and handed to `listening` callbacks
    instead of killing the process or raising KeyboardInterrupt. True when this call installed
    the handlers (the caller may `restore` them); False when they were already in place, or
    outside the main thread (signal handlers can only be set there)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    installed = False
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        if current is not _on_signal:
            _previous[signum] = current
            signal.signal(signum, _on_signal)
            installed = True
    return installed


def restore() -> None:
    """Put back the handlers `defer` replaced and forget any signal (for in-process callers)."""
    if threading.current_thread() is threading.main_thread():
        for signum, handler in _previous.items():
            signal.signal(signum, handler)
    _previous.clear()
    _first.clear()


def interrupted() -> str | None:
    """The name of the signal that arrived (`"SIGTERM"`), or None."""
    return _first[0] if _first else None


@contextmanager
def listening(callback: Callable[[str], None]) -> Iterator[None]:
    """Within this block `callback(name)` is called when a signal arrives, and at once on entry
    when one arrived before (while the process was loading)."""
    _listeners.append(callback)
    try:
        if _first:
            callback(_first[0])
        yield
    finally:
        _listeners.remove(callback)
