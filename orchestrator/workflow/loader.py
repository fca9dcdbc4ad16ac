"""Load a workflow file: run the passes in order, then build the models from what passed.

The passes, one module each: `parse` (text and positioned YAML), `sections` (the header,
`inputs`, `defaults`, `limits`, `env`, inline `agents`, `outputs`), `steps` (kinds and every step
key, as `language` lists them; `fields` does the scalar checks), `references` (template names,
`steps.<id>` references, dependencies, cycles, models), `ordering` (loop bodies in the order
written; `run:` steps and writing agents with no order between them), `agents` (agent files),
`subworkflows`.

Validation is done by hand over the positioned YAML, not by pydantic, so that every problem is a
`Diagnostic` at the line and column where it was written, with a "did you mean" when a name is
close to a known one. Every problem the passes can find is collected before one `SpecError` is
raised; models are only built from values that passed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from orchestrator.config import Settings, default_config_text
from orchestrator.errors import Diagnostic, SpecError
from orchestrator.workflow import sections
from orchestrator.workflow._context import AgentCache, LoadContext, Scope
from orchestrator.workflow.agents import agent_dirs, resolve_agents
from orchestrator.workflow.language import STEP_KEYS, TOP_KEYS
from orchestrator.workflow.models import GroupSpec, LoopSpec, Step, Workflow
from orchestrator.workflow.ordering import order_bodies, warn_unordered_writers
from orchestrator.workflow.parse import parse_workflow, read_source
from orchestrator.workflow.references import check_cycles, check_models, resolve_checks
from orchestrator.workflow.steps import read_steps
from orchestrator.workflow.subworkflows import load_subworkflows

__all__ = ["STEP_KEYS", "TOP_KEYS", "agent_dirs", "count_steps", "load_workflow", "validate_paths"]


@functools.cache
def _packaged_settings() -> Settings:
    return Settings.model_validate(yaml.safe_load(default_config_text()) or {})


def _load(ctx: LoadContext, data: object) -> Workflow | None:
    head = sections.header(ctx, data)
    if head is None or not isinstance(data, dict):
        return None
    inputs = sections.inputs(ctx, data.get("inputs"))
    defaults = sections.defaults(ctx, data.get("defaults"))
    limits = sections.limits(ctx, data.get("limits"))
    notify = sections.notify(ctx, data.get("notify"))
    serving = sections.serving(ctx, data)
    env = sections.env(ctx, data.get("env"))
    inline_agents = sections.agents(ctx, data.get("agents"))

    top = Scope()
    if "steps" not in data:
        ctx.err((), "missing 'steps' (a list of steps)")
    else:
        read_steps(ctx, data["steps"], ("steps",), top)
    outputs = sections.outputs(ctx, data.get("outputs"), top)

    resolve_checks(ctx)
    order_bodies(ctx, top)
    check_cycles(ctx, top)
    resolve_agents(ctx)
    warn_unordered_writers(ctx, top)
    check_models(ctx)
    subs = load_subworkflows(ctx, _load_file)
    if ctx.errors:
        return None
    steps = _build_steps(ctx, top, subs)
    if ctx.errors:
        return None
    return Workflow(
        version=1,
        **head,
        inputs=inputs,
        defaults=defaults,
        limits=limits,
        notify=notify,
        **serving,
        env=env,
        agents=inline_agents,
        resolved_agents=ctx.resolved_agents,
        steps=steps,
        outputs=outputs,
        path=ctx.path,
        source_text=ctx.text,
        warnings=sorted(ctx.warnings, key=lambda d: (d.file != ctx.file, d.line, d.col)),
    )


def _build_steps(ctx: LoadContext, scope: Scope, subs: dict[int, Workflow]) -> list[Step]:
    steps: list[Step] = []
    for info in scope.steps:
        values = dict(info.fields)
        values["deps"] = frozenset(info.deps)
        values["after"] = frozenset(info.after)
        if info.body is not None and info.kind == "loop":
            values["loop"] = LoopSpec(
                steps=_build_steps(ctx, info.body, subs),
                until=info.loop.get("until"),
                max_iterations=info.loop.get("max_iterations", 1),
                max_duration=info.loop.get("max_duration"),
                on_exhausted=info.loop.get("on_exhausted", "succeed"),
                parallel=info.loop.get("parallel", False),
            )
        elif info.body is not None:
            values["group"] = GroupSpec(steps=_build_steps(ctx, info.body, subs))
        if id(info) in subs:
            values["sub"] = subs[id(info)]
        try:
            steps.append(Step(**values))
        except ValidationError as exc:  # a loader gap: still a diagnostic, never a traceback
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            ctx.err(info.path, f"{info.label}: invalid {where}: {first['msg']}")
    return steps


def _load_file(
    path: Path,
    text: str | None,
    settings: Settings,
    stack: tuple[Path, ...],
    agent_cache: AgentCache,
) -> Workflow:
    file = str(path)
    source = read_source(path, text)
    data, pos, errors = parse_workflow(source, file)
    ctx = LoadContext(path, source, settings, stack, agent_cache, pos)
    ctx.errors.extend(errors)
    workflow = _load(ctx, data)
    if ctx.errors or workflow is None:
        unique = list(dict.fromkeys(ctx.errors))
        raise SpecError(sorted(unique, key=lambda d: (d.file != file, d.file, d.line, d.col)))
    return workflow


def load_workflow(
    path: str | Path, *, text: str | None = None, settings: Settings | None = None
) -> Workflow:
    """Parse and validate a workflow file (or `text`, named `path`). Raises `SpecError` carrying
    every problem found; warnings are in `workflow.warnings`."""
    return _load_file(Path(path), text, settings or _packaged_settings(), (), {})


def count_steps(workflow: Workflow) -> int:
    """Steps including loop and group bodies."""
    return len(workflow.iter_steps())


def validate_paths(
    paths: Iterable[str | Path], *, settings: Settings | None = None
) -> list[Diagnostic]:
    """Every error and warning of each file; never raises on bad content."""
    out: list[Diagnostic] = []
    for path in paths:
        try:
            workflow = load_workflow(path, settings=settings)
        except SpecError as exc:
            out.extend(exc.diagnostics)
        except RecursionError:
            out.append(Diagnostic(str(path), 1, 1, "the workflow is nested too deeply"))
        except Exception as exc:  # a loader bug must not hide the other files' results
            message = (
                f"internal error while validating ({type(exc).__name__}: {exc}); please report"
            )
            out.append(Diagnostic(str(path), 1, 1, message))
        else:
            out.extend(workflow.warnings)
    return out
