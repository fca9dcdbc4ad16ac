"""Layered settings: packaged `configs/default.yaml` < `./orchestrate.yaml` or `--config FILE`
< `ORCHESTRATE_*` environment variables < CLI flags.

Model ids, aliases, prices and rate limits live in YAML, never in code, so a user adds a model or
a price without touching the engine. Environment variables: `ORCHESTRATE_DB`,
`ORCHESTRATE_CONCURRENCY`, `ORCHESTRATE_MAX_WORKERS`, `ORCHESTRATE_MODEL`, or any setting by path
with double underscores, e.g. `ORCHESTRATE_RETRY__HORIZON=5m`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.contracts import Usage
from orchestrator.environment import SandboxPolicy, parse_sandbox
from orchestrator.errors import UsageError

PROJECT_FILE = "orchestrate.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SHORT_ENV = {
    "ORCHESTRATE_DB": ("engine", "db"),
    "ORCHESTRATE_CONCURRENCY": ("engine", "concurrency"),
    "ORCHESTRATE_MAX_WORKERS": ("engine", "max_workers"),
    "ORCHESTRATE_MODEL": ("engine", "model"),
}


def parse_duration(value: str | float | int) -> float:
    """`30s`, `5m`, `1h`, `200ms`, `2d` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Price(_Model):
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None
    batch_discount: float = 0.5


class RateLimits(_Model):
    """Per minute."""

    requests: int = 4000
    input_tokens: int = 2_000_000
    output_tokens: int = 400_000


class ModelInfo(_Model):
    price: Price | None = None
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    deprecated: bool = False


class ModelsConfig(_Model):
    aliases: dict[str, str] = Field(default_factory=dict)
    catalog: dict[str, ModelInfo] = Field(default_factory=dict)


