"""Sandboxed Jinja2 expressions, compiled once when a workflow loads.

Invariants: templates run in `ImmutableSandboxedEnvironment` with strict undefined names, so a
template can neither reach Python internals (`''.__class__`) nor mutate the context it reads; every
failure while compiling (syntax, an unknown filter or test) or rendering surfaces as
`TemplateError` with a message a person can act on. A value that
is exactly one `{{ expr }}` renders to the expression's native value (list, dict, number, bool).
On a mapping, `x.name` reads the key `name` before any method of the same name, so a step id or
a JSON field called `items`, `keys`, `values` or `get` reads as data (`steps.items.output`).

Every rendered value is bounded (`value_limit`, the run's `engine.max_value_bytes`): what could
build a huge value in one step (`*`, `**`, `%` and `format` widths, `ljust`/`center`/`zfill`,
`replace`, `join`, `indent`, `lipsum`, namespace assignments) is refused before it allocates, a
text template stops as soon as its output passes the limit, and a native value over it fails.
A text template also stops when the process got SIGINT/SIGTERM (`orchestrator.interrupts`), so a
long render never holds a cancelled run.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import shlex
from collections.abc import Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from orchestrator import interrupts
from orchestrator.errors import OrchestrateError
from orchestrator.names import did_you_mean
from orchestrator.workflow.bounds import (
    DEFAULT_VALUE_LIMIT,
    MAX_VALUE_SIZE,
    BoundedSandbox,
    check_size,
    current_value_limit,
    install_bounds,
    too_big,
    value_limit,
    value_size,
)

__all__ = [
    "DEFAULT_VALUE_LIMIT",
    "Template",
    "TemplateError",
    "compile_template",
    "compile_value",
    "current_value_limit",
    "value_limit",
    "value_size",
]

_SINGLE_EXPR = re.compile(r"^\s*\{\{-?(.*)-?\}\}\s*$", re.DOTALL)


class TemplateError(OrchestrateError):
    """A template failed to compile or render. `lineno` is the line inside the template (1-based)
    for syntax errors."""

    def __init__(self, message: str, *, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def _shquote(value: Any) -> str:
    """One shell word: a string as it is, anything else (a structured output, a number) as its
    JSON text, so `{{ steps.x.output | shquote }}` never fails on a model's JSON."""
    return shlex.quote(value if isinstance(value, str) else _tojson(value))


def _zip(first: Iterable[Any], *others: Iterable[Any]) -> list[list[Any]]:
    """`a | zip(b)` -> [[a0, b0], [a1, b1], ...], as long as the shortest list."""
    return [list(group) for group in zip(first, *others, strict=False)]


def _product(first: Iterable[Any], *others: Iterable[Any]) -> list[list[Any]]:
    """`a | product(b)` -> every [x, y] with x from a and y from b, a's order first."""
    groups = list(itertools.product(first, *others))
    if len(groups) > MAX_VALUE_SIZE:
        raise SecurityError("a product over 10 million long")
    return [list(group) for group in groups]


def _chunks(items: Iterable[Any], size: int) -> list[list[Any]]:
    """`xs | chunks(3)` -> lists of 3 items in order, the last one shorter if need be."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunks(n) needs a positive whole number, got {size!r}")
    values = list(items)
    return [values[i : i + size] for i in range(0, len(values), size)]


def _enumerate(items: Iterable[Any], start: int = 0) -> list[list[Any]]:
    """`xs | enumerate` -> [[0, x0], [1, x1], ...] (0-based unless `start` says otherwise)."""
    return [[i, x] for i, x in enumerate(items, start)]


def _pluck(items: Iterable[Any], key: Any) -> list[Any]:
    """`rows | pluck('name')` -> each row's `name`; a row without it is an error naming it."""
    out: list[Any] = []
    for index, row in enumerate(items):
        try:
            out.append(row[key])
        except (KeyError, IndexError, TypeError):
            shown = json.dumps(row, default=str)[:80]
            raise ValueError(f"pluck({key!r}): item {index} has no {key!r}: {shown}") from None
    return out


def _make_env() -> ImmutableSandboxedEnvironment:
    env = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )
    # Prompts are not HTML: `tojson` must not escape `<` and `&`.
    env.filters["tojson"] = _tojson
    env.filters["fromjson"] = json.loads
    # Values placed into `run:` commands: `{{ steps.x.output | shquote }}` is one shell word.
    env.filters["shquote"] = _shquote
    # Data steps (`set:`): pairs come out as lists, so they survive JSON unchanged.
    env.filters["zip"] = _zip
    env.filters["product"] = _product
    env.filters["chunks"] = _chunks
    env.filters["enumerate"] = _enumerate
    env.filters["pluck"] = _pluck
    # Filters and globals that build a value from a width or a count, bounded (bounds.py).
    install_bounds(env)
    return env


