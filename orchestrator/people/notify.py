"""Notices: tell someone that a question started waiting, by a command or a POST.

`notify: {command: "..."}` runs the command through the shell with the question as JSON on its
stdin; `notify: {url: "..."}` POSTs the same JSON (`Content-Type: application/json`). Both may be
given. The JSON is `Question.to_dict`: run_id, step, question_id, kind, prompt, options, output,
tool, tool_input.

A notice never fails or holds up the run: it is bounded by a timeout, and a command that exits
non-zero, a URL that refuses, or a timeout becomes a warning. The command runs with the
parent's environment minus every credential (`environment.without_secrets`), like every child
process the engine starts; it is the workflow author's own command, so it is not sandboxed (a
notice usually needs the network).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.environment import without_secrets

__all__ = ["NOTICE_TIMEOUT_S", "NoticeTargets", "send_notice"]

NOTICE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class NoticeTargets:
    """Where notices go (the workflow's `notify:` over the settings' `notify:`)."""

    command: str | None = None
    url: str | None = None

    def __bool__(self) -> bool:
        return bool(self.command or self.url)


async def send_notice(
    targets: NoticeTargets,
    payload: dict[str, Any],
    *,
    warn: Callable[[str], None],
    timeout_s: float = NOTICE_TIMEOUT_S,
) -> None:
    """Send `payload` to every target; problems go to `warn`, never raise."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    if targets.command:
        await _command(targets.command, body, warn, timeout_s)
    if targets.url:
        await _post(targets.url, body, warn, timeout_s)


async def _command(command: str, body: bytes, warn: Callable[[str], None], limit_s: float) -> None:
    try:
        with anyio.fail_after(limit_s):
            code, stderr = await _run(command, body)
    except TimeoutError:
        warn(f"notify command timed out after {limit_s:g}s: {command}")
        return
    except OSError as exc:
        warn(f"notify command could not start: {command}: {exc.strerror or exc}")
        return
    if code != 0:
        tail = stderr.decode(errors="replace").strip()[-200:]
        warn(f"notify command exited with code {code}: {command}: {tail}")


async def _run(command: str, body: bytes) -> tuple[int, bytes]:
    """Run `command` with `body` on its stdin; its exit code and stderr. A command that exits
    without reading its stdin is fine (the broken pipe is ignored)."""
    stderr = bytearray()
    async with await anyio.open_process(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=without_secrets()
    ) as process:
        assert process.stdin is not None and process.stderr is not None
        errors = process.stderr

        async def feed() -> None:
            assert process.stdin is not None
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await process.stdin.send(body)
            await process.stdin.aclose()

        async def drain() -> None:
            async for chunk in errors:
                stderr.extend(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            tg.start_soon(drain)
        code = await process.wait()
    return code, bytes(stderr)


async def _post(url: str, body: bytes, warn: Callable[[str], None], limit_s: float) -> None:
    # A webhook URL often is a credential (its path holds the token): name only its host.
    shown = urllib.parse.urlsplit(url).netloc or "?"
    if not url.startswith(("http://", "https://")):
        warn("notify url must start with http:// or https://")
        return

    def post() -> None:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=limit_s) as response:
            response.read()

    try:
        await anyio.to_thread.run_sync(post, abandon_on_cancel=True)
    except urllib.error.HTTPError as exc:
        warn(f"notify url on {shown} answered HTTP {exc.code}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        warn(f"notify url on {shown} could not be reached: {reason}")
