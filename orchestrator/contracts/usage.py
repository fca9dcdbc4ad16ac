"""Token usage and cost: the one vocabulary for tokens, from the API's response to the screen.

Field names are the Messages API's own (`input_tokens`, `output_tokens`,
`cache_creation_input_tokens`, `cache_read_input_tokens`), plus the 5-minute / 1-hour split of
cache writes (`usage.cache_creation.ephemeral_{5m,1h}_input_tokens` in the API), so a number can
be followed from the wire to the store and the display without a rename.

Cost is a `float | None`: None means a model had no price in configs, and stays None once any
part of a sum is unknown (`add_cost`), so an unknown cost is never shown as a small known one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class Usage:
    """Token usage as the API reports it. `cache_creation_input_tokens` = 5m + 1h parts."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0

    def add(self, other: Usage) -> Usage:
        """Add `other` into this one (in place); returns self."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens
        self.cache_creation_5m_input_tokens += other.cache_creation_5m_input_tokens
        self.cache_creation_1h_input_tokens += other.cache_creation_1h_input_tokens
        return self

    def __add__(self, other: Usage) -> Usage:
        return Usage().add(self).add(other)

    def __iadd__(self, other: Usage) -> Usage:
        return self.add(other)

    @property
    def total_input_tokens(self) -> int:
        """Every input token of the request: uncached, written to and read from the cache
        (what the input-tokens rate limit and the context window see)."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total_tokens(self) -> int:
        """Input (all three kinds) plus output: what a run's `max_tokens` budget counts."""
        return self.total_input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_5m_input_tokens": self.cache_creation_5m_input_tokens,
            "cache_creation_1h_input_tokens": self.cache_creation_1h_input_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        """From `to_dict()` output or any mapping with these names; missing or null are 0."""
        data = data or {}
        return cls(*(int(data.get(name) or 0) for name in _FIELDS))


_FIELDS = tuple(f.name for f in fields(Usage))


def add_cost(total: float | None, more: float | None) -> float | None:
    """`total + more`, where an unknown (None) part makes the sum unknown."""
    if total is None or more is None:
        return None
    return total + more