ENV = _make_env()
GLOBAL_NAMES = frozenset(ENV.globals)


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _static_attr(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def _stored_names(ast: nodes.Node) -> frozenset[str]:
    """Names the template assigns anywhere (`{% set %}`, `{% for %}` targets, macro arguments).
    Jinja's own analysis counts a name set inside `{% if %}` as undeclared, though it is not."""
    return frozenset(
        node.name
        for node in _walk(ast)
        if isinstance(node, nodes.Name) and node.ctx in ("store", "param")
    )


def _attribute_chains(ast: nodes.Node) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """What a template reads of step views and of the loop, written as attribute chains:
    ({(step id, attribute)}, {loop attribute}, {id read as loop.previous.<id>}). `loop` inside
    a `{% for %}` body is Jinja's own loop and is left out."""
    steps: set[tuple[str, str]] = set()
    loop: set[str] = set()
    previous: set[str] = set()

    def visit(node: nodes.Node, in_for: bool) -> None:
        chain = _chain(node) if isinstance(node, nodes.Getattr | nodes.Getitem) else None
        if chain is not None:
            root, attrs = chain
            if root == "steps" and len(attrs) >= 2 and "[...]" not in attrs[:2]:
                steps.add((attrs[0], attrs[1]))
            if root == "loop" and not in_for and attrs and attrs[0] != "[...]":
                loop.add(attrs[0])
                if attrs[0] == "previous" and len(attrs) >= 2 and attrs[1] != "[...]":
                    previous.add(attrs[1])
            # only the longest chain counts; its subscripts may hold chains of their own
            inner: nodes.Node = node
            while isinstance(inner, nodes.Getattr | nodes.Getitem):
                if isinstance(inner, nodes.Getitem):
                    visit(inner.arg, in_for)
                inner = inner.node
            return
        if isinstance(node, nodes.For):
            for child in (node.target, node.iter, *([node.test] if node.test else [])):
                visit(child, in_for)
            for child in (*node.body, *node.else_):
                visit(child, True)
            return
        for child in node.iter_child_nodes():
            visit(child, in_for)

    visit(ast, False)
    return steps, loop, previous


def _names_under(ast: nodes.Node, root: str) -> frozenset[str]:
    found: set[str] = set()
    for node in _walk(ast):
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            target = node.node
            if isinstance(target, nodes.Name) and target.name == root:
                attr = _static_attr(node)
                if attr is not None:
                    found.add(attr)
    return frozenset(found)


# Filters whose result is one shell word, or a number: safe to place in a command unquoted.
_SHELL_SAFE_FILTERS = frozenset({"shquote", "int", "float", "length", "count", "abs", "round"})
# Context values that are numbers whatever a model wrote.
# (`steps.<loop>.iterations` is a list of model outputs, so it is not among them.)
_NUMERIC_LEAVES = frozenset({"exit_code", "iteration", "total_tasks", "exhausted"})


def _chain(node: nodes.Node) -> tuple[str, tuple[str, ...]] | None:
    """`steps.plan.output` -> ("steps", ("plan", "output")); None unless a name's attributes."""
    if isinstance(node, nodes.Name):
        return node.name, ()
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        base = _chain(node.node)
        if base is None:
            return None
        attr = _static_attr(node)
        return base[0], (*base[1], attr if attr is not None else "[...]")
    return None


def _shell_safe(expr: nodes.Node) -> bool:
    """`x | shquote` (or a number), or a list quoted word by word: `xs | map('shquote') | join`."""
    if not isinstance(expr, nodes.Filter):
        return False
    if expr.name in _SHELL_SAFE_FILTERS:
        return True
    inner = expr.node
    return (
        expr.name == "join"
        and isinstance(inner, nodes.Filter)
        and inner.name == "map"
        and bool(inner.args)
        and isinstance(inner.args[0], nodes.Const)
        and inner.args[0].value == "shquote"
    )


def unquoted_shell_values(source: str, roots: frozenset[str]) -> list[str]:
    """The values a shell-command template reads from `roots` (e.g. model output under `steps`)
    and places in the command without `| shquote`, as dotted paths, in order, once each.
    A heuristic for a warning: values reached through `{% for %}` or `{% set %}` are not seen."""
    try:
        ast = ENV.parse(source)
    except jinja2.TemplateSyntaxError:
        return []
    found: list[str] = []

    def visit(node: nodes.Node) -> None:
        chain = _chain(node)
        if chain is not None:
            root, attrs = chain
            if root in roots and not (attrs and attrs[-1] in _NUMERIC_LEAVES):
                path = ".".join((root, *attrs))
                if path not in found:
                    found.append(path)
            if isinstance(node, nodes.Getitem):
                visit(node.arg)
            return
        children: list[nodes.Node] = list(node.iter_child_nodes())
        if isinstance(node, nodes.CondExpr):  # the test decides, the branches are placed
            children = [node.expr1, *([node.expr2] if node.expr2 else [])]
        for child in children:
            visit(child)

    for output in ast.find_all(nodes.Output):
        for expr in output.nodes:
            if isinstance(expr, nodes.TemplateData):
                continue
            if _shell_safe(expr):
                continue
            visit(expr)
    return found


def _raise_if_undefined(value: Any) -> None:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, dict):
        for item in value.values():
            _raise_if_undefined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _raise_if_undefined(item)


