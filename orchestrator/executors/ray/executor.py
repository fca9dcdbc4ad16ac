"""The Ray executor: each task runs as a Ray task on the cluster; its model calls do not.

`RayExecutor.wrap(worker)` gives a worker function with the engine's signature that ships the
task's `TaskSpec` (and the worker function, pickled by reference: the package must be installed
on every node) to a Ray task, `orchestrate_task`, and awaits its `TaskResult`. On the node the
worker gets a `WorkerContext` whose `call`, `state`, `emit` and `approve` are requests to the
relay actor (`_relay.py`); the driver serves them with the run's own context. So every model call
of every node is admitted by the one dispatcher of this process (rate limits, global backoff,
budgets) and recorded here, and the real API key never leaves this process.

Invariants:
- The engine owns attempts: Ray's own retries are off (`max_retries=0`). A Ray worker process or
  node that dies mid-task ends the attempt as `TaskFailed` (the engine retries it and counts the
  attempt), with what its calls used so far counted, as they were admitted and billed here.
- A result comes back as the Ray task's return value and is recorded by this process only; a
  node keeps nothing the run needs (workspaces are on a shared filesystem, see README).
- An attempt cancelled here (timeout, run cancelled) cancels its Ray task by force.
- Events a node emits are sent in order before each of its requests and when it ends, so a
  task's events reach the store before its `TaskFinished`.
- A Ray started here is spawned without `ANTHROPIC_*` in its environment: no task, Python tools
  included, can read the key from it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import ray
import ray.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from orchestrator.contracts import JSON, LLMResponse, TaskResult, TaskSpec, Usage, WorkerContext
from orchestrator.contracts.resources import resource_options
from orchestrator.errors import FatalError, TaskFailed, UsageError
from orchestrator.executors.ray._relay import Relay, Reply, Request
from orchestrator.executors.ray._resources import unschedulable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrator.events import Event

    WorkerFn = Callable[[TaskSpec, WorkerContext], Awaitable[TaskResult]]

__all__ = ["RayExecutor", "orchestrate_task", "sqlite_refusal"]


def sqlite_refusal(db: str, node_addresses: set[str], here: str) -> str | None:
    """Why the store `db` cannot serve a Ray run whose alive nodes are at `node_addresses`
    (None: it can). SQLite is a file on this machine: tasks on other machines would run, but
    the history, resume and `state` are all here, and nodes that go away take nothing with them
    only if this machine holds everything, so a SQLite store needs every node to be this one."""
    if db.startswith(("postgresql:", "postgresql+", "postgres:")):
        return None
    elsewhere = sorted(node_addresses - {here})
    if not elsewhere:
        return None
    return (
        f"--executor ray: the store is SQLite ({db}) but the Ray cluster has nodes on other "
        f"machines ({', '.join(elsewhere)}); SQLite works only when every node is this machine "
        f"({here}). Use PostgreSQL: --db postgresql://user@host/db (or engine.db in settings)"
    )


@dataclass
class _Lease:
    """One running task: its spec, the context it was lent, and what its calls used."""

    spec: TaskSpec
    ctx: WorkerContext
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    calls: int = 0
    where: str = ""  # "node ip, pid" once the task reports in
    # its requests being served here: cancelled when the task ends (no one reads their answer)
    serving: set[anyio.CancelScope] = field(default_factory=set)

    def add(self, response: LLMResponse) -> None:
        self.calls += 1
        self.usage.add(response.usage)
        if self.cost_usd is not None:
            self.cost_usd = None if response.cost_usd is None else self.cost_usd + response.cost_usd

    def spent(self) -> TaskResult:
        return TaskResult(output=None, usage=self.usage, cost_usd=self.cost_usd, calls=self.calls)


class RayExecutor:
    """`ex.connect()` joins the cluster; `async with ex.running():` serves the relay (and
    connects first if `connect` was not called; `close` leaves);
    `ex.wrap(worker)` is that worker running on the cluster."""

    def __init__(self, *, address: str | None = None, db: str | None = None) -> None:
        self.address = address
        self.db = db
        self._leases: dict[str, _Lease] = {}
        self._relay: Any = None
        self._remote: Any = None
        self._nodes: list[dict[str, float]] = []
        self._connected = False
        self._owns = False  # this executor started the Ray it is connected to

    # --- the driver's side ---------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster (or start a local Ray when there is no address and no RAY_ADDRESS)
        and check that it can serve this run; raises `UsageError` saying what to fix. It blocks,
        once, before anything of the run exists; `close` undoes it."""
        if self._connected:
            return
        self._owns = self._init()
        self._connected = True
        try:
            self._check_cluster()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Leave the cluster; a Ray this executor started is stopped."""
        if self._owns:
            ray.shutdown()
        self._owns = self._connected = False

    def _init(self) -> bool:
        """True when this call started Ray (and so must stop it)."""
        if ray.is_initialized():
            return False
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        extra: dict[str, Any] = {} if address else {"include_dashboard": False}
        # A Ray started here spawns its processes with this environment: the key (already in
        # the run's client) must not be in it, nor reach any task through it.
        hidden = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ANTHROPIC_")}
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, **extra)
        except ConnectionError as exc:
            raise UsageError(
                f"--executor ray: cannot reach the Ray cluster at {address}: {exc} (start it "
                "with `ray start --head`, fix --ray-address / RAY_ADDRESS, and give this "
                "machine the cluster's token: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, see "
                "`ray get-auth-token`)"
            ) from None
        finally:
            os.environ.update(hidden)
        return True

    def _check_cluster(self) -> None:
        alive = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        self._nodes = [dict(n.get("Resources", {})) for n in alive]
        if self.db is not None:
            here = _node_address()
            addresses = {str(n.get("NodeManagerAddress")) for n in alive}
            problem = sqlite_refusal(self.db, addresses, here)
            if problem is not None:
                raise UsageError(problem)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RayExecutor]:
        """Serve the relay for as long as the block runs (connecting first if need be)."""
        connected_here = not self._connected
        self.connect()
        try:
            here = ray.get_runtime_context().get_node_id()
            # The relay stays on this node: a request never waits on a node that may go away.
            self._relay = (
                ray.remote(Relay)
                .options(
                    num_cpus=0,
                    max_concurrency=100_000,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
                )
                .remote()
            )
            self._remote = ray.remote(max_retries=0)(orchestrate_task)
            failed: Exception | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._serve, tg)
                try:
                    yield self
                except Exception as exc:  # raised as itself, not inside an ExceptionGroup
                    failed = exc
                finally:
                    tg.cancel_scope.cancel()
            if failed is not None:
                raise failed
        finally:
            if self._relay is not None:
                ray.kill(self._relay)
                self._relay = None
            self._remote = None
            if connected_here:
                self.close()

    async def _serve(self, tg: anyio.abc.TaskGroup) -> None:
        while True:
            batch: list[Request] = await self._relay.take.remote()
            for request in batch:
                tg.start_soon(self._answer, request)

    async def _answer(self, request: Request) -> None:
        rid, token, op, payload = request
        lease = self._leases.get(token)
        reply: Reply
        with anyio.CancelScope() as scope:
            if lease is not None:
                lease.serving.add(scope)
            try:
                if lease is None:
                    raise FatalError(message="orchestrate: this task has ended on the driver")
                reply = (rid, True, await self._do(lease, op, payload))
            except Exception as exc:  # raised again on the node, in the worker's frame
                reply = (rid, False, exc)
            finally:
                if lease is not None:
                    lease.serving.discard(scope)
            self._relay.answer.remote([reply])

    async def _do(self, lease: _Lease, op: str, payload: Any) -> Any:
        ctx = lease.ctx
        if op == "call":
            response = await ctx.call(lease.spec, payload)
            lease.add(response)
            return response
        if op == "emit":
            for event in payload:
                ctx.emit(event)
            return None
        if op == "state_get":
            return await ctx.state.get(payload)
        if op == "state_set":
            key, value = payload
            await ctx.state.set(key, value)
            return None
        if op == "state_list":
            return await ctx.state.list(payload)
        if op == "approve":
            tool, tool_input = payload
            return None if ctx.approve is None else await ctx.approve(lease.spec, tool, tool_input)
        if op == "started":
            node, pid = payload
            lease.where = f"node {node}, pid {pid}"
            return None
        raise FatalError(message=f"orchestrate: unknown request {op!r} from a Ray task")

    def wrap(self, worker: WorkerFn) -> WorkerFn:
        """`worker`, run as a Ray task. `worker` must pickle (a module-level function)."""

        async def on_ray(spec: TaskSpec, ctx: WorkerContext) -> TaskResult:
            if self._remote is None:
                raise RuntimeError("RayExecutor.wrap: use it inside `async with ex.running()`")
            try:
                options = resource_options(spec.resources)
            except ValueError as exc:
                raise FatalError(message=f"step '{spec.step_id}': resources: {exc}") from None
            problem = unschedulable(options, self._nodes)
            if problem is not None:
                raise FatalError(message=f"step '{spec.step_id}': {problem}")
            token = secrets.token_urlsafe(24)
            lease = self._leases[token] = _Lease(spec=spec, ctx=ctx)
            ref = self._remote.options(**options).remote(
                worker, spec, self._relay, token, ctx.approve is not None
            )
            settled = False
            try:
                result: TaskResult = await ref
                settled = True
                return result
            except ray.exceptions.RayTaskError as exc:  # the worker raised: raise it here
                settled = True
                cause = exc.cause
                if isinstance(cause, Exception):
                    raise cause from None
                raise TaskFailed(f"on Ray: {exc}") from None
            except ray.exceptions.RayError as exc:  # its process or node died mid-task
                settled = True
                failed = TaskFailed(
                    f"the Ray worker running this task died ({type(exc).__name__}"
                    f"{', ' + lease.where if lease.where else ''})"
                )
                failed.spent = lease.spent()  # its calls were admitted and billed here
                raise failed from None
            finally:
                del self._leases[token]
                for scope in lease.serving:  # a dead or cancelled task's calls: no one waits
                    scope.cancel()
                if not settled:  # cancelled here (timeout, run cancelled): stop it there
                    ray.cancel(ref, force=True)

        return on_ray


# --- the node's side -----------------------------------------------------------------------


def _node_address() -> str:
    return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]


def orchestrate_task(
    worker: WorkerFn, spec: TaskSpec, relay: Any, token: str, can_approve: bool
) -> TaskResult:
    """One attempt of one task, in a Ray worker process (its title: `ray::orchestrate_task`)."""
    return anyio.run(_attempt, worker, spec, _Link(relay, token), can_approve)


async def _attempt(worker: WorkerFn, spec: TaskSpec, link: _Link, can_approve: bool) -> TaskResult:
    node = _node_address()
    await link.ask("started", (node, os.getpid()))
    if not os.path.isdir(spec.workspace):  # noqa: ASYNC240 - one stat, before any work
        raise FatalError(
            message=f"the Ray node {node} does not see the run's workspace {spec.workspace}: "
            "every node needs it at the same path (put engine.runs_dir, or the workflow's "
            "`workspace:`, on a filesystem shared by all nodes)"
        )
    ctx = WorkerContext(
        call=link.call,
        state=_NodeState(link),
        emit=link.events.append,
        approve=link.approve if can_approve else None,
    )
    try:
        return await worker(spec, ctx)
    finally:
        with anyio.CancelScope(shield=True):
            await link.flush()


class _Link:
    """A node task's line to the driver, through the relay."""

    def __init__(self, relay: Any, token: str) -> None:
        self.relay = relay
        self.token = token
        self.events: list[Event] = []

    async def ask(self, op: str, payload: Any) -> Any:
        if op != "emit":
            await self.flush()
        ok, value = await self.relay.ask.remote(self.token, op, payload)
        if not ok:
            raise value
        return value

    async def flush(self) -> None:
        if self.events:
            events, self.events = self.events, []
            await self.ask("emit", events)

    async def call(self, spec: TaskSpec, params: dict[str, Any]) -> LLMResponse:
        response: LLMResponse = await self.ask("call", params)
        return response

    async def approve(self, spec: TaskSpec, tool: str, tool_input: Any) -> Any:
        return await self.ask("approve", (tool, tool_input))


class _NodeState:
    """The run's shared state, as a node task reaches it."""

    def __init__(self, link: _Link) -> None:
        self.link = link

    async def get(self, key: str) -> JSON:
        value: JSON = await self.link.ask("state_get", key)
        return value

    async def set(self, key: str, value: JSON) -> None:
        await self.link.ask("state_set", (key, value))

    async def list(self, prefix: str = "") -> dict[str, JSON]:
        values: dict[str, JSON] = await self.link.ask("state_list", prefix)
        return values
