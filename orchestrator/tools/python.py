"""Python functions as tools: `{python: "pkg.mod:fn"}` in a workflow or agent file.

The tool's name is the function's name, its description the docstring, and its input schema comes
from the type hints (pydantic). Sync functions run in a worker thread, async ones are awaited. A
string result is sent as is, anything else as JSON; an exception becomes an `is_error` result.

A Python tool runs inside the engine's process, with its full environment (the API key included)
and no sandbox: it is trusted code the author wrote. So a function of Python's standard library is
refused (`subprocess:getoutput`, `os:system`, `builtins:eval`, `io:open`...), even when re-exported
from another module: none of them was written as a tool, and many hand the model a shell, an
evaluator or every file on the machine. The explicit way to allow one is to write a function in
your own module that does exactly what the model may do, and name that.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pydantic
import pydantic_core

from orchestrator.errors import ToolError, UsageError
from orchestrator.tools.base import Tool


def python_tool(ref: str) -> Tool:
    fn = _import(ref)
    refusal = stdlib_refusal(ref, fn)
    if refusal:
        raise UsageError(refusal)
    name = getattr(fn, "__name__", "")
    if not name.isidentifier():
        raise UsageError(f"python tool '{ref}': cannot name a tool after {fn!r}")
    try:
        # A TypeAdapter over a function validates its arguments, then calls it.
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(fn)  # type: ignore[arg-type]
        schema = adapter.json_schema()
    except Exception as exc:  # unresolvable hints, unsupported types, odd callables
        raise UsageError(
            f"python tool '{ref}': cannot build an input schema from its type hints: {exc}"
        ) from None
    schema.pop("title", None)
    schema.setdefault("properties", {})
    description = inspect.getdoc(fn) or f"The Python function {ref}."
    is_async = inspect.iscoroutinefunction(fn)
    call_title = f"call[{name}]"

    async def handler(args: dict[str, Any]) -> str:
        try:
            if is_async:
                result = await adapter.validate_python(args)
            else:
                result = await anyio.to_thread.run_sync(adapter.validate_python, args)
        except pydantic.ValidationError as exc:
            if exc.title != call_title:  # raised inside the function, not about its arguments
                raise ToolError(f"{name} raised ValidationError: {exc}") from exc
            raise ToolError(f"invalid arguments for {name}: {_pydantic_problems(exc)}") from None
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"{name} raised {type(exc).__name__}: {exc}") from exc
        return _render(result)

    return Tool(name, description, schema, handler)


def _import(ref: str) -> Callable[..., Any]:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"python tool '{ref}': expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"python tool '{ref}': cannot import module '{module_name}': {exc}"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            public = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, public, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"python tool '{ref}': '{module_name}' has no '{attr}'{hint}")
        target = getattr(target, part)
    if not callable(target) or inspect.isclass(target):
        raise UsageError(f"python tool '{ref}': '{attr}' is not a function")
    fn: Callable[..., Any] = target
    return fn


def stdlib_refusal(ref: str, fn: Callable[..., Any] | None = None) -> str | None:
    """Why `ref` may not be a tool (a standard-library function), or None. Without `fn` only
    the module named in `ref` is checked (no import: what `validate` can afford); with it, the
    module that defined the function too, which catches re-exports."""
    defined_in = getattr(fn, "__module__", None) if fn is not None else None
    for module in (ref.partition(":")[0], defined_in if isinstance(defined_in, str) else ""):
        if module.partition(".")[0] in sys.stdlib_module_names:
            return (
                f"python tool '{ref}': refused: '{module}' is part of Python's standard library. "
                "Python tools run in the engine's process with its full environment (the API key "
                "included) and no sandbox, and standard-library functions can run commands, read "
                "any file or evaluate code. Write a function in your own module that does only "
                "what the model may do, and name that instead (for shell commands, grant Bash, "
                "which runs sandboxed)"
            )
    return None


def _pydantic_problems(exc: pydantic.ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        problems.append(f"field '{location}': {error['msg']}" if location else error["msg"])
    return "; ".join(problems)


def _render(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return pydantic_core.to_json(result).decode()
    except pydantic_core.PydanticSerializationError:
        return str(result)