def _describe(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined value: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Template:
    """One compiled expression or text template, or a literal value holding templates.

    `references`: the step ids the template reads as `steps.<id>` (or `steps['id']`);
    `input_references`/`env_references`: the `inputs.<name>`/`env.<NAME>` it reads;
    `variables`: the top-level names it needs from the context; `private_attributes`: attributes
    starting with `_` (always refused); `step_attributes`, `loop_attributes`,
    `previous_references`: what it reads of step views and of the loop, for the loader to check.
    """

    __slots__ = (
        "_expr",
        "_literal",
        "_template",
        "env_references",
        "input_references",
        "loop_attributes",
        "previous_references",
        "private_attributes",
        "references",
        "source",
        "step_attributes",
        "variables",
    )

    source: str
    references: frozenset[str]
    input_references: frozenset[str]
    env_references: frozenset[str]
    variables: frozenset[str]
    private_attributes: frozenset[str]
    step_attributes: frozenset[tuple[str, str]]  # (id, attribute) of `steps.<id>.<attribute>`
    loop_attributes: frozenset[str]  # `loop.<attribute>` outside any `{% for %}`
    previous_references: frozenset[str]  # `loop.previous.<id>`

    def __init__(self, source: str) -> None:
        self.source = source
        self._literal: Any = None
        self._expr: Any = None
        self._template: jinja2.Template | None = None
        try:
            ast = ENV.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"template syntax error: {exc.message}", lineno=exc.lineno
            ) from None
        _refuse_unknown_filters(ast)
        self.references = _names_under(ast, "steps")
        self.input_references = _names_under(ast, "inputs")
        self.env_references = _names_under(ast, "env")
        try:
            undeclared = meta.find_undeclared_variables(ast)
        except jinja2.TemplateSyntaxError as exc:  # what the compiler asserts beyond syntax
            raise TemplateError(
                f"template syntax error: {exc.message}", lineno=exc.lineno
            ) from None
        self.variables = frozenset(undeclared) - GLOBAL_NAMES - _stored_names(ast)
        step_attrs, loop_attrs, previous = _attribute_chains(ast)
        self.step_attributes = frozenset(step_attrs)
        self.loop_attributes = frozenset(loop_attrs)
        self.previous_references = frozenset(previous)
        self.private_attributes = frozenset(
            attr
            for node in _walk(ast)
            if (attr := _static_attr(node)) is not None and attr.startswith("_")
        )
        match = _SINGLE_EXPR.match(source)
        if match and _is_single_output(ast):
            try:
                self._expr = ENV.compile_expression(match.group(1), undefined_to_none=False)
            except jinja2.TemplateSyntaxError:
                self._expr = None
        if self._expr is None:
            try:
                self._template = ENV.from_string(ast)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(
                    f"template syntax error: {exc.message}", lineno=exc.lineno
                ) from None

    @classmethod
    def literal(cls, value: Any) -> Template:
        """A YAML value that is not a string (a list, a number...): strings inside it that
        contain `{{`/`{%` are templates, the rest renders to itself."""
        self = cls.__new__(cls)
        self.source = json.dumps(value, ensure_ascii=False, default=str)
        self._expr = None
        self._template = None
        refs: set[str] = set()
        ins: set[str] = set()
        envs: set[str] = set()
        names: set[str] = set()
        private: set[str] = set()
        step_attrs: set[tuple[str, str]] = set()
        loop_attrs: set[str] = set()
        previous: set[str] = set()

        def build(node: Any) -> Any:
            if isinstance(node, str) and ("{{" in node or "{%" in node):
                inner = Template(node)
                refs.update(inner.references)
                ins.update(inner.input_references)
                envs.update(inner.env_references)
                names.update(inner.variables)
                private.update(inner.private_attributes)
                step_attrs.update(inner.step_attributes)
                loop_attrs.update(inner.loop_attributes)
                previous.update(inner.previous_references)
                return inner
            if isinstance(node, dict):
                return {key: build(item) for key, item in node.items()}
            if isinstance(node, list):
                return [build(item) for item in node]
            return node

        self._literal = build(value)
        self.references = frozenset(refs)
        self.input_references = frozenset(ins)
        self.env_references = frozenset(envs)
        self.variables = frozenset(names)
        self.private_attributes = frozenset(private)
        self.step_attributes = frozenset(step_attrs)
        self.loop_attributes = frozenset(loop_attrs)
        self.previous_references = frozenset(previous)
        return self

    @property
    def is_native(self) -> bool:
        """True when rendering gives a native value rather than a string."""
        return self._expr is not None or self._template is None

    def render(self, context: dict[str, Any]) -> Any:
        """Render: the native value of a single `{{ expr }}` or a literal, else a string."""
        try:
            if self._template is not None:
                return _render_text(self._template, context)
            if self._expr is not None:
                value = self._expr(**context)
                _raise_if_undefined(value)
                check_size(value_size(value), "the value")
                return value
            return _render_literal(self._literal, context)
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(f"in {_short(self.source)}: {_describe(exc)}") from None

    def render_str(self, context: dict[str, Any]) -> str:
        value = self.render(context)
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, dict | list):
            return _tojson(value)
        return str(value)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __reduce__(self) -> tuple[Any, ...]:
        if self._template is None and self._expr is None:
            return (Template.literal, (_unbuild(self._literal),))
        return (Template, (self.source,))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            compile_value,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda t: _unbuild(t._literal) if t.is_native and t._expr is None else t.source
            ),
        )


