"""Claude Code, unchanged, against the simulator: a headless turn on its default model that
executes a tool call the simulator makes.

Claude Code streams `POST /v1/messages?beta=true` with many beta headers, adaptive thinking, a
`system` message in the middle of the conversation and cache breakpoints; the simulator must take
all of it. The Write call is scripted through a rules file; the test checks that the file exists
and that the follow-up request carried the tool_result.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from orchestrator.sim import SimConfig, SimServer, load_rules
from orchestrator.sim.models import Catalog
from tests.sim.npm_clients import require

PROMPT = "Create the file hello.txt with a greeting."
FLAGS = ["--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits"]


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-test",  # a fake: the simulator takes any key
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }


def test_claude_code_runs_a_turn_and_a_scripted_tool_call(tmp_path: Path) -> None:
    claude = require(".bin/claude")
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    target = cwd / "hello.txt"
    rules = tmp_path / "rules.yaml"
    write = {"name": "Write", "input": {"file_path": str(target), "content": "hello, world\n"}}
    rules.write_text(yaml.safe_dump([{"prompt": "hello\\.txt", "turn": 1, "tool_calls": [write]}]))
    with SimServer(SimConfig(rules=load_rules(rules))) as sim:
        done = subprocess.run(
            [str(claude), "-p", PROMPT, *FLAGS],
            cwd=cwd,
            env=claude_env(home, sim.base_url),
            capture_output=True,
            text=True,
            timeout=180,
        )
        entries = sim.log.find(path=None)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = events[-1]
    assert result["type"] == "result" and result["subtype"] == "success", result
    assert result["is_error"] is False

    assert target.read_text() == "hello, world\n"  # Claude Code ran the simulator's Write

    assert entries and all(e.status == 200 for e in entries), [(e.path, e.status) for e in entries]
    turns = [e for e in entries if e.path == "/v1/messages" and _asks(e.body, PROMPT)]
    first, follow_up = turns[0].body, turns[-1].body
    assert first is not None and follow_up is not None
    assert first["stream"] is True and "tools" in first
    model = first["model"]  # Claude Code's default: the test names none
    assert model in result["modelUsage"] and Catalog().find(model) is not None
    assert first["thinking"]["type"] in ("adaptive", "enabled")
    assert any(m["role"] == "system" for m in first["messages"][1:])  # mid-conversation system
    calls = [e for e in events if e.get("type") == "assistant"]
    tool_use = next(
        b for e in calls for b in e["message"]["content"] if b.get("type") == "tool_use"
    )
    answered = [
        b
        for b in follow_up["messages"][-1]["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    assert [b["tool_use_id"] for b in answered] == [tool_use["id"]]
    assert not any(b.get("is_error") for b in answered)


def _asks(body: dict[str, Any] | None, prompt: str) -> bool:
    return body is not None and prompt in json.dumps(body.get("messages", []))
