"""A Messages API simulator on loopback, so tests, demos and benchmarks run the real SDK path.

`SimServer(SimConfig(...))` serves in a background thread; point
`anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-test")` at it and read `sim.log`.
Replies are deterministic for (seed, request content): schema-valid JSON for structured outputs,
calls of the tools the prompt names (or `tool_choice` forces), thinking blocks, SSE when
streaming, usage with prompt-cache accounting, the Models API over configs/default.yaml's
catalog, rate-limit headers, injected latency and faults, and scripted replies from a rules file.
Standalone: imports nothing of the engine.
"""

from orchestrator.sim.app import create_app
from orchestrator.sim.config import FAULT_KINDS, Rule, SimConfig, load_config_file, load_rules
from orchestrator.sim.log import LoggedRequest, RequestLog
from orchestrator.sim.schema import generate
from orchestrator.sim.server import SimServer, serve_forever

__all__ = [
    "FAULT_KINDS",
    "LoggedRequest",
    "RequestLog",
    "Rule",
    "SimConfig",
    "SimServer",
    "create_app",
    "generate",
    "load_config_file",
    "load_rules",
    "serve_forever",
]
