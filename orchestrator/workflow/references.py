"""References between the parts of a workflow: templates, `steps.<id>`, dependencies, models.

Templates compile as their step is read (`template`), but what they name is resolved only once
every step of the file is known (`resolve_checks`): a reference may point forward. A reference to
a step is a dependency of the step that holds the template, attached at the scope where the
target is defined, so an outer step read from inside a loop body is a dependency of the loop.
What a template reads of a step (`steps.<id>.<attribute>`) and of the loop (`loop.<attribute>`,
`loop.previous.<id>`) is checked against what a run will give it, so a misspelling fails here
with a "did you mean" rather than as an undefined value mid-run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import Diagnostic
from orchestrator.names import did_you_mean
from orchestrator.workflow._context import Check, LoadContext, Scope, StepInfo
from orchestrator.workflow._yaml import Path_
from orchestrator.workflow.graph import CycleError, topo_order
from orchestrator.workflow.language import LOOP_NAMES, STEP_VIEW_NAMES
from orchestrator.workflow.templates import Template, TemplateError, compile_value

__all__ = ["check_cycles", "check_models", "resolve_checks", "resolve_ref", "template"]


def _template_error_at(ctx: LoadContext, path: Path_, exc: TemplateError) -> Diagnostic:
    """Where in the file a template's error is: its line inside a block scalar, or the value."""
    line, col = ctx.pos.value(path)
    offset = ctx.pos.block_offset(path)
    inner = exc.lineno - 1 if exc.lineno and exc.lineno > 1 else None
    if inner is None and exc.lineno == 1 and offset:
        inner = 0
    if inner is not None:
        line += offset + inner
        if 0 < line <= len(ctx.lines):
            text = ctx.lines[line - 1]
            col = len(text) - len(text.lstrip()) + 1
    return Diagnostic(ctx.file, line, col, exc.message)


def template(
    ctx: LoadContext,
    value: Any,
    path: Path_,
    what: str,
    *,
    allowed: Iterable[str],
    scope: Scope,
    owner: StepInfo | None,
    strings_only: bool = True,
    notes: dict[str, str] | None = None,
) -> Template | None:
    """Compile `value` and queue what it names for `resolve_checks`. `allowed`: the top-level
    names its context holds; `notes`: why a name is not among them, where that needs saying.
    With `strings_only`, a list or a mapping is refused."""
    if value is None:
        return None
    if strings_only and not isinstance(value, str):
        if isinstance(value, int | float | bool):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            ctx.err(path, f"{what} must be a string")
            return None
    try:
        compiled = compile_value(value)
    except TemplateError as exc:
        diag = _template_error_at(ctx, path, exc)
        ctx.errors.append(Diagnostic(diag.file, diag.line, diag.col, f"{what}: {diag.message}"))
        return None
    for attr in sorted(compiled.private_attributes):
        ctx.err(path, f"{what}: '{attr}' is not allowed (names starting with '_' are private)")
    ctx.checks.append(Check(compiled, path, frozenset(allowed), scope, owner, dict(notes or {})))
    return compiled


def resolve_checks(ctx: LoadContext) -> None:
    """Every queued template's names, inputs, env variables and step references."""
    for check in ctx.checks:
        tpl, path = check.template, check.path
        for name in sorted(tpl.variables - check.allowed):
            if name == "loop":
                ctx.err(path, "'loop' is only defined inside a loop body")
                continue
            if name in check.notes:
                ctx.err(path, f"unknown name '{name}' in template: {check.notes[name]}")
                continue
            hint = did_you_mean(name, sorted(check.allowed))
            if not hint:
                hint = f"; available: {', '.join(sorted(check.allowed))}"
            if name == "item":
                hint += " ('item' exists only in a step with 'for_each')"
            ctx.err(path, f"unknown name '{name}' in template{hint}")
        if "inputs" in check.allowed:
            for name in sorted(tpl.input_references - set(ctx.input_names)):
                hint = did_you_mean(name, ctx.input_names)
                ctx.err(path, f"unknown input 'inputs.{name}'{hint}")
        if "env" in check.allowed:
            for name in sorted(tpl.env_references - set(ctx.env_names)):
                ctx.err(
                    path,
                    f"'env.{name}' is not listed under 'env:' (only listed variables are exposed)",
                )
        for ref in sorted(tpl.references):
            resolve_ref(ctx, ref, path, check.scope, check.owner, f"unknown step '{ref}'")
        _check_step_attributes(ctx, check)
        if "loop" in check.allowed:
            _check_loop_attributes(ctx, check)


def _visible(ref: str, scope: Scope) -> StepInfo | None:
    here: Scope | None = scope
    while here is not None:
        if ref in here.ids:
            return here.ids[ref]
        here = here.parent
    return None


