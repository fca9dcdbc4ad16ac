"""The workflow language: models, loader, sandboxed templates, agent files and the step graph.

`load_workflow` is the entry point: it returns a validated `Workflow` (templates compiled, agents
resolved, dependencies built) or raises `SpecError` carrying every diagnostic found.
"""

from orchestrator.workflow.agents import find_agents, load_agent_file, scan_agents
from orchestrator.workflow.graph import CycleError, graph_text, topo_order
from orchestrator.workflow.loader import agent_dirs, count_steps, load_workflow, validate_paths
from orchestrator.workflow.models import (
    AgentDef,
    Defaults,
    InputSpec,
    Limits,
    LoopSpec,
    Step,
    StepKind,
    Workflow,
)
from orchestrator.workflow.schema import language_schema
from orchestrator.workflow.templates import Template, TemplateError, compile_template, compile_value

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
