"""Traces and metrics of a real simulated run, received over OTLP/HTTP on loopback and checked
against what the store recorded; and neither the OpenTelemetry SDK nor the sink is imported
when no OTEL_* is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store import Store

from .conftest import Collector

# A plan, a fan-out and a report, as in workflows/research.yaml; the researchers share a system
# prompt above Sonnet's 1,024-token cache minimum (the simulator enforces it as the API does), so
# the fan-out reads it from the cache, and their prompt names the Read tool, so they call it
# (the simulator calls the tools a prompt names, as a model would).
_GUIDE = " ".join(
    f"Rule {i}: cite the file and line you took each claim from, and say how sure you are."
    for i in range(1, 81)
)
WORKFLOW = f"""version: 1
name: research
description: Plan, research the parts in parallel with a shared cached system prompt, report.
defaults: {{model: sonnet, max_tokens: 1024}}
steps:
  - id: plan
    prompt: "Split into 4 independent sub-questions: how do LLM workers share rate limits?"
    output:
      type: object
      required: [subtasks]
      properties:
        subtasks: {{type: array, items: {{type: string}}, minItems: 2, maxItems: 6}}
  - id: research
    for_each: "{{{{ steps.plan.output.subtasks }}}}"
    as: topic
    concurrency: 2
    system: "You are a researcher. {_GUIDE}"
    tools: [Read, Grep]
    prompt: "Read README.md, then answer in under 100 words: {{{{ topic }}}}"
  - id: report
    prompt: "Merge into one report: {{{{ steps.research.output }}}}"
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    env.update(extra)
    return env


def _run(cwd: Path, env: dict[str, str]) -> str:
    (cwd / "README.md").write_text("Rate limits: a shared token bucket.\n", encoding="utf-8")
    (cwd / "research.yaml").write_text(WORKFLOW, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            "research.yaml",
            "--simulate",
            "--db",
            "state.db",
            "-q",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()[0].split()[1]


def test_spans_form_the_run_tree_with_the_stores_tokens(
    tmp_path: Path, collector: Collector
) -> None:
    run_id = _run(
        tmp_path,
        _env(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_SERVICE_NAME="orchestrate-test",
        ),
    )
    with Store.open(str(tmp_path / "state.db"), readonly=True) as store:
        run = store.get_run(run_id)
        steps = store.step_records(run_id)
        tasks = store.list_tasks(run_id)
        calls = {c.id: c for t in tasks for c in store.task_calls(t.id)}
        tools = store.events(run_id, type="tool_called")
    assert run is not None and calls and tools

    spans = collector.spans
    assert {r.get("service.name") for r in collector.resources} == {"orchestrate-test"}
    assert len({s.trace_id for s in spans}) == 1
    (root,) = [s for s in spans if not s.parent_id]
    assert root.name == "invoke_workflow research"
    assert root.attrs["orchestrate.run.id"] == run_id
    assert root.attrs["gen_ai.workflow.name"] == "research"

    by_kind: dict[str, list] = {}
    for span in spans:
        by_kind.setdefault(span.name.split()[0], []).append(span)
    step_spans = {s.attrs["orchestrate.step.id"]: s for s in by_kind["step"]}
    assert set(step_spans) == {s.step_id for s in steps if s.status != "skipped"}
    assert all(s.parent_id == root.span_id for s in step_spans.values())

    task_spans = {s.attrs["orchestrate.task.id"]: s for s in by_kind["invoke_agent"]}
    assert set(task_spans) == {t.id for t in tasks}
    for task in tasks:
        span = task_spans[task.id]
        assert span.parent_id == step_spans[task.step_id].span_id
        assert span.attrs["gen_ai.usage.output_tokens"] == task.output_tokens
        assert span.attrs["orchestrate.status"] == task.status

    chats = by_kind["chat"]
    assert len(chats) == len(calls)
    for span in chats:
        call = calls[span.attrs["orchestrate.call.id"]]
        assert span.parent_id == task_spans[call.task_id].span_id
        assert span.name == f"chat {call.model}"
        assert span.attrs["gen_ai.operation.name"] == "chat"
        assert span.attrs["gen_ai.provider.name"] == "anthropic"
        assert span.attrs["gen_ai.request.model"] == call.model
        assert span.attrs["gen_ai.usage.output_tokens"] == call.output_tokens
        # the conventions' input count is the whole prompt, cache reads and writes included
        assert span.attrs["gen_ai.usage.input_tokens"] == (
            call.input_tokens + call.cache_read_input_tokens + call.cache_creation_input_tokens
        )
        assert span.attrs["gen_ai.usage.cache_read.input_tokens"] == call.cache_read_input_tokens
        assert span.attrs["gen_ai.usage.cache_creation.input_tokens"] == (
            call.cache_creation_input_tokens
        )
        assert span.attrs["gen_ai.response.finish_reasons"] == [call.response["stop_reason"]]
        assert span.attrs["orchestrate.cost_usd"] == pytest.approx(call.cost_usd)
        assert span.end_ns - span.start_ns == pytest.approx(call.latency_s * 1e9, rel=1e-3)
    assert any(s.attrs["gen_ai.usage.cache_read.input_tokens"] for s in chats)  # fan-out cache

    tool_spans = by_kind["execute_tool"]
    assert len(tool_spans) == len(tools)
    for span in tool_spans:
        assert span.parent_id == task_spans[span.attrs["orchestrate.task.id"]].span_id
    assert sorted(
        (s.attrs["orchestrate.task.id"], s.attrs["gen_ai.tool.name"]) for s in tool_spans
    ) == sorted((e.payload["task_id"], e.payload["tool"]) for e in tools)

    assert collector.total("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}) == (
        run.output_tokens
    )
    assert collector.total("orchestrate.tokens", **{"gen_ai.token.type": "cache_read"}) == (
        run.cache_read_input_tokens
    )
    assert collector.total("orchestrate.calls") == run.calls
    assert collector.total("orchestrate.cost") == pytest.approx(run.cost_usd)
    assert collector.total("orchestrate.errors") == 0


_PROBE = """
import sys
from orchestrator.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    assert exit.code == 0, exit.code
# (the Anthropic SDK imports the opentelemetry *API* itself; the SDK and our sink are ours)
ours = ("opentelemetry.sdk", "opentelemetry.exporter", "orchestrator.telemetry._sink")
print("loaded" if any(m.startswith(ours) for m in sys.modules) else "absent")
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "absent"),
        (
            {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
            "absent",
        ),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, "loaded"),
    ],
)
def test_opentelemetry_is_imported_only_when_otel_is_set(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    (tmp_path / "research.yaml").write_text(WORKFLOW, encoding="utf-8")
    args = ["run", "research.yaml", "--simulate", "--db", "state.db", "-q"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=tmp_path,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == expected
