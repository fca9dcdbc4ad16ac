"""The TypeScript SDK (@anthropic-ai/sdk, from npm) against the simulator: create, stream, a
tool round trip, count_tokens and the error paths, checked by tests/sim/npm/sdk_check.mjs."""

from __future__ import annotations

import json
import os
import subprocess

from orchestrator.sim import SimServer
from tests.sim.npm_clients import HERE, npm_dir, require


def test_typescript_sdk_against_the_simulator(sim: SimServer) -> None:
    require("@anthropic-ai/sdk/package.json")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ANTHROPIC_BASE_URL": sim.base_url,
        "NODE_PATH": str(npm_dir() / "node_modules"),
    }
    done = subprocess.run(
        ["node", str(HERE / "npm" / "sdk_check.mjs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checks = [json.loads(line)["check"] for line in done.stdout.splitlines()]
    assert checks == ["create", "stream", "tool_round_trip", "count_tokens", "errors"]
    assert sim.log.count(path="/v1/messages/count_tokens") == 1
