"""The order steps run in, where the file decides it rather than references.

Two passes over the loaded scopes, after references are resolved:

- `order_bodies`: a loop body runs in the order written (unless the loop says `parallel: true`):
  each step gets the one before it as an order-only dependency (`Step.after`: a skipped
  predecessor does not skip it, as a skipped data dependency would). A body step that reads or
  `needs` a later one is an error that says how to fix it, not a dependency cycle.
- `warn_unordered_writers`: at the top level, a `run:` step and an agent step granted Write, Edit
  or Bash with no path of dependencies between them may run at once on the one workspace; warn,
  naming both and the `needs` that orders them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from orchestrator.tool_names import entry_tool_names
from orchestrator.workflow._context import LoadContext, Scope, StepInfo

__all__ = ["order_bodies", "warn_unordered_writers"]

WRITING_TOOLS = ("Write", "Edit", "Bash")


def order_bodies(ctx: LoadContext, scope: Scope) -> None:
    """Chain the steps of every ordered body (loop bodies unless `parallel: true`)."""
    for info in scope.steps:
        if info.body is not None:
            order_bodies(ctx, info.body)
    if not scope.ordered:
        return
    named = [info for info in scope.steps if info.named]
    position = {info.id: n for n, info in enumerate(named)}
    owner = scope.owner.id if scope.owner is not None else "?"
    forward = False
    for n, info in enumerate(named):
        later = sorted((d for d in info.deps if position.get(d, -1) > n), key=position.__getitem__)
        for dep in later:
            forward = True
            ctx.err(
                info.path,
                f"{info.label} reads or needs '{dep}', which comes after it in loop '{owner}'; "
                f"a loop body runs in the order written: move '{dep}' above it, read "
                f"loop.previous.{dep} (the last iteration's), or give the loop 'parallel: true'",
            )
    if forward:
        return  # chaining now would only add a cycle error for the same mistake
    for before, info in itertools.pairwise(named):
        if before.id not in info.deps:
            info.after.add(before.id)
            info.deps.add(before.id)


def _agent_tools(ctx: LoadContext, info: StepInfo) -> list[str]:
    """The tools an agent step is granted as far as the file says (its own, else its agent's)."""
    tools = info.fields.get("tools")
    if tools is None:
        agent_name = info.fields.get("agent")
        agent = ctx.resolved_agents.get(agent_name) if isinstance(agent_name, str) else None
        tools = agent.tools if agent is not None else None
    return [name for entry in tools or [] for name in entry_tool_names(entry)]


def _all_steps(info: StepInfo) -> Iterable[StepInfo]:
    yield info
    if info.body is not None:
        for inner in info.body.steps:
            yield from _all_steps(inner)


def _writes(ctx: LoadContext, info: StepInfo) -> str | None:
    """The writing tool an agent step (or one in a loop or group body) is granted, if any."""
    for step in _all_steps(info):
        if step.kind == "agent":
            granted = _agent_tools(ctx, step)
            for tool in WRITING_TOOLS:
                if tool in granted:
                    return tool
    return None


def _runs(info: StepInfo) -> bool:
    return any(step.kind == "run" for step in _all_steps(info))


def _ancestors(scope: Scope) -> dict[str, set[str]]:
    """Every step id of `scope` -> the ids it waits for, directly or not."""
    deps = {info.id: set(info.deps) & set(scope.ids) for info in scope.steps if info.named}
    out: dict[str, set[str]] = {}

    def visit(step_id: str, seen: frozenset[str]) -> set[str]:
        if step_id in out:
            return out[step_id]
        found: set[str] = set()
        for dep in deps.get(step_id, set()):
            if dep not in seen:  # a cycle is reported elsewhere
                found |= {dep, *visit(dep, seen | {dep})}
        out[step_id] = found
        return found

    for step_id in deps:
        visit(step_id, frozenset({step_id}))
    return out


def warn_unordered_writers(ctx: LoadContext, scope: Scope) -> None:
    """A warning at the later of each `run:` step and writing agent step that may overlap."""
    named = [info for info in scope.steps if info.named]
    ancestors = _ancestors(scope)
    for n, later in enumerate(named):
        for earlier in named[:n]:
            if earlier.id in ancestors.get(later.id, set()):
                continue
            if later.id in ancestors.get(earlier.id, set()):
                continue
            for runner, writer in ((earlier, later), (later, earlier)):
                tool = _writes(ctx, writer)
                if tool is None or not _runs(runner) or runner is writer:
                    continue
                ctx.warn(
                    later.path,
                    f"{writer.label} (granted {tool}) and {runner.label} (a 'run:' command) have "
                    "no order between them, so they may run at once on the same workspace; "
                    f"add 'needs: [{earlier.id}]' to '{later.id}' if one must see the other's "
                    "files",
                )
                break
