"""`orchestrate answer`, `approve`, `deny` and `runs waiting`: people answer questions that runs
wait on, from any shell with the store.

An answer is checked against the question's options or schema (a refused one is exit 2, with the
answers allowed) and written at once: a process that runs with `--wait` goes on by itself; a run
that ended `waiting` (exit 4) goes on with `orchestrate resume RUN`. The calls themselves live in
`orchestrator.people.answers`, which the web view uses too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli._options import DbOpt
from orchestrator.cli.app import app, runs_app
from orchestrator.cli.history import JsonOpt, RunArg, _Ctx, _print_json, _store

if TYPE_CHECKING:
    from orchestrator.store import Question, Store

QuestionArg = Annotated[
    str,
    typer.Argument(
        metavar="QUESTION",
        help="The asking step's path (e.g. confirm, polish.ok) or a question id.",
    ),
]
CallArg = Annotated[
    str,
    typer.Argument(
        metavar="CALL",
        help="The approval's question id (see `runs waiting`), or its step when only one waits.",
    ),
]


def _next_step(store: Store, question: Question) -> str:
    run = store.get_run(question.run_id, stale_after_s=_Ctx(None).stale_after)
    short = question.run_id[:10]
    if run is not None and run.status == "running":
        return "the run's process goes on by itself"
    if run is not None and run.status == "succeeded":
        return "the run already succeeded"
    return f"continue the run with `orchestrate resume {short}`"


def _done(store: Store, question: Question, what: str) -> None:
    typer.echo(
        f"{what} step '{question.step_id}' of run {question.run_id[:10]} "
        f"({question.id}); {_next_step(store, question)}",
        err=True,
    )


@app.command("answer")
def answer_command(
    run: RunArg,
    question: QuestionArg,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help="An option (its value or its number), JSON for a schema, or text.",
        ),
    ],
    db: DbOpt = None,
) -> None:
    """Answer a question a run waits on. A value that is not allowed is refused (exit 2) with
    the answers that are."""
    from orchestrator.people import answers

    with _store(_Ctx(db), readonly=False) as store:
        row = answers.answer(store, run, question, value)
        _done(store, row, f"answered {row.answer!r} to")


@app.command("approve")
def approve_command(run: RunArg, call: CallArg, db: DbOpt = None) -> None:
    """Let a tool call that waits for approval (`approve:` on its step) run."""
    from orchestrator.people import answers

    with _store(_Ctx(db), readonly=False) as store:
        row = answers.approve(store, run, call)
        _done(store, row, f"approved the {row.tool or 'tool'} call of")


@app.command("deny")
def deny_command(
    run: RunArg,
    call: CallArg,
    reason: Annotated[
        str, typer.Option("--reason", help="Why: the model receives it as the tool's error.")
    ],
    db: DbOpt = None,
) -> None:
    """Refuse a tool call that waits for approval; the model gets the reason as a tool error."""
    from orchestrator.people import answers

    with _store(_Ctx(db), readonly=False) as store:
        row = answers.deny(store, run, call, reason)
        _done(store, row, f"denied the {row.tool or 'tool'} call of")


@runs_app.command("waiting")
def waiting(json_: JsonOpt = False, db: DbOpt = None) -> None:
    """Every question that waits for a person, across runs, oldest first.

    --json prints an array of {id, run_id, step, kind, prompt, options, output, tool,
    tool_input, status, answer, reason, answered_by, asked_at, answered_at, age_s}.
    """
    from orchestrator.cli.history import _no_database
    from orchestrator.people import answers

    ctx = _Ctx(db)
    if _no_database(ctx.db):
        if json_:
            _print_json([])
        else:
            typer.echo("no runs yet")
        return
    with _store(ctx) as store:
        now = time.time()
        rows = [q.to_dict(now) for q in answers.pending(store)]
    if json_:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no questions waiting")
        return
    from orchestrator.cli.history import _console
    from orchestrator.ui.questions import questions_table

    _console().print(questions_table(rows, title="waiting for a person"))
