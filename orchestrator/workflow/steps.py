"""Steps: ids, kind detection, and every key of a step, read as the language table says.

A step's kind is the one kind whose marker key it has (`prompt`, `merge`, `run`, `loop`,
`workflow`, `set`, `group`); keys the table does not list, or that belong to another kind, are
refused. Each key is then read by the rule for its type in `_READERS` (simple types go to
`fields.convert`), and a few keys carry one more rule of their own (`_AFTER`): an empty prompt,
the agent and model a step names, a `run:` that places model output in a shell command unquoted.
A setting the table marks `templated` may instead be a template (`model: "{{ item.model }}"`):
it is compiled here into `Step.dynamic` and rendered per task. Fields of a step are read only
once every id of its scope is known, since templates and `needs` may point forward.

It is over 600 lines because every kind's own rules sit here side by side, each a few lines, so
that adding a kind touches one reader table; splitting them by kind would scatter `_READERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema

from orchestrator.contracts.resources import resource_options
from orchestrator.environment import step_sandbox
from orchestrator.names import did_you_mean
from orchestrator.tool_names import split_tool_list, tool_entry_problem, unknown_tool_message
from orchestrator.workflow import fields, references
from orchestrator.workflow._context import LoadContext, Scope, StepInfo, a_or_an, join_quoted
from orchestrator.workflow._yaml import Path_
from orchestrator.workflow.fields import read_mcp_servers
from orchestrator.workflow.language import (
    CONTEXT_NAMES,
    FAN_OUT,
    GROUP_KEYS,
    ID_PATTERN,
    KIND_BY_NAME,
    KIND_KEYS,
    LOOP_KEYS,
    NAME_PATTERN,
    SIMPLE_TYPES,
    STEP_COMMON,
    STEP_KEYS,
    Key,
    kind_keys,
)
from orchestrator.workflow.templates import Template, unquoted_shell_values

__all__ = ["read_steps"]

_ID = re.compile(ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
# What a step's templates may read (a loop body adds `loop`; a fan-out adds its item).
BASE_NAMES = ("inputs", "steps", "run", "state", "env")


def is_template_text(value: Any) -> bool:
    """A string that holds template syntax (so a templated setting is read as a template)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _has_template(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return is_template_text(value)


def _without_templates(value: Any) -> Any:
    """A JSON Schema with every templated value left out, to check what is known at load."""
    if isinstance(value, dict):
        return {k: _without_templates(v) for k, v in value.items() if not _has_template(v)}
    if isinstance(value, list):
        return [_without_templates(v) for v in value if not _has_template(v)]
    return value


def read_steps(ctx: LoadContext, raw: Any, path: Path_, scope: Scope) -> None:
    """Read a list of steps into `scope`: every id first, then every step's fields."""
    if not isinstance(raw, list):
        ctx.err(path, "'steps' must be a list of steps (each item starts with '- id: ...')")
        return
    if not raw:
        ctx.err(path, "'steps' is empty; a workflow needs at least one step")
        return
    for index, item in enumerate(raw):
        _read_step(ctx, item, (*path, index), scope, index)
    for info in scope.steps:
        _StepReader(ctx, info).read()


def _read_step(ctx: LoadContext, raw: Any, path: Path_, scope: Scope, index: int) -> None:
    """The step's id and kind, and keys that no kind or not its kind has."""
    if not isinstance(raw, dict):
        ctx.err(path, "a step must be a mapping that starts with 'id:'")
        return
    step_id = raw.get("id")
    line, col = ctx.pos.value(path)
    if step_id is None:
        ctx.err(path, "step has no 'id'")
        step_id = f"#{index + 1}"
    elif not isinstance(step_id, str) or not _ID.match(step_id):
        ctx.err(
            (*path, "id"),
            f"step id {step_id!r} must match [a-z_][a-z0-9_]* (lowercase letters, digits, _)",
        )
        step_id = f"#{index + 1}"
    elif step_id in scope.ids:
        first = scope.ids[step_id]
        ctx.err((*path, "id"), f"duplicate step id '{step_id}' (first used at line {first.line})")
        step_id = f"#{index + 1}"
    info = StepInfo(step_id, path, scope, None, raw=raw, line=line, col=col)
    markers = [marker for marker in KIND_KEYS if marker in raw]
    if not markers:
        hint = " (an agent step needs a 'prompt')" if "agent" in raw else ""
        ctx.err(
            path,
            f"{info.label} has no kind: give it one of {join_quoted(list(KIND_KEYS), 'or')}{hint}",
        )
    elif len(markers) > 1:
        both = "both " if len(markers) == 2 else ""
        ctx.err(
            (*path, markers[1]),
            f"{info.label} has {both}{join_quoted(markers)}; a step is one kind",
            key=True,
        )
    else:
        info.kind = KIND_KEYS[markers[0]]
    own = {key.name for key in kind_keys(KIND_BY_NAME[info.kind])} if info.kind else set()
    for key in raw:
        if key not in STEP_KEYS:
            hint = did_you_mean(key, STEP_KEYS)
            ctx.err((*path, key), f"{info.label}: unknown key '{key}'{hint}", key=True)
        elif info.kind and key not in own:
            message = f"{info.label}: '{key}' does not apply to {a_or_an(info.kind)} step"
            ctx.err((*path, key), message, key=True)
    scope.steps.append(info)
    if info.named:
        scope.ids[step_id] = info


_Reader = Callable[["_StepReader", Key, Any, Path_, str], Any]


class _StepReader:
    """Reads one step's keys into the fields of its `Step` model (`info.fields`)."""

    def __init__(self, ctx: LoadContext, info: StepInfo) -> None:
        self.ctx = ctx
        self.info = info
        self.raw = info.raw
        self.path = info.path
        self.label = info.label
        self.base = [*BASE_NAMES, *info.scope.names]
        self.per_item = list(self.base)
        self.item_names: list[str] = []  # `as` and `index_as`, once read
        self.out: dict[str, Any] = {}  # the fields of `Step`, as they pass

    def read(self) -> None:
        info = self.info
        out = self.out
        out.update(id=info.id, kind=info.kind or "agent", line=info.line, col=info.col)
        kind = KIND_BY_NAME.get(info.kind or "")
        keys: list[Key] = list(STEP_COMMON)
        if "for_each" in self.raw:
            keys.extend(FAN_OUT)
        elif kind is not None and kind.fan_out:
            for key in FAN_OUT:
                if key.name in self.raw:  # all but `for_each`, which is not in raw here
                    message = f"{self.label}: '{key.name}' only applies with 'for_each'"
                    self.ctx.err((*self.path, key.name), message, key=True)
        if kind is not None:
            keys.extend(kind.keys)
        for key in keys:
            if key.type == "id":
                continue  # read with the kind, before any field
            path: Path_ = (*self.path, key.name)
            what = f"{self.label}: '{key.name}'"
            if key.templated and is_template_text(self.raw.get(key.name)):
                self.templated(key, self.raw[key.name], path, what)
                continue
            value = _READERS[key.type](self, key, self.raw.get(key.name), path, what)
            after = _AFTER.get(key.name)
            if after is not None:
                after(self, key, value, path)
            if value is None:
                value = key.default  # `merge:` with no value is a concat
            if value is not None:
                out[key.field] = value
        info.fields = out

    # --- types -------------------------------------------------------------------------------

    def simple(self, key: Key, value: Any, path: Path_, what: str) -> Any:
        return fields.convert(self.ctx, key, value, path, what)

    def template(
        self,
        key: Key,
        value: Any,
        path: Path_,
        what: str,
        *,
        strings_only: bool = True,
        per_item: bool | None = None,
    ) -> Template | None:
        item = key.per_item if per_item is None else per_item
        return references.template(
            self.ctx,
            value,
            path,
            what,
            allowed=self.per_item if item else self.base,
            scope=self.info.scope,
            owner=self.info,
            strings_only=strings_only,
            notes=self.scope_notes(key.name),
        )

    def scope_notes(self, key: str) -> dict[str, str]:
        """Why a fan-out's item names are not in scope in its `when` (evaluated once, for the
        step) or its index in `where` (which decides the indexes)."""
        if "for_each" not in self.raw:
            return {}
        index = self.raw.get("index_as")
        if key == "when":
            note = (
                "'when' is evaluated once for the whole step, before its items exist; "
                "keep or drop single items with 'where: \"{{ ... }}\"'"
            )
            names = [self.raw.get("as", "item"), index]
            return {name: note for name in names if isinstance(name, str)}
        if key == "where" and isinstance(index, str):
            note = f"'{index}' counts the items 'where' keeps, so 'where' cannot read it"
            return {index: note}
        return {}

    def templated(self, key: Key, value: str, path: Path_, what: str) -> None:
        """A setting written as a template: rendered per task (per item), checked then."""
        compiled = self.template(key, value, path, what, per_item=True)
        if compiled is not None:
            self.out.setdefault("dynamic", {})[key.name] = compiled
            if key.name == "agent":
                self.ctx.dynamic_agents = True

    def expression(self, key: Key, value: Any, path: Path_, what: str) -> Template | None:
        return self.template(key, value, path, what, strings_only=False)

    def count(self, key: Key, value: Any, path: Path_, what: str) -> int | Template | None:
        """A positive integer, or one `{{ expression }}` that gives one when the step starts."""
        if isinstance(value, str):
            compiled = self.template(key, value, path, what, per_item=True)
            if compiled is not None and not compiled.is_native:
                self.ctx.err(path, f"{what} must be a number or one '{{{{ expression }}}}'")
                return None
            return compiled
        return fields.integer(self.ctx, value, path, what)

    def step_ids(self, key: Key, value: Any, path: Path_, what: str) -> list[str]:
        items: list[Any]
        if isinstance(value, str):
            items, paths = [value], [path]
        elif isinstance(value, list):
            items, paths = value, [(*path, i) for i in range(len(value))]
        else:
            if value is not None:
                self.ctx.err(path, f"{what} must be a list of step ids")
            items, paths = [], []
        out: list[str] = []
        for item, item_path in zip(items, paths, strict=True):
            if not isinstance(item, str):
                self.ctx.err(item_path, f"{what} entries must be step ids")
                continue
            message = f"{self.label}: {key.name} unknown step '{item}'"
            if references.resolve_ref(
                self.ctx, item, item_path, self.info.scope, self.info, message
            ):
                out.append(item)
        return out

    def step_id(self, key: Key, value: Any, path: Path_, what: str) -> str | None:
        if value is None:
            if key.required:
                kind = a_or_an(self.info.kind or "agent")
                self.ctx.err(self.path, f"{self.label}: {kind} step needs '{key.name}: <step id>'")
            return None
        if not isinstance(value, str):
            self.ctx.err(path, f"{what} must be a step id")
            return None
        if value == self.info.id:
            self.ctx.err(path, f"{what} cannot name the step itself")
        message = f"{what} names unknown step '{value}'"
        references.resolve_ref(self.ctx, value, path, self.info.scope, self.info, message)
        return value

    def items(self, key: Key, value: Any, path: Path_, what: str) -> Template | None:
        if isinstance(value, str):
            compiled = self.template(key, value, path, what)
            if compiled is not None and not compiled.is_native:
                self.ctx.err(
                    path, f"{what} must be a list or one '{{{{ expression }}}}' that gives a list"
                )
            return compiled
        if isinstance(value, list):
            return self.template(key, value, path, what, strings_only=False)
        self.ctx.err(path, f"{what} must be a list or a '{{{{ expression }}}}'")
        return None

    def name(self, key: Key, value: Any, path: Path_, what: str) -> str | None:
        """A fan-out's item name (`as`, `index_as`): an identifier that hides no context name."""
        if key.name not in self.raw:
            value = key.default
            if value is None:
                return None
        if not isinstance(value, str) or not _NAME.match(value):
            self.ctx.err(path, f"{what} must be a name, got {value!r}")
            value = key.default
        elif value in CONTEXT_NAMES:
            self.ctx.err(
                path, f"{self.label}: '{key.name}: {value}' would hide the '{value}' variable"
            )
            value = key.default
        elif value in self.item_names:
            self.ctx.err(path, f"{self.label}: '{key.name}: {value}' is the item's name already")
            return None
        if value is None:
            return None
        self.per_item.append(value)
        self.item_names.append(value)
        return str(value)

    def tools(
        self, key: Key, value: Any, path: Path_, what: str
    ) -> list[str | dict[str, Any]] | None:
        """Names, permission rules and `{Tool: {allow, max_calls}}` limits; None when absent
        (the agent's tools apply), `[]` when the step grants none."""
        if value is None:
            return None
        paths: list[Path_]
        if isinstance(value, str):
            value = split_tool_list(value)
            paths = [path] * len(value)
        elif isinstance(value, list):
            paths = [(*path, i) for i in range(len(value))]
        else:
            self.ctx.err(path, f"{what} must be a list of tool names")
            return []
        out: list[str | dict[str, Any]] = []
        for tool, tool_path in zip(value, paths, strict=True):
            problem = tool_entry_problem(tool)
            if problem is not None:
                if isinstance(tool, dict) and len(tool) == 1:
                    tool_path = (*tool_path, next(iter(tool)))
                self.ctx.err(tool_path, f"{self.label}: {problem}")
            elif tool not in out:
                out.append(tool.strip() if isinstance(tool, str) else tool)
        return out

    def approve(self, key: Key, value: Any, path: Path_, what: str) -> list[str] | None:
        """`all`, or tool names: built-in ones, or the function name of a python tool the
        step grants (`{python: "pkg.mod:check"}` is approved as `check`)."""
        if value is None:
            return None
        if value == "all":
            return ["all"]
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
            paths: list[Path_] = [path] * len(value)
        elif isinstance(value, list):
            paths = [(*path, i) for i in range(len(value))]
        else:
            self.ctx.err(path, f"{what} must be 'all' or a list of tool names")
            return None
        own = [
            t["python"].rpartition(":")[2]
            for t in self.raw.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("python"), str)
        ]
        out: list[str] = []
        for name, name_path in zip(value, paths, strict=True):
            if not isinstance(name, str):
                self.ctx.err(name_path, f"{what} entries must be tool names, got {name!r}")
                continue
            problem = None if name in own else unknown_tool_message(name)
            if name == "all":
                problem = "'all' stands alone: write 'approve: all'"
            if problem is not None:
                self.ctx.err(name_path, f"{self.label}: approve: {problem}")
            elif name not in out:
                out.append(name)
        return out or None

    def options(self, key: Key, value: Any, path: Path_, what: str) -> list[str] | None:
        """The answers an `ask` step allows: distinct strings (YAML reads a bare yes/no as a
        boolean, so those are refused with the fix)."""
        if value is None:
            return None
        if "output" in self.raw:
            self.ctx.err(
                path, f"{self.label}: give 'options' or an 'output' schema for the answer, not both"
            )
            return None
        if not isinstance(value, list) or not value:
            self.ctx.err(path, f"{what} must be a non-empty list of answers")
            return None
        out: list[str] = []
        for index, option in enumerate(value):
            item_path: Path_ = (*path, index)
            if isinstance(option, bool):
                shown = "yes" if option else "no"
                self.ctx.err(
                    item_path,
                    f"{what}: YAML reads {shown} as a boolean; quote it: '{shown}'",
                )
            elif isinstance(option, int | float):
                out.append(str(option))
            elif not isinstance(option, str) or not option.strip():
                self.ctx.err(item_path, f"{what} entries must be non-empty strings")
            elif option in out:
                self.ctx.err(item_path, f"{what}: '{option}' is listed twice")
            else:
                out.append(option)
        return out or None

    def output(self, key: Key, value: Any, path: Path_, what: str) -> Any:
        """text, json, or (with the `output` type, not `run_output`) a JSON Schema."""
        if value is None:
            return None
        if value in ("text", "json"):
            return value
        schema = key.type == "output"
        if isinstance(value, dict) and schema:
            if _has_template(value):
                # `enum: "{{ inputs.labels }}"`: rendered per task, checked again then
                compiled = self.template(key, value, path, what, strings_only=False, per_item=True)
                if compiled is not None:
                    self.out.setdefault("dynamic", {})["output"] = compiled
                _check_schema(self.ctx, _without_templates(value), path, self.label)
            else:
                _check_schema(self.ctx, value, path, self.label)
            return value
        allowed = "'text', 'json' or a JSON Schema mapping" if schema else "'text' or 'json'"
        hint = did_you_mean(value, ("text", "json")) if isinstance(value, str) else ""
        self.ctx.err(path, f"{what} must be {allowed}, got {value!r}{hint}")
        return None

    def mcp_servers(self, key: Key, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
        return read_mcp_servers(self.ctx, value, path, what)

    def section(self, key: Key, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
        """A mapping of simple keys (`budget:`); None when absent or empty."""
        if value is None:
            return None
        return fields.section(self.ctx, value, path, key.keys, f"{self.label}: {key.name}") or None

    def models(self, key: Key, value: Any, path: Path_, what: str) -> str | list[str] | None:
        """A model name, or a non-empty list of distinct names (the first, then fallbacks)."""
        return fields.models(self.ctx, value, path, what)

    def resources(self, key: Key, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            resource_options(value)
        except ValueError as exc:
            self.ctx.err(path, f"{what}: {exc}")
            return None
        return dict(value)

    def sandbox(self, key: Key, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return step_sandbox(value)
        except ValueError as exc:
            self.ctx.err(path, f"{what}: {exc}")
            return None

    def merge_only(self, key: Key, value: Any, path: Path_) -> None:
        """`into` and `on_conflict` say how branches merge: other merges ignore them."""
        if key.name in self.raw and self.raw.get("merge") != "branches":
            message = f"{self.label}: '{key.name}' is only used by 'merge: branches'; ignored"
            self.ctx.warn(path, message, key=True)

    def body_names(self, *, loop: bool) -> tuple[str, ...]:
        """The names a body's templates see: this scope's, the item's, and `loop` in a loop."""
        names = [*self.info.scope.names, *self.item_names, *(["loop"] if loop else [])]
        return tuple(dict.fromkeys(names))

    def loop(self, key: Key, value: Any, path: Path_, what: str) -> None:
        """The body is read into its own scope now; `loader` builds the `LoopSpec` from it."""
        info, label = self.info, self.label
        if not isinstance(value, dict):
            self.ctx.err(
                path,
                f"{label}: 'loop' must be a mapping with 'steps', 'until' and 'max_iterations'",
            )
            return None
        fields.unknown_keys(self.ctx, value, path, LOOP_KEYS, f"{label}: loop: ")
        parallel = fields.boolean(
            self.ctx, value.get("parallel"), (*path, "parallel"), f"{label}: loop: 'parallel'"
        )
        on_exhausted = fields.choice(
            self.ctx,
            value.get("on_exhausted"),
            (*path, "on_exhausted"),
            f"{label}: loop: 'on_exhausted'",
            ("succeed", "fail"),
        )
        body = Scope(
            parent=info.scope, owner=info, names=self.body_names(loop=True), ordered=not parallel
        )
        info.body = body
        if "steps" not in value:
            self.ctx.err(path, f"{label}: 'loop' needs 'steps'")
        else:
            read_steps(self.ctx, value["steps"], (*path, "steps"), body)
        max_iterations: int | Template | None = value.get("max_iterations")
        max_duration = fields.duration(
            self.ctx,
            value.get("max_duration"),
            (*path, "max_duration"),
            f"{label}: loop: 'max_duration'",
        )
        if max_iterations is None and "max_duration" not in value:
            self.ctx.err(
                path,
                f"{label}: 'loop' needs 'max_iterations' or 'max_duration' (a loop is always "
                "bounded), e.g. max_duration: 8h",
            )
        elif max_iterations is not None:
            cap_key = Key("max_iterations", "count", "")
            max_iterations = self.count(
                cap_key, max_iterations, (*path, "max_iterations"), f"{label}: 'max_iterations'"
            )
        until = references.template(
            self.ctx,
            value.get("until"),
            (*path, "until"),
            f"{label}: 'until'",
            allowed=[*BASE_NAMES, *body.names],
            scope=body,
            owner=None,
            strings_only=False,
        )
        info.loop = {
            "until": until,
            "max_iterations": max_iterations or (None if max_duration else 1),
            "max_duration": max_duration,
            "on_exhausted": on_exhausted or "succeed",
            "parallel": bool(parallel),
        }
        return None

    def group(self, key: Key, value: Any, path: Path_, what: str) -> None:
        """A group's body, read into its own scope like a loop's; `loader` builds the spec."""
        info, label = self.info, self.label
        if not isinstance(value, dict):
            self.ctx.err(path, f"{label}: 'group' must be a mapping with 'steps'")
            return None
        fields.unknown_keys(self.ctx, value, path, GROUP_KEYS, f"{label}: group: ")
        body = Scope(parent=info.scope, owner=info, names=self.body_names(loop=False))
        info.body = body
        if "steps" not in value:
            self.ctx.err(path, f"{label}: 'group' needs 'steps'")
        else:
            read_steps(self.ctx, value["steps"], (*path, "steps"), body)
        return None

    def expressions(self, key: Key, value: Any, path: Path_, what: str) -> dict[str, Template]:
        """A sub-workflow's `inputs:`, each an expression in this step's context."""
        data = fields.expect_mapping(self.ctx, value, path, what) or {}
        out: dict[str, Template] = {}
        for name, item in data.items():
            compiled = references.template(
                self.ctx,
                item,
                (*path, name),
                f"{self.label}: input '{name}'",
                allowed=self.per_item,
                scope=self.info.scope,
                owner=self.info,
                strings_only=False,
            )
            if compiled is not None:
                out[name] = compiled
        return out

    # --- rules of single keys ----------------------------------------------------------------

    def not_empty(self, key: Key, value: Any, path: Path_) -> None:
        text = self.raw.get(key.name)
        if isinstance(text, str) and not text.strip():
            self.ctx.err(path, f"{self.label}: '{key.name}' is empty")

    def names_agent(self, key: Key, value: Any, path: Path_) -> None:
        if value:
            self.ctx.agent_refs.append((self.info, value, path))

    def names_model(self, key: Key, value: Any, path: Path_) -> None:
        self.ctx.refer_models(value, path, f"{self.label}: model")

    def names_workflow(self, key: Key, value: Any, path: Path_) -> None:
        if value:
            self.ctx.subs.append((self.info, value, path))

    def checks_command(self, key: Key, value: Any, path: Path_) -> None:
        self.not_empty(key, value, path)
        command = self.raw.get(key.name)
        if isinstance(command, str) and value is not None:
            self.warn_unquoted(command, path)

    def warn_unquoted(self, command: str, path: Path_) -> None:
        """Warn where a `run:` command places model-written text (step outputs, shared state,
        `loop.previous`, a fan-out item drawn from those) without `| shquote`."""
        roots = {"steps", "state", "loop"}
        for_each = self.out.get("for_each")
        if isinstance(for_each, Template) and for_each.variables & roots:
            roots.add(self.out.get("as_") or "item")
        for value in unquoted_shell_values(command, frozenset(roots)):
            self.ctx.warn(
                path,
                f"{self.label}: 'run' places {value} in the shell command unquoted; model output "
                f"can hold shell syntax such as '; rm -rf ~'. Write {{{{ {value} | shquote }}}} "
                f"(a list: {{{{ {value} | map('shquote') | join(' ') }}}}), or leave it if the "
                "value is trusted",
            )


_READERS: dict[str, _Reader] = {
    **{name: _StepReader.simple for name in SIMPLE_TYPES},
    "template": _StepReader.template,
    "expression": _StepReader.expression,
    "step_ids": _StepReader.step_ids,
    "step_id": _StepReader.step_id,
    "items": _StepReader.items,
    "name": _StepReader.name,
    "tools": _StepReader.tools,
    "approve": _StepReader.approve,
    "options": _StepReader.options,
    "output": _StepReader.output,
    "run_output": _StepReader.output,
    "loop": _StepReader.loop,
    "group": _StepReader.group,
    "count": _StepReader.count,
    "expressions": _StepReader.expressions,
    "mcp_servers": _StepReader.mcp_servers,
    "section": _StepReader.section,
    "models": _StepReader.models,
    "resources": _StepReader.resources,
    "sandbox": _StepReader.sandbox,
}
_AFTER: dict[str, Callable[[_StepReader, Key, Any, Path_], None]] = {
    "prompt": _StepReader.not_empty,
    "ask": _StepReader.not_empty,
    "agent": _StepReader.names_agent,
    "model": _StepReader.names_model,
    "workflow": _StepReader.names_workflow,
    "run": _StepReader.checks_command,
    "into": _StepReader.merge_only,
    "on_conflict": _StepReader.merge_only,
}


def _check_schema(ctx: LoadContext, schema: dict[str, Any], path: Path_, label: str) -> None:
    """A structured output's JSON Schema is itself valid (checked against its meta-schema)."""
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = [str(p) for p in exc.absolute_path]
        bad_path: Path_ = (*path, *exc.absolute_path)
        hint = ""
        in_type = "type" in where[-2:]
        if in_type and isinstance(exc.instance, str):
            hint = did_you_mean(exc.instance, JSON_TYPES)
        at = f" at '{'.'.join(where)}'" if where else ""
        message = exc.message
        if isinstance(exc.instance, str) and in_type:
            message = f"{exc.instance!r} is not a JSON Schema type ({', '.join(JSON_TYPES)})"
        ctx.err(bad_path, f"{label}: invalid output schema{at}: {message}{hint}")
    except Exception as exc:  # a schema so broken the meta-validator trips on it
        ctx.err(path, f"{label}: invalid output schema: {exc}")
