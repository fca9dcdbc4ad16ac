"""Commands about the workflow language and the project: validate, graph, schema, init,
`agents list` and `config show`. They read files only; none starts the engine or the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.app import agents_app, app, config_app


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def validate(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Workflow files to check.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Check workflow files; print every problem as file:line:col: message. Exit 2 on errors."""
    from orchestrator.errors import Diagnostic, SpecError
    from orchestrator.workflow import count_steps, load_workflow

    report: list[dict[str, Any]] = []
    failed = False
    for file in files:
        diagnostics: list[Diagnostic]
        steps = 0
        try:
            workflow = load_workflow(file)
        except SpecError as exc:
            diagnostics = exc.diagnostics
        else:
            diagnostics = workflow.warnings
            steps = count_steps(workflow)
        ok = not any(d.severity == "error" for d in diagnostics)
        failed = failed or not ok
        report.append(
            {
                "file": str(file),
                "ok": ok,
                "steps": steps,
                "diagnostics": [d.to_dict() for d in diagnostics],
            }
        )
        if not as_json:
            for diagnostic in diagnostics:
                typer.echo(str(diagnostic))
            if ok:
                typer.echo(f"ok: {file} ({steps} {'step' if steps == 1 else 'steps'})")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    if failed:
        raise typer.Exit(2)


@app.command()
def graph(
    file: Annotated[Path, typer.Argument(help="A workflow file.")],
    format: Annotated[  # noqa: A002 - the option is called --format
        str, typer.Option("--format", "-f", help="mermaid or dot.")
    ] = "mermaid",
) -> None:
    """Print the step graph of a workflow (Mermaid or Graphviz dot)."""
    from orchestrator.errors import SpecError
    from orchestrator.workflow import graph_text, load_workflow

    if format not in ("mermaid", "dot"):
        _echo_err(f"error: unknown format '{format}' (use mermaid or dot)")
        raise typer.Exit(2)
    try:
        workflow = load_workflow(file)
    except SpecError as exc:
        for diagnostic in exc.diagnostics:
            _echo_err(str(diagnostic))
        raise typer.Exit(2) from None
    typer.echo(graph_text(workflow, "mermaid" if format == "mermaid" else "dot"), nl=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the workflow language (for yaml-language-server and editors)."""
    from orchestrator.workflow import language_schema

    typer.echo(json.dumps(language_schema(), indent=2))


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Project directory (created if missing).")
    ] = Path("."),
) -> None:
    """Scaffold a project: workflows/hello.yaml, agents/, orchestrate.yaml. Never overwrites."""
    from orchestrator.workflow.scaffold import scaffold_files

    files = scaffold_files()
    for relative in files:
        target = directory / relative
        if target.exists():
            _echo_err(f"error: {target} already exists; not overwriting anything")
            raise typer.Exit(2)
    for relative, content in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        typer.echo(f"created {target}")
    typer.echo(
        f"next: cd {directory} && orchestrate run workflows/hello.yaml --simulate"
        if str(directory) != "."
        else "next: orchestrate run workflows/hello.yaml --simulate"
    )


@agents_app.command("list")
def agents_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List agents found in ./agents and ./.claude/agents (the first of a name wins). Exits 1
    when an agent file does not load."""
    from orchestrator.config import load_settings
    from orchestrator.workflow import scan_agents

    default_tools = load_settings().agents.default_tools
    agents, problems = scan_agents(
        [Path("agents"), Path(".claude") / "agents"], default_tools=default_tools
    )
    rows = [
        {
            "name": agent.name,
            "model": agent.model or "inherit",
            "tools": agent.tools,
            "inherited_tools": agent.inherited_tools,
            "description": agent.description,
            "path": str(agent.path) if agent.path else None,
        }
        for agent in sorted(agents.values(), key=lambda a: a.name)
    ]
    failed = any(p.severity == "error" for p in problems)
    if as_json:
        shown = [
            {"file": p.file, "line": p.line, "col": p.col, "severity": p.severity,
             "message": p.message}
            for p in problems
        ]  # fmt: skip
        typer.echo(json.dumps({"agents": rows, "problems": shown}, indent=2))
        raise typer.Exit(1 if failed else 0)
    for problem in problems:
        _echo_err(str(problem))
    if not rows:
        typer.echo("no agents found in ./agents or ./.claude/agents")
        raise typer.Exit(1 if failed else 0)

    def tools(row: dict[str, Any]) -> str:
        names = ", ".join(t if isinstance(t, str) else json.dumps(t) for t in row["tools"] or [])
        return f"{names} (inherited)" if row["inherited_tools"] else names or "none"

    def model(row: dict[str, Any]) -> str:  # `model: [opus, sonnet]`: "opus > sonnet"
        return " > ".join(row["model"]) if isinstance(row["model"], list) else str(row["model"])

    table = [(r["name"], model(r), tools(r), r["path"]) for r in rows]
    header = ("NAME", "MODEL", "TOOLS", "SOURCE")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    for row in (header, *table):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        typer.echo("  ".join(cells).rstrip())
    raise typer.Exit(1 if failed else 0)


@config_app.command("show")
def config_show(
    config: Annotated[
        Path | None, typer.Option("--config", help="A settings file instead of ./orchestrate.yaml.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the merged settings and the layers they came from."""
    import yaml

    from orchestrator.config import load_settings
    from orchestrator.errors import UsageError

    try:
        settings = load_settings(config)
    except UsageError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    data = settings.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps({"sources": settings.sources, "settings": data}, indent=2))
        return
    typer.echo("# layers applied, lowest first: " + ", ".join(settings.sources))
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
