"""The OpenTelemetry sink: the event stream folded into spans and metrics.

Spans are built from event timestamps, never by wrapping engine code: a span starts at its
`*_started` event's `ts` and ends at the matching `*_finished` one; a model call's span ends at its
`call_finished` and starts `latency_s` earlier, a tool call's `duration_s` earlier. The tree:

    invoke_workflow <name>            run        (gen_ai.workflow.name, orchestrate.run.id)
      step <id>                       step       (loop bodies nest under their loop step)
        invoke_agent <agent>          task       (one worker; gen_ai.agent.name)
          chat <model>                one Messages API attempt (gen_ai.* request/usage)
          execute_tool <tool>         a client-side tool call

Attribute names follow the OpenTelemetry GenAI semantic conventions. `gen_ai.usage.input_tokens`
is the whole prompt as the conventions define it (uncached + cache reads + cache writes), where
Anthropic's `input_tokens` (the store's) counts only the uncached part; the cache parts are in
`gen_ai.usage.cache_read.input_tokens` and `gen_ai.usage.cache_creation.input_tokens`.

Invariants: nothing here blocks the event loop (spans go to a BatchSpanProcessor's thread);
a span left open when the process ends (a crash, SIGKILL aside) is ended by `close()` with the
status `interrupted`; metric attributes never carry run or task ids (cardinality).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from orchestrator import events as ev
from orchestrator.errors import UsageError

PROVIDER = "anthropic"
SCOPE = "orchestrate"
# The GenAI conventions' advised bucket boundaries for these two histograms.
_TOKEN_BUCKETS = [4.0**i for i in range(14)]
_DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]


def _ns(ts: float) -> int:
    return int(ts * 1_000_000_000)


def _protocol(environ: Mapping[str, str], signal: str) -> str:
    value = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    return value.strip().lower()


def _exporter_kind(environ: Mapping[str, str], signal: str) -> str:
    name = f"OTEL_{signal}_EXPORTER"
    kind = environ.get(name, "otlp").strip().lower()
    if kind not in ("otlp", "console", "none"):
        raise UsageError(f"{name}={kind!r}: orchestrate sends otlp, console or none")
    return kind


def _span_exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    kind = _exporter_kind(environ, "TRACES")
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    protocol = _protocol(environ, "TRACES")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter()
    raise UsageError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: orchestrate sends http/protobuf or grpc"
    )


def _metric_exporter(environ: Mapping[str, str]) -> MetricExporter | None:
    kind = _exporter_kind(environ, "METRICS")
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleMetricExporter()
    protocol = _protocol(environ, "METRICS")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter()
    raise UsageError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: orchestrate sends http/protobuf or grpc"
    )


def _resource(environ: Mapping[str, str]) -> Resource:
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself
    return Resource.create({} if named else {"service.name": "orchestrate"})


@dataclass
class _Run:
    span: Span
    workflow: str
    steps: dict[tuple[str, int | None], Span] = field(default_factory=dict)
    latest_step: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    tasks: dict[str, Span] = field(default_factory=dict)
    task_steps: dict[str, str] = field(default_factory=dict)


class _Metrics:
    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(SCOPE)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens per Messages API call, by gen_ai.token.type (input, output)",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Latency of one Messages API call",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tokens = meter.create_counter(
            "orchestrate.tokens",
            unit="{token}",
            description="Tokens as Anthropic counts them, by type (cache_read, cache_creation...)",
        )
        self.cost = meter.create_counter(
            "orchestrate.cost", unit="USD", description="Dollars spent, from configs prices"
        )
        self.calls = meter.create_counter(
            "orchestrate.calls", unit="{call}", description="Messages API attempts, by status"
        )
        self.errors = meter.create_counter(
            "orchestrate.errors",
            unit="{error}",
            description="Failed calls, tasks and steps, by orchestrate.error.source",
        )
        self.waits = meter.create_counter(
            "orchestrate.rate_limit.wait",
            unit="s",
            description="Seconds workers waited before retrying a call (429, 529, 5xx, network)",
        )


class OtelSink:
    """An event sink (`Emit`) that exports spans and metrics. Call `close()` when the run ends."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer = tracer_provider.get_tracer(SCOPE) if tracer_provider else None
        self._metrics = _Metrics(meter_provider) if meter_provider else None
        self._runs: dict[str, _Run] = {}
        self._clock = clock
        self._closed = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> OtelSink:
        """Providers and exporters as the `OTEL_*` variables say (the OTLP exporters read their
        endpoint, headers, timeout and compression from the process environment themselves)."""
        resource = _resource(environ)
        tracer_provider = None
        span_exporter = _span_exporter(environ)
        if span_exporter is not None:
            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        meter_provider = None
        metric_exporter = _metric_exporter(environ)
        if metric_exporter is not None:
            readers: list[MetricReader] = [PeriodicExportingMetricReader(metric_exporter)]
            meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        return cls(tracer_provider=tracer_provider, meter_provider=meter_provider)

    @classmethod
    def for_readers(
        cls, span_processor: Any | None, metric_reader: MetricReader | None
    ) -> OtelSink:
        """A sink over a given span processor and metric reader (tests, embedding)."""
        tracer_provider = None
        if span_processor is not None:
            tracer_provider = TracerProvider(resource=Resource.create({"service.name": SCOPE}))
            tracer_provider.add_span_processor(span_processor)
        meter_provider = None
        if metric_reader is not None:
            meter_provider = MeterProvider(metric_readers=[metric_reader])
        return cls(tracer_provider=tracer_provider, meter_provider=meter_provider)

    # --- the sink -----------------------------------------------------------------------------

    def __call__(self, event: ev.Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None and not self._closed:
            handler(self, event)

    def close(self) -> None:
        """End what is still open (status `interrupted`) and flush both exporters."""
        if self._closed:
            return
        now = self._clock()
        for run_id in list(self._runs):
            self._end_run(run_id, now, "interrupted", "the process ended before the run did")
        self._closed = True
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown()

    # --- spans --------------------------------------------------------------------------------

    def _start(self, name: str, parent: Span | None, ts: float, attributes: dict[str, Any]) -> Span:
        assert self._tracer is not None
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self._tracer.start_span(
            name,
            context=context,
            kind=SpanKind.INTERNAL,
            start_time=_ns(ts),
            attributes={k: v for k, v in attributes.items() if v is not None},
        )

    @staticmethod
    def _finish(span: Span, ts: float, status: str, error: str | None) -> None:
        span.set_attribute("orchestrate.status", status)
        if status not in ("succeeded", "skipped"):
            span.set_status(Status(StatusCode.ERROR, error or status))
            span.set_attribute("error.type", status)
        span.end(end_time=_ns(ts))

    def _end_run(self, run_id: str, ts: float, status: str, error: str | None) -> None:
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        for span in run.tasks.values():
            self._finish(span, ts, "cancelled" if status != "interrupted" else status, None)
        for span in reversed(run.steps.values()):  # innermost (latest started) first
            self._finish(span, ts, "cancelled" if status != "interrupted" else status, None)
        self._finish(run.span, ts, status, error)

    def _run_started(self, e: ev.Event) -> None:
        assert isinstance(e, ev.RunStarted)
        if self._tracer is None:
            return
        span = self._start(
            f"invoke_workflow {e.workflow_name}",
            None,
            e.ts,
            {
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": e.workflow_name,
                "orchestrate.run.id": e.run_id,
                "orchestrate.workflow.path": e.workflow_path,
                "orchestrate.workflow.hash": e.workflow_hash,
                "orchestrate.run.resumed": e.resumed,
            },
        )
        self._runs[e.run_id] = _Run(span=span, workflow=e.workflow_name)

    def _run_finished(self, e: ev.Event) -> None:
        assert isinstance(e, ev.RunFinished)
        self._end_run(e.run_id, e.ts, e.status, e.error)

    def _step_parent(self, run: _Run, step_id: str) -> Span:
        head, dot, _ = step_id.rpartition(".")
        while dot:
            key = run.latest_step.get(head)
            if key is not None and key in run.steps:
                return run.steps[key]
            head, dot, _ = head.rpartition(".")
        return run.span

    def _step_started(self, e: ev.Event) -> None:
        assert isinstance(e, ev.StepStarted)
        run = self._runs.get(e.run_id)
        if run is None:
            return
        key = (e.step_id, e.iteration)
        run.steps[key] = self._start(
            f"step {e.step_id}",
            self._step_parent(run, e.step_id),
            e.ts,
            {
                "orchestrate.run.id": e.run_id,
                "orchestrate.step.id": e.step_id,
                "orchestrate.step.kind": e.kind,
                "orchestrate.step.iteration": e.iteration,
                "orchestrate.step.total_tasks": e.total_tasks,
            },
        )
        run.latest_step[e.step_id] = key

    def _step_finished(self, e: ev.Event) -> None:
        assert isinstance(e, ev.StepFinished)
        run = self._runs.get(e.run_id)
        span = run.steps.pop((e.step_id, e.iteration), None) if run else None
        if span is None:
            return
        if e.exit_code is not None:
            span.set_attribute("process.exit.code", e.exit_code)
        if e.iterations is not None:
            span.set_attribute("orchestrate.step.iterations", e.iterations)
        self._finish(span, e.ts, e.status, e.error)
        if e.status == "failed" and self._metrics is not None:
            self._metrics.errors.add(1, {"orchestrate.error.source": "step"})

    def _step_span(self, run: _Run, step_id: str, iteration: int | None) -> Span:
        span = run.steps.get((step_id, iteration))
        if span is None:
            key = run.latest_step.get(step_id)
            span = run.steps.get(key) if key is not None else None
        return span or run.span

    def _task_started(self, e: ev.Event) -> None:
        assert isinstance(e, ev.TaskStarted)
        run = self._runs.get(e.run_id)
        if run is None:
            return
        earlier = run.tasks.pop(e.task_id, None)
        if earlier is not None:  # started again without a finish: that attempt is over
            self._finish(earlier, e.ts, "cancelled", "started again")
        run.tasks[e.task_id] = self._start(
            f"invoke_agent {e.agent or e.step_id}",
            self._step_span(run, e.step_id, e.iteration),
            e.ts,
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": PROVIDER,
                "gen_ai.agent.name": e.agent,
                "gen_ai.request.model": e.model,
                "gen_ai.conversation.id": e.task_id,
                "orchestrate.run.id": e.run_id,
                "orchestrate.step.id": e.step_id,
                "orchestrate.task.id": e.task_id,
                "orchestrate.task.key": e.key,
                "orchestrate.task.index": e.index,
                "orchestrate.step.iteration": e.iteration,
                "orchestrate.task.attempt": e.attempt,
            },
        )
        run.task_steps[e.task_id] = e.step_id

    def _task_finished(self, e: ev.Event) -> None:
        assert isinstance(e, ev.TaskFinished)
        run = self._runs.get(e.run_id)
        span = run.tasks.pop(e.task_id, None) if run else None
        if run is not None:
            run.task_steps.pop(e.task_id, None)
        if span is not None:
            span.set_attributes(_usage_attributes(e.usage))
            if e.cost_usd is not None:
                span.set_attribute("orchestrate.cost_usd", e.cost_usd)
            span.set_attribute("orchestrate.task.attempts", e.attempts)
            span.set_attribute("orchestrate.task.turns", e.turns)
            self._finish(span, e.ts, e.status, e.error)
        if e.status == "failed" and self._metrics is not None:
            self._metrics.errors.add(
                1, {"orchestrate.error.source": "task", "orchestrate.step.id": e.step_id}
            )

    def _task_span(self, run: _Run, task_id: str, step_id: str) -> Span:
        return run.tasks.get(task_id) or self._step_span(run, step_id, None)

    def _call_finished(self, e: ev.Event) -> None:
        assert isinstance(e, ev.CallFinished)
        run = self._runs.get(e.run_id)
        response = e.response or {}
        usage = e.usage or {}
        metric_attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": e.model,
            "orchestrate.step.id": e.step_id,
        }
        if response.get("model"):
            metric_attrs["gen_ai.response.model"] = response["model"]
        if e.status != "succeeded":
            metric_attrs["error.type"] = str(e.http_status or e.status)
        if run is not None and self._tracer is not None:
            stop = response.get("stop_reason")
            span = self._start(
                f"chat {e.model}",
                self._task_span(run, e.task_id, e.step_id),
                e.ts - e.latency_s,
                {
                    **metric_attrs,
                    "gen_ai.request.max_tokens": e.request.get("max_tokens"),
                    "gen_ai.output.type": "json" if e.request.get("output_config") else "text",
                    "gen_ai.response.id": response.get("id"),
                    "gen_ai.response.finish_reasons": [stop] if stop else None,
                    "gen_ai.conversation.id": e.task_id,
                    "http.response.status_code": e.http_status,
                    "orchestrate.run.id": e.run_id,
                    "orchestrate.task.id": e.task_id,
                    "orchestrate.call.id": e.call_id,
                    "orchestrate.call.attempt": e.attempt,
                    "orchestrate.call.batch": e.batch or None,
                    "orchestrate.request_id": e.request_id,
                    "orchestrate.cost_usd": e.cost_usd,
                },
            )
            span.set_attributes(_usage_attributes(usage))
            self._finish(span, e.ts, e.status, e.error)
        if self._metrics is not None:
            m = self._metrics
            m.calls.add(1, {**metric_attrs, "orchestrate.call.status": e.status})
            m.duration.record(e.latency_s, metric_attrs)
            if usage:
                prompt = _prompt_tokens(usage)
                m.token_usage.record(prompt, {**metric_attrs, "gen_ai.token.type": "input"})
                m.token_usage.record(
                    int(usage.get("output_tokens", 0)),
                    {**metric_attrs, "gen_ai.token.type": "output"},
                )
                for kind, key in _TOKEN_KINDS:
                    if usage.get(key):
                        m.tokens.add(int(usage[key]), {**metric_attrs, "gen_ai.token.type": kind})
            if e.cost_usd:
                m.cost.add(e.cost_usd, metric_attrs)
            if e.status != "succeeded":
                m.errors.add(1, {**metric_attrs, "orchestrate.error.source": "call"})

    def _tool_called(self, e: ev.Event) -> None:
        assert isinstance(e, ev.ToolCalled)
        run = self._runs.get(e.run_id)
        if run is None or self._tracer is None:
            return
        span = self._start(
            f"execute_tool {e.tool}",
            self._task_span(run, e.task_id, e.step_id),
            e.ts - e.duration_s,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": e.tool,
                "gen_ai.tool.type": "function",
                "orchestrate.run.id": e.run_id,
                "orchestrate.task.id": e.task_id,
            },
        )
        self._finish(span, e.ts, "failed" if e.is_error else "succeeded", e.output_preview)

    def _call_retried(self, e: ev.Event) -> None:
        assert isinstance(e, ev.CallRetried)
        run = self._runs.get(e.run_id)
        attrs = {"orchestrate.retry.kind": e.kind, "orchestrate.step.id": e.step_id}
        if run is not None:
            self._task_span(run, e.task_id, e.step_id).add_event(
                "call_retried",
                {
                    **attrs,
                    "orchestrate.retry.wait_s": e.wait_s,
                    "orchestrate.call.attempt": e.attempt,
                    "http.response.status_code": e.http_status or 0,
                    "exception.message": e.error,
                },
                timestamp=_ns(e.ts),
            )
        if self._metrics is not None:
            self._metrics.waits.add(e.wait_s, attrs)

    def _span_event(self, e: ev.Event) -> None:
        """Task retries, backpressure changes and warnings: events on the nearest span."""
        run = self._runs.get(e.run_id)
        if run is None:
            return
        task_id = getattr(e, "task_id", None)
        step_id = getattr(e, "step_id", None)
        span = run.tasks.get(task_id) if task_id else None
        if span is None and step_id:
            span = self._step_span(run, step_id, None)
        attrs = {
            k: v
            for k, v in e.to_dict().items()
            if k not in ("type", "run_id", "ts") and isinstance(v, (str, int, float, bool))
        }
        (span or run.span).add_event(e.type, attrs, timestamp=_ns(e.ts))
        if isinstance(e, ev.RateLimited) and e.pause_s and self._metrics is not None:
            self._metrics.waits.add(e.pause_s, {"orchestrate.retry.kind": "pause"})


