"""A step's `resources:` as Ray's task options, and whether any node of the cluster has them.

`resources: {num_cpus: 2, memory: 2GiB, num_gpus: 1}` uses Ray's own names; `memory` takes bytes
or a size with a unit (`512MiB`, `2GiB`, `1.5GB`). With no `resources`, a task asks Ray for its
default of one CPU. A task no node could ever hold fails at once with a message naming what is
missing, instead of waiting forever for a node that will not come.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
# our key -> the name of the resource in `ray.nodes()[i]["Resources"]`
_NODE_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


def memory_bytes(value: Any) -> int:
    """`2GiB` -> 2147483648; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"memory must be bytes or a size like 2GiB, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"memory must be bytes or a size like 512MiB or 2GiB, got {value!r}")
    return int(float(match.group(1)) * _UNITS[unit])


def ray_options(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ray `.options(...)` for one task. Raises ValueError for a value Ray would refuse."""
    options: dict[str, Any] = {}
    for name, value in (resources or {}).items():
        if name == "memory":
            options["memory"] = memory_bytes(value)
        elif name in ("num_cpus", "num_gpus"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number of at least 0, got {value!r}")
            options[name] = value
        else:
            raise ValueError(f"unknown resource {name!r} (known: num_cpus, num_gpus, memory)")
    return options


def unschedulable(options: Mapping[str, Any], nodes: Iterable[Mapping[str, float]]) -> str | None:
    """Why no node of the cluster can run a task with `options` (None: one can). `nodes` are the
    alive nodes' total resources, as `ray.nodes()` reports them."""
    wanted = {_NODE_NAMES[k]: float(v) for k, v in options.items() if k in _NODE_NAMES and v}
    wanted.setdefault("CPU", 1.0)  # Ray's default for a task
    known = list(nodes)
    for node in known:
        if all(node.get(name, 0.0) >= amount for name, amount in wanted.items()):
            return None
    asked = ", ".join(f"{name} {amount:g}" for name, amount in sorted(wanted.items()))
    biggest = {
        name: max((node.get(name, 0.0) for node in known), default=0.0) for name in wanted
    }
    has = ", ".join(f"{name} {amount:g}" for name, amount in sorted(biggest.items()))
    return (
        f"no node of the Ray cluster has the resources this task asks for ({asked}; the "
        f"largest node has {has}): lower the step's `resources:` or add a bigger node"
    )
