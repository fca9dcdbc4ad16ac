"""A loopback OTLP/HTTP collector: a tiny HTTP server that decodes the protobuf bodies the
OpenTelemetry exporters POST to /v1/traces and /v1/metrics (with `opentelemetry-proto`)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def value_of(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(items: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in items}


@dataclass
class Span:
    name: str
    span_id: bytes
    parent_id: bytes
    trace_id: bytes
    attrs: dict[str, Any]
    status: int
    start_ns: int
    end_ns: int
    events: list[str]


@dataclass
class Collector:
    url: str
    spans: list[Span] = field(default_factory=list)
    metrics: dict[str, list[tuple[dict[str, Any], float]]] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)

    def add_traces(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            self.resources.append(attributes(rs.resource.attributes))
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(
                        Span(
                            name=s.name,
                            span_id=s.span_id,
                            parent_id=s.parent_span_id,
                            trace_id=s.trace_id,
                            attrs=attributes(s.attributes),
                            status=s.status.code,
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            events=[e.name for e in s.events],
                        )
                    )

    def add_metrics(self, body: bytes) -> None:
        """Each metric's data points as (attributes, value): a sum's value, a histogram's sum.
        Cumulative temporality: the last export of a point holds its total, so points replace
        earlier ones with the same attributes."""
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        request = ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points
                    latest = dict(
                        (tuple(sorted(attributes(p.attributes).items())), p) for p in points
                    )
                    kept = {
                        tuple(sorted(a.items())): (a, v)
                        for a, v in self.metrics.get(metric.name, [])
                    }
                    for key, point in latest.items():
                        if kind == "histogram":
                            number = point.sum
                        else:
                            number = (
                                point.as_double if point.HasField("as_double") else point.as_int
                            )
                        kept[key] = (dict(key), number)
                    self.metrics[metric.name] = list(kept.values())

    def total(self, metric: str, **where: Any) -> float:
        return sum(
            v
            for a, v in self.metrics.get(metric, [])
            if all(a.get(k) == want for k, want in where.items())
        )


@pytest.fixture
def collector() -> Iterator[Collector]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with lock:
                if self.path == "/v1/traces":
                    sink.add_traces(body)
                elif self.path == "/v1/metrics":
                    sink.add_metrics(body)
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink = Collector(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()
