"""A worker cannot reach outside its workspace through any file tool, nor run Bash ungranted.

The simulator is scripted (`--sim-script`) to make the tool calls a prompt-injected model would:
`../outside`, absolute paths and symlinks planted in the workspace, through Read, Write, Edit,
Glob and Grep. Afterwards the files outside are byte-for-byte untouched and the stored transcript
shows each of those calls answered with an `is_error` tool_result. Bash runs in the workspace with
no API credentials in its environment, and only in a step that grants it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from orchestrator.store import Store

from .conftest import child_env, orchestrate, tool_results

SECRET = "TOPSECRET original contents\n"

WORKFLOW = """\
version: 1
name: escape
workspace: ws
steps:
  - id: files
    prompt: Work with the files.
    tools: [Read, Write, Edit, Glob, Grep]
  - id: shell
    prompt: Run commands.
    tools: [Bash]
  - id: nobash
    prompt: Try to run a command.
    tools: [Read]
"""


def _escapes(outside: Path) -> list[dict[str, Any]]:
    """Tool calls that must all be refused (`outside` holds secret.txt)."""
    rel = "../outside"
    secret = f"{outside}/secret.txt"
    edit = {"old_string": "TOPSECRET", "new_string": "pwned"}
    return [
        {"name": "Read", "input": {"file_path": f"{rel}/secret.txt"}},
        {"name": "Read", "input": {"file_path": secret}},
        {"name": "Read", "input": {"file_path": "/etc/passwd"}},
        {"name": "Read", "input": {"file_path": "link/secret.txt"}},
        {"name": "Read", "input": {"file_path": "link_file"}},
        {"name": "Read", "input": {"file_path": "sub/../../outside/secret.txt"}},
        {"name": "Write", "input": {"file_path": f"{rel}/new.txt", "content": "pwned"}},
        {"name": "Write", "input": {"file_path": secret, "content": "pwned"}},
        {"name": "Write", "input": {"file_path": "link/new.txt", "content": "pwned"}},
        {"name": "Write", "input": {"file_path": "link_file", "content": "pwned"}},
        {"name": "Write", "input": {"file_path": "dangling", "content": "pwned"}},
        {"name": "Edit", "input": {"file_path": f"{rel}/secret.txt", **edit}},
        {"name": "Edit", "input": {"file_path": secret, **edit}},
        {"name": "Edit", "input": {"file_path": "link/secret.txt", **edit}},
        {"name": "Edit", "input": {"file_path": "link_file", **edit}},
        {"name": "Glob", "input": {"pattern": f"{rel}/*"}},
        {"name": "Glob", "input": {"pattern": f"{outside}/*"}},
        {"name": "Glob", "input": {"pattern": "*", "path": str(outside)}},
        {"name": "Glob", "input": {"pattern": "*", "path": rel}},
        {"name": "Glob", "input": {"pattern": "link/*"}},
        {"name": "Glob", "input": {"pattern": "**/*", "path": "link"}},
        {"name": "Grep", "input": {"pattern": "TOPSECRET", "path": rel}},
        {"name": "Grep", "input": {"pattern": "TOPSECRET", "path": str(outside)}},
        {"name": "Grep", "input": {"pattern": "TOPSECRET", "path": secret}},
        {"name": "Grep", "input": {"pattern": "TOPSECRET", "path": "link"}},
        {"name": "Grep", "input": {"pattern": "TOPSECRET", "path": "link_file"}},
    ]


# Calls inside the workspace that must work, and must not see through the links.
_ALLOWED = [
    {"name": "Read", "input": {"file_path": "inside.txt"}},
    {"name": "Grep", "input": {"pattern": "TOPSECRET", "output_mode": "content"}},
    {"name": "Glob", "input": {"pattern": "**/*"}},
]


def _setup(tmp: Path) -> tuple[Path, Path]:
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    ws = tmp / "ws"
    ws.mkdir()
    (ws / "inside.txt").write_text("hello from inside\n")
    (ws / "sub").mkdir()
    (ws / "link").symlink_to(outside, target_is_directory=True)
    (ws / "link_file").symlink_to(outside / "secret.txt")
    (ws / "dangling").symlink_to(outside / "created-through-a-dangling-link.txt")
    return outside, ws


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_file_tools_and_bash_cannot_leave_the_workspace(tmp_path: Path) -> None:
    outside, ws = _setup(tmp_path)
    escapes = _escapes(outside)
    rules = [
        {"step": "files", "turn": 1, "tool_calls": escapes + _ALLOWED},
        {"step": "files", "turn": 2, "text": "done"},
        {
            "step": "shell",
            "turn": 1,
            "tool_calls": [
                {"name": "Bash", "input": {"command": "pwd"}},
                {"name": "Bash", "input": {"command": "env"}},
            ],
        },
        {"step": "shell", "turn": 2, "text": "done"},
        {
            "step": "nobash",
            "turn": 1,
            "tool_calls": [{"name": "Bash", "input": {"command": "touch ../outside/pwned"}}],
        },
        {"step": "nobash", "turn": 2, "text": "done"},
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    before = _snapshot(outside)
    env = child_env(
        ANTHROPIC_API_KEY="sk-ant-should-never-reach-bash",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        SOME_SERVICE_API_KEY="service-key-should-never-reach-bash",
        GITHUB_AUTH_TOKEN="token-should-never-reach-bash",
        ORCH_VISIBLE_MARKER="visible-to-bash",
    )
    done = orchestrate(
        tmp_path,
        "run",
        "wf.yaml",
        "--simulate",
        "--sim-script",
        "rules.yaml",
        "--db",
        "state.db",
        env=env,
    )
    assert done.code == 0, done.stderr

    assert _snapshot(outside) == before
    assert not (outside / "created-through-a-dangling-link.txt").exists()
    assert not (outside / "pwned").exists()

    with Store.open(str(tmp_path / "state.db"), readonly=True) as store:
        run_id = store.resolve_run("last")
        results = {
            step: tool_results(store, store.list_tasks(run_id, step=step)[0].id)
            for step in ("files", "shell", "nobash")
        }

    files = results["files"]
    assert len(files) == len(escapes) + len(_ALLOWED)
    by_input = {json.dumps(r["input"], sort_keys=True): r for r in files}

    def result_of(call: dict[str, Any]) -> dict[str, Any]:
        return by_input[json.dumps(call["input"], sort_keys=True)]

    not_refused = [c for c in escapes if not result_of(c)["is_error"]]
    assert not_refused == [], f"escapes that were not refused: {not_refused}"
    for call in escapes:
        assert "outside the workspace" in str(result_of(call)["text"]), call
    for result in files:
        assert "TOPSECRET" not in str(result["text"]), result
    read_inside, grep_all, glob_all = (result_of(c) for c in _ALLOWED)
    assert not read_inside["is_error"] and "hello from inside" in str(read_inside["text"])
    assert not grep_all["is_error"]  # searching the workspace does not follow `link` out
    assert "inside.txt" in str(glob_all["text"])
    assert "secret.txt" not in str(glob_all["text"])

    pwd, env_out = results["shell"]
    assert not pwd["is_error"] and not env_out["is_error"]
    assert str(pwd["text"]).strip() == os.path.realpath(ws)
    env_text = str(env_out["text"])
    assert "ORCH_VISIBLE_MARKER=visible-to-bash" in env_text
    assert "ANTHROPIC_" not in env_text
    assert "should-never-reach-bash" not in env_text

    (ungranted,) = results["nobash"]
    assert ungranted["name"] == "Bash" and ungranted["is_error"]
