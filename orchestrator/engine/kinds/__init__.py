"""The built-in step kinds, one module each; importing this package registers them all.

agent (one worker), run (one shell command), fanout (one task per item, pooled or batched),
merge (a reducer), loop (a body until a condition), workflow (a sub-workflow's steps), set (a
data step), group (a body run as one step), ask (a question for a person; with the tool
approvals and the budget guard that ask too). `compound` holds what loops, groups and workflow
steps share, also when they fan out.
"""

from orchestrator.engine.kinds import (
    agent,
    ask,
    command,
    compound,
    data,
    fanout,
    group,
    loop,
    merge,
    subworkflow,
)

__all__ = [
    "agent",
    "ask",
    "command",
    "compound",
    "data",
    "fanout",
    "group",
    "loop",
    "merge",
    "subworkflow",
]
