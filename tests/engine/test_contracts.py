"""The contracts every package shares: names kept, usage arithmetic, the LLM protocols."""

from __future__ import annotations

from typing import Any

import orchestrator.contracts as contracts
from orchestrator.contracts import (
    LLM,
    BatchLLM,
    LLMResponse,
    TaskResult,
    Usage,
    add_cost,
    supports_batches,
)
from orchestrator.llm.client import AnthropicLLM
from orchestrator.testing import FakeLLM

# Every name other packages import from `orchestrator.contracts` (it was one module).
KEPT = {
    "BUILTIN_TOOL_NAMES",
    "CLIENT_TOOLS",
    "JSON",
    "LLM",
    "SERVER_TOOLS",
    "BatchItem",
    "BatchLLM",
    "CallFn",
    "Emit",
    "LLMResponse",
    "RateLimitInfo",
    "StateAccess",
    "TaskResult",
    "TaskSpec",
    "Usage",
    "WorkerContext",
    # questions for people (issue 17)
    "Answer",
    "ApproveFn",
    "Asked",
    "People",
    "Question",
    # agents that start agents, and call-level replay (issue 16)
    "DELEGATE_TOOLS",
    "Delegate",
    "Delegated",
    "RecordedCall",
    "Replay",
}


def test_every_name_is_still_importable_from_the_package() -> None:
    assert set(contracts.__all__) == KEPT | {
        "add_cost",
        "supports_batches",
        "check_answer",
        "request_fingerprint",
    }
    for name in contracts.__all__:
        assert getattr(contracts, name) is not None


def test_usage_adds_and_totals_in_the_api_names() -> None:
    a = Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=100)
    b = Usage(
        input_tokens=1,
        cache_creation_input_tokens=30,
        cache_creation_1h_input_tokens=30,
    )
    total = a + b
    assert total == Usage(
        input_tokens=11,
        output_tokens=5,
        cache_creation_input_tokens=30,
        cache_read_input_tokens=100,
        cache_creation_1h_input_tokens=30,
    )
    assert a.input_tokens == 10  # `+` makes a new one
    assert (total.total_input_tokens, total.total_tokens) == (141, 146)
    a += b
    assert a == total
    assert sum([a, b], Usage()) == a + b


def test_usage_from_dict_reads_missing_and_null_as_zero() -> None:
    assert Usage.from_dict(None) == Usage()
    assert Usage.from_dict({"input_tokens": 3, "output_tokens": None, "other": 9}) == Usage(
        input_tokens=3
    )
    usage = Usage(1, 2, 3, 4, 1, 2)
    assert Usage.from_dict(usage.to_dict()) == usage


def test_an_unknown_cost_stays_unknown_in_a_sum() -> None:
    assert add_cost(0.5, 0.25) == 0.75
    assert add_cost(None, 0.25) is None and add_cost(0.5, None) is None


def test_a_task_result_counts_what_another_attempt_spent() -> None:
    result = TaskResult(output="ok", usage=Usage(input_tokens=5), cost_usd=0.1, turns=1, calls=1)
    result.add_spent(TaskResult(output=None, usage=Usage(input_tokens=7), cost_usd=0.2, calls=2))
    assert (result.usage.input_tokens, result.calls, result.turns) == (12, 3, 1)
    assert result.cost_usd is not None and abs(result.cost_usd - 0.3) < 1e-9
    result.add_spent(TaskResult(output=None, cost_usd=None))
    assert result.cost_usd is None


class OnlineOnly:
    async def create(self, request: dict[str, Any], *, stream: bool = False) -> LLMResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def test_batch_support_is_a_protocol_check_not_a_name_probe() -> None:
    assert supports_batches(FakeLLM())
    assert not supports_batches(OnlineOnly())
    assert isinstance(OnlineOnly(), LLM)
    # the real client still implements both protocols (checked on the class: no client built)
    assert issubclass(AnthropicLLM, BatchLLM)
