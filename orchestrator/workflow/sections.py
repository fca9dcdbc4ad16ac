"""The top-level sections of a workflow other than `steps`: the header (`version`, `name`,
`description`, `workspace`), `inputs`, `defaults`, `limits`, `env`, inline `agents`, `outputs`,
and how the workflow lives across runs (`state_scope`, `schedule`, `overlap`).

Each function checks its section against the language table and returns the model (or the values)
built from what passed; names the later passes need (inputs, env variables, inline agents, model
references) are recorded on the context.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from orchestrator.workflow import fields
from orchestrator.workflow._context import LoadContext, Scope, a_or_an
from orchestrator.workflow._yaml import Path_
from orchestrator.workflow.agents import agent_from_mapping
from orchestrator.workflow.language import (
    AGENT_NAME_PATTERN,
    DEFAULTS,
    INPUT,
    INPUT_KEYS,
    INPUT_TYPES,
    LIMITS,
    NAME_PATTERN,
    NOTIFY,
    OVERLAP,
    SCHEDULE,
    TOP_KEYS,
)
from orchestrator.workflow.models import (
    _MISSING,
    AgentDef,
    Defaults,
    InputSpec,
    Limits,
    Notify,
    Schedule,
    _coerce,
)
from orchestrator.workflow.references import template
from orchestrator.workflow.templates import Template

__all__ = ["agents", "defaults", "env", "header", "inputs", "limits", "notify", "outputs"]

_NAME = re.compile(NAME_PATTERN)
_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)
_KINDS_OF = {"list": "a list", "str": "a string", "int": "a number", "float": "a number"}
# What an output's template may read: no `loop` (outputs are outside every loop), no item.
OUTPUT_NAMES = ("inputs", "steps", "run", "state", "env")


def header(ctx: LoadContext, data: Any) -> dict[str, Any] | None:
    """The document is a mapping of known keys with `version: 1`: name, description and
    workspace. None when the document is not a mapping at all."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "empty"
        got = _KINDS_OF.get(kind, kind)
        ctx.err((), f"a workflow must be a mapping with 'version', 'name' and 'steps'; got {got}")
        return None
    fields.unknown_keys(ctx, data, (), TOP_KEYS, "")
    version = data.get("version")
    if "version" not in data:
        ctx.err((), "missing 'version: 1' at the top of the workflow")
    elif version != 1 or isinstance(version, bool):
        ctx.err(("version",), f"unsupported version {version!r} (this orchestrate reads version 1)")
    name = data.get("name", ctx.path.stem)
    if not isinstance(name, str) or not name.strip():
        ctx.err(("name",), "'name' must be a non-empty string")
        name = ctx.path.stem
    return {
        "name": name,
        "description": fields.string(
            ctx, data.get("description"), ("description",), "'description'"
        ),
        "workspace": fields.string(ctx, data.get("workspace"), ("workspace",), "'workspace'"),
        "mcp_servers": fields.read_mcp_servers(
            ctx, data.get("mcp_servers"), ("mcp_servers",), "'mcp_servers'"
        )
        or {},
    }


def inputs(ctx: LoadContext, raw: Any) -> dict[str, InputSpec]:
    out: dict[str, InputSpec] = {}
    data = fields.expect_mapping(ctx, raw, ("inputs",), "'inputs'") or {}
    for name, spec in data.items():
        path: Path_ = ("inputs", name)
        if not _NAME.match(name):
            ctx.err(path, f"input name '{name}' must be an identifier", key=True)
            continue
        ctx.input_names.append(name)
        if isinstance(spec, str):
            spec = {"type": spec}  # `question: string`
        elif spec is None:
            spec = {}
        if not isinstance(spec, dict):
            ctx.err(path, f"input '{name}' must be a mapping (type, description, default)")
            continue
        built = _input(ctx, name, spec, path)
        if built is not None:
            out[name] = built
    return out


def _input(ctx: LoadContext, name: str, spec: dict[str, Any], path: Path_) -> InputSpec | None:
    fields.unknown_keys(ctx, spec, path, INPUT_KEYS, f"input '{name}': ")
    type_key = next(key for key in INPUT if key.name == "type")
    kind = fields.choice(
        ctx,
        spec.get("type", type_key.default),
        (*path, "type"),
        f"input '{name}' type",
        INPUT_TYPES,
    )
    kind = kind or type_key.default
    enum = spec.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        ctx.err((*path, "enum"), f"input '{name}': 'enum' must be a non-empty list")
        enum = None
    values: dict[str, Any] = {"type": kind, "enum": enum}
    values["description"] = fields.string(
        ctx, spec.get("description"), (*path, "description"), f"input '{name}' description"
    )
    if "default" in spec:
        default = spec["default"]
        if default is not None:
            coerced = _coerce(kind, default)
            if coerced is _MISSING or (kind == "string" and not isinstance(default, str)):
                ctx.err(
                    (*path, "default"),
                    f"input '{name}': default {default!r} is not {a_or_an(kind)}",
                )
                return None
            default = coerced
            if enum is not None and default not in enum:
                ctx.err((*path, "default"), f"input '{name}': default {default!r} is not in enum")
        values["default"] = default
        values["has_default"] = True
    return InputSpec(**values)


