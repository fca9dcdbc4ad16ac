"""Run budgets: dollars and tokens, checked before each call against spent plus reserved.

A call reserves its worst case (estimated input, full `max_tokens` of output) before it is sent
and settles to the exact usage after. Once a limit would be crossed, no new call starts; calls in
flight finish and are recorded; the run ends `budget_exceeded` and can be resumed with a larger
budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.errors import BudgetExceeded


@dataclass
class Reservation:
    cost_usd: float
    tokens: int


class Budget:
    def __init__(
        self,
        *,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
        spent_usd: float = 0.0,
        spent_tokens: int = 0,
    ) -> None:
        self.max_cost_usd = max_cost_usd
        self.max_tokens = max_tokens
        self.spent_usd = spent_usd
        self.spent_tokens = spent_tokens
        self.reserved_usd = 0.0
        self.reserved_tokens = 0
        self.exceeded: str | None = None  # why, once a limit was hit

    def reserve(self, cost_usd: float, tokens: int) -> Reservation:
        """Raise `BudgetExceeded` if this call could cross a limit; else hold its worst case."""
        if self.exceeded:
            raise BudgetExceeded(self.exceeded)
        if (
            self.max_cost_usd is not None
            and self.spent_usd + self.reserved_usd + cost_usd > self.max_cost_usd
        ):
            self.exceeded = (
                f"budget reached: ${self.spent_usd:.4f} spent of max_cost_usd "
                f"${self.max_cost_usd:.2f}, and the next call could cost up to ${cost_usd:.4f} "
                "(its max_tokens at the model's price); raise it with --max-cost-usd"
            )
            raise BudgetExceeded(self.exceeded)
        if (
            self.max_tokens is not None
            and self.spent_tokens + self.reserved_tokens + tokens > self.max_tokens
        ):
            self.exceeded = (
                f"budget reached: {self.spent_tokens} tokens used of max_tokens "
                f"{self.max_tokens}, and the next call could use up to {tokens}; "
                "raise it with --max-tokens"
            )
            raise BudgetExceeded(self.exceeded)
        self.reserved_usd += cost_usd
        self.reserved_tokens += tokens
        return Reservation(cost_usd, tokens)

    def settle(self, reservation: Reservation, cost_usd: float | None, tokens: int) -> None:
        self.reserved_usd -= reservation.cost_usd
        self.reserved_tokens -= reservation.tokens
        self.spend(cost_usd, tokens)

    def spend(self, cost_usd: float | None, tokens: int) -> None:
        """Count what was used (an unknown cost counts as 0: it cannot be checked)."""
        self.spent_usd += cost_usd or 0.0
        self.spent_tokens += tokens
