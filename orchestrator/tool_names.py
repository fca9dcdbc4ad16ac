"""Which tool entries a step may name: one check shared by the workflow loader and the toolset.

A leaf (it imports only `contracts` and `names`), so validating a workflow never imports the tools
themselves. The loader reports these problems at the entry's line and column; `build_toolset`
raises them as `UsageError`; both say the same words.
"""

from __future__ import annotations

import re

from orchestrator.contracts import BUILTIN_TOOL_NAMES
from orchestrator.names import did_you_mean

__all__ = ["PYTHON_TOOL_PATTERN", "is_python_tool_ref", "unknown_tool_message"]

# `{python: "package.module:function"}`: a dotted module path, a colon, a function name.
PYTHON_TOOL_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
_PYTHON_TOOL = re.compile(PYTHON_TOOL_PATTERN)


def unknown_tool_message(name: str) -> str | None:
    """None when `name` is a built-in tool, else `unknown tool 'X'` with a "did you mean"."""
    if name in BUILTIN_TOOL_NAMES:
        return None
    return f"unknown tool '{name}'{did_you_mean(name, BUILTIN_TOOL_NAMES)}"


def is_python_tool_ref(target: object) -> bool:
    """True for the target of a python tool, `package.module:function`."""
    return isinstance(target, str) and _PYTHON_TOOL.match(target) is not None
