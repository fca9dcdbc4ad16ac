"""The application's guards, in process: headers that keep injected markup inert, loopback
Host names only, and pages that name what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from orchestrator.config import load_settings
from orchestrator.store import Store
from orchestrator.web import LOOPBACK_HOSTS, create_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store.open(str(tmp_path / "state.db"))
    app = create_app(store, load_settings(), allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    store.close()


def test_pages_forbid_inline_script(client: TestClient) -> None:
    response = client.get("/runs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "0 runs in this store" in response.text


def test_a_foreign_host_name_is_refused(client: TestClient) -> None:
    assert client.get("/runs", headers={"host": "attacker.example"}).status_code == 400


def test_missing_things_are_named(client: TestClient) -> None:
    response = client.get("/runs/nosuchrun")
    assert response.status_code == 404 and "no run &#39;nosuchrun&#39;" in response.text
    assert client.get("/runs/nosuchrun/stream").status_code == 404
