"""Budgets: dollars and tokens, for the run and for single steps, checked before each call.

A call reserves its worst case (estimated input, full `max_tokens` of output) in every budget
that covers it (the run's, and the `budget:` of its step and of each enclosing step) before it is
sent, and settles to its exact usage after. When a reservation does not fit, the call waits for
calls in flight to settle (each replaces its reservation by what it cost, usually far less) and
tries again; it is refused only when it would not fit even if every call in flight cost nothing,
that is when `spent + worst case > limit`. So a run spends what it allows, less at most one
call's worst case, and never more than it allows.

A refused call raises `BudgetExceeded` (`step` set when a step's budget refused it). The run's
budget stops the run (it ends `budget_exceeded`, resumable with a larger budget); a step's
stops that step only (its tasks that have not started fail with the same message).

A resumed run's budgets go on from what the earlier processes spent: the run's from its total,
each step's from the calls recorded under that step (`prior`, by step path as run, read from the
store by the CLI), so resuming with the same `budget:` spends nothing more and a larger one only
the difference.

Invariants: `spent + reserved <= limit` at all times, per budget and per unit (dollars, tokens);
a reservation is settled exactly once; nothing here awaits except a refused-for-now `reserve`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import anyio

from orchestrator.errors import BudgetExceeded
from orchestrator.workflow import Workflow

__all__ = ["Budget", "Reservation", "StepBudget", "covers", "step_budgets"]

_INDEX = re.compile(r"\[\d+\]")


def covers(step: str, path: str) -> bool:
    """Whether a budget on the step at `step` (a path as written: `polish.draft`) covers a task
    of the step at `path` (as run: `topics[3].draft`). Fan-out indexes do not count: a budget
    covers every item and every iteration of its step and of the steps inside it, and every agent
    its tasks start with `Task` (`lead/researcher`, issue 16)."""
    plain = _INDEX.sub("", path)
    return plain == step or plain.startswith((step + ".", step + "/"))


def _usd(amount: float) -> str:
    return f"${amount:.4f}"


@dataclass(slots=True)
class _Limit:
    """One budget's counters: spent (settled) and reserved (in flight)."""

    name: str  # "the run" or "step 'research'"
    cost_key: str  # what to raise: "--max-cost-usd" or "step 'x' budget.max_cost_usd"
    tokens_key: str
    max_cost_usd: float | None
    max_tokens: int | None
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    exceeded: str | None = None  # why, once a call was refused for good

    def fits(self, cost: float, tokens: int) -> bool:
        return (
            self.max_cost_usd is None
            or self.spent_usd + self.reserved_usd + cost <= self.max_cost_usd
        ) and (
            self.max_tokens is None
            or self.spent_tokens + self.reserved_tokens + tokens <= self.max_tokens
        )

    def refusal(self, cost: float, tokens: int) -> str | None:
        """Why the call can never fit (even if every call in flight cost nothing), or None."""
        if self.max_cost_usd is not None and self.spent_usd + cost > self.max_cost_usd:
            remaining = max(0.0, self.max_cost_usd - self.spent_usd - self.reserved_usd)
            return (
                f"budget reached for {self.name}: {_usd(self.spent_usd)} spent and "
                f"{_usd(self.reserved_usd)} reserved by calls in flight, "
                f"{_usd(remaining)} remaining of max_cost_usd ${self.max_cost_usd:.2f}; "
                f"the next call could cost up to {_usd(cost)} (its max_tokens at the model's "
                f"price); raise it with {self.cost_key}"
            )
        if self.max_tokens is not None and self.spent_tokens + tokens > self.max_tokens:
            remaining_tokens = max(0, self.max_tokens - self.spent_tokens - self.reserved_tokens)
            return (
                f"budget reached for {self.name}: {self.spent_tokens} tokens used and "
                f"{self.reserved_tokens} reserved by calls in flight, {remaining_tokens} "
                f"remaining of max_tokens {self.max_tokens}; the next call could use up to "
                f"{tokens}; raise it with {self.tokens_key}"
            )
        return None

    def hold(self, cost: float, tokens: int) -> None:
        self.reserved_usd += cost
        self.reserved_tokens += tokens

    def release(self, cost: float, tokens: int) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - cost)
        self.reserved_tokens = max(0, self.reserved_tokens - tokens)

    def add(self, cost: float | None, tokens: int) -> None:
        self.spent_usd += cost or 0.0
        self.spent_tokens += tokens


@dataclass(frozen=True, slots=True)
class StepBudget:
    """A step's `budget:` as the workflow writes it, at the step's path."""

    path: str
    max_cost_usd: float | None
    max_tokens: int | None


@dataclass(slots=True)
class Reservation:
    cost_usd: float
    tokens: int
    limits: tuple[_Limit, ...] = field(default=())


