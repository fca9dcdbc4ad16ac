"""Sub-workflows (`workflow: path.yaml` steps): load each file, refuse inclusion cycles, and check
the `inputs:` a step passes against the inputs the sub-workflow declares.

A sub-workflow's own errors are reported in its own file, followed by one error at the step that
includes it; the agent-file cache is shared, so an agent file loads once for the whole tree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.config import Settings
from orchestrator.errors import SpecError
from orchestrator.names import did_you_mean
from orchestrator.workflow._context import AgentCache, LoadContext
from orchestrator.workflow.models import Workflow

__all__ = ["LoadFile", "load_subworkflows"]

# loader._load_file, passed in so that this pass does not import its caller.
LoadFile = Callable[[Path, str | None, Settings, tuple[Path, ...], AgentCache], Workflow]


def load_subworkflows(ctx: LoadContext, load_file: LoadFile) -> dict[int, Workflow]:
    """id(step info) -> its loaded sub-workflow, for every `workflow:` step that loads."""
    out: dict[int, Workflow] = {}
    chain_so_far = (*ctx.stack, ctx.path)
    for info, target, path in ctx.subs:
        if "\0" in target:  # the OS refuses such a path with a traceback, not a message
            ctx.err(path, f"{info.label}: a sub-workflow path cannot contain a NUL character")
            continue
        file = Path(target) if Path(target).is_absolute() else ctx.path.parent / target
        if file.resolve() in [p.resolve() for p in chain_so_far]:
            chain = " -> ".join(str(p) for p in (*chain_so_far, file))
            ctx.err(path, f"{info.label}: workflow includes itself: {chain}")
            continue
        if not file.is_file():
            ctx.err(path, f"{info.label}: sub-workflow not found: {file}")
            continue
        try:
            sub = load_file(file, None, ctx.settings, chain_so_far, ctx.agent_cache)
        except SpecError as exc:
            ctx.errors.extend(exc.diagnostics)
            ctx.err(path, f"{info.label}: sub-workflow {target} is invalid (see above)")
            continue
        ctx.warnings.extend(sub.warnings)
        given = info.raw.get("inputs") or {}
        if not isinstance(given, dict):
            given = {}
        for key in given:
            if key not in sub.inputs:
                hint = did_you_mean(key, list(sub.inputs))
                ctx.err(
                    (*info.path, "inputs", key),
                    f"{info.label}: {target} has no input '{key}'{hint}",
                    key=True,
                )
        for key, spec in sub.inputs.items():
            if spec.required and key not in given:
                ctx.err(path, f"{info.label}: {target} needs input '{key}'")
        out[id(info)] = sub
    return out
