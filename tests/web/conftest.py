"""Fixtures for the web view: headless Chromium (Debian's `chromium`, driven by Playwright's
client; Playwright's own browser downloads are never used), a screenshots folder, and
`orchestrate ui` serving a store in a child process."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .runs import child_env, orchestrate, stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(tempfile.gettempdir()) / "orchestrate-web-screenshots"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"web view screenshots: {SCREENSHOTS}")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots go to {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync client keeps an asyncio loop running in
    this thread while it is open, and pytest-asyncio's tests cannot start theirs then."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.errors = errors
    yield page
    context.close()


@pytest.fixture
def serve_ui() -> Iterator[Callable[[Path], str]]:
    """`serve_ui(folder) -> base URL`: `orchestrate ui --db state.db --port 0` run in `folder`."""
    processes: list[subprocess.Popen[str]] = []

    def start(folder: Path) -> str:
        process = subprocess.Popen(
            orchestrate("ui", "--db", "state.db", "--port", "0"),
            cwd=folder,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/runs", line)
        assert match, f"orchestrate ui said: {line!r}"
        return match.group(1)

    yield start
    for process in processes:
        stop(process)


def chromium_dump_dom(url: str) -> str:
    """What `chromium --dump-dom URL` prints: the DOM with no script of ours run first."""
    assert shutil.which(CHROMIUM)
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_ARGS, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
