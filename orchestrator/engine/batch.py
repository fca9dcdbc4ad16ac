"""`batch: true` fan-outs: the items' calls go through the Message Batches API.

Each item's worker runs exactly as it would online; only its call function differs. When every
live worker of the step is waiting on a call, the waiting requests go out together as one batch,
which is polled with backoff; each worker then gets its own reply, priced at batch rates. A worker
that needs another turn (tools, schema repair) simply joins the next round. Items the batch could
not answer (errored, expired, canceled) are sent online through the dispatcher instead, so a
batch step never fails for the batch's sake.

Resumable: every batch id goes out as a `BatchSubmitted` event (and so into the store); on resume
the same batches are polled and read before anything new is submitted. Custom ids are derived
from the task key and the call's number within the task, so they match across processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from orchestrator.config import Settings
from orchestrator.contracts import BatchItem, BatchLLM, Emit, LLMResponse, TaskSpec
from orchestrator.engine.backpressure import Sleep
from orchestrator.engine.dispatch import Dispatcher
from orchestrator.engine.estimate import estimate_input_tokens
from orchestrator.errors import FatalError, OrchestrateError, RetryableError
from orchestrator.events import BatchSubmitted, CallFinished
from orchestrator.events import Warning as WarningEvent
from orchestrator.ids import new_id


@dataclass
class _Waiter:
    spec: TaskSpec
    request: dict[str, Any]
    done: anyio.Event = field(default_factory=anyio.Event)
    response: LLMResponse | None = None
    error: BaseException | None = None
    online: bool = False


def custom_id(key: str, number: int) -> str:
    return f"{hashlib.sha256(key.encode()).hexdigest()[:24]}-{number}"


class BatchCollector:
    def __init__(
        self,
        *,
        llm: BatchLLM,
        dispatcher: Dispatcher,
        settings: Settings,
        emit: Emit,
        run_id: str,
        step_id: str,
        sleep: Sleep,
        prior_batches: list[str] | None = None,
    ) -> None:
        self.llm = llm
        self.dispatcher = dispatcher
        self.settings = settings
        self.emit = emit
        self.run_id = run_id
        self.step_id = step_id
        self.sleep = sleep
        self.prior = list(prior_batches or [])
        self._prior_results: dict[str, BatchItem] | None = None
        self._pending: dict[str, _Waiter] = {}
        self._numbers: dict[str, int] = {}
        self._active = 0
        self._tg: TaskGroup | None = None
        self.batches: list[str] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[BatchCollector]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None

    def expect(self, items: int) -> None:
        """Every item counts as live from the start, so the first round holds them all."""
        self._active += items

    @contextmanager
    def item(self) -> Iterator[None]:
        """One item's whole life; when it ends, a round may be complete without it."""
        try:
            yield
        finally:
            self._active -= 1
            self._maybe_flush()

    async def call(self, spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        number = self._numbers[spec.key] = self._numbers.get(spec.key, 0) + 1
        request = dict(request)
        request.pop("stream", None)
        waiter = _Waiter(spec, request)
        self._pending[custom_id(spec.key, number)] = waiter
        self._maybe_flush()
        await waiter.done.wait()
        if waiter.online:
            return await self.dispatcher.call(spec, request)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.response is not None
        return waiter.response

    def _maybe_flush(self) -> None:
        if self._pending and len(self._pending) >= self._active and self._tg is not None:
            round_, self._pending = self._pending, {}
            self._tg.start_soon(self._round, round_)

    async def _round(self, waiters: dict[str, _Waiter]) -> None:
        try:
            found = await self._from_prior(set(waiters))
            rest = {cid: w for cid, w in waiters.items() if cid not in found}
            if rest:
                found.update(await self._submit(rest))
            for cid, waiter in waiters.items():
                self._deliver(cid, waiter, found.get(cid))
        except RetryableError as exc:
            self._warn(f"batch unavailable ({exc}); sending {len(waiters)} request(s) online")
            for waiter in waiters.values():
                waiter.online = True
        except (OrchestrateError, Exception) as exc:
            for waiter in waiters.values():
                waiter.error = exc
        finally:
            for waiter in waiters.values():
                waiter.done.set()

    async def _from_prior(self, wanted: set[str]) -> dict[str, BatchItem]:
        if not self.prior:
            return {}
        if self._prior_results is None:
            self._prior_results = {}
            for batch_id in self.prior:
                try:
                    await self._wait(batch_id)
                    self._prior_results.update(await self.llm.batch_results(batch_id))
                except FatalError as exc:  # expired, deleted, or another endpoint's
                    self._warn(f"earlier batch {batch_id} cannot be read ({exc}); resubmitting")
        return {
            cid: item
            for cid, item in self._prior_results.items()
            if cid in wanted and item.succeeded
        }

    async def _submit(self, waiters: dict[str, _Waiter]) -> dict[str, BatchItem]:
        budget = self.dispatcher.budget
        worst = 0.0
        tokens = 0
        for waiter in waiters.values():
            model = waiter.request.get("model") or waiter.spec.model
            price = self.settings.price(model)
            estimate = estimate_input_tokens(waiter.request)
            max_tokens = int(waiter.request.get("max_tokens") or waiter.spec.max_tokens)
            tokens += estimate + max_tokens
            if price is not None:
                worst += (
                    (estimate * price.input + max_tokens * price.output)
                    / 1e6
                    * (price.batch_discount)
                )
        reservation = await budget.reserve(worst, tokens, step=self.step_id)
        try:
            batch_id = await self.llm.batch_create([(c, w.request) for c, w in waiters.items()])
            self.batches.append(batch_id)
            self.emit(
                BatchSubmitted(
                    run_id=self.run_id,
                    step_id=self.step_id,
                    batch_id=batch_id,
                    requests=len(waiters),
                )
            )
            await self._wait(batch_id)
            results = await self.llm.batch_results(batch_id)
        finally:
            budget.settle(reservation, 0.0, 0)
        return results

    async def _wait(self, batch_id: str) -> None:
        interval = self.settings.batch.poll_interval
        while await self.llm.batch_status(batch_id) != "ended":
            await self.sleep(interval)
            interval = min(self.settings.batch.max_poll_interval, interval * 2)

    def _deliver(self, cid: str, waiter: _Waiter, item: BatchItem | None) -> None:
        spec = waiter.spec
        if item is None or not item.succeeded or item.message is None:
            why = "missing" if item is None else (item.error or item.status)
            self._warn(f"batch item for {spec.key} {why}; sending it online", spec)
            waiter.online = True
            return
        usage = item.usage
        assert usage is not None
        model = item.message.get("model") or spec.model
        cost = self.settings.cost_usd(str(model), usage, batch=True)
        self.dispatcher.budget.spend(cost, usage.total_tokens, step=spec.step_id)
        self.emit(
            CallFinished(
                run_id=self.run_id,
                call_id=new_id(),
                task_id=spec.task_id,
                step_id=spec.step_id,
                model=str(model),
                attempt=1,
                request=waiter.request,
                response=item.message,
                request_id=cid,
                usage=usage.to_dict(),
                cost_usd=cost,
                batch=True,
            )
        )
        waiter.response = LLMResponse(message=item.message, usage=usage, cost_usd=cost)

    def _warn(self, message: str, spec: TaskSpec | None = None) -> None:
        self.emit(
            WarningEvent(
                run_id=self.run_id,
                step_id=self.step_id,
                task_id=spec.task_id if spec else None,
                message=message,
            )
        )
