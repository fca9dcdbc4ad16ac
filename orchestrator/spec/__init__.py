"""The workflow language: models, loader, sandboxed templates, agent files and the step graph.

`load_workflow` is the entry point: it returns a validated `Workflow` (templates compiled, agents
resolved, dependencies built) or raises `SpecError` carrying every diagnostic found.
"""

from orchestrator.spec.agents import find_agents, load_agent_file, scan_agents
from orchestrator.spec.graph import CycleError, graph_text, topo_order
from orchestrator.spec.loader import agent_dirs, count_steps, load_workflow, validate_paths
from orchestrator.spec.models import (
    AgentDef,
    Defaults,
    InputSpec,
    Limits,
    LoopSpec,
    Step,
    StepKind,
    Workflow,
)
from orchestrator.spec.schema import language_schema
from orchestrator.spec.templates import Template, TemplateError, compile_template, compile_value

__all__ = [
    "AgentDef",
    "CycleError",
    "Defaults",
    "InputSpec",
    "Limits",
    "LoopSpec",
    "Step",
    "StepKind",
    "Template",
    "TemplateError",
    "Workflow",
    "agent_dirs",
    "compile_template",
    "compile_value",
    "count_steps",
    "find_agents",
    "graph_text",
    "language_schema",
    "load_agent_file",
    "load_workflow",
    "scan_agents",
    "topo_order",
    "validate_paths",
]