_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_input_tokens"),
    ("cache_creation", "cache_creation_input_tokens"),
)


def _prompt_tokens(usage: Mapping[str, int]) -> int:
    return (
        int(usage.get("input_tokens", 0))
        + int(usage.get("cache_read_input_tokens", 0))
        + int(usage.get("cache_creation_input_tokens", 0))
    )


def _usage_attributes(usage: Mapping[str, int]) -> dict[str, int]:
    if not usage:
        return {}
    return {
        "gen_ai.usage.input_tokens": _prompt_tokens(usage),
        "gen_ai.usage.output_tokens": int(usage.get("output_tokens", 0)),
        "gen_ai.usage.cache_read.input_tokens": int(usage.get("cache_read_input_tokens", 0)),
        "gen_ai.usage.cache_creation.input_tokens": int(
            usage.get("cache_creation_input_tokens", 0)
        ),
    }


_HANDLERS: dict[type[ev.Event], Callable[[OtelSink, ev.Event], None]] = {
    ev.RunStarted: OtelSink._run_started,
    ev.RunFinished: OtelSink._run_finished,
    ev.StepStarted: OtelSink._step_started,
    ev.StepFinished: OtelSink._step_finished,
    ev.TaskStarted: OtelSink._task_started,
    ev.TaskFinished: OtelSink._task_finished,
    ev.CallFinished: OtelSink._call_finished,
    ev.ToolCalled: OtelSink._tool_called,
    ev.CallRetried: OtelSink._call_retried,
    ev.TaskRetried: OtelSink._span_event,
    ev.RateLimited: OtelSink._span_event,
    ev.Warning: OtelSink._span_event,
}
