"""What the simulator is told to do: seed, latency, faults, scripted rules, rate limits.

Plain data, parsed from CLI flags (`--sim-latency`, `--sim-faults`) and a YAML rules file
(`--sim-script`). Every parse error is a `ValueError` whose message a person can act on; the CLI
turns it into a usage error. Standalone on purpose: nothing of the engine is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

FAULT_KINDS = ("429", "529", "500", "disconnect", "stream_error", "stream_cut")
"""Fault names, in the order a request's random draw walks them. `disconnect` drops the
connection part way through the body; `stream_error` sends an `event: error` (overloaded_error)
after the first content of a stream; `stream_cut` ends a stream cleanly before `message_stop`.
The two stream faults apply to streamed requests only: a plain request that draws one is
answered normally."""

_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_LATENCY_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
_MATCH_KEYS = ("step", "agent", "prompt", "system", "turn")
_REPLY_KEYS = ("text", "json", "tool_calls", "error")


def _default_rate_limits() -> dict[str, int]:
    return {"requests": 4000, "input_tokens": 2_000_000, "output_tokens": 400_000}


@dataclass(slots=True, kw_only=True)
class Rule:
    """One scripted reply. Every given condition must hold; the first matching rule wins.

    Conditions: `step` and `agent` are regular expressions that must match the whole
    `X-Orchestrate-Step` / `X-Orchestrate-Agent` header; `prompt` (the last user text, minus
    `<system-reminder>` blocks) and `system` (the system prompt and any system-role messages)
    are searched anywhere; `turn` is the 1-based assistant turn of the conversation.
    Reply: one of `text`, `json` (sent as the reply's text), `tool_calls` (`[{name, input}]`),
    `error` (`{status, type, message}`); or none of them with a `stop_reason` to override the
    generated reply's. `times` limits how often the rule applies before falling through.
    """

    step: str | None = None
    agent: str | None = None
    prompt: str | None = None
    system: str | None = None
    turn: int | None = None
    text: str | None = None
    json: Any = None
    tool_calls: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None
    times: int | None = None
    stop_reason: str | None = None
    name: str = ""  # how error messages and logs refer to the rule, e.g. "rules.yaml rule 2"

    def __post_init__(self) -> None:
        where = self.name or "rule"
        for key in ("step", "agent", "prompt", "system"):
            pattern = getattr(self, key)
            if pattern is None:
                continue
            if not isinstance(pattern, str):
                raise ValueError(f"{where}: '{key}' must be a regular expression string")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{where}: '{key}' is not a valid regex ({exc})") from None
        if self.turn is not None and (
            isinstance(self.turn, bool) or not isinstance(self.turn, int) or self.turn < 1
        ):
            raise ValueError(f"{where}: 'turn' must be an integer >= 1")
        if self.times is not None and (
            isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 0
        ):
            raise ValueError(f"{where}: 'times' must be an integer >= 0")
        replies = [k for k in _REPLY_KEYS if getattr(self, k) is not None]
        if len(replies) > 1:
            raise ValueError(f"{where}: give only one of {', '.join(replies)}")
        if not replies and self.stop_reason is None:
            raise ValueError(
                f"{where}: no reply; give one of text, json, tool_calls, error (or stop_reason)"
            )
        if self.text is not None and not isinstance(self.text, str):
            raise ValueError(f"{where}: 'text' must be a string")
        if self.tool_calls is not None:
            self._check_tool_calls(where)
        if self.error is not None:
            self._check_error(where)

    def _check_tool_calls(self, where: str) -> None:
        calls = self.tool_calls
        if not isinstance(calls, list) or not calls:
            raise ValueError(f"{where}: 'tool_calls' must be a non-empty list of {{name, input}}")
        for i, call in enumerate(calls, 1):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise ValueError(f"{where}: tool call {i} needs a 'name'")
            if not isinstance(call.get("input", {}), dict):
                raise ValueError(f"{where}: tool call {i}: 'input' must be a mapping")
            unknown = set(call) - {"name", "input", "id"}
            if unknown:
                raise ValueError(f"{where}: tool call {i}: unknown keys {sorted(unknown)}")

    def _check_error(self, where: str) -> None:
        err = self.error
        if not isinstance(err, dict):
            raise ValueError(f"{where}: 'error' must be a mapping {{status, type, message}}")
        status = err.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"{where}: error 'status' must be an HTTP error code (400-599)")
        unknown = set(err) - {"status", "type", "message"}
        if unknown:
            raise ValueError(f"{where}: error: unknown keys {sorted(unknown)}")

    @property
    def reply_kind(self) -> str | None:
        return next((k for k in _REPLY_KEYS if getattr(self, k) is not None), None)


@dataclass(slots=True, kw_only=True)
class SimConfig:
    """How the simulator behaves. Same seed and same request content give the same reply."""

    seed: int = 0
    latency_s: float = 0.0
    jitter: float = 0.2  # latency varies by +- this fraction, per request
    faults: dict[str, float] = field(default_factory=dict)  # {"429": 0.05, "disconnect": 0.01}
    rules: list[Rule] = field(default_factory=list)
    list_len: int = 5  # generated arrays' length, clamped to minItems/maxItems
    tool_calls: bool = True  # call the client tools the prompt names (False: only when forced)
    rate_limits: dict[str, int] = field(default_factory=_default_rate_limits)  # per minute
    retry_after_s: float = 1.0  # what a 429 asks the client to wait (`retry-after`, `-ms`)
    models: list[str] = field(default_factory=list)  # ids served besides configs/default.yaml's
    # As on the API, a cache entry is readable only once the response that wrote it has begun, so
    # simultaneous first requests all pay the write. False: readable as soon as it is computed.
    cache_after_response_start: bool = True

    def __post_init__(self) -> None:
        if self.latency_s < 0:
            raise ValueError("latency cannot be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.list_len < 0:
            raise ValueError("list length cannot be negative")
        _check_faults(self.faults)
        if not all(isinstance(m, str) and m for m in self.models):
            raise ValueError("models must be a list of model ids")
        unknown = set(self.rate_limits) - {"requests", "input_tokens", "output_tokens"}
        if unknown:
            raise ValueError(
                f"unknown rate limit {sorted(unknown)}: use requests, input_tokens, output_tokens"
            )

    @classmethod
    def parse_faults(cls, spec: str) -> dict[str, float]:
        """`429=0.05,529=0.02,500=0.01,disconnect=0.01` -> {"429": 0.05, ...}."""
        faults: dict[str, float] = {}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(
                    f"bad fault {part!r}: expected NAME=PROBABILITY, e.g. 429=0.05,disconnect=0.01"
                )
            try:
                faults[name] = float(value)
            except ValueError:
                raise ValueError(
                    f"bad fault {part!r}: {value.strip()!r} is not a probability between 0 and 1"
                ) from None
        _check_faults(faults)
        return faults

    @classmethod
    def parse_latency(cls, spec: str) -> float:
        """`200ms`, `1s`, `1.5s`, `0.2` (seconds) -> seconds."""
        match = _LATENCY.match(str(spec))
        if not match:
            raise ValueError(f"bad latency {spec!r}: use e.g. 200ms, 1s or 0.2 (seconds)")
        return float(match.group(1)) * _LATENCY_UNITS[match.group(2)]


def _check_faults(faults: dict[str, float]) -> None:
    for name, p in faults.items():
        if name not in FAULT_KINDS:
            raise ValueError(f"unknown fault {name!r}: use one of {', '.join(FAULT_KINDS)}")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ValueError(f"fault {name}: probability {p!r} must be between 0 and 1")
    if sum(faults.values()) > 1 + 1e-9:
        raise ValueError("fault probabilities add up to more than 1")


def load_rules(path: str | Path) -> list[Rule]:
    """Read a YAML rules file: a list of rules (or a mapping with a `rules:` list)."""
    import yaml  # only the rules file needs it

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read rules file ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of rules")
    return _parse_rules(data, str(path))


def _parse_rules(data: list[Any], source: str) -> list[Rule]:
    known = {f.name for f in fields(Rule)} - {"name"}
    rules = []
    for i, raw in enumerate(data, 1):
        where = f"{source} rule {i}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(raw).__name__}")
        unknown = set(raw) - known
        if unknown:
            raise ValueError(
                f"{where}: unknown keys {sorted(map(str, unknown))} "
                f"(conditions: {', '.join(_MATCH_KEYS)}; replies: {', '.join(_REPLY_KEYS)}; "
                "also times, stop_reason)"
            )
        rules.append(Rule(name=where, **{str(k): v for k, v in raw.items()}))
    return rules


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML file of `SimConfig` fields (`--sim-config`), as keyword arguments.

    Values take the flags' spellings where a field is not plain data: `latency` ("200ms"),
    `faults` (a mapping or "429=0.05,..."), `rules` (a list of rules, or the path of a rules file,
    relative to this file). Unknown keys are an error naming the known ones.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read simulator config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of simulator settings")
    known = {f.name for f in fields(SimConfig)} | {"latency"}
    unknown = set(map(str, data)) - known
    if unknown:
        raise ValueError(
            f"{path}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})"
        )
    out: dict[str, Any] = {str(k): v for k, v in data.items()}
    if "latency" in out:
        out["latency_s"] = SimConfig.parse_latency(str(out.pop("latency")))
    elif isinstance(out.get("latency_s"), str):
        out["latency_s"] = SimConfig.parse_latency(out["latency_s"])
    if isinstance(out.get("faults"), str):
        out["faults"] = SimConfig.parse_faults(out["faults"])
    rules = out.get("rules")
    if isinstance(rules, str):
        out["rules"] = load_rules(path.parent / rules)
    elif isinstance(rules, list):
        out["rules"] = _parse_rules(rules, str(path))
    elif rules is not None:
        raise ValueError(f"{path}: 'rules' must be a list of rules or a rules file path")
    if isinstance(out.get("models"), str):
        out["models"] = [out["models"]]
    return out
