"""Python functions as tools: `{python: "pkg.mod:fn"}` in a workflow or agent file.

The tool's name is the function's name, its description the docstring, and its input schema comes
from the type hints (pydantic). Sync functions run in a worker thread, async ones are awaited. A
string result is sent as is, anything else as JSON; an exception becomes an `is_error` result.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pydantic
import pydantic_core

from orchestrator.errors import ToolError, UsageError
from orchestrator.tools.base import Tool


def python_tool(ref: str) -> Tool:
    fn = _import(ref)
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
