"""Geometry for the two drawings of a run page, computed here and drawn as SVG by the templates
(which escape every label): the step graph, and spend and throughput over the run's time.

The step graph lays a scope's steps out in dependency levels (`workflow.graph.topo_order`), one
row per level, an edge from each dependency; a loop's body is a graph of its own below. Without
a loadable workflow snapshot the stored steps are drawn in one row, without edges. No JavaScript
is needed to see either drawing (a `chromium --dump-dom` shows the step ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.store import StepSummary

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 176, 58, 28, 44, 12


@dataclass
class Node:
    step_id: str  # the full path: "polish.draft"
    label: str  # the id within its scope: "draft"
    kind: str
    status: str
    x: float
    y: float
    detail: str
    href: str


@dataclass
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Graph:
    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0
    height: float = 0


def _detail(summary: StepSummary | None, kind: str) -> str:
    if summary is None:
        return kind
    parts = [kind]
    if summary.tasks_total > 1 or kind == "fanout":
        parts.append(f"{summary.tasks_done}/{summary.tasks_total} done")
    if summary.cost_usd:
        parts.append(f"${summary.cost_usd:.4f}")
    return " · ".join(parts)


def _kind(step: Any, summary: StepSummary | None) -> str:
    if summary is not None:
        return summary.kind
    if getattr(step, "for_each", None) is not None:
        return "fanout"
    return str(step.kind)


def _scope(
    title: str,
    steps: list[Any],
    prefix: str,
    summaries: dict[str, StepSummary],
    run_id: str,
    out: list[Graph],
) -> None:
    from orchestrator.errors import OrchestrateError
    from orchestrator.workflow.graph import topo_order

    try:
        levels = topo_order(steps)
    except OrchestrateError:  # a cycle cannot have run; drawn in file order all the same
        levels = [[s.id for s in steps]]
    by_id = {s.id: s for s in steps}
    widest = max((len(level) for level in levels), default=0)
    graph = Graph(title=title)
    graph.width = PAD * 2 + widest * NODE_W + max(0, widest - 1) * GAP_X
    graph.height = PAD * 2 + len(levels) * NODE_H + max(0, len(levels) - 1) * GAP_Y
    where: dict[str, Node] = {}
    for row, level in enumerate(levels):
        row_w = len(level) * NODE_W + max(0, len(level) - 1) * GAP_X
        left = (graph.width - row_w) / 2
        for col, step_id in enumerate(level):
            path = prefix + step_id
            summary = summaries.get(path)
            kind = _kind(by_id[step_id], summary)
            node = Node(
                step_id=path,
                label=step_id,
                kind=kind,
                status=summary.status if summary else "pending",
                x=left + col * (NODE_W + GAP_X),
                y=PAD + row * (NODE_H + GAP_Y),
                detail=_detail(summary, kind),
                href=f"/runs/{run_id}/steps/{path}",
            )
            where[step_id] = node
            graph.nodes.append(node)
    for step in steps:
        for dep in sorted(step.deps):
            if dep in where and step.id in where:
                a, b = where[dep], where[step.id]
                graph.edges.append(Edge(a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y))
    out.append(graph)
    for step in steps:
        if step.loop is not None:
            _scope(
                f"loop body of {prefix + step.id}",
                list(step.loop.steps),
                f"{prefix}{step.id}.",
                summaries,
                run_id,
                out,
            )


def step_graph(workflow: Any, summaries: dict[str, StepSummary], run_id: str) -> list[Graph]:
    """The top-level graph first, then one per loop body. `workflow` False: no snapshot."""
    out: list[Graph] = []
    if workflow:
        _scope("steps", list(workflow.steps), "", summaries, run_id, out)
        return out
    graph = Graph(title="steps (as run; the workflow snapshot did not load)")
    for col, (path, summary) in enumerate(summaries.items()):
        graph.nodes.append(
            Node(
                step_id=path,
                label=path,
                kind=summary.kind,
                status=summary.status,
                x=PAD + col * (NODE_W + GAP_X),
                y=PAD,
                detail=_detail(summary, summary.kind),
                href=f"/runs/{run_id}/steps/{path}",
            )
        )
    n = len(graph.nodes)
    graph.width = PAD * 2 + n * NODE_W + max(0, n - 1) * GAP_X
    graph.height = PAD * 2 + NODE_H
    return [graph]


# --- spend and throughput ------------------------------------------------------------------


CHART_W, CHART_H, MARGIN_L, MARGIN_B, MARGIN_T = 720, 170, 64, 26, 14
BUCKETS = 48


@dataclass
class Chart:
    """Two panels over the same time axis: cumulative dollars (a line) and, per interval,
    calls answered and tasks finished (bars)."""

    empty: bool
    width: int = CHART_W
    height: int = CHART_H
    plot_w: float = CHART_W - MARGIN_L - 10
    plot_h: float = CHART_H - MARGIN_B - MARGIN_T
    left: float = MARGIN_L
    top: float = MARGIN_T
    spend_points: str = ""  # an SVG polyline
    spend_max: float = 0.0
    bars: list[dict[str, float]] = field(default_factory=list)  # x, w, calls_h, tasks_h
    bar_max: int = 0
    span_s: float = 0.0
    bucket_s: float = 0.0
    tokens_total: int = 0
    calls_total: int = 0
    tasks_total: int = 0


def activity_chart(
    calls: list[tuple[float, float, int, str]],
    tasks_done: list[float],
    start: float | None,
    end: float | None,
) -> Chart:
    if start is None or not (calls or tasks_done):
        return Chart(empty=True)
    last = max([end or 0.0, *(c[0] for c in calls), *tasks_done])
    span = max(last - start, 1e-3)
    chart = Chart(empty=False, span_s=span, bucket_s=span / BUCKETS)
    n_calls = [0] * BUCKETS
    n_tasks = [0] * BUCKETS

    def bucket(ts: float) -> int:
        return min(BUCKETS - 1, max(0, int((ts - start) / span * BUCKETS)))

    total = 0.0
    points = [(0.0, 0.0)]
    for ts, cost, tokens, _status in sorted(calls):
        n_calls[bucket(ts)] += 1
        total += cost
        chart.tokens_total += tokens
        points.append(((ts - start) / span, total))
    points.append((1.0, total))
    for ts in tasks_done:
        n_tasks[bucket(ts)] += 1
    chart.calls_total, chart.tasks_total, chart.spend_max = len(calls), len(tasks_done), total
    scale = total or 1.0
    chart.spend_points = " ".join(
        f"{chart.left + fx * chart.plot_w:.1f},{chart.top + chart.plot_h * (1 - v / scale):.1f}"
        for fx, v in points
    )
    chart.bar_max = max([*n_calls, *n_tasks, 1])
    width = chart.plot_w / BUCKETS
    for i in range(BUCKETS):
        chart.bars.append(
            {
                "x": chart.left + i * width,
                "w": max(1.0, width / 2 - 1),
                "calls_h": chart.plot_h * n_calls[i] / chart.bar_max,
                "tasks_h": chart.plot_h * n_tasks[i] / chart.bar_max,
                "calls": n_calls[i],
                "tasks": n_tasks[i],
            }
        )
    return chart
