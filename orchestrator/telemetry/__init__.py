"""OpenTelemetry for runs: spans and metrics built from the engine's event stream.

The only package that imports `opentelemetry`, and only when an `OTEL_*` variable asks for it:
`sink_from_env()` returns None without importing the OpenTelemetry SDK, its exporters or the sink
when none is set (or `OTEL_SDK_DISABLED` is true), so a run without telemetry pays nothing. (The
Anthropic SDK imports the OpenTelemetry *API* on its own, and traces through the global tracer
provider if one is set; orchestrate never sets it, so no call is traced twice.)

The sink is one more consumer of the typed events, next to the store writer and the run log; it
builds spans from the events' timestamps (run -> step -> task -> model call / tool call), so it
never wraps engine code.

Configuration is the SDK's own: `OTEL_EXPORTER_OTLP_ENDPOINT` (and its `_TRACES_`/`_METRICS_`
forms), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `grpc`),
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_EXPORTER`/`OTEL_METRICS_EXPORTER` (`otlp`, `console` or `none`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.telemetry._sink import OtelSink

INSTALL_HINT = "pip install 'orchestrate[otel]'"


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for telemetry: any `OTEL_*` variable, unless
    `OTEL_SDK_DISABLED=true` (the SDK's own off switch)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(name.startswith("OTEL_") for name in environ)


def sink_from_env(
    environ: Mapping[str, str] = os.environ, *, warn: Callable[[str], None] | None = None
) -> OtelSink | None:
    """The telemetry sink the environment asks for, or None (and nothing imported).

    When `OTEL_*` is set but the `otel` extra is not installed, `warn` is told how to install it
    and the run goes on without telemetry: an environment set up for other programs must not
    stop a run."""
    if not wanted(environ):
        return None
    try:
        from orchestrator.telemetry._sink import OtelSink
    except ImportError as exc:
        if warn is not None:
            warn(
                f"warning: OTEL_* is set but OpenTelemetry is not installed ({exc.name}); "
                f"no traces are sent. Install it with {INSTALL_HINT}, or unset OTEL_*."
            )
        return None
    return OtelSink.from_env(environ)


__all__ = ["INSTALL_HINT", "sink_from_env", "wanted"]
