"""Caches warm before the crowd: the prompt-cache policy applied where calls are admitted.

The API makes a cache entry readable only once the first response that wrote it has begun, so a
fan-out that fires 200 requests with one shared prefix at once pays 200 cache writes. `Warmup`
holds every request whose marked prefix is not yet known to be cached behind the first one (the
leader) until the leader's attempt returns, or until `hold_s` has passed since the leader left;
then the rest go and read the cache. The same holds for any step's requests that share a marked
prefix (a Claude Code worker's, through the proxy), since the key is the prefix itself.

Invariants:
- A prefix is marked only if it reaches the model's minimum cacheable length (`cache.min_tokens`,
  estimated at ~4 characters a token); below it the marks are taken out before the request is
  sent or recorded, and nothing is held: the API would not cache it, so waiting buys nothing.
- At most one leader per prefix is in flight. A leader that fails (or is cancelled) hands the
  lead to the next waiter; one that succeeds marks the prefix warm for its TTL, refreshed on
  every later use, as the API refreshes an entry it reads.
- A request is never held longer than `hold_s` in all, however many leaders fail in turn, and
  never past `hold_s` after the current leader was sent: a slow or failing leader delays the
  others by at most that much. `hold_s <= 0` turns the hold off (marks are still policed).
- The TTL of a step's prefix is a pure decision (`choose_ttl`): 1h when the prefix is used again
  more than 5 minutes after it was last used, since an expired entry is written again at 1.25x
  while a needless 1h write costs 0.75x once. That is: a fan-out expected to outlast 5 minutes;
  a step in a `loop:` body whose loop's period (expected from its body's steps, then measured
  from one iteration's start of the step to the next: `LoopPeriod`) exceeds 5 minutes; or any
  marked prefix of a workflow whose `schedule:` repeats it every 5 to 60 minutes (the cache is
  shared by runs with the same prefix; past an hour a 1h entry is gone too, so 5m is cheaper).
Touched only from the run's event loop: no lock.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

CHARS_PER_TOKEN = 4  # as the dispatcher's estimate
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
# An expected-duration guess per task: one reply of max_tokens at this many output tokens a
# second. It leans long (most replies are shorter), which is the cheap side to err on (see above).
OUTPUT_TOKENS_PER_S = 50.0


# --- the TTL decision --------------------------------------------------------------------------


def expected_step_s(items: int, width: int, max_tokens: int) -> float:
    """Seconds a fan-out of `items` at `width` in flight is expected to take."""
    rounds = math.ceil(max(1, items) / max(1, width))
    return rounds * max_tokens / OUTPUT_TOKENS_PER_S


def choose_ttl(
    configured: str,
    expected_s: float | None,
    *,
    loop_period_s: float | None = None,
    measured: bool = False,
    schedule_s: float | None = None,
) -> tuple[str, str]:
    """(ttl, why): `configured` unless it is `auto`; then 1h when the step's `expected_s`, or
    the period of the loop it is in (`measured` or expected), exceeds 5 min, or the workflow's
    schedule repeats every 5 to 60 min (`schedule_s`)."""
    if configured != "auto":
        return configured, "set in configs (cache.ttl)"
    five = TTL_SECONDS["5m"]
    if expected_s is not None and expected_s > five:
        return "1h", f"expected to run {_minutes(expected_s)}, longer than the 5m TTL"
    if loop_period_s is not None and loop_period_s > five:
        how = "measured" if measured else "expected"
        return "1h", (
            f"its loop's period ({how}: {_minutes(loop_period_s)} from one iteration's call to "
            "the next) is longer than the 5m TTL"
        )
    if schedule_s is not None and five < schedule_s <= TTL_SECONDS["1h"]:
        return "1h", (
            f"the workflow's schedule runs it every {_minutes(schedule_s)}: the next run reads "
            "the prefix within the 1h TTL"
        )
    return "5m", "expected to be used again within 5 min"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


@dataclass(slots=True)
class LoopPeriod:
    """One running loop's period, for the TTL of the prefixes its body's steps repeat once per
    iteration: expected from the body's steps before a step has run twice, then measured as the
    time from the step's start in the last iteration to its start in this one (a person
    answering an `ask`, a long sub-step, anything the expectation could not see)."""

    expected_s: float | None
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)  # step path -> when it last started

    def starting(self, path: str) -> tuple[float | None, bool]:
        """(period in seconds or None, measured) for the step at `path`, starting now."""
        now = self.clock()
        last = self._last.get(path)
        self._last[path] = now
        if last is None:
            return self.expected_s, False
        return now - last, True


# --- marks and the prefix they close -----------------------------------------------------------


def _size(block: Any) -> int:
    if isinstance(block, dict) and block.get("type") == "text" and "text" in block:
        return len(str(block["text"]))
    if isinstance(block, str):
        return len(block)
    return len(json.dumps(block, default=str, sort_keys=True))


def _blocks(request: dict[str, Any]) -> list[tuple[str, int, int, Any]]:
    """Every cacheable block in prefix order (tools, system, messages) as (where, i, j, block)."""
    out: list[tuple[str, int, int, Any]] = []
    for i, tool in enumerate(request.get("tools") or ()):
        out.append(("tools", i, 0, tool))
    system = request.get("system")
    if isinstance(system, list):
        out.extend(("system", i, 0, b) for i, b in enumerate(system))
    elif system:
        out.append(("system", 0, 0, system))
    for i, message in enumerate(request.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            out.extend(("messages", i, j, b) for j, b in enumerate(content))
        elif content:
            out.append(("messages", i, 0, content))
    return out


def _marked(block: Any) -> str | None:
    """The TTL a block's `cache_control` asks for, or None when it has none."""
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return str(block["cache_control"].get("ttl") or "5m")
    return None


