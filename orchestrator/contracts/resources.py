"""A task's `resources:` (Ray's names: `num_cpus`, `num_gpus`, `memory`), checked and converted.

One definition for the loader (which reports a bad value at its line) and the Ray executor
(which passes the result to Ray's task options). `memory` takes bytes or a size with a unit:
`512MiB`, `2GiB`, `1.5GB`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

RESOURCE_NAMES = ("num_cpus", "num_gpus", "memory")

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


def memory_bytes(value: Any) -> int:
    """`2GiB` -> 2147483648; raises ValueError naming the accepted forms."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"memory must be bytes or a size like 512MiB or 2GiB, got {value!r}")
    return int(float(match.group(1)) * _UNITS[unit])


def resource_options(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """`resources` as Ray task options (memory in bytes). Raises ValueError for a bad one."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise ValueError(f"resources must be a mapping of {', '.join(RESOURCE_NAMES)}")
    options: dict[str, Any] = {}
    for name, value in resources.items():
        if name == "memory":
            options["memory"] = memory_bytes(value)
        elif name in ("num_cpus", "num_gpus"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number of at least 0, got {value!r}")
            options[name] = value
        else:
            known = ", ".join(RESOURCE_NAMES)
            raise ValueError(f"unknown resource {name!r} (known: {known})")
    return options
