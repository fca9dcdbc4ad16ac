"""JSON in TEXT columns, and the read side's results that are not table rows: aggregates
(`CostRow`, `StepSummary`), what a resume needs (`ResumePoint`) and the outcome of claiming a
run (`Claim`). The table rows themselves are the SQLModel classes of `models.py`.

Usage is kept as one `contracts.Usage` (the Messages API's names), so every total is summed by
`Usage.add` and `Usage.total_tokens`, nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.contracts import JSON, RecordedCall, Usage

_dumps = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False).encode

USAGE_FIELDS: tuple[str, ...] = tuple(Usage.__dataclass_fields__)
"""The token columns of runs, tasks and calls, in `Usage`'s order (the API's names)."""


def dump_json(value: Any) -> str | None:
    """JSON into a TEXT column; None stays SQL NULL. Unknown types degrade to their str()."""
    if value is None:
        return None
    return _dumps(value)


def load_json(text: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text)


def usage_of(values: Iterable[Any]) -> Usage:
    """A `Usage` from SQL sums in `USAGE_FIELDS` order (NULL, for no rows, is 0)."""
    return Usage(*(int(v or 0) for v in values))


def usage_dict(usage: Usage) -> dict[str, int]:
    """The JSON form of a usage everywhere in `runs ... --json`: the API's names plus `tokens`."""
    return {**usage.to_dict(), "tokens": usage.total_tokens}


@dataclass(frozen=True, slots=True)
class CostRow:
    """Spend of one model in one step, summed over its calls."""

    step_id: str
    model: str
    calls: int
    usage: Usage
    cost_usd: float | None  # None when some call had no price

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "model": self.model,
            "calls": self.calls,
            **usage_dict(self.usage),
            "cost_usd": self.cost_usd,
            "cost_unknown": self.cost_usd is None,
        }

    @staticmethod
    def totals(rows: Iterable[CostRow]) -> dict[str, Any]:
        """The `totals` of `runs cost --json`."""
        usage = Usage()
        calls, cost, unknown = 0, 0.0, False
        for row in rows:
            usage.add(row.usage)
            calls += row.calls
            cost += row.cost_usd or 0.0
            unknown = unknown or row.cost_usd is None
        return {
            "calls": calls,
            **usage_dict(usage),
            "cost_usd": round(cost, 10),
            "cost_unknown": unknown,
        }


@dataclass(frozen=True, slots=True)
class StepSummary:
    step_id: str
    iteration: int | None
    kind: str
    status: str
    tasks_total: int
    tasks_done: int
    tasks_failed: int
    tasks_skipped: int
    calls: int
    usage: Usage
    cost_usd: float | None  # None when some call had no price
    duration_s: float | None  # None while running
    exhausted: bool | None = None  # loops: stopped at max_iterations with `until` false

    @property
    def cache_hit_ratio(self) -> float | None:
        """cache reads / (input + cache reads + cache writes): the prompt served from cache."""
        u = self.usage
        prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
        return u.cache_read_input_tokens / prompt if prompt else None

    def to_dict(self) -> dict[str, Any]:
        """A step of `runs show --json`."""
        ratio = self.cache_hit_ratio
        return {
            "id": self.step_id,
            "kind": self.kind,
            "status": self.status,
            "iteration": self.iteration,
            "tasks_total": self.tasks_total,
            "tasks_succeeded": self.tasks_done,
            "tasks_failed": self.tasks_failed,
            "tasks_skipped": self.tasks_skipped,
            "calls": self.calls,
            **usage_dict(self.usage),
            "cost_usd": self.cost_usd,
            "cost_unknown": self.cost_usd is None,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "cache_hit_ratio": None if ratio is None else round(ratio, 4),
            "exhausted": self.exhausted,
        }


@dataclass(frozen=True, slots=True)
class PriorResult:
    """A task that succeeded in an earlier attempt at the run: resume keeps it."""

    output: JSON
    usage: Usage
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Everything a resume needs from the store, as plain data (the engine's `ResumeState`
    takes the same fields)."""

    tasks: dict[str, PriorResult] = field(default_factory=dict)  # by task key
    state: dict[str, JSON] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)  # step path -> batch ids
    spent_usd: float = 0.0
    spent_tokens: int = 0
    spent_by_step: dict[str, tuple[float, int]] = field(default_factory=dict)  # from the calls
    # task key -> the calls of its conversation, for a task in flight when its process ended
    conversations: dict[str, list[RecordedCall]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of `Store.claim_run`: `ok`, or why not (`reason` is a sentence)."""

    ok: bool
    status: str  # the run's status as shown before the claim
    reason: str = ""
