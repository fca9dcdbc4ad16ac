"""Claude Code workers against the simulator: the CLI from tests/sim/npm/install.sh, a git
repository to work in, and a wrapper that records each Claude Code process's environment.

The wrapper is the `claude` the runtime starts: it writes its own environment (which is the
environment the runtime gave the process) to a file, then execs the real CLI, so a test can
read what every Claude Code process could see.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import Settings, load_settings
from orchestrator.engine import Engine, ResumeState, RunOutcome, RunRequest
from orchestrator.events import Event
from orchestrator.llm import make_llm
from orchestrator.runtimes.claude_code import ClaudeCodeRuntime
from orchestrator.sim import SimConfig, SimServer, load_rules
from orchestrator.workflow import load_workflow
from tests._support.harness import FAST
from tests.sim.npm_clients import require


def sh(cwd: Path, *args: str) -> str:
    done = subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "a project\n"}).items():
        (path / name).write_text(text)
    sh(path, "git", "add", "-A")
    sh(path, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return path


def bash_rule(prompt: str, command: str) -> dict[str, Any]:
    """A rule: the first turn of the conversation whose prompt matches runs `command`."""
    return {
        "prompt": prompt,
        "turn": 1,
        "tool_calls": [{"name": "Bash", "input": {"command": command}}],
    }


@dataclass
class EnvDumps:
    """Where the wrapper writes each process's environment: one file per process."""

    folder: Path

    def mcp_configs(self) -> list[dict[str, Any]]:
        return [json.loads(f.read_text()) for f in sorted(self.folder.glob("*.mcp.json"))]

    def all(self) -> list[dict[str, str]]:
        out = []
        for file in sorted(self.folder.glob("*.env")):
            pairs = file.read_bytes().split(b"\0")
            out.append(
                dict(p.decode().split("=", 1) for p in pairs if b"=" in p)  # env -0 output
            )
        return out


@pytest.fixture
def claude_cli() -> Path:
    return require(".bin/claude").resolve()


@pytest.fixture
def wrapper(tmp_path: Path, claude_cli: Path) -> tuple[Path, EnvDumps]:
    dumps = tmp_path / "envs"
    dumps.mkdir()
    script = tmp_path / "claude-wrapper"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            env -0 > "{dumps}/$$.env"
            for arg in "$@"; do
              case "$arg" in *orchestrate-mcp.json) cp "$arg" "{dumps}/$$.mcp.json";; esac
            done
            exec "{claude_cli}" "$@"
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, EnvDumps(dumps)


@dataclass
class Harness:
    """The real engine, the real client on a simulator, and Claude Code workers."""

    tmp: Path
    sim: SimServer
    settings: Settings
    cli: Path
    events: list[Event] = field(default_factory=list)
    runtime: ClaudeCodeRuntime | None = None

    async def run(
        self,
        text: str,
        *,
        workspace: Path,
        run_id: str = "RUNCC",
        resume: ResumeState | None = None,
        max_tokens: int | None = None,
        path: Path | None = None,
    ) -> RunOutcome:
        path = path or self.tmp / "wf.yaml"
        path.write_text(textwrap.dedent(text))
        workflow = load_workflow(path, settings=self.settings)
        llm = make_llm(self.settings, simulate=True, base_url=self.sim.base_url)
        self.runtime = ClaudeCodeRuntime(cli=self.cli)
        engine = Engine(
            settings=self.settings,
            llm=llm,
            emit=self.events.append,
            runtimes={"claude-code": self.runtime},
        )
        try:
            async with self.runtime.running():
                return await engine.run(
                    RunRequest(
                        workflow=workflow,
                        inputs=workflow.coerce_inputs({}),
                        workspace=workspace,
                        run_id=run_id,
                        resume=resume,
                        max_tokens=max_tokens,
                    )
                )
        finally:
            await llm.aclose()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def harness(tmp_path: Path, wrapper: tuple[Path, EnvDumps]) -> AsyncIterator[Any]:
    made: list[SimServer] = []

    def make(rules: list[dict[str, Any]]) -> Harness:
        file = tmp_path / "rules.yaml"
        file.write_text(yaml.safe_dump(rules))
        sim = SimServer(SimConfig(rules=load_rules(file)))
        sim.start()
        made.append(sim)
        overrides = {**FAST, "engine": {**FAST["engine"], "runs_dir": str(tmp_path / "runs")}}
        return Harness(tmp_path, sim, load_settings(None, overrides=overrides), wrapper[0])

    yield make
    for sim in made:
        sim.stop()


def environ_without_keys() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
