"""The dispatcher: the one place a Messages API call is sent from.

Workers call `Dispatcher.call(spec, request)`; the dispatcher waits for the overload gate, the
model's rate limits and the adaptive concurrency window, reserves budget, sends through the `LLM`,
and on a retryable error backs off (honouring `retry-after` on 429, exponential with full jitter
otherwise) until the retry horizon, measured in elapsed time, runs out. Every attempt becomes a
`CallFinished` event and every wait a `CallRetried` event, so the history shows all of it.

Budgets (`engine/budget.py`): a call whose worst case does not fit waits here for calls in flight
to settle, and is refused only once it never could fit.

Model fallback (`model: [opus, sonnet]`, the rest of the list in `TaskSpec.fallback_models`): a
choice of availability over model. When a task's call to one model has met 529 overload until
the retry horizon ran out, or the run-wide overload pause has opened twice on that model's
errors, the task's next call goes to the next model of its list (a new horizon), and so do its
later calls; each call records the model it went to (`CallFinished.model`).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from orchestrator.config import RateLimits, Settings
from orchestrator.contracts import LLM, Emit, LLMResponse, TaskSpec, Usage
from orchestrator.engine.backpressure import (
    AdaptiveConcurrency,
    Clock,
    ModelLimiter,
    OverloadGate,
    Sleep,
    full_jitter,
)
from orchestrator.engine.budget import Budget
from orchestrator.engine.estimate import estimate_input_tokens
from orchestrator.engine.warmup import Warmup
from orchestrator.errors import FatalError, RetryableError
from orchestrator.events import CallFinished, CallRetried, RateLimited, TextDelta
from orchestrator.events import Warning as WarningEvent
from orchestrator.ids import new_id
from orchestrator.states import CallStatus

__all__ = ["Dispatcher", "estimate_input_tokens"]


def _milestone(value: int, top: int) -> bool:
    return value == top or value & (value - 1) == 0


class SharedLimits:
    """What every run of one host shares (`orchestrate serve`): the per-model rate limiters,
    the overload gate (a storm of 529s pauses every run once, not each on its own) and a cap on
    calls in flight across all runs. A lone `orchestrate run` has none: its dispatcher owns its
    own."""

    def __init__(self, settings: Settings, *, concurrency: int, clock: Clock = time.monotonic):
        self.gate = OverloadGate(
            cluster=settings.retry.overload_cluster,
            pause_s=settings.retry.overload_pause,
            clock=clock,
        )
        self.limiters: dict[str, ModelLimiter] = {}
        self.in_flight = anyio.CapacityLimiter(concurrency)


class Dispatcher:
    def __init__(
        self,
        *,
        llm: LLM,
        settings: Settings,
        emit: Emit,
        run_id: str,
        concurrency: int,
        budget: Budget,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        rand: Callable[[], float] = random.random,
        batch: bool = False,
        shared: SharedLimits | None = None,
        before_request: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.llm = llm
        # awaited with the task's id just before each of its requests leaves (the store: its
        # earlier calls committed first, so a kill -9 loses at most the call in flight)
        self.before_request = before_request
        self.settings = settings
        self.emit = emit
        self.run_id = run_id
        self.budget = budget
        self.window = AdaptiveConcurrency(concurrency, clock)
        self.gate = (
            shared.gate
            if shared is not None
            else OverloadGate(
                cluster=settings.retry.overload_cluster,
                pause_s=settings.retry.overload_pause,
                clock=clock,
            )
        )
        self._limiters: dict[str, ModelLimiter] = {} if shared is None else shared.limiters
        self._in_flight = None if shared is None else shared.in_flight
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._unpriced: set[str] = set()
        self.warmup = Warmup(hold_s=settings.cache.hold, minimum=settings.cache.minimum)
        self.rate_limit_wait_s = 0.0
        self.calls = 0
        self.retries = 0
        # model fallback: overload pauses opened per model, the models they opened twice for
        # (tasks with a fallback skip those), and the tasks that fell back on their own
        self._pauses: Counter[str] = Counter()
        self._skipped: set[str] = set()
        self._fell_back: dict[str, int] = {}  # task id -> index in its model list
        self.fallbacks = 0

    def _limiter(self, model: str) -> ModelLimiter:
        limiter = self._limiters.get(model)
        if limiter is None:
            info = self.settings.model_info(model)
            limits = info.rate_limits if info else RateLimits()  # unknown model: defaults
            limiter = self._limiters[model] = ModelLimiter.from_limits(limits, self._clock)
        return limiter

    def _cost(self, model: str, usage: Usage) -> float | None:
        cost = self.settings.cost_usd(model, usage)
        if cost is None and model not in self._unpriced:
            self._unpriced.add(model)
            self.emit(
                WarningEvent(
                    run_id=self.run_id,
                    message=(
                        f"model '{model}' has no price in configs: its cost is unknown "
                        "(add it under models.catalog in orchestrate.yaml)"
                    ),
                )
            )
        return cost

    def _worst_case_cost(self, model: str, input_tokens: int, max_tokens: int) -> float:
        price = self.settings.price(model)
        if price is None:
            return 0.0
        return (input_tokens * price.input + max_tokens * price.output) / 1_000_000

    def _model(self, spec: TaskSpec, request: dict[str, Any]) -> str:
        """The model this call goes to: the request's, or for a task with a fallback list the
        first of its list it has not fallen back from and no run-wide pause has ruled out."""
        requested = str(request.get("model") or spec.model)
        if not spec.fallback_models or requested != spec.model:
            return requested
        chain = [spec.model, *spec.fallback_models]
        start = self._fell_back.get(spec.task_id, 0)
        for model in chain[start:-1]:
            if model not in self._skipped:
                return model
        return chain[-1]

    def _fall_back(self, spec: TaskSpec, model: str, why: str) -> str | None:
        """Move the task on to the model after `model` in its list; the new model, or None when
        `model` is its last."""
        chain = [spec.model, *spec.fallback_models]
        if model not in chain or chain.index(model) + 1 >= len(chain):
            return None
        index = chain.index(model) + 1
        self._fell_back[spec.task_id] = index
        self.fallbacks += 1
        self.emit(
            WarningEvent(
                run_id=self.run_id,
                step_id=spec.step_id,
                message=f"task {spec.key}: {why}; its next calls go to {chain[index]}",
            )
        )
        return chain[index]

    async def call(self, spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        stream = bool(request.pop("stream", False))
        request, prefix = self.warmup.prepare(request)  # marks below the minimum come off
        started = self._clock()
        attempt = 0
        first = 0  # the attempt before the current model's first (backoff restarts per model)
        model = self._model(spec, request)
        while True:
            attempt += 1
            if spec.fallback_models:
                now = self._model(spec, request)
                if now != model:  # ruled out run-wide meanwhile: a new model, a new horizon
                    model, started, first = now, self._clock(), attempt - 1
                request["model"] = model
            pause = self.gate.remaining()
            if pause > 0:
                self.rate_limit_wait_s += pause
                await self._sleep(pause)
            try:
                async with self.warmup.admit(prefix):  # behind the first of this prefix
                    if self._in_flight is None:
                        return await self._attempt(spec, request, model, stream, attempt)
                    async with self._in_flight:  # `serve`'s cap on calls in flight, all runs
                        return await self._attempt(spec, request, model, stream, attempt)
            except RetryableError as exc:
                wait = self._backoff(exc, attempt - first, started, model)
                if wait is None:
                    why = f"{model} stayed overloaded until the retry horizon"
                    if exc.kind != "overloaded" or self._fall_back(spec, model, why) is None:
                        raise
                    # the next model gets its own horizon and backoff
                    model = self._model(spec, request)
                    started, first, wait = self._clock(), attempt, 0.0
                self.retries += 1
                self.emit(
                    CallRetried(
                        run_id=self.run_id,
                        task_id=spec.task_id,
                        step_id=spec.step_id,
                        attempt=attempt,
                        kind=exc.kind,
                        error=str(exc),
                        wait_s=round(wait, 3),
                        http_status=exc.status,
                    )
                )
            # Waits happen here, outside the concurrency window, so others keep their slots.
            await self._sleep(wait)

    async def _attempt(
        self, spec: TaskSpec, request: dict[str, Any], model: str, stream: bool, attempt: int
    ) -> LLMResponse:
        """One HTTP attempt: reserve, wait for the limits, send, record, settle."""
        limiter = self._limiter(model)
        max_tokens = int(request.get("max_tokens") or spec.max_tokens)
        estimate = estimate_input_tokens(request)
        reservation = await self.budget.reserve(
            self._worst_case_cost(model, estimate, max_tokens),
            estimate + max_tokens,
            step=spec.step_id,
        )
        used = Usage()
        cost: float | None = 0.0
        try:
            self.rate_limit_wait_s += await limiter.acquire(estimate, max_tokens, self._sleep)
            async with self.window.limiter:
                if self.before_request is not None:
                    await self.before_request(spec.task_id)
                sent = self._clock()
                try:
                    response = await self.llm.create(
                        dict(request),
                        stream=stream,
                        on_delta=self._on_delta(spec) if stream else None,
                    )
                except (RetryableError, FatalError) as exc:
                    self._emit_call(spec, request, model, attempt, self._clock() - sent, exc)
                    raise
            used = response.usage
            limiter.calibrate(response.ratelimit)
            cost = response.cost_usd = self._cost(model, used)
            self.calls += 1
            self._emit_call(spec, request, model, attempt, self._clock() - sent, response)
            # recovery is reported at each doubling and at the top, not at every step
            if self.window.on_success() and _milestone(self.window.current, self.window.maximum):
                self.emit(
                    RateLimited(
                        run_id=self.run_id,
                        model=model,
                        concurrency=self.window.current,
                        reason=f"recovering: concurrency back up to {self.window.current}",
                    )
                )
            return response
        finally:  # also when cancelled while waiting or in flight
            limiter.settle(
                estimate,
                max_tokens,
                used.total_input_tokens,
                used.output_tokens,
            )
            self.budget.settle(reservation, cost, used.total_tokens)

    def _on_delta(self, spec: TaskSpec) -> Callable[[str], None]:
        def on_delta(text: str) -> None:
            self.emit(
                TextDelta(run_id=self.run_id, task_id=spec.task_id, step_id=spec.step_id, text=text)
            )

        return on_delta

    def _emit_call(
        self,
        spec: TaskSpec,
        request: dict[str, Any],
        model: str,
        attempt: int,
        latency: float,
        result: LLMResponse | RetryableError | FatalError,
    ) -> None:
        if isinstance(result, LLMResponse):
            self.emit(
                CallFinished(
                    run_id=self.run_id,
                    call_id=new_id(),
                    task_id=spec.task_id,
                    step_id=spec.step_id,
                    model=model,
                    attempt=attempt,
                    request=request,
                    response=result.message,
                    request_id=result.request_id,
                    latency_s=round(result.latency_s or latency, 4),
                    usage=result.usage.to_dict(),
                    cost_usd=result.cost_usd,
                )
            )
            return
        self.emit(
            CallFinished(
                run_id=self.run_id,
                call_id=new_id(),
                task_id=spec.task_id,
                step_id=spec.step_id,
                model=model,
                attempt=attempt,
                request=request,
                status=(
                    CallStatus.RETRYABLE_ERROR
                    if isinstance(result, RetryableError)
                    else CallStatus.FATAL_ERROR
                ),
                error=str(result),
                http_status=result.status,
                request_id=result.request_id,
                latency_s=round(latency, 4),
                cost_usd=0.0,
            )
        )

    def _backoff(
        self, exc: RetryableError, attempt: int, started: float, model: str
    ) -> float | None:
        """Seconds to wait before the next attempt, or None once the horizon is spent."""
        retry = self.settings.retry
        elapsed = self._clock() - started
        if elapsed >= retry.horizon:
            return None
        jitter = full_jitter(attempt, retry.base_delay, retry.max_delay, self._rand)
        if exc.kind == "rate_limit":
            if self.window.on_rate_limited():
                self.emit(
                    RateLimited(
                        run_id=self.run_id,
                        model=model,
                        concurrency=self.window.current,
                        reason=f"429 from the API: concurrency lowered to {self.window.current}",
                    )
                )
            wait = (exc.retry_after if exc.retry_after is not None else jitter) + jitter * 0.1
        else:
            if exc.kind in ("overloaded", "server"):
                pause = self.gate.record_overload()
                if pause and exc.kind == "overloaded":
                    self._pauses[model] += 1
                    if self._pauses[model] == 2:  # twice: tasks with a fallback leave it
                        self._skipped.add(model)
                if pause:
                    self.emit(
                        RateLimited(
                            run_id=self.run_id,
                            model=model,
                            concurrency=self.window.current,
                            pause_s=pause,
                            reason=f"{self.gate.cluster} overload errors within "
                            f"{self.gate.window_s:.0f}s: every worker pauses {pause:.1f}s",
                        )
                    )
            wait = max(jitter, self.gate.remaining())
        wait = min(wait, max(0.0, retry.horizon - elapsed))
        self.rate_limit_wait_s += wait
        return wait