def _duration_validator(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


class EngineConfig(_Model):
    # a list ([opus, sonnet]): the first, then fallbacks on overload, as a step's `model:`
    model: str | list[str] = "sonnet"
    max_tokens: int = Field(2048, gt=0)
    concurrency: int = Field(50, gt=0)
    max_workers: int = Field(500, gt=0)
    timeout: float = 600.0
    retries: int = Field(3, ge=0)
    max_turns: int = Field(20, gt=0)
    stream_above_max_tokens: int = 16000
    db: str = ".orchestrate/state.db"
    runs_dir: str = ".orchestrate/runs"
    logs_dir: str = ".orchestrate/logs"
    heartbeat: float = 5.0
    stale_after: float = 30.0
    transport: str = "direct"
    executor: Literal["local", "ray"] = "local"  # where tasks run (orchestrator/executors)
    ray_address: str | None = None  # None: RAY_ADDRESS, else a Ray started for the run
    max_value_bytes: int = Field(10_000_000, gt=0)  # one rendered value or stored output
    durable_calls: bool = True  # a task's calls are committed before its next request leaves

    _durations = field_validator("timeout", "heartbeat", "stale_after", mode="before")(
        _duration_validator
    )

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value or not all(isinstance(m, str) and m.strip() for m in value):
                raise ValueError(
                    "engine.model must be a model name (sonnet) or a non-empty list of names "
                    f"to fall back through ([opus, sonnet]), got {value!r}"
                )
            if len(set(value)) != len(value):
                raise ValueError(f"engine.model names a model twice: {value!r}")
            return value[0] if len(value) == 1 else value
        return value

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        if value not in ("direct", "aiohttp", "httpx"):
            raise ValueError("transport must be 'direct', 'aiohttp' or 'httpx'")
        return value


class RetryConfig(_Model):
    base_delay: float = 1.0
    max_delay: float = 60.0
    horizon: float = 900.0
    overload_pause: float = 10.0
    overload_cluster: int = 5

    _durations = field_validator(
        "base_delay", "max_delay", "horizon", "overload_pause", mode="before"
    )(_duration_validator)


class CacheConfig(_Model):
    enabled: bool = True
    ttl: str = "auto"  # auto: 1h when a step is expected to outlast 5 minutes (engine/warmup.py)
    hold: float = 5.0  # seconds a request may wait behind the first of its prefix (0: no hold)
    # Minimum cacheable prefix in tokens by model id ("default" for the rest).
    min_tokens: dict[str, int] = Field(default_factory=lambda: {"default": 1024})

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        if value not in ("5m", "1h", "auto"):
            raise ValueError("cache ttl must be '5m', '1h' or 'auto'")
        return value

    _durations = field_validator("hold", mode="before")(_duration_validator)

    def minimum(self, model_id: str) -> int:
        """Tokens a prefix needs before the API caches it for `model_id`."""
        return self.min_tokens.get(model_id, self.min_tokens.get("default", 1024))


class BatchConfig(_Model):
    poll_interval: float = 5.0
    max_poll_interval: float = 60.0

    _durations = field_validator("poll_interval", "max_poll_interval", mode="before")(
        _duration_validator
    )


class AgentsConfig(_Model):
    """Agent files: the tools one inherits when its front matter names none."""

    default_tools: list[str] = Field(
        default_factory=lambda: [
            "Read", "Write", "Edit", "Glob", "Grep", "WebSearch", "WebFetch",
            "state_get", "state_set", "state_list",
        ]
    )  # fmt: skip


class NotifyConfig(_Model):
    """Who hears of a question that starts waiting for a person (a workflow's `notify:` wins):
    a shell command that gets the question as JSON on stdin, and/or a URL it is POSTed to."""

    command: str | None = None
    url: str | None = None


class Settings(_Model):
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    sandbox: SandboxPolicy = Field(default_factory=SandboxPolicy)  # see orchestrator.environment
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    sources: list[str] = Field(default_factory=list, exclude=True)

    _sandbox = field_validator("sandbox", mode="before")(parse_sandbox)

    @model_validator(mode="after")
    def _fallbacks_callable(self) -> Settings:
        """A fallback in `engine.model: [a, b]` is called only once the model before it is
        overloaded: a name that could never be called is refused now, not then."""
        if isinstance(self.engine.model, list):
            known = {*self.models.aliases, *self.models.catalog}
            for name in self.engine.model:
                if name not in known and not name.startswith("claude-"):
                    aliases = ", ".join(self.models.aliases)
                    raise ValueError(
                        f"engine.model: '{name}' is neither an alias ({aliases}) nor a model "
                        "id; fix the name, or add it under models:"
                    )
        return self

    def resolve_model(self, name: str | None) -> str:
        """An alias or a full id -> a full id (unknown ids pass through: the API decides)."""
        default = self.engine.model
        name = name or (default[0] if isinstance(default, list) else default)
        seen: set[str] = set()
        while name in self.models.aliases and name not in seen:
            seen.add(name)
            name = self.models.aliases[name]
        return name

    def model_info(self, model_id: str) -> ModelInfo | None:
        return self.models.catalog.get(model_id)

    def price(self, model_id: str) -> Price | None:
        info = self.models.catalog.get(model_id)
        return info.price if info else None

    def cost_usd(self, model_id: str, usage: Usage, *, batch: bool = False) -> float | None:
        """Exact dollars for one call's usage; None when the model has no price (never 0)."""
        price = self.price(model_id)
        if price is None:
            return None
        write_5m = price.cache_write_5m if price.cache_write_5m is not None else price.input * 1.25
        write_1h = price.cache_write_1h if price.cache_write_1h is not None else price.input * 2.0
        read = price.cache_read if price.cache_read is not None else price.input * 0.1
        # When the API gives no TTL breakdown, cache writes are the 5-minute kind.
        split = usage.cache_creation_5m_input_tokens + usage.cache_creation_1h_input_tokens
        tokens_5m = usage.cache_creation_5m_input_tokens
        if split < usage.cache_creation_input_tokens:
            tokens_5m += usage.cache_creation_input_tokens - split
        total = (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + tokens_5m * write_5m
            + usage.cache_creation_1h_input_tokens * write_1h
            + usage.cache_read_input_tokens * read
        ) / 1_000_000
        return total * price.batch_discount if batch else total


def default_config_text() -> str:
    """The packaged defaults (shipped in the wheel; read from the source tree in a checkout)."""
    try:
        return resources.files("orchestrator").joinpath("_data/default.yaml").read_text("utf-8")
    except (FileNotFoundError, OSError):
        pass
    source = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"
    return source.read_text("utf-8")


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read config file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{where}: invalid YAML in config file") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1:1: a config file must be a mapping of sections")
    return data


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("ORCHESTRATE_"):
            continue
        if name in _SHORT_ENV:
            path: tuple[str, ...] = _SHORT_ENV[name]
        elif "__" in name:
            path = tuple(p.lower() for p in name[len("ORCHESTRATE_") :].split("__"))
        else:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(value) if value else value
    return out


def load_settings(
    config_file: str | Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every layer. `overrides` are CLI flags, as nested dicts."""
    cwd = cwd or Path.cwd()
    environ = os.environ if environ is None else environ
    data = yaml.safe_load(default_config_text()) or {}
    sources = ["packaged defaults"]
    project = Path(config_file) if config_file else cwd / PROJECT_FILE
    if config_file and not project.exists():
        raise UsageError(f"{project}: config file not found (check --config)")
    if project.exists():
        data = _deep_merge(data, _read_yaml(project))
        sources.append(str(project))
    env = _env_overrides(environ)
    if env:
        data = _deep_merge(data, env)
        sources.append("ORCHESTRATE_* environment")
    if overrides:
        data = _deep_merge(data, overrides)
        sources.append("command-line flags")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        # a check across settings (a model_validator) has no place of its own; its message names it
        what = f"invalid setting {where}" if where else "invalid settings"
        raise UsageError(
            f"{what}: {first['msg']} (from {', '.join(sources[1:]) or 'defaults'})"
        ) from None
    settings.sources = sources
    return settings
