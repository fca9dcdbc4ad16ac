"""`orchestrate state list|get|set|rm`: the state scopes that outlive a run (`state_scope:`).

A person (or a script) can see what a loop remembers, correct a value or forget a key. Writes
go through the same compare-and-set as the runs' (`--expect-version`), so a value set here while
a run updates the key is never lost silently: one of the two writes is refused.

Exit codes: 0 done, 2 bad input (a missing scope or key, a value that is not JSON, a lost
`--expect-version`).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from orchestrator.cli._options import DbOpt
from orchestrator.cli.app import app
from orchestrator.errors import UsageError

state_app = typer.Typer(
    help="State that persists across runs (a workflow's `state_scope:`).", no_args_is_help=True
)
app.add_typer(state_app, name="state")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ScopeOpt = Annotated[
    str,
    typer.Option(
        "--scope",
        metavar="NAME",
        help="The scope: the workflow's `name` for `state_scope: workflow`, else the name given.",
    ),
]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The key.")]


def _open(db: str | None, *, readonly: bool) -> Any:
    from orchestrator.config import load_settings
    from orchestrator.store import Store, database_exists

    url = db or load_settings().engine.db
    if readonly and not database_exists(url):
        raise UsageError(f"no state yet (no database at {url})")
    return Store.open(url, readonly=readonly)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@state_app.command("list")
def list_(
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this.")] = "",
    scope: Annotated[
        str | None, typer.Option("--scope", metavar="NAME", help="One scope (default: all).")
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """The keys of one scope (or every scope): scope, key, version, value, last writer.
    `--json`: a list of {scope, key, value, version, updated_at, updated_by}."""
    from orchestrator.store import ScopedStore

    with _open(db, readonly=True) as store:
        rows = [r for r in ScopedStore(store).rows(scope) if r.key.startswith(prefix)]
    if json_:
        typer.echo(
            json.dumps(
                [
                    {
                        "scope": r.scope,
                        "key": r.key,
                        "value": r.value,
                        "version": r.version,
                        "updated_at": r.updated_at,
                        "updated_by": r.updated_by,
                    }
                    for r in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    if not rows:
        where = f" in scope {scope!r}" if scope else ""
        typer.echo(f"no state{where}", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("SCOPE", "KEY", "VERSION", "VALUE", "UPDATED", "BY"):
        table.add_column(column, overflow="fold")
    for r in rows:
        value = json.dumps(r.value, ensure_ascii=False)
        shown = value if len(value) <= 60 else value[:57] + "..."
        by = (r.updated_by or "")[:10]
        table.add_row(r.scope, r.key, str(r.version), shown, _iso(r.updated_at), by)
    Console().print(table)


@state_app.command("get")
def get(key: KeyArg, scope: ScopeOpt, json_: JsonOpt = False, db: DbOpt = None) -> None:
    """Print one value as JSON (`--json`: {scope, key, value, version}). Exit 2 if unset."""
    from orchestrator.store import ScopedStore

    with _open(db, readonly=True) as store:
        found = ScopedStore(store).get(scope, key)
    if found.version == 0:
        raise UsageError(f"no key {key!r} in scope {scope!r} (see `orchestrate state list`)")
    if json_:
        out = {"scope": scope, "key": key, "value": found.value, "version": found.version}
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(json.dumps(found.value, ensure_ascii=False, indent=2))


@state_app.command("set")
def set_(
    key: KeyArg,
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help="JSON (a word that is not JSON is a string).")
    ],
    scope: ScopeOpt,
    expect_version: Annotated[
        int | None,
        typer.Option(
            "--expect-version",
            min=0,
            help="Write only if the key is at this version (0: only if unset).",
        ),
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Set a key (its version goes up by one)."""
    from orchestrator.store import ScopedStore

    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    with _open(db, readonly=False) as store:
        done = ScopedStore(store).compare_and_set(
            scope, key, parsed, expected=expect_version, by="cli"
        )
    if not done.ok:
        raise UsageError(
            f"{scope}/{key} is at version {done.version}, not {expect_version}: it changed "
            "since you read it; read it again (`orchestrate state get`) and retry"
        )
    if json_:
        out = {"scope": scope, "key": key, "value": parsed, "version": done.version}
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(f"{scope}/{key} = {json.dumps(parsed, ensure_ascii=False)} (v{done.version})")


@state_app.command("rm")
def rm(key: KeyArg, scope: ScopeOpt, db: DbOpt = None) -> None:
    """Forget a key. Exit 2 if it was not set."""
    from orchestrator.store import ScopedStore

    with _open(db, readonly=False) as store:
        removed = ScopedStore(store).remove(scope, key)
    if not removed:
        raise UsageError(f"no key {key!r} in scope {scope!r} (see `orchestrate state list`)")
    typer.echo(f"removed {scope}/{key}")