def defaults(ctx: LoadContext, raw: Any) -> Defaults:
    values = fields.section(ctx, raw, ("defaults",), DEFAULTS, "defaults")
    ctx.refer_models(values.get("model"), ("defaults", "model"), "defaults.model")
    return Defaults(**values)


def limits(ctx: LoadContext, raw: Any) -> Limits:
    return Limits(**fields.section(ctx, raw, ("limits",), LIMITS, "limits"))


def notify(ctx: LoadContext, raw: Any) -> Notify:
    return Notify(**fields.section(ctx, raw, ("notify",), NOTIFY, "notify"))


_SCOPE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$")


def serving(ctx: LoadContext, data: dict[str, Any]) -> dict[str, Any]:
    """`state_scope`, `schedule` and `overlap`: how the workflow lives across runs."""
    out: dict[str, Any] = {}
    scope = fields.string(ctx, data.get("state_scope"), ("state_scope",), "'state_scope'")
    if scope is not None and not _SCOPE.match(scope):
        ctx.err(
            ("state_scope",),
            f"'state_scope' must be `workflow` or a name of letters, digits and _.:/-; "
            f"got {scope!r}",
        )
    elif scope is not None:
        out["state_scope"] = scope
    overlap = fields.choice(ctx, data.get("overlap"), ("overlap",), "'overlap'", OVERLAP)
    if overlap is not None:
        out["overlap"] = overlap
    if data.get("schedule") is None:
        return out
    values = fields.section(ctx, data["schedule"], ("schedule",), SCHEDULE, "schedule")
    if not isinstance(data["schedule"], dict):
        return out
    every, cron, zone = values.get("every"), values.get("cron"), values.get("timezone")
    written = data["schedule"]
    if ("every" in written) == ("cron" in written):
        ctx.err(
            ("schedule",), "'schedule' needs exactly one of 'every' (10m) or 'cron' (0 9 * * *)"
        )
        return out
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # a directory, a long name
            ctx.err(
                ("schedule", "timezone"),
                f"schedule: unknown timezone {zone!r} (use an IANA name like Europe/Paris)",
            )
            return out
        if cron is None:
            ctx.warn(("schedule", "timezone"), "schedule: 'timezone' only matters with 'cron'")
    if cron is not None:
        try:
            CronSim(cron, datetime.now(UTC))
        except CronSimError as exc:
            ctx.err(("schedule", "cron"), f"schedule: bad cron {cron!r}: {exc}")
            return out
    out["schedule"] = Schedule(every=every, cron=cron, timezone=zone)
    return out


def env(ctx: LoadContext, raw: Any) -> list[str]:
    """The environment variables templates may read; recorded for `resolve_checks`."""
    out: list[str] = []
    if raw is None:
        pass
    elif not isinstance(raw, list):
        ctx.err(("env",), "'env' must be a list of environment variable names")
    else:
        for i, name in enumerate(raw):
            if not isinstance(name, str) or not _NAME.match(name):
                ctx.err(("env", i), f"'env' entries must be variable names, got {name!r}")
            else:
                out.append(name)
    ctx.env_names = out
    return out


def agents(ctx: LoadContext, raw: Any) -> dict[str, AgentDef]:
    """Inline agents (`agents:`); they win over agent files of the same name."""
    out: dict[str, AgentDef] = {}
    data = fields.expect_mapping(ctx, raw, ("agents",), "'agents'") or {}
    for name, spec in data.items():
        path: Path_ = ("agents", name)
        if not _AGENT_NAME.match(name):
            ctx.err(path, f"agent name '{name}' must be letters, digits, '-', '_' or '.'", key=True)
            continue
        if not isinstance(spec, dict):
            ctx.err(path, f"agent '{name}' must be a mapping (description, model, tools, system)")
            continue

        def where(key: str, path: Path_ = path) -> tuple[str, int, int]:
            return (ctx.file, *ctx.pos.key((*path, key)))

        agent, errors, warnings = agent_from_mapping(
            spec, default_name=name, system="", where=where, strict=True
        )
        agent = agent.model_copy(update={"name": name, "path": ctx.path})
        ctx.errors.extend(errors)
        ctx.warnings.extend(warnings)
        ctx.refer_models(agent.model, (*path, "model"), f"agent '{name}': model")
        out[name] = agent
    ctx.inline_agents = out
    return out


def outputs(ctx: LoadContext, raw: Any, top: Scope) -> dict[str, Template]:
    out: dict[str, Template] = {}
    data = fields.expect_mapping(ctx, raw, ("outputs",), "'outputs'") or {}
    for key, value in data.items():
        if not _NAME.match(key):
            ctx.err(("outputs", key), f"output name '{key}' must be an identifier", key=True)
        compiled = template(
            ctx,
            value,
            ("outputs", key),
            f"output '{key}'",
            allowed=OUTPUT_NAMES,
            scope=top,
            owner=None,
            strings_only=False,
        )
        if compiled is not None:
            out[key] = compiled
    return out
