"""Tool calls that wait for a person: the `approve:` of an agent step, seen from the worker.

Before a turn's tools run, every call the step's `approve:` names (a tool name, or `all`) is put
to a person through `WorkerContext.approve`, all of the turn's at once. An approved call runs as
usual; a denied one is answered with a `tool_result` error that carries the person's reason, so
the model can change course. If any call cannot be answered now, none of the turn's tools runs
and the task ends `waiting` (`errors.Waiting`): a resumed run starts the conversation again, and
a call with the same tool and input gets the answer given meanwhile. With no way to ask (a worker
run outside an engine with people), such a call is refused as an error the model reads.
"""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.contracts import Answer, TaskSpec, WorkerContext
from orchestrator.contracts.people import needs_approval
from orchestrator.errors import Waiting

__all__ = ["denials"]

NO_ONE = "this call needs a person's approval and no one can approve in this run"


async def denials(spec: TaskSpec, ctx: WorkerContext, uses: list[dict[str, Any]]) -> dict[int, str]:
    """The error message of each tool call of this turn that a person denied (by its index in
    `uses`); raises `Waiting` when a call's approval cannot be had now."""
    gated = [
        (index, block)
        for index, block in enumerate(uses)
        if needs_approval(spec.approve, str(block.get("name", "")))
    ]
    if not gated:
        return {}
    approve = ctx.approve
    if approve is None:
        return {index: NO_ONE for index, _ in gated}
    answers: dict[int, Answer | None] = {}

    async def one(index: int, block: dict[str, Any]) -> None:
        answers[index] = await approve(spec, str(block.get("name", "")), block.get("input") or {})

    async with anyio.create_task_group() as group:
        for index, block in gated:
            group.start_soon(one, index, block)
    parked = [uses[i].get("name") for i, answer in answers.items() if answer is None]
    if parked:
        raise Waiting(
            f"{len(parked)} tool call(s) wait for approval ({', '.join(map(str, parked))}): "
            f"orchestrate approve {spec.run_id[:10]} CALL (see orchestrate runs waiting), "
            f"then orchestrate resume {spec.run_id[:10]}"
        )
    out: dict[int, str] = {}
    for index, answer in answers.items():
        assert answer is not None
        if answer.value != "approve":
            name = uses[index].get("name")
            out[index] = f"a person denied this {name} call: {answer.reason or 'no reason given'}"
    return out
