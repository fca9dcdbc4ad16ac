"""What a run, or one step, could cost before it starts: the one estimator of the engine.

`orchestrate estimate` (the whole workflow, per step and model), the budget guard
(`limits.ask_above_usd`, in `kinds/ask.py`) and the dispatcher's per-call reservation all count
here, so they cannot disagree. Everything is approximate and says so:

- tokens are counted locally at about four characters a token (there is no local tokenizer for
  Claude models); a tool definition counts a fixed amount; a prompt that reads what an earlier
  step will produce is measured as its template's text;
- the worst case is every task's every turn writing its full `max_tokens` (a tool-using worker
  takes `max_turns` turns, each resending the conversation so far; a structured output may add
  `retries` repair turns), for every item a fan-out may have: the count when the list is known
  now, else a bound (the `maxItems` of the step output it reads, else `limits.max_workers`);
- the expected case is a quarter of `max_tokens` per call, one call per task (half of
  `max_turns` with tools), `minItems..maxItems` midway, half the iterations of a loop with
  `until`; prompt-cache savings are not counted, so it errs high.

Pure functions of the workflow, the settings and a template context: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import Settings
from orchestrator.engine.plan import fanout_items
from orchestrator.engine.resolve import task_settings
from orchestrator.errors import OrchestrateError
from orchestrator.workflow import Step, Template, Workflow

__all__ = [
    "CHARS_PER_TOKEN",
    "Estimate",
    "StepEstimate",
    "estimate_input_tokens",
    "estimate_step",
    "estimate_workflow",
    "text_tokens",
]

CHARS_PER_TOKEN = 4
TOOL_TOKENS = 300  # a tool's definition (name, description, input schema), roughly
EXPECTED_OUTPUT_SHARE = 0.25  # of max_tokens, per call, in the expected case

# `{{ steps.plan.output.subtasks }}` (optionally piped through filters): where a count comes from
_STEP_OUTPUT = re.compile(
    r"^\{\{\s*steps\.([a-z_][a-z0-9_]*)\.output((?:\.[A-Za-z_]\w*)*)\s*(\|[^}]*)?\}\}$"
)


def text_tokens(text: str) -> int:
    """About how many tokens `text` is (four characters a token)."""
    return len(text) // CHARS_PER_TOKEN + 1


def estimate_input_tokens(request: dict[str, Any]) -> int:
    """A cheap upper-ish estimate of a Messages API request's input tokens."""
    size = len(json.dumps(request.get("messages", ()), default=str))
    system = request.get("system")
    if system:
        size += len(system) if isinstance(system, str) else len(json.dumps(system, default=str))
    tools = request.get("tools")
    if tools:
        size += len(json.dumps(tools, default=str))
    return size // CHARS_PER_TOKEN + 1


@dataclass(slots=True)
class StepEstimate:
    """One step's cost, worst and expected (None: its model has no price in the settings)."""

    path: str
    kind: str
    model: str | None = None
    tasks: int = 0  # worst case
    tasks_expected: float = 0.0
    count: str = "known"  # where the task count comes from: known, or the bound used
    calls: int = 0  # worst-case model calls
    input_tokens: int = 0  # one task's first call, estimated
    max_tokens: int = 0
    worst_usd: float | None = 0.0
    expected_usd: float | None = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.path,
            "kind": self.kind,
            "model": self.model,
            "tasks": self.tasks,
            "tasks_expected": round(self.tasks_expected, 2),
            "count": self.count,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "max_tokens": self.max_tokens,
            "worst_usd": _round(self.worst_usd),
            "expected_usd": _round(self.expected_usd),
            "notes": self.notes,
        }


