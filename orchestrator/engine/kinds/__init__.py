"""The built-in step kinds, one module each; importing this package registers them all.

agent (one worker), run (one shell command), fanout (one task per item, pooled or batched),
merge (a reducer), loop (a body until a condition), workflow (a sub-workflow's steps), ask (a
question for a person; with the tool approvals and the budget guard that ask too).
"""

from orchestrator.engine.kinds import agent, ask, command, fanout, loop, merge, subworkflow

__all__ = ["agent", "ask", "command", "fanout", "loop", "merge", "subworkflow"]
