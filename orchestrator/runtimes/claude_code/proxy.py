"""The loopback Messages API proxy every Claude Code worker talks to instead of the API.

Each task gets a lease: a random token (the API key its Claude Code process sees) bound to the
task's `TaskSpec` and the engine's call function (`WorkerContext.call`, the dispatcher). A request
carrying the token is handed to that call, so it waits for the same rate limits and overload gate
as every API worker, reserves budget before it is sent, is retried by the dispatcher, goes to the
real API or the simulator through the run's one client, and is recorded in `calls` under the
task. The answer is replayed to Claude Code as the SSE stream it asked for (see `sse.py`).

Invariants:
- The real API key never leaves the engine: Claude Code holds a per-task token that is worth
  nothing outside this proxy and is forgotten when the task ends.
- Claude Code does not retry (its environment sets `CLAUDE_CODE_MAX_RETRIES=0`): the dispatcher
  already retried until its horizon, so an error that reaches Claude Code is final.
- A budget that is reached, or a fatal API error, marks the lease stopped and is answered as a
  400 `invalid_request_error` (Claude Code stops on it); the runtime reads the lease after the
  process ends and reports the real reason (`BudgetExceeded` ends the run `budget_exceeded`).
- The server runs in the engine's event loop (no thread hop between a request and the
  dispatcher) and never installs signal handlers: the CLI's SIGINT handling stays the engine's.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator.contracts import CallFn, LLMResponse, TaskSpec, Usage
from orchestrator.errors import BudgetExceeded, FatalError, RetryableError
from orchestrator.runtimes.claude_code.sse import encode, message_events

# Request headers passed on to the API; the rest (Claude Code's key, user agent) stay here.
_FORWARDED_HEADERS = ("anthropic-beta",)
_RETRYABLE_STATUS = {"rate_limit": 429, "overloaded": 529, "timeout": 504}


@dataclass
class Lease:
    """One task's right to call the model through the proxy, and what its calls used."""

    spec: TaskSpec
    call: CallFn
    token: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    calls: int = 0
    # why the task's last call was refused for good (every later one is refused too)
    stopped: BudgetExceeded | FatalError | None = None

    def add(self, response: LLMResponse) -> None:
        self.calls += 1
        self.usage.add(response.usage)
        if self.cost_usd is not None:
            self.cost_usd = None if response.cost_usd is None else self.cost_usd + response.cost_usd


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": error_type, "message": message}}, status_code=status
    )


def _token(request: Request) -> str:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth.removeprefix("Bearer ").strip()


def request_params(body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """A Claude Code request body as the dispatcher's request: the body as sent (with `stream`,
    which the dispatcher takes out) plus the beta headers that change what the API accepts."""
    params = dict(body)
    forwarded = {name: headers[name] for name in _FORWARDED_HEADERS if headers.get(name)}
    if forwarded:
        params["extra_headers"] = forwarded
    return params


class _Server(uvicorn.Server):
    """uvicorn, without its signal handlers (the engine's own SIGINT handling stays in charge),
    telling when it is listening (or gave up trying)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.up.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MessagesProxy:
    """`async with MessagesProxy() as proxy:` serves on 127.0.0.1 (a free port) until the
    block ends; `proxy.lease(spec, call)` binds a token to one task for as long as it runs."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._leases: dict[str, Lease] = {}
        self._server: _Server | None = None
        self._app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextlib.contextmanager
    def lease(self, spec: TaskSpec, call: CallFn) -> Iterator[Lease]:
        lease = Lease(spec=spec, call=call, token=f"orchestrate-task-{secrets.token_urlsafe(24)}")
        self._leases[lease.token] = lease
        try:
            yield lease
        finally:
            del self._leases[lease.token]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[MessagesProxy]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = self._server = _Server(config)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                await server.up.wait()
                if not server.started:
                    raise RuntimeError(f"the Claude Code proxy could not listen on {self.base_url}")
                try:
                    yield self
                finally:
                    server.should_exit = True
        finally:
            sock.close()

    async def _messages(self, request: Request) -> Response:
        lease = self._leases.get(_token(request))
        if lease is None:
            return _error(401, "authentication_error", "unknown or finished orchestrate task token")
        if lease.stopped is not None:
            return _error(400, "invalid_request_error", f"orchestrate: {lease.stopped}")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "invalid_request_error", "the request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "the request body is not a JSON object")
        stream = bool(body.get("stream"))
        try:
            response = await lease.call(lease.spec, request_params(body, request.headers))
        except BudgetExceeded as exc:
            lease.stopped = exc
            return _error(400, "invalid_request_error", f"orchestrate: {exc}")
        except RetryableError as exc:  # the dispatcher's horizon is spent
            status = exc.status or _RETRYABLE_STATUS.get(exc.kind, 500)
            return _error(status, exc.error_type or "api_error", str(exc))
        except FatalError as exc:
            lease.stopped = exc
            return _error(exc.status or 400, exc.error_type or "invalid_request_error", str(exc))
        lease.add(response)
        headers = {"request-id": response.request_id} if response.request_id else {}
        if not stream:
            return JSONResponse(response.message, headers=headers)

        async def events() -> AsyncIterator[bytes]:
            for event in message_events(response.message):
                yield encode(event)

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def _count_tokens(self, request: Request) -> Response:
        """Claude Code asks now and then; answered here (free, no model call), roughly."""
        if _token(request) not in self._leases:
            return _error(401, "authentication_error", "unknown or finished orchestrate task token")
        body = await request.body()
        return JSONResponse({"input_tokens": len(body) // 4 + 1})