def _unmark(request: dict[str, Any], where: str, i: int, j: int) -> None:
    """Take one block's `cache_control` off, copying only the containers on its path."""
    if where == "tools":
        tools = request["tools"] = list(request["tools"])
        tools[i] = {k: v for k, v in tools[i].items() if k != "cache_control"}
    elif where == "system":
        system = request["system"] = list(request["system"])
        system[i] = {k: v for k, v in system[i].items() if k != "cache_control"}
    else:
        messages = request["messages"] = list(request["messages"])
        content = list(messages[i]["content"])
        content[j] = {k: v for k, v in content[j].items() if k != "cache_control"}
        messages[i] = {**messages[i], "content": content}


@dataclass(frozen=True, slots=True)
class Prefix:
    key: str  # hash of the model and every block up to the last mark kept
    ttl_s: float  # the longest TTL its marks ask for
    tokens: int  # estimated length of the prefix


def police(request: dict[str, Any], minimum: int) -> tuple[dict[str, Any], Prefix | None]:
    """The request with every mark below `minimum` tokens taken out (the same dict when none
    is), and the prefix its last remaining mark closes (None when no mark remains)."""
    blocks = _blocks(request)
    if not any(_marked(b[3]) for b in blocks):
        return request, None
    digest = hashlib.blake2b(str(request.get("model")).encode(), digest_size=16)
    chars = 0
    last: tuple[str, int] | None = None  # (key, tokens) at the last mark kept
    ttl_s = 0.0
    out = request
    for where, i, j, block in blocks:
        chars += _size(block)
        digest.update(json.dumps(block, default=str, sort_keys=True).encode())
        ttl = _marked(block)
        if ttl is None:
            continue
        tokens = chars // CHARS_PER_TOKEN
        if tokens < minimum:
            if out is request:
                out = dict(request)
            _unmark(out, where, i, j)
            continue
        last = (digest.hexdigest(), tokens)
        ttl_s = max(ttl_s, TTL_SECONDS.get(ttl, 300.0))
    if last is None:
        return out, None
    return out, Prefix(key=last[0], ttl_s=ttl_s, tokens=last[1])


# --- the hold ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    warm_until: float = 0.0
    leading: bool = False
    deadline: float = 0.0  # when waiters stop waiting for the current leader
    turn: anyio.Event = field(default_factory=anyio.Event)  # set when the leader's attempt ends


class Warmup:
    """The hold and the mark policy of one run (see the module docstring)."""

    def __init__(
        self,
        *,
        hold_s: float,
        minimum: Callable[[str], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hold_s = hold_s
        self._minimum = minimum
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self.held = 0  # requests that waited behind a leader (for tests and the bench)

    def prepare(self, request: dict[str, Any]) -> tuple[dict[str, Any], Prefix | None]:
        """The request as it will be sent (marks policed) and its cacheable prefix."""
        return police(request, self._minimum(str(request.get("model") or "")))

    @asynccontextmanager
    async def admit(self, prefix: Prefix | None) -> AsyncIterator[None]:
        """Around one attempt: waits while another request leads `prefix` (up to the bound),
        or leads it itself."""
        if prefix is None or self.hold_s <= 0:
            yield
            return
        entry = self._entries.setdefault(prefix.key, _Entry())
        waited = False
        give_up = self._clock() + self.hold_s  # however many leaders fail in turn
        while True:
            now = self._clock()
            if entry.warm_until > now:
                entry.warm_until = now + prefix.ttl_s  # a read refreshes the entry
                yield
                return
            if not entry.leading:
                break
            until = min(entry.deadline, give_up)
            if now >= until:  # the bound: stop waiting for a slow leader
                yield
                return
            if not waited:
                waited = True
                self.held += 1
            with anyio.move_on_after(until - now):
                await entry.turn.wait()
        entry.leading = True
        entry.deadline = self._clock() + self.hold_s
        entry.turn = anyio.Event()
        ok = False
        try:
            yield
            ok = True
        finally:
            if ok:
                entry.warm_until = self._clock() + prefix.ttl_s
            entry.leading = False
            entry.turn.set()