def _check_step_attributes(ctx: LoadContext, check: Check) -> None:
    """`steps.<id>.<attribute>` reads something a step's view has (a run would fail on it)."""
    for ref, attr in sorted(check.template.step_attributes):
        target = _visible(ref, check.scope)
        if target is None or attr == "[...]":
            continue  # an unknown step is reported once, by `resolve_ref`
        where = f"'steps.{ref}.{attr}'"
        if attr not in STEP_VIEW_NAMES:
            hint = did_you_mean(attr, STEP_VIEW_NAMES)
            if not hint and target.kind in ("loop", "group"):
                hint = f" (a body step's output is steps.{ref}.output.{attr})"
            known = ", ".join(STEP_VIEW_NAMES)
            ctx.err(check.path, f"{where}: a step has no '{attr}'{hint}; it has {known}")
        elif attr in ("iterations", "exhausted") and target.kind != "loop":
            ctx.err(check.path, f"{where}: only a loop step has '{attr}'")


def _check_loop_attributes(ctx: LoadContext, check: Check) -> None:
    """`loop.<attribute>` is one a loop body has; `loop.previous.<id>` names a body step."""
    tpl = check.template
    for attr in sorted(tpl.loop_attributes - set(LOOP_NAMES)):
        hint = did_you_mean(attr, LOOP_NAMES)
        known = ", ".join(f"loop.{name}" for name in LOOP_NAMES)
        ctx.err(check.path, f"unknown 'loop.{attr}'{hint}; a loop body has {known}")
    owner = check.scope.loop_owner()
    body = owner.body if owner is not None else None
    if body is None:
        return
    for ref in sorted(tpl.previous_references - set(body.ids)):
        hint = did_you_mean(ref, list(body.ids))
        ctx.err(
            check.path,
            f"'loop.previous.{ref}': loop '{owner.id if owner else ''}' has no step '{ref}'{hint}",
        )


def resolve_ref(
    ctx: LoadContext,
    ref: str,
    path: Path_,
    scope: Scope,
    owner: StepInfo | None,
    message: str,
) -> bool:
    """Attach `ref` as a dependency of `owner` at the scope where `ref` is defined; report
    `message` (with a hint) when no visible scope defines it."""
    here: Scope | None = scope
    visible: list[str] = []
    while here is not None:
        if ref in here.ids:
            if owner is not None:
                owner.deps.add(ref)
            return True
        visible.extend(here.ids)
        owner = here.owner
        here = here.parent
    hint = did_you_mean(ref, visible)
    loop = _loop_holding(ref, scope)
    if loop is not None:
        hint = (
            f" (it is inside loop '{loop}': read it as steps.{loop}.output.{ref} outside the loop)"
        )
    ctx.err(path, message + hint)
    return False


def _loop_holding(ref: str, scope: Scope) -> str | None:
    """The visible loop step whose body (at any depth) defines `ref`, if any."""

    def inside(body: Scope) -> bool:
        return ref in body.ids or any(i.body is not None and inside(i.body) for i in body.steps)

    here: Scope | None = scope
    while here is not None:
        for info in here.steps:
            if info.body is not None and inside(info.body):
                return info.id
        here = here.parent
    return None


@dataclass(frozen=True)
class _Deps:
    id: str
    deps: frozenset[str]


def check_cycles(ctx: LoadContext, scope: Scope) -> None:
    """A dependency cycle in `scope` or any loop body, at the first step of the cycle."""
    named = [i for i in scope.steps if i.named]
    try:
        topo_order([_Deps(i.id, frozenset(i.deps)) for i in named])
    except CycleError as exc:
        first = scope.ids[exc.cycle[0]]
        ctx.errors.append(Diagnostic(ctx.file, first.line, first.col, str(exc)))
    for info in scope.steps:
        if info.body is not None:
            check_cycles(ctx, info.body)


def check_models(ctx: LoadContext) -> None:
    """A model that is neither an alias nor in the catalog is a warning when it is close to a
    known name (a likely typo) or does not look like a model id; a `claude-...` id that is not in
    the catalog passes, since the catalog lags the API."""
    aliases = ctx.settings.models.aliases
    catalog = ctx.settings.models.catalog
    for model, path in ctx.model_refs:
        if model in aliases or model in catalog:
            continue
        hint = did_you_mean(model, [*aliases, *catalog])
        if hint or not model.startswith("claude-"):
            ctx.warn(path, f"model '{model}' is not an alias or a model in the catalog{hint}")
    # A fallback is called only when the model before it is overloaded: a name that cannot be
    # called would surface then, at the worst time, so in a list it is an error now.
    for model, path, what in ctx.listed_models:
        if model in aliases or model in catalog or model.startswith("claude-"):
            continue
        hint = did_you_mean(model, [*aliases, *catalog])
        ctx.err(
            path,
            f"{what}: '{model}' is neither an alias ({', '.join(aliases)}) nor a model id"
            f"{hint}; fix the name, or add it under models: in orchestrate.yaml",
        )
