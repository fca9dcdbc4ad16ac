"""The step graph: dependency levels, cycle naming, and Mermaid/Graphviz rendering.

Dependencies live on each step (`Step.deps`, same-scope ids only), so a loop's or a group's
body is its own graph: the step stands for its body in the enclosing scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Literal, Protocol

from orchestrator.errors import UsageError
from orchestrator.workflow.models import Step, Workflow

__all__ = ["CycleError", "find_cycle", "graph_text", "topo_order"]


class _HasDeps(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def deps(self) -> frozenset[str]: ...


class CycleError(UsageError):
    """Steps depend on each other in a circle. `cycle` is e.g. ['a', 'b', 'a']."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


def find_cycle(deps: Mapping[str, AbstractSet[str]]) -> list[str] | None:
    """A cycle among `deps` (id -> ids it depends on) as a closed path, in file order, or None.
    Ids outside `deps` are ignored (they belong to another scope)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(deps[node], key=lambda d: order.get(d, -1)):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                start = path.index(dep)
                # a -> b: a depends on b.
                return [*path[start:], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    order = {name: i for i, name in enumerate(deps)}
    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topo_order(steps: Sequence[_HasDeps]) -> list[list[str]]:
    """Steps grouped in levels: every step's dependencies are in earlier levels; a level keeps
    file order. Raises `CycleError` naming the cycle."""
    ids = [s.id for s in steps]
    known = set(ids)
    deps = {s.id: {d for d in s.deps if d in known} for s in steps}
    levels: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(ids):
        level = [i for i in ids if i not in done and deps[i] <= done]
        if not level:
            rest = {i: deps[i] for i in ids if i not in done}
            cycle = find_cycle(rest) or sorted(rest)
            raise CycleError(cycle)
        levels.append(level)
        done.update(level)
    return levels


def _label(step: Step) -> str:
    if step.kind == "agent":
        detail = f"agent: {step.agent}" if step.agent else "agent"
    elif step.kind == "merge":
        detail = f"merge: {step.merge}"
    elif step.kind == "run":
        detail = "run"
    elif step.kind == "workflow":
        detail = f"workflow: {step.workflow}"
    elif step.kind == "set":
        detail = "set"
    elif step.kind == "group":
        detail = "group"
    else:
        assert step.loop is not None
        cap = step.loop.max_iterations
        if cap is None:
            detail = f"loop ≤ {step.loop.max_duration:g}s"
        else:
            detail = f"loop ≤ {cap if isinstance(cap, int) else cap.source}"
    if step.for_each is not None:
        detail += ", for each"
    if step.when is not None:
        detail += ", when"
    return f"{step.id} ({detail})"


def _node(prefix: str, step_id: str) -> str:
    return (prefix + step_id).replace(".", "__")


def graph_text(workflow: Workflow, format: Literal["mermaid", "dot"] = "mermaid") -> str:  # noqa: A002
    """The step graph as Mermaid (`flowchart TD`) or Graphviz dot; loops are subgraphs."""
    lines: list[str] = []
    if format == "mermaid":
        lines.append("flowchart TD")
    elif format == "dot":
        lines.append(f'digraph "{workflow.name}" {{')
        lines.append("  node [shape=box];")
    else:
        raise UsageError(f"unknown graph format '{format}' (use mermaid or dot)")

    def emit(steps: list[Step], prefix: str, indent: str) -> None:
        for step in steps:
            node = _node(prefix, step.id)
            label = _label(step).replace('"', "'")
            if step.body:
                if format == "mermaid":
                    lines.append(f'{indent}subgraph {node}["{label}"]')
                else:
                    lines.append(f"{indent}subgraph cluster_{node} {{")
                    lines.append(f'{indent}  label="{label}";')
                    lines.append(f'{indent}  {node} [label="{step.id}", shape=point];')
                emit(step.body, f"{prefix}{step.id}.", indent + "  ")
                lines.append(f"{indent}end" if format == "mermaid" else f"{indent}}}")
            elif format == "mermaid":
                lines.append(f'{indent}{node}["{label}"]')
            else:
                lines.append(f'{indent}{node} [label="{label}"];')
        for step in steps:
            for dep in sorted(step.deps):
                arrow = "-->" if format == "mermaid" else "->"
                end = "" if format == "mermaid" else ";"
                src, dst = _node(prefix, dep), _node(prefix, step.id)
                lines.append(f"{indent}{src} {arrow} {dst}{end}")

    emit(workflow.steps, "", "  ")
    if format == "dot":
        lines.append("}")
    return "\n".join(lines) + "\n"
