"""The built-in step kinds, one module each; importing this package registers them all.

agent (one worker), run (one shell command), fanout (one task per item, pooled or batched),
merge (a reducer), loop (a body until a condition), workflow (a sub-workflow's steps).
"""

from orchestrator.engine.kinds import agent, command, fanout, loop, merge, subworkflow

__all__ = ["agent", "command", "fanout", "loop", "merge", "subworkflow"]