@dataclass(slots=True)
class Estimate:
    steps: list[StepEstimate]
    max_cost_usd: float | None = None  # the run's budget, to compare with

    @property
    def worst_usd(self) -> float | None:
        return _sum(s.worst_usd for s in self.steps)

    @property
    def expected_usd(self) -> float | None:
        return _sum(s.expected_usd for s in self.steps)

    def by_model(self) -> dict[str, dict[str, float | None]]:
        out: dict[str, dict[str, float | None]] = {}
        for s in self.steps:
            if s.model is None:
                continue
            row = out.setdefault(s.model, {"worst_usd": 0.0, "expected_usd": 0.0})
            row["worst_usd"] = _sum((row["worst_usd"], s.worst_usd))
            row["expected_usd"] = _sum((row["expected_usd"], s.expected_usd))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "approximate": True,
            "method": "tokens counted locally at ~4 characters a token; see `orchestrate "
            "estimate --help`",
            "worst_usd": _round(self.worst_usd),
            "expected_usd": _round(self.expected_usd),
            "max_cost_usd": self.max_cost_usd,
            "steps": [s.to_dict() for s in self.steps],
            "models": {
                m: {k: _round(v) for k, v in row.items()} for m, row in self.by_model().items()
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _sum(values: Any) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _render(template: Template | None, ctx: dict[str, Any]) -> tuple[Any, bool]:
    """The template's value over `ctx`, and whether it could be rendered now."""
    if template is None:
        return None, True
    try:
        return template.render(ctx), True
    except (OrchestrateError, Exception):  # reads what a later step produces
        return template.source, False


def _text_tokens(template: Template | None, ctx: dict[str, Any]) -> tuple[int, bool]:
    if template is None:
        return 0, True
    value, known = _render(template, ctx)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text_tokens(text), known


def _schema_at(workflow: Workflow, step_id: str, fields: str) -> dict[str, Any] | None:
    try:
        schema: Any = workflow.step(step_id).output
    except KeyError:
        return None
    for name in [f for f in fields.split(".") if f]:
        if not isinstance(schema, dict):
            return None
        schema = (schema.get("properties") or {}).get(name)
    return schema if isinstance(schema, dict) else None


def _count(
    step: Step, workflow: Workflow, ctx: dict[str, Any], max_workers: int
) -> tuple[int, float, str, list[Any]]:
    """A fan-out's items: (worst, expected, where the count comes from, the items if known)."""
    assert step.for_each is not None
    value, known = _render(step.for_each, ctx)
    items = fanout_items(value) if known else None
    if items is not None:
        return len(items), float(len(items)), "known", items
    match = _STEP_OUTPUT.match(step.for_each.source.strip())
    schema = _schema_at(workflow, match.group(1), match.group(2)) if match else None
    if (
        schema is not None
        and isinstance(schema.get("maxItems"), int)
        and not (match and match.group(3))
    ):
        top = int(schema["maxItems"])
        low = schema.get("minItems")
        expected = (top + low) / 2 if isinstance(low, int) else float(top)
        where = step.for_each.source.strip()[2:-2].strip()
        return top, expected, f"bound: maxItems of {where}", []
    return max_workers, float(max_workers), "bound: limits.max_workers (decided at run time)", []


def estimate_step(
    step: Step,
    workflow: Workflow,
    settings: Settings,
    ctx: dict[str, Any],
    path: str,
    *,
    max_workers: int,
    times: float = 1.0,
    times_expected: float = 1.0,
    upstream: dict[str, tuple[int, float]] | None = None,
) -> StepEstimate:
    """An agent step's (or agent fan-out's) cost, run `times` times (a loop's iterations).
    `upstream`: the output tokens each earlier step of the scope can produce (most, expected),
    by id; a prompt that reads one of them before it exists counts them."""
    resolved = task_settings(step, workflow, settings)
    est = StepEstimate(path=path, kind="fanout" if step.for_each is not None else "agent")
    tasks, expected_tasks = 1, 1.0
    item_ctx = ctx
    if step.for_each is not None:
        tasks, expected_tasks, est.count, items = _count(step, workflow, ctx, max_workers)
        # the first item stands for every item (its prompt is measured)
        item_ctx = {**ctx, step.as_: items[0] if items else None}
        if step.index_as:
            item_ctx[step.index_as] = 0
    prompt, known = _text_tokens(step.prompt, item_ctx)
    expected_extra = 0.0  # the expected input is this much off the worst (upstream output)
    context, context_known = _text_tokens(step.context, ctx)
    if not (known and context_known):
        read = sorted(d for d in step.deps if upstream and d in upstream)
        if read and upstream:
            prompt += sum(upstream[d][0] for d in read)
            expected_extra = sum(upstream[d][1] - upstream[d][0] for d in read)
            est.notes.append(f"prompt reads {', '.join(read)}: their max output counted")
        else:
            est.notes.append("prompt reads later output: measured as its template's text")
    if step.dynamic:
        est.notes.append(f"templated {', '.join(step.dynamic)}: the step's defaults are used")
    system = text_tokens(resolved.system) if resolved.system else 0
    schema = text_tokens(json.dumps(step.output)) if isinstance(step.output, dict) else 0
    first_input = system + context + prompt + schema + TOOL_TOKENS * len(resolved.tools)
    turns = resolved.max_turns if resolved.tools else 1
    if isinstance(step.output, dict):
        turns += resolved.retries  # repair turns for output that fails its schema
    expected_turns = max(1.0, resolved.max_turns / 2) if resolved.tools else 1.0
    models = [resolved.model, *resolved.fallback_models]
    est.model = resolved.model if len(models) == 1 else " > ".join(models)
    est.tasks = math.ceil(tasks * times)
    est.tasks_expected = expected_tasks * times_expected
    est.calls = est.tasks * turns
    est.input_tokens = first_input
    est.max_tokens = resolved.max_tokens
    priced = [settings.price(m) for m in models]
    prices = [p for p in priced if p is not None]
    # each turn resends the conversation so far: the first input plus every earlier output
    worst_in = turns * first_input + resolved.max_tokens * turns * (turns - 1) // 2
    worst_out = turns * resolved.max_tokens
    discount = 1.0
    if step.batch:
        discount = prices[0].batch_discount if prices else 0.5
        est.notes.append("batch: priced at the Batches discount")
    if len(prices) < len(priced):
        est.worst_usd = est.expected_usd = None
        missing = [m for m, p in zip(models, priced, strict=True) if p is None]
        est.notes.append("no price in the settings for " + ", ".join(missing))
        return est
    first_price = prices[0]
    per_task = max((worst_in * p.input + worst_out * p.output) / 1e6 for p in prices)
    est.worst_usd = per_task * est.tasks * discount
    out_tokens = EXPECTED_OUTPUT_SHARE * resolved.max_tokens
    expected_in = (
        expected_turns * (first_input + expected_extra)
        + out_tokens * expected_turns * (expected_turns - 1) / 2
    )
    per_expected = (
        expected_in * first_price.input + expected_turns * out_tokens * first_price.output
    ) / 1e6
    est.expected_usd = per_expected * est.tasks_expected * discount
    budget = step.budget.max_cost_usd if step.budget is not None else None
    if budget is not None and est.worst_usd > budget:
        est.notes.append(f"worst case capped by its budget.max_cost_usd ${budget:.2f}")
        est.worst_usd = budget
        est.expected_usd = min(est.expected_usd, budget)
    return est


def _iterations(step: Step, ctx: dict[str, Any]) -> tuple[float, float, str | None]:
    assert step.loop is not None
    raw = step.loop.max_iterations
    cap: float
    note = None
    if isinstance(raw, Template):
        value, known = _render(raw, ctx)
        if known and isinstance(value, int) and not isinstance(value, bool):
            cap = float(value)
        else:
            cap, note = 1.0, "max_iterations decided at run time: one iteration counted"
    elif raw is None:  # bounded by `max_duration` alone: how many fit is known only at run time
        cap, note = 1.0, "no max_iterations (max_duration bounds it): one iteration counted"
    else:
        cap = float(raw)
    expected = math.ceil(cap / 2) if step.loop.until is not None else cap
    return cap, float(expected), note


def _walk(
    steps: list[Step],
    workflow: Workflow,
    settings: Settings,
    ctx: dict[str, Any],
    prefix: str,
    max_workers: int,
    times: float,
    times_expected: float,
    out: list[StepEstimate],
) -> None:
    upstream: dict[str, tuple[int, float]] = {}  # step id -> its output tokens (most, expected)
    for step in steps:
        path = prefix + step.id
        fan = 1.0
        fan_expected = 1.0
        if step.for_each is not None and step.kind in ("group", "loop", "workflow"):
            worst, expected, _source, _items = _count(step, workflow, ctx, max_workers)
            fan, fan_expected = float(worst), expected
        if step.kind == "agent":
            out.append(
                estimate_step(
                    step, workflow, settings, ctx, path, max_workers=max_workers,
                    times=times, times_expected=times_expected, upstream=upstream,
                )
            )  # fmt: skip
            last = out[-1]
            upstream[step.id] = (
                last.tasks * last.max_tokens,
                last.tasks_expected * last.max_tokens * EXPECTED_OUTPUT_SHARE,
            )
        elif step.kind == "merge" and step.from_ in upstream:
            upstream[step.id] = upstream[step.from_]  # a reducer passes its source's size on
        elif step.kind == "loop" and step.loop is not None:
            cap, expected, note = _iterations(step, ctx)
            start = len(out)
            body_ctx = {**ctx, "loop": {"iteration": 1, "index": 1, "previous": {}}}
            _walk(step.loop.steps, workflow, settings, body_ctx, path + ".", max_workers,
                  times * fan * cap, times_expected * fan_expected * expected, out)  # fmt: skip
            if note:
                for est in out[start:]:
                    est.notes.append(note)
        elif step.kind == "group" and step.group is not None:
            _walk(step.group.steps, workflow, settings, ctx, path + ".", max_workers,
                  times * fan, times_expected * fan_expected, out)  # fmt: skip
        elif step.kind == "workflow" and step.sub is not None:
            sub_ctx = {**ctx, "inputs": _sub_inputs(step, ctx)}
            _walk(step.sub.steps, step.sub, settings, sub_ctx, path + ".", max_workers,
                  times * fan, times_expected * fan_expected, out)  # fmt: skip


def _sub_inputs(step: Step, ctx: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, template in step.inputs.items():
        value, known = _render(template, ctx)
        if known:
            values[name] = value
    if step.sub is not None:
        for name, spec in step.sub.inputs.items():
            if name not in values and spec.has_default:
                values[name] = spec.default
    return values


def estimate_workflow(
    workflow: Workflow,
    settings: Settings,
    inputs: dict[str, Any],
    *,
    max_workers: int | None = None,
    max_cost_usd: float | None = None,
) -> Estimate:
    """Every agent step's cost, in file order (loop and group bodies and sub-workflows too)."""
    ctx: dict[str, Any] = {
        "inputs": inputs,
        "run": {"id": "estimate", "workspace": "."},
        "state": {},
        "env": {},
        "loop": {},
        "steps": {},
    }
    bound = max_workers or workflow.limits.max_workers or settings.engine.max_workers
    out: list[StepEstimate] = []
    _walk(workflow.steps, workflow, settings, ctx, "", bound, 1.0, 1.0, out)
    budget = max_cost_usd if max_cost_usd is not None else workflow.limits.max_cost_usd
    return Estimate(steps=out, max_cost_usd=budget)
