"""Options and arguments several commands share, so each is spelled (and documented) once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="The store: a SQLite path or a database URL. Default: the `engine.db` setting "
        "(env ORCHESTRATE_DB), .orchestrate/state.db.",
    ),
]
WorkflowArg = Annotated[Path, typer.Argument(metavar="WORKFLOW", help="The workflow YAML file.")]
InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input", "-i", metavar="NAME=VALUE", help="An input as NAME=VALUE (repeatable)."
    ),
]
InputsFileOpt = Annotated[
    Path | None, typer.Option("--inputs", metavar="FILE", help="A JSON or YAML file of inputs.")
]
