"""Running the simulator: in a background thread for tests and `--simulate`, or in the foreground
for `orchestrate sim serve`.

`SimServer` owns a thread with its own asyncio loop, so a synchronous test, an anyio test and the
engine's own loop can all talk to it over loopback. The listening socket is bound before the thread
starts, so `base_url` is known at once and port 0 means a free port. Startup waits on an event set
by uvicorn's own startup, and stop wakes the serving loop directly, so neither polls.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

from orchestrator.sim.app import STOP_MESSAGE, AbortFilter, create_app
from orchestrator.sim.config import SimConfig
from orchestrator.sim.log import RequestLog

_START_TIMEOUT_S = 10.0
_STOP_POLL_S = 0.005


def _quiet_aborts() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, AbortFilter) for f in logger.filters):
        logger.addFilter(AbortFilter())


class _Server(uvicorn.Server):
    """uvicorn's server, told when it is up and woken at once when asked to stop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        assert self.wake is not None
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # on_tick refreshes the Date header every 10th tick: once a second
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            except TimeoutError:
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown sleeps 0.1 s up front; tests stop a server each, so poll instead.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their response
        polls = int(float(self.config.timeout_graceful_shutdown or 0) / _STOP_POLL_S)
        for _ in range(polls):  # uvicorn offers no event for "all connections closed"
            if not self.server_state.connections:
                break
            await asyncio.sleep(_STOP_POLL_S)
        for task in self.server_state.tasks:
            task.cancel(msg=STOP_MESSAGE)
        for server in self.servers:
            await server.wait_closed()

    def request_stop(self) -> None:
        self.should_exit = True
        loop, wake = self.loop, self.wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed in between: already stopped
                pass


class SimServer:
    """The simulator on `host:port` (port 0: a free one) in a background thread.

    >>> with SimServer(SimConfig(seed=1)) as sim:
    ...     client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-test")
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log: RequestLog | None = None,
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.host = host
        self.log = log if log is not None else RequestLog()
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections: without it every
        # response waits out the peer's delayed ACK (~40 ms) between its head and its body.
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind(address)
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]
        netloc = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{netloc}:{self.port}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        _quiet_aborts()
        app = create_app(self.config, self.log)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = server = _Server(config)
        self._thread = threading.Thread(target=self._run, name=f"sim:{self.port}", daemon=True)
        self._thread.start()
        if not server.ready.wait(_START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the simulator did not start on {self.base_url}: {self._error}")

    def _run(self) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start(); a thread has no one else to tell
            self._error = exc
            self._server.ready.set()

    def wait(self) -> None:
        """Block until the server stops (interruptible by Ctrl-C in the main thread)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Stop serving and wait for the thread. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is not None:
            server.request_stop()
        if thread is not None:
            thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SimServer({self.base_url})"


def serve_forever(
    config: SimConfig, host: str = "127.0.0.1", port: int = 8080, **uvicorn_options: Any
) -> None:
    """Serve in the foreground until Ctrl-C (for `orchestrate sim serve`)."""
    options: dict[str, Any] = {"log_level": "info", "timeout_graceful_shutdown": 2}
    options.update(uvicorn_options)
    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port, **options))
    _quiet_aborts()  # after uvicorn.Config, which (re)configures its loggers
    server.run()
