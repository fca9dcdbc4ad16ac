"""JSON as the read commands print it: numbers a person or a script can compare."""

from __future__ import annotations

from typing import Any


def clean_costs(value: Any) -> Any:
    """`value` with every `*cost_usd` rounded to 8 decimals (a hundred-millionth of a dollar):
    a sum of many prices is `0.1380599999999999` in binary floating point, not the `0.13806` a
    person (or a script comparing totals) expects."""
    if isinstance(value, dict):
        return {
            k: round(v, 8)
            if isinstance(v, float) and isinstance(k, str) and k.endswith("cost_usd")
            else clean_costs(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [clean_costs(v) for v in value]
    return value
