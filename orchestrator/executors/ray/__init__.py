"""The Ray executor (`--executor ray`): tasks run on a Ray cluster, dispatch stays here.

See `executor.py` for how a node's model calls reach the one dispatcher, and README's "On a
cluster" for what a node needs. Importing this package imports Ray: go through
`orchestrator.executors.load_ray` for the message when it is not installed.
"""

from orchestrator.executors.ray._resources import unschedulable
from orchestrator.executors.ray.executor import RayExecutor, orchestrate_task, sqlite_refusal

__all__ = [
    "RayExecutor",
    "orchestrate_task",
    "sqlite_refusal",
    "unschedulable",
]
