"""Executors: where a task runs. `local` (the default) runs every task in the engine's own
event loop; `ray` (`executors/ray`, the optional extra `orchestrate[ray]`) runs each task on a
Ray cluster while its model calls, state and events still go through this process.

An executor wraps a worker function (`TaskSpec`, `WorkerContext`) -> `TaskResult` into another
one with the same signature, so the engine neither knows nor cares where a task runs: the
dispatcher, the budget and the store stay with the engine. This package imports no Ray at
import time; `load_ray` says plainly how to install it when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.executors.ray import RayExecutor

EXECUTORS = ("local", "ray")

RAY_MISSING = (
    "--executor ray needs Ray, which is not installed: pip install 'orchestrate[ray]' "
    "(or pip install 'ray>=2.40'), on this machine and on every node of the cluster"
)


def load_ray() -> type[RayExecutor]:
    """The Ray executor class, or a `UsageError` (exit 2) saying how to install Ray."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    from orchestrator.executors.ray import RayExecutor

    return RayExecutor


__all__ = ["EXECUTORS", "RAY_MISSING", "load_ray"]
