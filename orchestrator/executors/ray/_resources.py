"""Whether any node of the cluster can hold a task's resources (see `contracts/resources.py`).

A task no node could ever hold fails at once with a message naming what is missing, instead of
waiting forever for a node that will not come (Ray only warns). An autoscaling cluster whose
nodes come later is not handled: its tasks would be refused while it is small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# option name -> the name of the resource in `ray.nodes()[i]["Resources"]`
_NODE_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


def unschedulable(options: Mapping[str, Any], nodes: Iterable[Mapping[str, float]]) -> str | None:
    """Why no node can run a task with `options` (None: one can). `nodes` are the alive nodes'
    total resources, as `ray.nodes()` reports them."""
    wanted = {_NODE_NAMES[k]: float(v) for k, v in options.items() if k in _NODE_NAMES and v}
    wanted.setdefault("CPU", 1.0)  # Ray's default for a task
    known = list(nodes)
    for node in known:
        if all(node.get(name, 0.0) >= amount for name, amount in wanted.items()):
            return None
    asked = ", ".join(f"{name} {amount:g}" for name, amount in sorted(wanted.items()))
    biggest = {name: max((n.get(name, 0.0) for n in known), default=0.0) for name in wanted}
    has = ", ".join(f"{name} {amount:g}" for name, amount in sorted(biggest.items()))
    return (
        f"no node of the Ray cluster has the resources this task asks for ({asked}; the "
        f"largest node has {has}): lower the step's `resources:` or add a bigger node"
    )
