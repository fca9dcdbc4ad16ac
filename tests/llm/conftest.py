"""Fixtures for the `orchestrator/llm` tests: the canned loopback API of `llm_fake_api`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from llm_fake_api import FakeAPI, app


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeAPI]:
    api = FakeAPI()
    config = uvicorn.Config(app(api), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake API did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    api.base_url = f"http://127.0.0.1:{port}"
    yield api
    server.should_exit = True
    thread.join(timeout=10)
