"""Load a workflow file: parse, validate, resolve agents, compile templates, build dependencies.

Validation is done by hand over the positioned YAML (not by pydantic) so that every problem is a
`Diagnostic` at the line and column where it was written, with a "did you mean" when a name is
close to a known one. The loader collects every problem it can find before raising one
`SpecError`; models are only built from values that passed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from orchestrator.config import Settings, default_config_text, parse_duration
from orchestrator.contracts import BUILTIN_TOOL_NAMES
from orchestrator.errors import Diagnostic, SpecError
from orchestrator.workflow._yaml import Path_, Positions, decode, parse_yaml
from orchestrator.workflow.agents import agent_from_mapping, did_you_mean, load_agent_file
from orchestrator.workflow.graph import CycleError, topo_order
from orchestrator.workflow.models import (
    _MISSING,
    AgentDef,
    Defaults,
    InputSpec,
    Limits,
    LoopSpec,
    Step,
    Workflow,
    _coerce,
)
from orchestrator.workflow.templates import (
    Template,
    TemplateError,
    compile_value,
    unquoted_shell_values,
)

__all__ = ["STEP_KEYS", "TOP_KEYS", "agent_dirs", "count_steps", "load_workflow", "validate_paths"]

TOP_KEYS = (
    "version",
    "name",
    "description",
    "inputs",
    "defaults",
    "limits",
    "env",
    "agents",
    "steps",
    "outputs",
    "workspace",
)
KIND_KEYS = {
    "prompt": "agent",
    "merge": "merge",
    "run": "run",
    "loop": "loop",
    "workflow": "workflow",
}
COMMON_KEYS = ("id", "description", "needs", "when", "timeout", "retries")
FAN_OUT_KEYS = ("for_each", "as", "concurrency", "on_item_error")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "agent": (
        "prompt",
        "agent",
        "system",
        "model",
        "max_tokens",
        "tools",
        "output",
        "max_turns",
        "context",
        "batch",
        *FAN_OUT_KEYS,
    ),
    "merge": ("merge", "from", "by", "separator"),
    "run": ("run", "allow_failure", "output", *FAN_OUT_KEYS),
    "loop": ("loop",),
    "workflow": ("workflow", "inputs"),
}
STEP_KEYS = tuple(dict.fromkeys(COMMON_KEYS + sum(KIND_FIELDS.values(), ())))
INPUT_KEYS = ("type", "description", "default", "enum")
INPUT_TYPES = ("string", "integer", "number", "boolean", "array", "object")
DEFAULTS_KEYS = ("model", "max_tokens", "timeout", "retries", "max_turns")
LIMITS_KEYS = ("concurrency", "max_workers", "max_cost_usd", "max_tokens")
LOOP_KEYS = ("steps", "until", "max_iterations")
MERGE_KINDS = ("concat", "flatten", "object", "unique", "vote")
CONTEXT_NAMES = ("inputs", "steps", "loop", "run", "state", "env")
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")

_ID = re.compile(r"^[a-z_][a-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AGENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_PYTHON_TOOL = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def agent_dirs(workflow_path: Path, cwd: Path | None = None) -> list[Path]:
    """Where `agent: NAME` is looked up, in order: beside the workflow, ./agents, .claude/agents,
    then (an addition) `agents/` beside the workflow's directory, so a project laid out as
    `workflows/` + `agents/` validates from any directory."""
    cwd = cwd or Path.cwd()
    here = workflow_path.resolve().parent
    dirs = [here / "agents", cwd / "agents", cwd / ".claude" / "agents", here.parent / "agents"]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


@functools.cache
def _packaged_settings() -> Settings:
    return Settings.model_validate(yaml.safe_load(default_config_text()) or {})


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _join_and(items: Sequence[str]) -> str:
    quoted = [f"'{i}'" for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


@dataclass(eq=False)
class _Scope:
    steps: list[_StepInfo] = field(default_factory=list)
    ids: dict[str, _StepInfo] = field(default_factory=dict)
    parent: _Scope | None = None
    owner: _StepInfo | None = None  # the loop step whose body this is


@dataclass(eq=False)
class _Check:
    """A template to resolve once every step is known."""

    template: Template
    path: Path_
    allowed: frozenset[str]
    scope: _Scope
    owner: _StepInfo | None  # the step that gets the dependencies (None: references only)


@dataclass(eq=False)
class _StepInfo:
    id: str
    path: Path_
    scope: _Scope
    kind: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    deps: set[str] = field(default_factory=set)
    body: _Scope | None = None
    loop: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    col: int = 0

    @property
    def label(self) -> str:
        return f"step '{self.id}'"


class _Loader:
    def __init__(
        self,
        path: Path,
        text: str,
        settings: Settings,
        stack: tuple[Path, ...],
        agent_cache: dict[Path, tuple[AgentDef | None, list[Diagnostic]]],
    ) -> None:
        self.path = path
        self.file = str(path)
        self.text = text
        self.lines = text.split("\n")
        self.settings = settings
        self.stack = stack
        self.agent_cache = agent_cache
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.pos = Positions(self.file)
        self.checks: list[_Check] = []
        self.input_names: list[str] = []
        self.env_names: list[str] = []
        self.inline_agents: dict[str, AgentDef] = {}
        self.resolved_agents: dict[str, AgentDef] = {}
        self.agent_refs: list[tuple[_StepInfo, str, Path_]] = []
        self.model_refs: list[tuple[str, Path_]] = []
        self.subs: list[tuple[_StepInfo, str, Path_]] = []

    # --- reporting ---------------------------------------------------------------------------

    def err(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.errors.append(self.pos.at(path, message, key=key))

    def warn(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.warnings.append(self.pos.at(path, message, key=key, severity="warning"))

    def warn_unquoted(self, command: str, step: dict[str, Any], path: Path_, label: str) -> None:
        """Warn where a `run:` command places model-written text (step outputs, shared state,
        `loop.previous`, a fan-out item drawn from those) without `| shquote`."""
        roots = {"steps", "state", "loop"}
        for_each = step.get("for_each")
        if isinstance(for_each, Template) and for_each.variables & roots:
            roots.add(step.get("as_") or "item")
        for value in unquoted_shell_values(command, frozenset(roots)):
            self.warn(
                path,
                f"{label}: 'run' places {value} in the shell command unquoted; model output "
                f"can hold shell syntax such as '; rm -rf ~'. Write {{{{ {value} | shquote }}}} "
                f"(a list: {{{{ {value} | map('shquote') | join(' ') }}}}), or leave it if the "
                "value is trusted",
            )

    def unknown_keys(
        self, data: dict[str, Any], path: Path_, allowed: Sequence[str], where: str
    ) -> None:
        for key in data:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.err((*path, key), f"{where}unknown key '{key}'{hint}", key=True)

    def expect_mapping(self, value: Any, path: Path_, what: str) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"{what} must be a mapping")
            return None
        return value

    # --- scalar fields -----------------------------------------------------------------------

    def string(self, value: Any, path: Path_, what: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.err(path, f"{what} must be a string")
            return None
        return value

    def integer(self, value: Any, path: Path_, what: str, minimum: int = 1) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(path, f"{what} must be an integer, got {value!r}")
            return None
        if value < minimum:
            bound = "positive" if minimum == 1 else f">= {minimum}"
            self.err(path, f"{what} must be {bound}, got {value}")
            return None
        return value

    def number(self, value: Any, path: Path_, what: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.err(path, f"{what} must be a number, got {value!r}")
            return None
        if value <= 0:
            self.err(path, f"{what} must be positive, got {value}")
            return None
        return float(value)

    def boolean(self, value: Any, path: Path_, what: str) -> bool | None:
        if value is None:
            return None
        if not isinstance(value, bool):
            self.err(path, f"{what} must be true or false, got {value!r}")
            return None
        return value

    def duration(self, value: Any, path: Path_, what: str) -> float | None:
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except (ValueError, TypeError):
            self.err(path, f"{what}: not a duration: {value!r} (use e.g. 30s, 5m, 1h)")
            return None
        if seconds <= 0:
            self.err(path, f"{what} must be positive, got {value!r}")
            return None
        return seconds

    def choice(self, value: Any, path: Path_, what: str, choices: Sequence[str]) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value not in choices:
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            self.err(path, f"{what} must be one of {', '.join(choices)}, got {value!r}{hint}")
            return None
        return value

    # --- templates ---------------------------------------------------------------------------

    def template_error_at(self, path: Path_, exc: TemplateError) -> Diagnostic:
        line, col = self.pos.value(path)
        if exc.lineno and exc.lineno > 1:
            line += self.pos.block_offset(path) + exc.lineno - 1
            if 0 < line <= len(self.lines):
                text = self.lines[line - 1]
                col = len(text) - len(text.lstrip()) + 1
        elif exc.lineno == 1 and self.pos.block_offset(path):
            line += 1
            if 0 < line <= len(self.lines):
                text = self.lines[line - 1]
                col = len(text) - len(text.lstrip()) + 1
        return Diagnostic(self.file, line, col, exc.message)

    def template(
        self,
        value: Any,
        path: Path_,
        what: str,
        *,
        allowed: Iterable[str],
        scope: _Scope,
        owner: _StepInfo | None,
        strings_only: bool = True,
    ) -> Template | None:
        if value is None:
            return None
        if strings_only and not isinstance(value, str):
            if isinstance(value, int | float | bool):
                value = str(value).lower() if isinstance(value, bool) else str(value)
            else:
                self.err(path, f"{what} must be a string")
                return None
        try:
            compiled = compile_value(value)
        except TemplateError as exc:
            diag = self.template_error_at(path, exc)
            self.errors.append(
                Diagnostic(diag.file, diag.line, diag.col, f"{what}: {diag.message}")
            )
            return None
        for attr in sorted(compiled.private_attributes):
            self.err(path, f"{what}: '{attr}' is not allowed (names starting with '_' are private)")
        self.checks.append(_Check(compiled, path, frozenset(allowed), scope, owner))
        return compiled

    def resolve_checks(self) -> None:
        for check in self.checks:
            template, path = check.template, check.path
            for name in sorted(template.variables - check.allowed):
                if name == "loop":
                    self.err(path, "'loop' is only defined inside a loop body")
                    continue
                hint = did_you_mean(name, sorted(check.allowed))
                if not hint:
                    hint = f"; available: {', '.join(sorted(check.allowed))}"
                if name == "item":
                    hint += " ('item' exists only in a step with 'for_each')"
                self.err(path, f"unknown name '{name}' in template{hint}")
            if "inputs" in check.allowed:
                for name in sorted(template.input_references - set(self.input_names)):
                    hint = did_you_mean(name, self.input_names)
                    self.err(path, f"unknown input 'inputs.{name}'{hint}")
            if "env" in check.allowed:
                for name in sorted(template.env_references - set(self.env_names)):
                    self.err(
                        path,
                        f"'env.{name}' is not listed under 'env:' (only listed variables are "
                        "exposed)",
                    )
            for ref in sorted(template.references):
                self.resolve_ref(ref, path, check.scope, check.owner, f"unknown step '{ref}'")

    def resolve_ref(
        self, ref: str, path: Path_, scope: _Scope, owner: _StepInfo | None, message: str
    ) -> bool:
        """Attach `ref` as a dependency at the scope where it is defined (an outer step read from
        inside a loop body is a dependency of the enclosing loop step)."""
        here: _Scope | None = scope
        visible: list[str] = []
        while here is not None:
            if ref in here.ids:
                if owner is not None:
                    owner.deps.add(ref)
                return True
            visible.extend(here.ids)
            owner = here.owner
            here = here.parent
        hint = did_you_mean(ref, visible)
        loop = _loop_holding(ref, scope)
        if loop is not None:
            hint = (
                f" (it is inside loop '{loop}': read it as steps.{loop}.output.{ref} outside "
                "the loop)"
            )
        self.err(path, message + hint)
        return False

    # --- top level ---------------------------------------------------------------------------

    def load(self, data: Any) -> Workflow | None:
        if not isinstance(data, dict):
            kind = type(data).__name__ if data is not None else "empty"
            kinds = {"list": "a list", "str": "a string", "int": "a number", "float": "a number"}
            got = kinds.get(kind, kind)
            self.err(
                (), f"a workflow must be a mapping with 'version', 'name' and 'steps'; got {got}"
            )
            return None
        self.unknown_keys(data, (), TOP_KEYS, "")
        version = data.get("version")
        if "version" not in data:
            self.err((), "missing 'version: 1' at the top of the workflow")
        elif version != 1 or isinstance(version, bool):
            self.err(
                ("version",), f"unsupported version {version!r} (this orchestrate reads version 1)"
            )
        name = data.get("name", self.path.stem)
        if not isinstance(name, str) or not name.strip():
            self.err(("name",), "'name' must be a non-empty string")
            name = self.path.stem
        description = self.string(data.get("description"), ("description",), "'description'")
        inputs = self.inputs(data.get("inputs"))
        defaults = self.defaults(data.get("defaults"))
        limits = self.limits(data.get("limits"))
        self.env_names = self.env(data.get("env"))
        self.inline_agents = self.agents(data.get("agents"))
        workspace = self.string(data.get("workspace"), ("workspace",), "'workspace'")

        top = _Scope()
        raw_steps = data.get("steps")
        if "steps" not in data:
            self.err((), "missing 'steps' (a list of steps)")
        else:
            self.steps(raw_steps, ("steps",), top)

        outputs: dict[str, Template] = {}
        raw_outputs = self.expect_mapping(data.get("outputs"), ("outputs",), "'outputs'") or {}
        for key, value in raw_outputs.items():
            if not _NAME.match(key):
                self.err(("outputs", key), f"output name '{key}' must be an identifier", key=True)
            tpl = self.template(
                value,
                ("outputs", key),
                f"output '{key}'",
                allowed=("inputs", "steps", "run", "state", "env"),
                scope=top,
                owner=None,
                strings_only=False,
            )
            if tpl is not None:
                outputs[key] = tpl

        self.resolve_checks()
        self.check_cycles(top)
        self.resolve_agents()
        self.check_models(defaults)
        subs = self.load_subs()
        if self.errors:
            return None
        steps = self.build_steps(top, subs)
        if self.errors:
            return None
        return Workflow(
            version=1,
            name=name,
            description=description,
            inputs=inputs,
            defaults=defaults,
            limits=limits,
            env=self.env_names,
            agents=self.inline_agents,
            resolved_agents=self.resolved_agents,
            steps=steps,
            outputs=outputs,
            workspace=workspace,
            path=self.path,
            source_text=self.text,
            warnings=sorted(self.warnings, key=lambda d: (d.file != self.file, d.line, d.col)),
        )

    def inputs(self, raw: Any) -> dict[str, InputSpec]:
        out: dict[str, InputSpec] = {}
        data = self.expect_mapping(raw, ("inputs",), "'inputs'") or {}
        for name, spec in data.items():
            path: Path_ = ("inputs", name)
            if not _NAME.match(name):
                self.err(path, f"input name '{name}' must be an identifier", key=True)
                continue
            self.input_names.append(name)
            if isinstance(spec, str):
                spec = {"type": spec}
            elif spec is None:
                spec = {}
            if not isinstance(spec, dict):
                self.err(path, f"input '{name}' must be a mapping (type, description, default)")
                continue
            self.unknown_keys(spec, path, INPUT_KEYS, f"input '{name}': ")
            kind = self.choice(
                spec.get("type", "string"), (*path, "type"), f"input '{name}' type", INPUT_TYPES
            )
            kind = kind or "string"
            enum = spec.get("enum")
            if enum is not None and (not isinstance(enum, list) or not enum):
                self.err((*path, "enum"), f"input '{name}': 'enum' must be a non-empty list")
                enum = None
            fields: dict[str, Any] = {"type": kind, "enum": enum}
            fields["description"] = self.string(
                spec.get("description"), (*path, "description"), f"input '{name}' description"
            )
            if "default" in spec:
                default = spec["default"]
                if default is not None:
                    coerced = _coerce(kind, default)
                    if coerced is _MISSING or (kind == "string" and not isinstance(default, str)):
                        self.err(
                            (*path, "default"),
                            f"input '{name}': default {default!r} is not {_a(kind)}",
                        )
                        continue
                    default = coerced
                    if enum is not None and default not in enum:
                        self.err(
                            (*path, "default"),
                            f"input '{name}': default {default!r} is not in enum",
                        )
                fields["default"] = default
                fields["has_default"] = True
            out[name] = InputSpec(**fields)
        return out

    def defaults(self, raw: Any) -> Defaults:
        data = self.expect_mapping(raw, ("defaults",), "'defaults'") or {}
        self.unknown_keys(data, ("defaults",), DEFAULTS_KEYS, "defaults: ")
        p: Path_ = ("defaults",)
        model = self.string(data.get("model"), (*p, "model"), "defaults.model")
        if model:
            self.model_refs.append((model, (*p, "model")))
        return Defaults(
            model=model,
            max_tokens=self.integer(
                data.get("max_tokens"), (*p, "max_tokens"), "defaults.max_tokens"
            ),
            timeout=self.duration(data.get("timeout"), (*p, "timeout"), "defaults.timeout"),
            retries=self.integer(data.get("retries"), (*p, "retries"), "defaults.retries", 0),
            max_turns=self.integer(data.get("max_turns"), (*p, "max_turns"), "defaults.max_turns"),
        )

    def limits(self, raw: Any) -> Limits:
        data = self.expect_mapping(raw, ("limits",), "'limits'") or {}
        self.unknown_keys(data, ("limits",), LIMITS_KEYS, "limits: ")
        p: Path_ = ("limits",)
        return Limits(
            concurrency=self.integer(
                data.get("concurrency"), (*p, "concurrency"), "limits.concurrency"
            ),
            max_workers=self.integer(
                data.get("max_workers"), (*p, "max_workers"), "limits.max_workers"
            ),
            max_cost_usd=self.number(
                data.get("max_cost_usd"), (*p, "max_cost_usd"), "limits.max_cost_usd"
            ),
            max_tokens=self.integer(
                data.get("max_tokens"), (*p, "max_tokens"), "limits.max_tokens"
            ),
        )

    def env(self, raw: Any) -> list[str]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.err(("env",), "'env' must be a list of environment variable names")
            return []
        out: list[str] = []
        for i, name in enumerate(raw):
            if not isinstance(name, str) or not _NAME.match(name):
                self.err(("env", i), f"'env' entries must be variable names, got {name!r}")
            else:
                out.append(name)
        return out

    def agents(self, raw: Any) -> dict[str, AgentDef]:
        out: dict[str, AgentDef] = {}
        data = self.expect_mapping(raw, ("agents",), "'agents'") or {}
        for name, spec in data.items():
            path: Path_ = ("agents", name)
            if not _AGENT_NAME.match(name):
                self.err(
                    path, f"agent name '{name}' must be letters, digits, '-', '_' or '.'", key=True
                )
                continue
            if not isinstance(spec, dict):
                self.err(
                    path, f"agent '{name}' must be a mapping (description, model, tools, system)"
                )
                continue

            def where(key: str, path: Path_ = path) -> tuple[str, int, int]:
                return (self.file, *self.pos.key((*path, key)))

            agent, errors, warnings = agent_from_mapping(
                spec, default_name=name, system="", where=where, strict=True
            )
            agent = agent.model_copy(update={"name": name, "path": self.path})
            self.errors.extend(errors)
            self.warnings.extend(warnings)
            if agent.model:
                self.model_refs.append((agent.model, (*path, "model")))
            out[name] = agent
        return out

    # --- steps -------------------------------------------------------------------------------

    def steps(self, raw: Any, path: Path_, scope: _Scope) -> None:
        if not isinstance(raw, list):
            self.err(path, "'steps' must be a list of steps (each item starts with '- id: ...')")
            return
        if not raw:
            self.err(path, "'steps' is empty; a workflow needs at least one step")
            return
        for index, item in enumerate(raw):
            self.step(item, (*path, index), scope, index)
        for info in scope.steps:
            self.step_fields(info)

    def step(self, raw: Any, path: Path_, scope: _Scope, index: int) -> None:
        if not isinstance(raw, dict):
            self.err(path, "a step must be a mapping that starts with 'id:'")
            return
        step_id = raw.get("id")
        line, col = self.pos.value(path)
        if step_id is None:
            self.err(path, "step has no 'id'")
            step_id = f"#{index + 1}"
        elif not isinstance(step_id, str) or not _ID.match(step_id):
            self.err(
                (*path, "id"),
                f"step id {step_id!r} must match [a-z_][a-z0-9_]* (lowercase letters, digits, _)",
            )
            step_id = f"#{index + 1}"
        elif step_id in scope.ids:
            first = scope.ids[step_id]
            self.err(
                (*path, "id"), f"duplicate step id '{step_id}' (first used at line {first.line})"
            )
            step_id = f"#{index + 1}"
        kinds = [k for k in KIND_KEYS if k in raw]
        info = _StepInfo(step_id, path, scope, None, line=line, col=col)
        label = f"step '{step_id}'" if not step_id.startswith("#") else "step"
        if not kinds:
            hint = " (an agent step needs a 'prompt')" if "agent" in raw else ""
            self.err(
                path,
                f"{label} has no kind: give it one of 'prompt', 'merge', 'run', 'loop' or "
                f"'workflow'{hint}",
            )
        elif len(kinds) > 1:
            both = "both " if len(kinds) == 2 else ""
            self.err(
                (*path, kinds[1]),
                f"{label} has {both}{_join_and(kinds)}; a step is one kind",
                key=True,
            )
        else:
            info.kind = KIND_KEYS[kinds[0]]
        for key in raw:
            if key not in STEP_KEYS:
                hint = did_you_mean(key, STEP_KEYS)
                self.err((*path, key), f"{label}: unknown key '{key}'{hint}", key=True)
            elif info.kind and key not in COMMON_KEYS and key not in KIND_FIELDS[info.kind]:
                self.err(
                    (*path, key),
                    f"{label}: '{key}' does not apply to {_a(info.kind)} step",
                    key=True,
                )
        info.fields = raw
        scope.steps.append(info)
        if not step_id.startswith("#"):
            scope.ids[step_id] = info

    def step_fields(self, info: _StepInfo) -> None:
        """Validate and convert every field of one step (ids of its scope are all known)."""
        raw, path, scope = info.fields, info.path, info.scope
        label = info.label if not info.id.startswith("#") else "step"
        out: dict[str, Any] = {"id": info.id, "kind": info.kind or "agent"}
        out["line"], out["col"] = info.line, info.col
        out["description"] = self.string(
            raw.get("description"), (*path, "description"), f"{label}: 'description'"
        )
        base = ["inputs", "steps", "run", "state", "env"]
        if scope.owner is not None:
            base.append("loop")

        def tpl(key: str, allowed: Sequence[str], strings_only: bool = True) -> Template | None:
            return self.template(
                raw.get(key),
                (*path, key),
                f"{label}: '{key}'",
                allowed=allowed,
                scope=scope,
                owner=info,
                strings_only=strings_only,
            )

        # needs
        needs_raw = raw.get("needs")
        needs: list[str] = []
        if isinstance(needs_raw, str):
            needs_raw = [needs_raw]
            needs_paths: list[Path_] = [(*path, "needs")]
        elif isinstance(needs_raw, list):
            needs_paths = [(*path, "needs", i) for i in range(len(needs_raw))]
        elif needs_raw is not None:
            self.err((*path, "needs"), f"{label}: 'needs' must be a list of step ids")
            needs_raw, needs_paths = [], []
        else:
            needs_raw, needs_paths = [], []
        for item, item_path in zip(needs_raw, needs_paths, strict=True):
            if not isinstance(item, str):
                self.err(item_path, f"{label}: 'needs' entries must be step ids")
                continue
            if self.resolve_ref(
                item, item_path, scope, info, f"{label}: needs unknown step '{item}'"
            ):
                needs.append(item)
        out["needs"] = needs
        out["when"] = tpl("when", base, strings_only=False)
        out["timeout"] = self.duration(
            raw.get("timeout"), (*path, "timeout"), f"{label}: 'timeout'"
        )
        out["retries"] = self.integer(
            raw.get("retries"), (*path, "retries"), f"{label}: 'retries'", 0
        )

        # fan-out
        item_names: list[str] = []
        if "for_each" in raw:
            value = raw["for_each"]
            fp: Path_ = (*path, "for_each")
            if isinstance(value, str):
                compiled = tpl("for_each", base)
                if compiled is not None and not compiled.is_native:
                    self.err(
                        fp,
                        f"{label}: 'for_each' must be a list or one '{{{{ expression }}}}' that "
                        "gives a list",
                    )
                out["for_each"] = compiled
            elif isinstance(value, list):
                out["for_each"] = tpl("for_each", base, strings_only=False)
            else:
                self.err(fp, f"{label}: 'for_each' must be a list or a '{{{{ expression }}}}'")
            as_name = raw.get("as", "item")
            if not isinstance(as_name, str) or not _NAME.match(as_name):
                self.err((*path, "as"), f"{label}: 'as' must be a name, got {as_name!r}")
                as_name = "item"
            elif as_name in CONTEXT_NAMES:
                self.err(
                    (*path, "as"), f"{label}: 'as: {as_name}' would hide the '{as_name}' variable"
                )
                as_name = "item"
            out["as_"] = as_name
            item_names.append(as_name)
            out["concurrency"] = self.integer(
                raw.get("concurrency"), (*path, "concurrency"), f"{label}: 'concurrency'"
            )
            on_err = self.choice(
                raw.get("on_item_error"),
                (*path, "on_item_error"),
                f"{label}: 'on_item_error'",
                ("fail", "skip"),
            )
            if on_err:
                out["on_item_error"] = on_err
        else:
            for key in ("as", "concurrency", "on_item_error"):
                if key in raw and info.kind in ("agent", "run"):
                    self.err(
                        (*path, key), f"{label}: '{key}' only applies with 'for_each'", key=True
                    )
        per_item = [*base, *item_names]

        kind = info.kind
        if kind == "agent":
            out["prompt"] = tpl("prompt", per_item)
            if isinstance(raw.get("prompt"), str) and not raw["prompt"].strip():
                self.err((*path, "prompt"), f"{label}: 'prompt' is empty")
            out["context"] = tpl("context", base)
            agent = self.string(raw.get("agent"), (*path, "agent"), f"{label}: 'agent'")
            if agent:
                self.agent_refs.append((info, agent, (*path, "agent")))
            out["agent"] = agent
            out["system"] = self.string(raw.get("system"), (*path, "system"), f"{label}: 'system'")
            model = self.string(raw.get("model"), (*path, "model"), f"{label}: 'model'")
            if model:
                self.model_refs.append((model, (*path, "model")))
            out["model"] = model
            out["max_tokens"] = self.integer(
                raw.get("max_tokens"), (*path, "max_tokens"), f"{label}: 'max_tokens'"
            )
            out["max_turns"] = self.integer(
                raw.get("max_turns"), (*path, "max_turns"), f"{label}: 'max_turns'"
            )
            out["tools"] = self.tools(raw.get("tools"), (*path, "tools"), label)
            out["output"] = self.output(raw.get("output"), (*path, "output"), label, schema=True)
            batch = self.boolean(raw.get("batch"), (*path, "batch"), f"{label}: 'batch'")
            out["batch"] = bool(batch)
        elif kind == "merge":
            merge = self.choice(
                raw.get("merge"), (*path, "merge"), f"{label}: 'merge'", MERGE_KINDS
            )
            out["merge"] = merge or "concat"
            source = raw.get("from")
            if source is None:
                self.err(path, f"{label}: a merge step needs 'from: <step id>'")
            elif not isinstance(source, str):
                self.err((*path, "from"), f"{label}: 'from' must be a step id")
            else:
                if source == info.id:
                    self.err((*path, "from"), f"{label}: 'from' cannot name the step itself")
                self.resolve_ref(
                    source,
                    (*path, "from"),
                    scope,
                    info,
                    f"{label}: 'from' names unknown step '{source}'",
                )
                out["from_"] = source
            out["by"] = self.string(raw.get("by"), (*path, "by"), f"{label}: 'by'")
            sep = self.string(raw.get("separator"), (*path, "separator"), f"{label}: 'separator'")
            if sep is not None:
                out["separator"] = sep
        elif kind == "run":
            command = raw.get("run")
            if isinstance(command, str) and not command.strip():
                self.err((*path, "run"), f"{label}: 'run' is empty")
            out["run"] = tpl("run", per_item)
            if isinstance(command, str) and out["run"] is not None:
                self.warn_unquoted(command, out, (*path, "run"), label)
            allow = self.boolean(
                raw.get("allow_failure"), (*path, "allow_failure"), f"{label}: 'allow_failure'"
            )
            out["allow_failure"] = bool(allow)
            out["output"] = self.output(raw.get("output"), (*path, "output"), label, schema=False)
        elif kind == "loop":
            out["loop"] = self.loop(raw.get("loop"), (*path, "loop"), info, label, base)
        elif kind == "workflow":
            target = self.string(raw.get("workflow"), (*path, "workflow"), f"{label}: 'workflow'")
            out["workflow"] = target
            if target:
                self.subs.append((info, target, (*path, "workflow")))
            sub_inputs = (
                self.expect_mapping(raw.get("inputs"), (*path, "inputs"), f"{label}: 'inputs'")
                or {}
            )
            compiled_inputs: dict[str, Template] = {}
            for key, value in sub_inputs.items():
                compiled = self.template(
                    value,
                    (*path, "inputs", key),
                    f"{label}: input '{key}'",
                    allowed=base,
                    scope=scope,
                    owner=info,
                    strings_only=False,
                )
                if compiled is not None:
                    compiled_inputs[key] = compiled
            out["inputs"] = compiled_inputs
        info.fields = {"__raw__": raw, **out}

    def tools(self, raw: Any, path: Path_, label: str) -> list[str | dict[str, str]]:
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = [t.strip() for t in raw.split(",") if t.strip()]
            paths: list[Path_] = [path] * len(raw)
        elif isinstance(raw, list):
            paths = [(*path, i) for i in range(len(raw))]
        else:
            self.err(path, f"{label}: 'tools' must be a list of tool names")
            return []
        out: list[str | dict[str, str]] = []
        for tool, tool_path in zip(raw, paths, strict=True):
            if isinstance(tool, str):
                if tool in BUILTIN_TOOL_NAMES:
                    if tool not in out:
                        out.append(tool)
                else:
                    hint = did_you_mean(tool, BUILTIN_TOOL_NAMES)
                    self.err(tool_path, f"{label}: unknown tool '{tool}'{hint}")
            elif isinstance(tool, dict) and list(tool) == ["python"]:
                target = tool["python"]
                if not isinstance(target, str) or not _PYTHON_TOOL.match(target):
                    self.err(
                        (*tool_path, "python"),
                        f"{label}: a python tool is {{python: 'package.module:function'}}, "
                        f"got {target!r}",
                    )
                else:
                    out.append({"python": target})
            else:
                self.err(
                    tool_path,
                    f"{label}: a tool is a built-in name ({', '.join(BUILTIN_TOOL_NAMES)}) or "
                    "{python: 'package.module:function'}",
                )
        return out

    def output(self, raw: Any, path: Path_, label: str, *, schema: bool) -> Any:
        if raw is None:
            return None
        if raw in ("text", "json"):
            return raw
        if isinstance(raw, dict) and schema:
            self.check_schema(raw, path, label)
            return raw
        allowed = "'text', 'json' or a JSON Schema mapping" if schema else "'text' or 'json'"
        hint = did_you_mean(raw, ("text", "json")) if isinstance(raw, str) else ""
        self.err(path, f"{label}: 'output' must be {allowed}, got {raw!r}{hint}")
        return None

    def check_schema(self, schema: dict[str, Any], path: Path_, label: str) -> None:
        try:
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
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
            self.err(bad_path, f"{label}: invalid output schema{at}: {message}{hint}")
        except Exception as exc:  # a schema so broken the meta-validator trips on it
            self.err(path, f"{label}: invalid output schema: {exc}")

    def loop(
        self, raw: Any, path: Path_, info: _StepInfo, label: str, base: list[str]
    ) -> LoopSpec | None:
        if not isinstance(raw, dict):
            self.err(
                path,
                f"{label}: 'loop' must be a mapping with 'steps', 'until' and 'max_iterations'",
            )
            return None
        self.unknown_keys(raw, path, LOOP_KEYS, f"{label}: loop: ")
        body = _Scope(parent=info.scope, owner=info)
        info.body = body
        if "steps" not in raw:
            self.err(path, f"{label}: 'loop' needs 'steps'")
        else:
            self.steps(raw["steps"], (*path, "steps"), body)
        max_iterations = raw.get("max_iterations")
        if max_iterations is None:
            self.err(path, f"{label}: 'loop' needs 'max_iterations' (a loop is always bounded)")
        else:
            max_iterations = self.integer(
                max_iterations, (*path, "max_iterations"), f"{label}: 'max_iterations'"
            )
        until = self.template(
            raw.get("until"),
            (*path, "until"),
            f"{label}: 'until'",
            allowed=[*base, "loop"] if "loop" not in base else base,
            scope=body,
            owner=None,
            strings_only=False,
        )
        # Built for real in build_steps, once the body is valid.
        info.loop = {"until": until, "max_iterations": max_iterations or 1}
        return None

    # --- cross-references --------------------------------------------------------------------

    def check_cycles(self, scope: _Scope) -> None:
        named = [i for i in scope.steps if not i.id.startswith("#")]
        try:
            topo_order([_Deps(i.id, frozenset(i.deps)) for i in named])
        except CycleError as exc:
            first = scope.ids[exc.cycle[0]]
            self.errors.append(Diagnostic(self.file, first.line, first.col, str(exc)))
        for info in scope.steps:
            if info.body is not None:
                self.check_cycles(info.body)

    def known_agent_names(self) -> list[str]:
        names = list(self.inline_agents)
        for directory in agent_dirs(self.path):
            if directory.is_dir():
                names.extend(p.stem for p in sorted(directory.glob("*.md")))
        return names

    def agent_file(self, file: Path) -> AgentDef | None:
        key = file.resolve()
        if key not in self.agent_cache:
            try:
                agent, warnings = load_agent_file(file)
                self.agent_cache[key] = (agent, warnings)
                self.warnings.extend(warnings)
            except SpecError as exc:
                self.agent_cache[key] = (None, exc.diagnostics)
                self.errors.extend(exc.diagnostics)
        return self.agent_cache[key][0]

    def find_agent(self, name: str) -> tuple[bool, AgentDef | None]:
        """(found, agent): found with no agent means the file exists but is invalid."""
        if name in self.inline_agents:
            return True, self.inline_agents[name]
        dirs = [d for d in agent_dirs(self.path) if d.is_dir()]
        for directory in dirs:
            file = directory / f"{name}.md"
            if file.is_file():
                return True, self.agent_file(file)
        # Claude Code names agents by their front matter; the file name may differ.
        for directory in dirs:
            for file in sorted(directory.glob("*.md")):
                try:
                    head = file.read_text("utf-8-sig", errors="replace")[:2000]
                except OSError:
                    continue
                if re.search(rf"(?m)^name:\s*['\"]?{re.escape(name)}['\"]?\s*$", head):
                    return True, self.agent_file(file)
        return False, None

    def resolve_agents(self) -> None:
        for info, name, path in self.agent_refs:
            if name in self.resolved_agents:
                continue
            if not _AGENT_NAME.match(name):
                self.err(path, f"{info.label}: invalid agent name '{name}'")
                continue
            found, agent = self.find_agent(name)
            if not found:
                hint = did_you_mean(name, self.known_agent_names())
                searched = ", ".join(str(d) for d in agent_dirs(self.path))
                self.err(
                    path,
                    f"{info.label}: unknown agent '{name}'{hint} "
                    f"(looked in 'agents:' and {searched})",
                )
                continue
            if agent is None:
                continue  # the agent file is invalid; its own errors are reported
            self.resolved_agents[name] = agent
            if agent.model:
                self.model_refs.append((agent.model, path))

    def check_models(self, defaults: Defaults) -> None:
        aliases = self.settings.models.aliases
        catalog = self.settings.models.catalog
        for model, path in self.model_refs:
            if model in aliases or model in catalog:
                continue
            hint = did_you_mean(model, [*aliases, *catalog])
            if hint or not model.startswith("claude-"):
                self.warn(path, f"model '{model}' is not an alias or a model in the catalog{hint}")

    def load_subs(self) -> dict[int, Workflow]:
        out: dict[int, Workflow] = {}
        for info, target, path in self.subs:
            file = (self.path.parent / target) if not Path(target).is_absolute() else Path(target)
            if file.resolve() in [p.resolve() for p in (*self.stack, self.path)]:
                chain = " -> ".join(str(p) for p in (*self.stack, self.path, file))
                self.err(path, f"{info.label}: workflow includes itself: {chain}")
                continue
            if not file.is_file():
                self.err(path, f"{info.label}: sub-workflow not found: {file}")
                continue
            try:
                sub = _load_file(
                    file, None, self.settings, (*self.stack, self.path), self.agent_cache
                )
            except SpecError as exc:
                self.errors.extend(exc.diagnostics)
                self.err(path, f"{info.label}: sub-workflow {target} is invalid (see above)")
                continue
            self.warnings.extend(sub.warnings)
            given = info.fields["__raw__"].get("inputs") or {}
            if not isinstance(given, dict):
                given = {}
            for key in given:
                if key not in sub.inputs:
                    hint = did_you_mean(key, list(sub.inputs))
                    self.err(
                        (*info.path, "inputs", key),
                        f"{info.label}: {target} has no input '{key}'{hint}",
                        key=True,
                    )
            for key, spec in sub.inputs.items():
                if spec.required and key not in given:
                    self.err(path, f"{info.label}: {target} needs input '{key}'")
            out[id(info)] = sub
        return out

    # --- models ------------------------------------------------------------------------------

    def build_steps(self, scope: _Scope, subs: dict[int, Workflow]) -> list[Step]:
        steps: list[Step] = []
        for info in scope.steps:
            fields = {k: v for k, v in info.fields.items() if not k.startswith("__")}
            fields["deps"] = frozenset(info.deps)
            if info.body is not None:
                loop = info.loop
                fields["loop"] = LoopSpec(
                    steps=self.build_steps(info.body, subs),
                    until=loop.get("until"),
                    max_iterations=loop.get("max_iterations", 1),
                )
            if id(info) in subs:
                fields["sub"] = subs[id(info)]
            try:
                steps.append(Step(**fields))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                self.err(info.path, f"{info.label}: invalid {where}: {first['msg']}")
        return steps


def _loop_holding(ref: str, scope: _Scope) -> str | None:
    """The visible loop step whose body (at any depth) defines `ref`, if any."""

    def inside(body: _Scope) -> bool:
        return ref in body.ids or any(i.body is not None and inside(i.body) for i in body.steps)

    here: _Scope | None = scope
    while here is not None:
        for info in here.steps:
            if info.body is not None and inside(info.body):
                return info.id
        here = here.parent
    return None


@dataclass(frozen=True)
class _Deps:
    id: str
    deps: frozenset[str]


def _load_file(
    path: Path,
    text: str | None,
    settings: Settings,
    stack: tuple[Path, ...],
    agent_cache: dict[Path, tuple[AgentDef | None, list[Diagnostic]]],
) -> Workflow:
    file = str(path)
    if text is None:
        try:
            raw = path.read_bytes()
        except IsADirectoryError:
            raise SpecError(
                [Diagnostic(file, 1, 1, "is a directory, not a workflow file")]
            ) from None
        except OSError as exc:
            message = f"cannot read workflow file: {exc.strerror or exc}"
            raise SpecError([Diagnostic(file, 1, 1, message)]) from None
        decoded, errors = decode(raw, file)
        if decoded is None:
            raise SpecError(errors)
        text = decoded
    else:
        text = text.lstrip("\ufeff").replace("\r\n", "\n")
    data, pos, errors = parse_yaml(text, file)
    if data is None and not errors:
        errors = [Diagnostic(file, 1, 1, "the file is empty")]
    if data is None:
        raise SpecError(errors)
    loader = _Loader(path, text, settings, stack, agent_cache)
    loader.pos = pos
    loader.errors.extend(errors)
    workflow = loader.load(data)
    if loader.errors or workflow is None:
        unique = list(dict.fromkeys(loader.errors))
        raise SpecError(sorted(unique, key=lambda d: (d.file != file, d.file, d.line, d.col)))
    return workflow


def load_workflow(
    path: str | Path, *, text: str | None = None, settings: Settings | None = None
) -> Workflow:
    """Parse and validate a workflow file (or `text`, named `path`). Raises `SpecError` carrying
    every problem found; warnings are in `workflow.warnings`."""
    return _load_file(Path(path), text, settings or _packaged_settings(), (), {})


def count_steps(workflow: Workflow) -> int:
    """Steps including loop bodies."""
    return len(workflow.iter_steps())


def validate_paths(
    paths: Iterable[str | Path], *, settings: Settings | None = None
) -> list[Diagnostic]:
    """Every error and warning of each file; never raises on bad content."""
    out: list[Diagnostic] = []
    for path in paths:
        try:
            workflow = load_workflow(path, settings=settings)
        except SpecError as exc:
            out.extend(exc.diagnostics)
        except RecursionError:
            out.append(Diagnostic(str(path), 1, 1, "the workflow is nested too deeply"))
        except Exception as exc:  # a loader bug must not hide the other files' results
            message = (
                f"internal error while validating ({type(exc).__name__}: {exc}); please report"
            )
            out.append(Diagnostic(str(path), 1, 1, message))
        else:
            out.extend(workflow.warnings)
    return out
