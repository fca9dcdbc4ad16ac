"""The warm-up hold: who goes first, who waits, and for how long (engine/warmup.py)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.engine.warmup import Warmup, police

CONTEXT = "Background every item shares. " * 700  # ~21,000 characters: ~5,000 tokens


def marked(prompt: str = "item", *, model: str = "claude-sonnet-5-5") -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": CONTEXT, "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": prompt},
                ],
            }
        ],
    }


class Calls:
    """Calls through one Warmup, recording who got past the hold; item 0 can be kept in flight."""

    def __init__(self, warmup: Warmup) -> None:
        self.warmup = warmup
        self.passed: list[int] = []
        self.release = anyio.Event()
        self.everyone = anyio.Event()
        self.expected = 0

    async def call(self, i: int, *, fail: bool = False, block: bool = False) -> None:
        _, prefix = self.warmup.prepare(marked(f"item {i}"))
        try:
            async with self.warmup.admit(prefix):
                self.passed.append(i)
                if len(self.passed) == self.expected:
                    self.everyone.set()
                if block:
                    await self.release.wait()
                if fail:
                    raise RuntimeError("the leader's call failed")
        except RuntimeError:
            pass


async def test_the_rest_wait_until_the_first_call_returns() -> None:
    calls = Calls(Warmup(hold_s=60, minimum=lambda _model: 1024))
    calls.expected = 5
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: calls.call(0, block=True))
        await anyio.wait_all_tasks_blocked()
        for i in range(1, 5):
            tg.start_soon(calls.call, i)
        await anyio.wait_all_tasks_blocked()
        assert calls.passed == [0]  # four requests held behind the first
        assert calls.warmup.held == 4
        calls.release.set()
    assert sorted(calls.passed) == [0, 1, 2, 3, 4]


async def test_a_warm_prefix_is_not_held_again() -> None:
    calls = Calls(Warmup(hold_s=60, minimum=lambda _model: 1024))
    await calls.call(0)
    calls.expected = 4
    async with anyio.create_task_group() as tg:
        for i in range(1, 4):
            tg.start_soon(lambda i=i: calls.call(i, block=True))  # none waits for another
        with anyio.fail_after(30):
            await calls.everyone.wait()  # all three in flight at once
        assert sorted(calls.passed) == [0, 1, 2, 3]
        calls.release.set()
    assert calls.warmup.held == 0


async def test_a_failed_leader_hands_the_lead_to_one_waiter() -> None:
    calls = Calls(Warmup(hold_s=60, minimum=lambda _model: 1024))
    calls.expected = 4
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: calls.call(0, fail=True, block=True))
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(lambda: calls.call(1, block=True))  # becomes the next leader, kept in flight
        await anyio.wait_all_tasks_blocked()
        for i in (2, 3):
            tg.start_soon(calls.call, i)
        await anyio.wait_all_tasks_blocked()
        assert calls.passed == [0]
        calls.release.set()  # 0 fails; 1 leads and returns; then 2 and 3 go
        with anyio.fail_after(30):
            await calls.everyone.wait()
    assert calls.passed[:2] == [0, 1]
    assert sorted(calls.passed) == [0, 1, 2, 3]


async def test_the_bound_releases_the_rest_while_the_first_is_still_in_flight() -> None:
    calls = Calls(Warmup(hold_s=0.05, minimum=lambda _model: 1024))
    calls.expected = 4
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: calls.call(0, block=True))
        await anyio.wait_all_tasks_blocked()
        for i in range(1, 4):
            tg.start_soon(calls.call, i)
        with anyio.fail_after(30):
            await calls.everyone.wait()  # without the leader having returned
        assert not calls.release.is_set()
        calls.release.set()


async def test_no_hold_when_it_is_turned_off() -> None:
    calls = Calls(Warmup(hold_s=0, minimum=lambda _model: 1024))
    calls.expected = 3
    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(lambda i=i: calls.call(i, block=True))
        with anyio.fail_after(30):
            await calls.everyone.wait()
        calls.release.set()
    assert calls.warmup.held == 0


def test_marks_below_the_minimum_come_off_and_nothing_is_held() -> None:
    request = marked()
    policed, prefix = police(request, minimum=8192)  # the ~5,000-token prefix is too short
    assert prefix is None
    assert "cache_control" not in policed["system"][0]
    assert all("cache_control" not in b for b in policed["messages"][0]["content"])
    assert "cache_control" in request["system"][0]  # the caller's request is left alone


def test_a_short_system_mark_comes_off_but_the_long_context_keeps_its_own() -> None:
    policed, prefix = police(marked(), minimum=1024)
    assert "cache_control" not in policed["system"][0]  # "Be brief." alone is ~2 tokens
    assert policed["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert prefix is not None and prefix.tokens >= 5000


def test_the_prefix_key_is_per_model_and_ignores_the_item_prompt() -> None:
    _, a = police(marked("item 1"), minimum=1024)
    _, b = police(marked("item 2"), minimum=1024)
    _, c = police(marked("item 1", model="claude-opus-5-5"), minimum=1024)
    assert a is not None and b is not None and c is not None
    assert a.key == b.key
    assert a.key != c.key


@pytest.mark.parametrize("ttl, seconds", [("5m", 300.0), ("1h", 3600.0)])
def test_the_prefix_keeps_the_ttl_its_marks_ask_for(ttl: str, seconds: float) -> None:
    request = marked()
    request["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    _, prefix = police(request, minimum=1024)
    assert prefix is not None and prefix.ttl_s == seconds
