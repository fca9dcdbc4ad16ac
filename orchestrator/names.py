"""How things are named to a person: task labels and "did you mean" hints.

One definition each, so the progress display, `runs tasks`, transcripts and error messages agree.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def task_label(step_id: str, index: int | None = None, iteration: int | None = None) -> str:
    """`research[3]` for item 3 of a fan-out, `plan` for a single task; `#2` is appended for
    the second iteration of a loop body (`polish.draft#2`)."""
    label = step_id if index is None else f"{step_id}[{index}]"
    return label if iteration is None else f"{label}#{iteration}"


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice nearest to `word` (case-insensitive first), or None when nothing is close."""
    options = list(choices)
    by_lower = {c.lower(): c for c in options}
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return by_lower[word.lower()]
    close = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    match = closest(word, choices, cutoff)
    return f" (did you mean '{match}'?)" if match else ""
