"""The sink's span tree for what a simulated run does not show: loop bodies, failures,
retries and waits, and a process that ends in the middle of a run."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from orchestrator import events as ev
from orchestrator.telemetry import sink_from_env, wanted
from orchestrator.telemetry._sink import OtelSink

R = "run1"


def _sink() -> tuple[OtelSink, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    return OtelSink.for_readers(SimpleSpanProcessor(spans), metrics), spans, metrics


def _started(t: float) -> ev.RunStarted:
    return ev.RunStarted(
        run_id=R,
        ts=t,
        workflow_name="wf",
        workflow_path="wf.yaml",
        workflow_snapshot="",
        workflow_hash="h",
        inputs={},
        workspace=".",
    )


def _by_name(exporter: InMemorySpanExporter) -> dict[str, Any]:
    return {s.name: s for s in exporter.get_finished_spans()}


def _metric(reader: InMemoryMetricReader, name: str) -> float:
    data = reader.get_metrics_data()
    total = 0.0
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    total += sum(p.value for p in metric.data.data_points)
    return total


def test_loop_body_steps_nest_under_their_loop_and_failures_are_errors() -> None:
    sink, exporter, reader = _sink()
    for event in [
        _started(1.0),
        ev.StepStarted(run_id=R, ts=2.0, step_id="polish", kind="loop"),
        ev.StepStarted(run_id=R, ts=3.0, step_id="polish.draft", kind="agent", iteration=1),
        ev.TaskStarted(
            run_id=R, ts=3.1, task_id="t1", step_id="polish.draft", key="k", iteration=1
        ),
        ev.CallRetried(
            run_id=R,
            ts=3.5,
            task_id="t1",
            step_id="polish.draft",
            attempt=1,
            kind="rate_limit",
            error="429",
            wait_s=2.5,
            http_status=429,
        ),
        ev.CallFinished(
            run_id=R,
            ts=4.0,
            call_id="c1",
            task_id="t1",
            step_id="polish.draft",
            model="m",
            attempt=1,
            request={},
            status="fatal_error",
            error="400 bad",
            http_status=400,
            latency_s=0.5,
        ),
        ev.TaskFinished(
            run_id=R, ts=4.1, task_id="t1", step_id="polish.draft", status="failed", error="boom"
        ),
        ev.StepFinished(run_id=R, ts=4.2, step_id="polish.draft", status="failed", iteration=1),
        ev.StepFinished(run_id=R, ts=4.3, step_id="polish", status="failed"),
        ev.RunFinished(run_id=R, ts=5.0, status="failed", error="step polish failed"),
    ]:
        sink(event)
    sink.close()
    spans = _by_name(exporter)
    run, loop = spans["invoke_workflow wf"], spans["step polish"]
    body, task, call = (
        spans["step polish.draft"],
        spans["invoke_agent polish.draft"],
        spans["chat m"],
    )
    assert loop.parent.span_id == run.context.span_id
    assert body.parent.span_id == loop.context.span_id
    assert task.parent.span_id == body.context.span_id
    assert call.parent.span_id == task.context.span_id
    assert (call.start_time, call.end_time) == (3_500_000_000, 4_000_000_000)
    assert call.attributes["error.type"] == "fatal_error"
    assert call.attributes["http.response.status_code"] == 400
    for span in (call, task, body, loop, run):
        assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in task.events] == ["call_retried"]
    assert _metric(reader, "orchestrate.rate_limit.wait") == 2.5
    assert _metric(reader, "orchestrate.errors") == 4  # the call, the task, two steps


def test_close_ends_what_a_dying_process_left_open() -> None:
    sink, exporter, _ = _sink()
    sink(_started(1.0))
    sink(ev.StepStarted(run_id=R, ts=2.0, step_id="s", kind="agent"))
    sink(ev.TaskStarted(run_id=R, ts=2.1, task_id="t", step_id="s", key="k"))
    sink.close()
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    assert {s.attributes["orchestrate.status"] for s in spans} == {"interrupted"}


def test_wanted_follows_the_otel_variables() -> None:
    assert not wanted({})
    assert not wanted({"PATH": "/bin"})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_SDK_DISABLED": "true"})
    assert sink_from_env({}) is None
