"""`orchestrate estimate`: what a run could cost before it starts, per step and model.

It reads files only (no engine run, no store, no API call): the workflow, its inputs and the
settings' prices go to `orchestrator.engine.estimate`, the estimator the budget guard also uses.
Exit 0 with the estimate, 2 on a bad workflow, input or flag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli._options import InputOpt, InputsFileOpt, WorkflowArg
from orchestrator.cli.app import app

if TYPE_CHECKING:
    from orchestrator.engine.estimate import Estimate


def _usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


def _verdict(estimate: Estimate) -> str | None:
    """How the run's budget compares with the estimate, in words."""
    budget, worst, expected = estimate.max_cost_usd, estimate.worst_usd, estimate.expected_usd
    if budget is None:
        return None
    line = f"max_cost_usd ${budget:.2f}"
    if worst is None or expected is None:
        return f"{line}: cannot be compared (a model has no price)"
    if worst <= budget:
        return f"{line} covers the worst case: the budget will not stop this run"
    if expected <= budget:
        return (
            f"{line} covers the expected cost but not the worst case ({_usd(worst)}): "
            "the run may stop with `budget_exceeded` (exit 3) and can be resumed"
        )
    return f"{line} is below the expected cost ({_usd(expected)}): the run will likely stop early"


def _table(estimate: Estimate) -> list[str]:
    header = ("STEP", "MODEL", "TASKS", "CALLS", "IN/CALL", "MAX OUT", "WORST", "EXPECTED")
    rows = [
        (
            s.path,
            s.model or "-",
            str(s.tasks) + ("" if s.count == "known" else "*"),
            str(s.calls),
            str(s.input_tokens),
            str(s.max_tokens),
            _usd(s.worst_usd),
            _usd(s.expected_usd),
        )
        for s in estimate.steps
    ]
    rows.append(
        ("total", "", "", "", "", "", _usd(estimate.worst_usd), _usd(estimate.expected_usd))
    )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in (header, *rows)
    ]


@app.command()
def estimate(
    workflow_file: WorkflowArg,
    input_: InputOpt = None,
    inputs_file: InputsFileOpt = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option("--max-cost-usd", metavar="USD", help="A budget to compare with."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="Settings file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate a run's cost before it starts: worst case and expected, per step and model.

    Approximate: tokens are counted locally at about four characters a token; a prompt that
    reads a later step's output counts its template's text. The worst case is every call
    writing its full max_tokens, every turn of a tool-using worker, and every item a fan-out
    may have (a count decided at run time is bounded by the maxItems of the output it reads,
    else limits.max_workers; such counts are marked *). The expected case assumes a quarter of
    max_tokens per call and one call per task (half of max_turns with tools). Prompt-cache
    savings are not counted. Compare with `run --max-cost-usd`.
    """
    from orchestrator.cli.run import _parse_inputs
    from orchestrator.config import load_settings
    from orchestrator.engine.estimate import estimate_workflow
    from orchestrator.workflow import load_workflow

    settings = load_settings(config)
    workflow = load_workflow(workflow_file, settings=settings)
    inputs = workflow.coerce_inputs(_parse_inputs(input_ or [], inputs_file))
    result = estimate_workflow(workflow, settings, inputs, max_cost_usd=max_cost_usd)
    if as_json:
        typer.echo(json.dumps({"workflow": workflow.name, **result.to_dict()}, indent=2))
        return
    typer.echo(
        f"estimate for '{workflow.name}' (approximate: tokens counted locally, "
        "~4 characters a token)"
    )
    for line in _table(result):
        typer.echo(line)
    models = result.by_model()
    if len(models) > 1:
        for model, row in models.items():
            worst, expected = _usd(row["worst_usd"]), _usd(row["expected_usd"])
            typer.echo(f"  {model}: worst {worst}, expected {expected}")
    for step in result.steps:
        notes = ([] if step.count == "known" else [f"* {step.count}"]) + step.notes
        for note in notes:
            typer.echo(f"note: {step.path}: {note}")
    verdict = _verdict(result)
    if verdict:
        typer.echo(verdict)
