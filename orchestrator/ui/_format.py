"""Small, pure formatting helpers shared by the live displays and the history tables.

Every number a person reads goes through here, so `runs list`, `runs show` and the live display
agree: tokens as `12,345` or `1.2M`, dollars with four decimals (`?` when a price was unknown),
durations as `2.1s`, `3m04s`, `1h02m`.
"""

from __future__ import annotations

import datetime as _dt


def tokens(value: int | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value:,}"


def dollars(value: float | None, *, unknown: bool = False) -> str:
    """`$0.0123`; `?` when no cost is known; `$0.0123+?` when part of it is unknown."""
    if value is None or (unknown and not value):
        return "?"
    text = f"${value:,.4f}" if value < 100 else f"${value:,.2f}"
    return f"{text}+?" if unknown else text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def clock(seconds: float) -> str:
    """Elapsed time as `MM:SS` (or `H:MM:SS`), for the live display's header."""
    total = int(max(0.0, seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def timestamp(ts: float | None) -> str:
    """A local wall-clock time, `2025-01-31 14:05:09`."""
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def ratio(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def shorten(text: str, width: int) -> str:
    """One line, at most `width` characters (an ellipsis marks the cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"
