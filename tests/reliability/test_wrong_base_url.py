"""A wrong `ANTHROPIC_BASE_URL` fails the run at once, naming the URL, instead of retrying every
task toward the 15-minute horizon (which is what happened: connection refused was retryable).

The retry settings are the packaged defaults here on purpose: were the refusal still retried,
this test would run into pytest's timeout instead of passing.
"""

from __future__ import annotations

import socket
from pathlib import Path

from .conftest import API_KEY, Cli, child_env, fanout_workflow, open_readonly


def test_connection_refused_before_any_answer_fails_fast(tmp_path: Path, cli: Cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "fan.yaml").write_text(fanout_workflow(3, concurrency=3))
    env = {
        k: v for k, v in child_env().items() if not k.startswith("ORCHESTRATE_RETRY__")
    }  # the default 15-minute horizon
    env.update(ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=API_KEY)

    done = cli.run("run", "fan.yaml", "--db", "state.db", env=env)

    assert done.code == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot reach the Messages API at {url}: connection refused" in done.stderr
    assert "ANTHROPIC_BASE_URL" in done.stderr
    assert API_KEY not in done.stdout + done.stderr
    with open_readonly(tmp_path / "state.db") as store:
        run_id = store.resolve_run("last")
        assert store.get_run(run_id).status == "failed"  # type: ignore[union-attr]
        assert store.events(run_id, type="call_retried") == [], "nothing was retried"
        (plan,) = store.list_tasks(run_id, step="plan")
        assert plan.status == "failed" and plan.attempts == 1
