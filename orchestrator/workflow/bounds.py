"""Bounds on what a template may build: no rendered value over `engine.max_value_bytes`.

The limit travels in a contextvar (`value_limit`, set by the engine for a whole run), so every
render of the run, in whatever task, sees the run's setting. Whatever could build a huge value in
one step is checked before it allocates: `*`, `**`, `+` and `%` (intercepted operators, so Jinja
does not fold them at load time either), `str` methods that take a width or a count (`ljust`,
`center`, `zfill`, `expandtabs`, `format`, `replace`, `join`), the filters that do the same
(`center`, `indent`, `format`, `join`, `replace`), `lipsum()` and namespace assignments in loops.
`templates.py` also bounds what a text template outputs as it streams.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum

__all__ = [
    "DEFAULT_VALUE_LIMIT",
    "MAX_VALUE_SIZE",
    "BoundedSandbox",
    "check_size",
    "current_value_limit",
    "install_bounds",
    "too_big",
    "value_limit",
    "value_size",
]

MAX_VALUE_SIZE = 10_000_000  # characters or items one `*` or `**` may produce
DEFAULT_VALUE_LIMIT = 10_000_000  # bytes of one rendered value (`engine.max_value_bytes`)

_LIMIT: contextvars.ContextVar[int] = contextvars.ContextVar(
    "orchestrate_value_limit", default=DEFAULT_VALUE_LIMIT
)
_WIDTH = re.compile(r"\d+")


@contextmanager
def value_limit(limit: int) -> Iterator[None]:
    """Within this block (and the tasks it starts), a rendered value may hold `limit` bytes."""
    token = _LIMIT.set(limit)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def current_value_limit() -> int:
    """The bytes one value may hold here (the run's `engine.max_value_bytes`)."""
    return _LIMIT.get()


def too_big(what: str) -> SecurityError:
    return SecurityError(
        f"{what} would be over engine.max_value_bytes={_LIMIT.get()}; "
        "raise it in orchestrate.yaml if the value is meant to be that large"
    )


def check_size(size: int, what: str) -> None:
    if size > _LIMIT.get():
        raise too_big(what)


def _check_widths(fmt: Any, what: str) -> None:
    """A format string (`%`, `format`) whose field widths or precisions alone pass the limit."""
    if isinstance(fmt, str):
        for number in _WIDTH.findall(fmt):
            if len(number) > 18 or int(number) > _LIMIT.get():
                raise too_big(what)


def value_size(value: Any) -> int:
    """About the bytes of `value` as stored: a string's UTF-8, anything else its JSON."""
    if isinstance(value, str):
        if len(value) * 4 <= _LIMIT.get():  # its UTF-8 cannot pass the limit: skip encoding
            return len(value)
        return len(value.encode("utf-8", "replace"))
    if isinstance(value, dict):
        return sum(value_size(k) + value_size(v) + 4 for k, v in value.items()) + 2
    if isinstance(value, list | tuple):
        return sum(value_size(v) + 1 for v in value) + 2
    return len(str(value))


# str methods that build a value from a width or count: the width is checked before the call.
_PADDING = frozenset({"ljust", "rjust", "center", "zfill"})


def _check_str_call(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a str method call whose result would pass the limit, before it allocates."""
    what = f"'...'.{name}()"
    if name in _PADDING and args and isinstance(args[0], int):
        check_size(args[0], what)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            check_size(owner.count("\t") * size + len(owner), what)
    elif name in ("format", "format_map"):
        _check_widths(owner, what)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        old, new = args[0], args[1]
        if isinstance(new, str) and len(new) > len(old):
            hits = owner.count(old) if old else len(owner) + 1
            check_size(len(owner) + hits * (len(new) - len(old)), what)
    elif name == "join" and args and isinstance(args[0], list | tuple):
        parts = args[0]
        size = len(owner) * len(parts) + sum(len(p) for p in parts if isinstance(p, str))
        check_size(size, what)


def _bounded_filter(name: str, check: Callable[..., None]) -> Callable[..., Any]:
    original = DEFAULT_FILTERS[name]
    # `join`, `replace`... take Jinja's eval context first (`pass_eval_context`): keep the mark
    # (`update_wrapper` copies it) and check only the filter's own arguments.
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    def bounded(*args: Any, **kwargs: Any) -> Any:
        check(*args[skip:], **kwargs)
        return original(*args, **kwargs)

    return functools.update_wrapper(bounded, original)


def _check_center(value: Any, width: int = 80) -> None:
    if isinstance(width, int):
        check_size(width, "the center filter")


def _check_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    if isinstance(width, int):
        lines = str(value).count("\n") + 1
        check_size(len(str(value)) + width * lines, "the indent filter")
    elif isinstance(width, str):
        check_size(len(str(value)) + len(width) * (str(value).count("\n") + 1), "indent")


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_widths(value, "the format filter")


def _check_join(value: Any, d: Any = "", attribute: Any = None) -> None:
    if isinstance(value, list | tuple) and isinstance(d, str):
        size = len(d) * len(value) + sum(len(v) for v in value if isinstance(v, str))
        check_size(size, "the join filter")


def _check_replace(*args: Any, **kwargs: Any) -> None:
    strings = [a for a in args if isinstance(a, str)]
    if len(strings) >= 3:
        owner, old, new = strings[-3:]
        if len(new) > len(old):
            hits = owner.count(old) if old else len(owner) + 1
            check_size(len(owner) + hits * (len(new) - len(old)), "the replace filter")


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    """Jinja's `lipsum`, bounded: each paragraph is at most `max` words of ~10 bytes."""
    if isinstance(n, int) and isinstance(max, int):
        check_size(n * max * 12, "lipsum()")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


class _BoundedNamespace(Namespace):
    """`namespace()` whose assignments (`{% set ns.x = ns.x ~ ns.x %}` in a loop) are bounded."""

    def __setitem__(self, name: str, value: Any) -> None:
        check_size(value_size(value), f"namespace attribute '{name}'")
        super().__setitem__(name, value)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Also bounds `*` and `**`: `{{ 'a' * 10**10 }}` would otherwise exhaust memory, even at
    load time, since Jinja folds constant expressions while compiling. Intercepted operators
    are neither folded at compile time nor unbounded at run time."""

    def _multiply(self, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            numbers = isinstance(right, int | float) and isinstance(left, int | float)
            if numbers and abs(right) > 64 and abs(left) > 1:
                raise SecurityError(f"{left!r} ** {right!r} is too large")
            return left**right
        for seq, times in ((left, right), (right, left)):
            repeated = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if repeated and len(seq) * times > MAX_VALUE_SIZE:
                raise SecurityError("a repeated value over 10 million long")
            if repeated:
                check_size(len(seq) * times, "a repeated value")
        return left * right

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            _check_widths(left, "a `%` format")
            return left % right
        if operator == "+":
            sized = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
            if sized:
                check_size(len(left) + len(right), "a joined value")
            return left + right
        return self._multiply(operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner, name = getattr(target, "__self__", None), getattr(target, "__name__", "")
        if isinstance(owner, str):
            _check_str_call(owner, name, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data before methods: `steps.items` is the step named `items`, not dict.items.
        if isinstance(obj, Mapping) and isinstance(attribute, str) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def install_bounds(env: ImmutableSandboxedEnvironment) -> None:
    """Replace `env`'s filters and globals that build a value from a width or a count."""
    env.filters["center"] = _bounded_filter("center", _check_center)
    env.filters["indent"] = _bounded_filter("indent", _check_indent)
    env.filters["format"] = _bounded_filter("format", _check_format)
    env.filters["join"] = _bounded_filter("join", _check_join)
    env.filters["replace"] = _bounded_filter("replace", _check_replace)
    env.globals["lipsum"] = _lipsum
    env.globals["namespace"] = _BoundedNamespace