def _render_text(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render chunk by chunk, so that a huge output fails as soon as it passes the limit and a
    signal stops a long render (the handler runs between bytecodes; this loop sees its flag)."""
    limit = current_value_limit()
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        signal_name = interrupts.interrupted()
        if signal_name is not None:
            raise TemplateError(f"rendering stopped by {signal_name}")
        size += len(chunk)
        if size > limit:
            raise too_big("the rendered text")
        parts.append(chunk)
    return "".join(parts)


def _refuse_unknown_filters(ast: nodes.Template) -> None:
    """An unknown filter or test fails when the template compiles, not when a run renders it."""
    for node in _walk(ast):
        if isinstance(node, nodes.Filter) and node.name not in ENV.filters:
            hint = did_you_mean(node.name, ENV.filters)
            raise TemplateError(f"unknown filter '{node.name}'{hint}", lineno=node.lineno)
        if isinstance(node, nodes.Test) and node.name not in ENV.tests:
            hint = did_you_mean(node.name, ENV.tests)
            raise TemplateError(f"unknown test '{node.name}'{hint}", lineno=node.lineno)


def _is_single_output(ast: nodes.Template) -> bool:
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return False
    exprs = [
        n
        for n in ast.body[0].nodes
        if not (isinstance(n, nodes.TemplateData) and not n.data.strip())
    ]
    return len(exprs) == 1 and not isinstance(exprs[0], nodes.TemplateData)


def _render_literal(node: Any, context: dict[str, Any]) -> Any:
    if isinstance(node, Template):
        return node.render(context)
    if isinstance(node, dict):
        return {key: _render_literal(item, context) for key, item in node.items()}
    if isinstance(node, list):
        return [_render_literal(item, context) for item in node]
    return copy.deepcopy(node)


def _unbuild(node: Any) -> Any:
    if isinstance(node, Template):
        return node.source
    if isinstance(node, dict):
        return {key: _unbuild(item) for key, item in node.items()}
    if isinstance(node, list):
        return [_unbuild(item) for item in node]
    return node


def _short(source: str) -> str:
    text = " ".join(source.split())
    return repr(text if len(text) <= 60 else text[:57] + "...")


def compile_template(source: str) -> Template:
    """Compile a template string. Raises `TemplateError` (with `lineno`) on a syntax error."""
    return Template(source)


def compile_value(value: Any) -> Template:
    """A YAML value -> Template: strings compile as templates, other values as literals."""
    if isinstance(value, Template):
        return value
    if isinstance(value, str):
        return Template(value)
    return Template.literal(value)