class Budget:
    """The run's budget and its steps' budgets; the dispatcher's one place to ask."""

    def __init__(
        self,
        *,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
        spent_usd: float = 0.0,
        spent_tokens: int = 0,
        steps: Iterable[StepBudget] = (),
        prior: Mapping[str, tuple[float, int]] | None = None,
    ) -> None:
        """`prior`: step path as run (`topics[3].draft`) -> (dollars, tokens) its calls spent
        in earlier processes of this run; each step budget starts from what it covers."""
        self._run = _Limit(
            "the run",
            "--max-cost-usd",
            "--max-tokens",
            max_cost_usd,
            max_tokens,
            spent_usd,
            spent_tokens,
        )
        steps = list(steps)
        self._steps = [
            _Limit(
                f"step '{s.path}'",
                f"budget.max_cost_usd on step '{s.path}'",
                f"budget.max_tokens on step '{s.path}'",
                s.max_cost_usd,
                s.max_tokens,
                *_spent_under(s.path, prior or {}),
            )
            for s in steps
        ]
        self._paths = [s.path for s in steps]
        self._changed: anyio.Event | None = None  # set when a reservation settles
        self.waits = 0  # reservations that had to wait for calls in flight (for the history)

    # the run's counters, as the rest of the engine reads them
    @property
    def max_cost_usd(self) -> float | None:
        return self._run.max_cost_usd

    @property
    def max_tokens(self) -> int | None:
        return self._run.max_tokens

    @property
    def spent_usd(self) -> float:
        return self._run.spent_usd

    @property
    def spent_tokens(self) -> int:
        return self._run.spent_tokens

    @property
    def reserved_usd(self) -> float:
        return self._run.reserved_usd

    @property
    def reserved_tokens(self) -> int:
        return self._run.reserved_tokens

    @property
    def exceeded(self) -> str | None:
        """Why the run's budget refused a call, once it did."""
        return self._run.exceeded

    def _covering(self, step: str) -> list[tuple[str | None, _Limit]]:
        found: list[tuple[str | None, _Limit]] = [(None, self._run)]
        found += [
            (p, lim) for p, lim in zip(self._paths, self._steps, strict=True) if covers(p, step)
        ]
        return found

    def step_exceeded(self, step: str) -> str | None:
        """Why a budget of `step` or of a step around it refused a call, once one did."""
        for path, limit in self._covering(step):
            if path is not None and limit.exceeded:
                return limit.exceeded
        return None

    async def reserve(self, cost_usd: float, tokens: int, *, step: str = "") -> Reservation:
        """Hold this call's worst case in every budget covering `step`, waiting for calls in
        flight to settle while it does not fit; raise `BudgetExceeded` once it never can."""
        covering = self._covering(step)
        waited = False
        while True:
            for path, limit in covering:
                if limit.exceeded is None:
                    limit.exceeded = limit.refusal(cost_usd, tokens)
                if limit.exceeded is not None:
                    raise BudgetExceeded(limit.exceeded, step=path)
            if all(limit.fits(cost_usd, tokens) for _, limit in covering):
                break
            if not waited:
                waited = True
                self.waits += 1
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        limits = tuple(limit for _, limit in covering)
        for limit in limits:
            limit.hold(cost_usd, tokens)
        return Reservation(cost_usd, tokens, limits)

    def settle(self, reservation: Reservation, cost_usd: float | None, tokens: int) -> None:
        """Replace the reservation by what the call cost (an unknown cost counts as 0)."""
        for limit in reservation.limits:
            limit.release(reservation.cost_usd, reservation.tokens)
            limit.add(cost_usd, tokens)
        reservation.limits = ()  # settled once, even if called again
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def spend(self, cost_usd: float | None, tokens: int, *, step: str = "") -> None:
        """Count what was used with no reservation (batch results)."""
        for _, limit in self._covering(step):
            limit.add(cost_usd, tokens)


def _spent_under(step: str, prior: Mapping[str, tuple[float, int]]) -> tuple[float, int]:
    """What the calls of the steps a budget on `step` covers already spent."""
    covered = [spent for path, spent in prior.items() if covers(step, path)]
    return sum(usd for usd, _ in covered), sum(tokens for _, tokens in covered)


def step_budgets(workflow: Workflow, prefix: str = "") -> list[StepBudget]:
    """Every step's `budget:` in `workflow`, by path: loop and group bodies and sub-workflows
    included (a sub-workflow's steps sit under the step that calls it)."""
    found: list[StepBudget] = []
    for path, step in workflow.iter_steps():
        spec = step.budget
        if spec is not None and (spec.max_cost_usd is not None or spec.max_tokens is not None):
            found.append(StepBudget(prefix + path, spec.max_cost_usd, spec.max_tokens))
        if step.sub is not None:
            found += step_budgets(step.sub, f"{prefix}{path}.")
    return found
