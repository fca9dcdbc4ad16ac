"""`merge: branches`: merge the branches of an `isolation: worktree` step into one branch.

`from` names a fan-out (or a single agent step) whose tasks ran in worktrees; each item's output
carries its `branch`. They are merged one by one, in item order, into `into` (default
`orchestrate/<run>/merged`, made from the run's starting commit). The output is `{into, merged,
conflicts, commit}`: a branch that conflicts is left unmerged and listed with its files, and the
step still succeeds unless `on_conflict: fail`. Items without a branch (skipped or failed items)
are left out. Merging again (a resumed run) changes nothing: merged branches are ancestors.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.context import RunContext
from orchestrator.engine.plan import StepResult
from orchestrator.errors import UsageError
from orchestrator.states import StepStatus
from orchestrator.workflow import Step


def branches_of(output: Any) -> list[str]:
    items = output if isinstance(output, list) else [output]
    return [
        item["branch"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("branch"), str)
    ]


async def merge_branches(run: RunContext, step: Step, ctx: dict[str, Any]) -> StepResult:
    assert step.from_ is not None
    source = ctx["steps"].get(step.from_, {})
    if source.get("status") == StepStatus.SKIPPED:
        branches: list[str] = []
    else:
        output = source.get("output")
        branches = branches_of(output)
        if output not in (None, []) and not branches:
            raise UsageError(
                f"merge: branches: step '{step.from_}' made no branches; "
                "give it `isolation: worktree`"
            )
    result = await run.worktrees.merge(branches, step.into)
    conflicts = result["conflicts"]
    if conflicts and step.on_conflict == "fail":
        names = ", ".join(c["branch"] for c in conflicts)
        return StepResult(
            StepStatus.FAILED,
            output=result,
            error=f"{len(conflicts)} branch(es) conflict with {result['into']}: {names} "
            "(left unmerged; merge them by hand, or set on_conflict: report)",
        )
    return StepResult(StepStatus.SUCCEEDED, output=result)
